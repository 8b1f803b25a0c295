"""Digests: of a payload as stored, and of an autoblog page's article blocks.

The payload digest is computed before writing so the capture can choose between a
response and a revisit record. The normalised digests leave out what changes between two
fetches of the same content (the "Mise à jour" block, the search form, header, footer,
pagination: see guides/scale.md), so the change report and the incremental stop rule
compare what a reader sees.
"""

from __future__ import annotations

import json
import re

from warcio.utils import Digester

from crawler.parsing import ArticleBlock, ParsedPage, parse_page


def _sha1_b32(data: bytes) -> str:
    """The archive's one digest form (what WARC-Payload-Digest uses): ``sha1:BASE32``."""
    digester = Digester("sha1")
    digester.update(data)
    return str(digester)


def payload_digest(body: bytes) -> str:
    """``WARC-Payload-Digest`` of a body as stored (the form warcio writes), computed
    before writing so the capture can choose between a response and a revisit record."""
    return _sha1_b32(body)


_SPACE = re.compile(r"[ \t\n\r\f\v]+")


def _block_fields(block: ArticleBlock) -> list[object]:
    text = (
        _SPACE.sub(" ", block.content.text_content()).strip() if block.content is not None else ""
    )
    return [block.title, block.permalink, block.date_text, block.source_url, text, block.media]


def article_digest(block: ArticleBlock) -> str:
    """Digest of one article as shown (title, permalink, date, source, text, media).

    An index page and the permalink page show the same block, so both give the same value.
    """
    return _sha1_b32(json.dumps(_block_fields(block), ensure_ascii=False).encode("utf-8"))


def page_digest(page: ParsedPage) -> str | None:
    """Digest of an autoblog page's article blocks; ``None`` for non-autoblog pages.

    The "Mise à jour" block, the search form, the header, footer and pagination are left
    out: they change between two fetches of the same content (see guides/scale.md).
    """
    return page_digests(page)[0]


def page_digests(page: ParsedPage) -> tuple[str | None, list[tuple[str, str]]]:
    """The page digest and (permalink, article digest) of each block, reading each
    block's text once (both are needed for every page a crawl captures)."""
    if page.engine is None or page.kind == "farm":
        return None, []
    blocks = [_block_fields(b) for b in page.articles]
    digest = _sha1_b32(json.dumps([page.kind, blocks], ensure_ascii=False).encode("utf-8"))
    articles = [
        (b.permalink, _sha1_b32(json.dumps(fields, ensure_ascii=False).encode("utf-8")))
        for b, fields in zip(page.articles, blocks, strict=True)
        if b.permalink
    ]
    return digest, articles


def normalized_digest(body: bytes, url: str) -> str | None:
    """Normalised digest of a decoded autoblog HTML body (see :func:`page_digest`)."""
    return page_digest(parse_page(body, url))
