"""Outlinks of a raw captured page, for the WARC ``metadata`` records.

Works on the body as it came off the wire (maybe still gzip-coded), because capture
happens before Scrapy's decompression middleware.
"""

from __future__ import annotations

import zlib

import lxml.html
from scrapy.http import Response

MAX_DECODED = 50_000_000


def decoded_body(body: bytes, content_encoding: str) -> bytes:
    """Undo gzip/deflate content coding, bounded so a bomb cannot exhaust memory."""
    coding = content_encoding.strip().lower()
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(47).decompress(body, MAX_DECODED)
    if coding == "deflate":
        try:
            return zlib.decompressobj().decompress(body, MAX_DECODED)
        except zlib.error:
            return zlib.decompressobj(-15).decompress(body, MAX_DECODED)
    return body


def page_outlinks(response: Response) -> list[str]:
    """Every distinct absolute link (href/src) of an HTML response, in page order."""
    ctype = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
    if "html" not in ctype:
        return []
    coding = response.headers.get(b"Content-Encoding", b"").decode("latin-1")
    try:
        body = decoded_body(response.body, coding)
    except zlib.error:
        return []
    if not body.strip():
        return []
    try:
        doc = lxml.html.fromstring(body, base_url=response.url)
    except (lxml.etree.ParserError, ValueError):
        return []
    doc.make_links_absolute(response.url, handle_failures="discard")
    seen: dict[str, None] = {}
    for _el, _attr, link, _pos in doc.iterlinks():
        if link.startswith(("http://", "https://")):
            seen.setdefault(link, None)
    return list(seen)
