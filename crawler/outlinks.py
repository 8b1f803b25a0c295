"""Outlinks of a raw captured page, for the WARC ``metadata`` records.

Works on the body as it came off the wire (maybe still gzip-coded), because capture
happens before Scrapy's decompression middleware.
"""

from __future__ import annotations

import html
import re
import zlib
from functools import lru_cache
from urllib.parse import urljoin

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


LINK_ATTR = re.compile(rb"""\b(?:href|src|action)\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


@lru_cache(maxsize=16384)
def _join(base: str, link: str) -> str:
    """``urljoin``, remembered: the pages of one autoblog repeat the same relative links.

    Bounded well below a big crawl's link count (permalinks are seen once or twice and
    only churn the cache; page numbers and footer links stay hot): ~6 MB at most.
    """
    return urljoin(base, link)


def page_outlinks(response: Response, limit: int = 0) -> tuple[list[str], bool]:
    """Every distinct absolute link (href/src/action) of an HTML response, in page order,
    at most ``limit`` of them (0: all); and whether links were left out.

    A regular expression over the raw markup rather than a parse: this runs on every
    capture, in the reactor thread, and a full lxml parse tripled its cost. Outlinks
    are crawl metadata, not content, so attribute values are all that is needed.
    """
    ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
    if "html" not in ctype:
        return [], False
    coding = (response.headers.get(b"Content-Encoding") or b"").decode("latin-1")
    try:
        body = decoded_body(response.body, coding)
    except zlib.error:
        return [], False
    seen: dict[str, None] = {}
    # Fragments and empty hrefs are skipped, so no join depends on the page's query.
    base = response.url.split("?", 1)[0].split("#", 1)[0]
    # One match at a time, nothing kept but the links: an index page repeats every page
    # number's link, the stylesheet, the feed (each joined once, see _join), and a hostile
    # page may hold a million attribute values.
    for match in LINK_ATTR.finditer(body):
        quoted = match.group(1)
        if quoted is None:
            quoted = match.group(2)
        raw = quoted.decode("utf-8", "replace").strip()
        if not raw or raw.startswith(("#", "javascript:", "data:", "mailto:")):
            continue
        try:
            link = _join(base, html.unescape(raw) if "&" in raw else raw)
        except ValueError:
            continue
        if link.startswith(("http://", "https://")):
            if limit and len(seen) >= limit and link not in seen:
                return list(seen), True
            seen.setdefault(link, None)
    return list(seen), False
