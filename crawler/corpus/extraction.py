"""THE article extraction: one captured autoblog page in, article records out.

Used by both the crawl-time corpus pipeline and ``autoblog-archive extract`` (offline, from
WARCs), so the two corpora are the same by construction. Why it is built this way (see
shared/guides/corpus.md):

- trafilatura keeps one main container per page and takes title/URL/language from the page
  head (the mirrored blog's, not the article's), so the article block is cut out with the
  engine's template (:mod:`crawler.parsing`) and trafilatura only sees the block's
  ``div.content``, wrapped as a tiny document. Title, permalink, source URL and date come
  from the template.
- ``deduplicate`` stays off: deduplication is an annotation made later over the whole
  corpus, never a silent, order-dependent drop.
- Escaped ``&lt;script``/``&lt;style`` source is cut from the raw markup by the template
  module before parsing; a residue check flags anything that still looks like code.
- trafilatura errs silently on feed content (doubled short posts, dropped tables and
  captions): every text is checked against the block's own visible text and repaired or
  replaced, flagged (:mod:`crawler.corpus.selfcheck`).

Everything here is pure and picklable (plain dicts out), to run in worker processes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import lxml.etree
import lxml.html

import crawler
from crawler.corpus.dates import date_from_v01_slug, parse_engine_date
from crawler.corpus.selfcheck import check_text, parse_block, visible_text
from crawler.corpus.text import clean_text, decode_html, detect_language, one_line, simhash64
from crawler.escaped_code import CODE_REMOVED_MARK, has_code_residue
from crawler.parsing import ParsedPage, parse_page
from crawler.urls import PAGE_QUERY, autoblog_base
from crawler.urls import canonical_url as _canonical_url

TRAFILATURA_OPTIONS: dict[str, Any] = {
    "output_format": "txt",
    "deduplicate": False,
    "include_comments": False,
    "include_tables": True,
    "include_images": False,
    "include_links": False,
    "include_formatting": False,
    "favor_precision": False,
    "favor_recall": True,
    # The input is already the article block: trafilatura's fallback extractors
    # (readability, jusText), made for whole noisy pages, only cost time here (~45%).
    "fast": True,
    "with_metadata": False,
}


@lru_cache(maxsize=1)
def _trafilatura_options() -> Any:
    """``TRAFILATURA_OPTIONS`` as trafilatura's own ``Extractor``, built once per process
    (``extract`` would build it, reading its configuration, for every block)."""
    from trafilatura.settings import DEFAULT_CONFIG, Extractor

    o = TRAFILATURA_OPTIONS
    return Extractor(
        config=DEFAULT_CONFIG,
        output_format=o["output_format"],
        fast=o["fast"],
        precision=o["favor_precision"],
        recall=o["favor_recall"],
        comments=o["include_comments"],
        formatting=o["include_formatting"],
        links=o["include_links"],
        images=o["include_images"],
        tables=o["include_tables"],
        dedup=o["deduplicate"],
        with_metadata=o["with_metadata"],
    )


EXTRACTION_INFO: dict[str, Any] = {
    "tool": "trafilatura",
    "version": importlib.metadata.version("trafilatura"),
    "options": TRAFILATURA_OPTIONS,
    "input": "template article block (div.content) wrapped as <html><body>...</body></html>",
    "pipeline": f"autoblog-archive {crawler.__version__}",
}
SHORT_TEXT_WORDS = 25
RECORD_KINDS = ("article", "index")  # the kinds of pages that give records
# A page's URL and its blocks' permalinks are canonicalised several times each.
canonical_url = lru_cache(maxsize=4096)(_canonical_url)

# ---------------------------------------------------------------- URLs


def _looks_like_index_url(url: str, engine: str | None) -> bool:
    parts = urlsplit(url)
    if parts.query:
        return bool(PAGE_QUERY.match(parts.query))
    last = parts.path.rsplit("/", 1)[-1]
    return last == "" or (engine == "0.2" and last.isdigit())


# ---------------------------------------------------------------- blocks


def block_html(content: Any) -> str | None:
    """The serialised ``div.content`` element (what trafilatura will see), or None."""
    if content is None:
        return None
    return lxml.html.tostring(content, encoding="unicode", with_tail=False)


def block_text(html: str | None) -> tuple[str, list[str]]:
    """Clean text of one ``div.content``: trafilatura on the block alone, plus flags."""
    text, flags, _check = checked_block_text(html)
    return text, flags


def checked_block_text(html: str | None) -> tuple[str, list[str], dict[str, Any] | None]:
    """:func:`block_text` plus what the self-check (:mod:`crawler.corpus.selfcheck`) measured."""
    if html is None:
        return "", ["no_content_block"], None
    flags = ["script_removed"] if CODE_REMOVED_MARK in html else []
    # Code and comments are never the article. trafilatura drops them too, but not always
    # (a <script> in an unclosed <blockquote> came out as text): gone before it looks.
    doc = lxml.html.document_fromstring(f"<html><body>{html}</body></html>")
    lxml.etree.strip_elements(doc, "script", "style", lxml.etree.Comment, with_tail=False)
    wrapped = lxml.html.tostring(doc, encoding="unicode")
    # Imported here, not at the top: the crawl process never extracts (its workers do,
    # forked from a server that imported it once), and trafilatura is 0.4 s of its start.
    import trafilatura

    out = trafilatura.extract(wrapped, options=_trafilatura_options())
    text = clean_text(out or "")
    block = parse_block(html)
    check = None
    if not text:
        # trafilatura gives up on some tiny or odd blocks; the block's own text is still
        # the article (minus markup): keep it, flagged.
        text = clean_text(visible_text(block))
        if text:
            flags.append("extractor_fallback")
    else:
        text, check_flags, check = check_text(text, block)
        text = clean_text(text)
        flags += check_flags
    if has_code_residue(text):
        flags.append("code_residue")
    return text, flags, check


def text_fields(html: str | None) -> dict[str, Any]:
    """Everything about an article that depends on its text (the costly part)."""
    text, flags, check = checked_block_text(html)
    n_words = len(text.split())
    if not text:
        flags.append("empty_text")
    elif n_words < SHORT_TEXT_WORDS:
        flags.append("short_text")
    lang, lang_score = detect_language(text)
    return {
        "lang": lang,
        "lang_score": lang_score,
        "text": text,
        "n_words": n_words,
        "hashes": {
            "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "simhash": f"{simhash64(text):016x}",
        },
        "text_flags": flags,
        "check": check,
    }


def _article_record(
    block: BlockFacts,
    index: int,
    page_url: str,
    from_permalink: bool,
    page_flags: list[str],
    with_text: bool = True,
) -> dict[str, Any]:
    flags = list(page_flags)
    date = parse_engine_date(block.date_text)
    iso = date.iso
    flags += date.flags
    if iso is None:
        guessed = None
        if block.permalink:
            guessed = date_from_v01_slug(urlsplit(block.permalink).query)
        if guessed:
            iso = guessed
            flags.append("date_guessed")
        elif block.date_text.strip():
            flags.append("date_unparsed")
        else:
            flags.append("date_missing")
    title = one_line(block.title)
    if not title:
        flags.append("title_missing")
    if not from_permalink:
        flags.append("from_index")
    permalink = canonical_url(block.permalink) if block.permalink else None
    record: dict[str, Any] = {
        "fragment": index,
        "from_permalink": from_permalink,
        "url": page_url if from_permalink else permalink,
        "permalink": permalink,
        "source_url": one_line(block.source_url) or None,
        "title": title,
        "date": iso,
        "date_raw": one_line(block.date_text) or None,
        "lang": None,
        "lang_score": None,
        "text": None,
        "n_words": None,
        "hashes": None,
        "check": None,
        "quality_flags": flags,
    }
    if with_text:
        merge_text_fields(record, text_fields(block.html))
    else:
        record["content_html"] = block.html  # text deferred: see CorpusBuilder.close
        record["quality_flags"] = sorted(set(flags))
    return record


def merge_text_fields(record: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Fill a record's text fields from :func:`text_fields` (flags are merged)."""
    for key in ("lang", "lang_score", "text", "n_words", "hashes", "check"):
        record[key] = fields[key]
    record["quality_flags"] = sorted(set(record["quality_flags"]) | set(fields["text_flags"]))
    record.pop("content_html", None)
    return record


class BlockFacts(NamedTuple):
    """One article block as extraction needs it: the template's fields and ``div.content``
    serialised (:func:`block_html`), never the lxml tree (which does not pickle)."""

    title: str
    permalink: str | None
    date_text: str
    source_url: str | None
    html: str | None


@dataclass(slots=True)
class PageFacts:
    """What extraction needs of one decoded, parsed page: small and picklable, so a crawl
    hands the spider's own parse to the workers (:func:`reuse_parse`) instead of the page."""

    key: str  # canonical URL the page was parsed under
    kind: str
    engine: str | None
    encoding: str
    flags: list[str]
    site_title: str | None
    site_url: str | None
    error_trailer: bool
    has_update_block: bool
    blocks: list[BlockFacts]


def _facts(parsed: ParsedPage, text: str, encoding: str, flags: list[str]) -> PageFacts:
    """The facts of a page parsed under its canonical URL with code marks
    (``parse_page(..., mark_removed=True)``); ``flags`` are :func:`decode_html`'s."""
    flags = list(flags)
    if not text.strip():
        flags.append("empty_page")
    # Only article and index pages give records (extract_facts): a search page's results
    # are not serialised for nothing (at crawl time, in the crawl's own process).
    articles = parsed.articles if parsed.kind in RECORD_KINDS else []
    blocks = [
        BlockFacts(b.title, b.permalink, b.date_text, b.source_url, block_html(b.content))
        for b in articles
    ]
    return PageFacts(
        parsed.url,
        parsed.kind,
        parsed.engine,
        encoding,
        flags,
        parsed.site_title,
        parsed.site_url,
        parsed.error_trailer,
        parsed.has_update_block,
        blocks,
    )


def page_facts(body: bytes | str, url: str, charset: str | None = None) -> PageFacts:
    """Decode and parse one captured page (what a worker does with a page's bytes)."""
    flags: list[str] = []
    if isinstance(body, bytes):
        text, encoding, flags = decode_html(body, charset)
    else:
        text, encoding = body, "unicode"
    parsed = parse_page(text, canonical_url(url), mark_removed=True, with_resources=False)
    return _facts(parsed, text, encoding, flags)


def reuse_parse(
    body: bytes, url: str, charset: str | None, text: str, parsed: ParsedPage
) -> PageFacts | None:
    """The facts of a page the spider already parsed (``parse_page(text, url)``), or None
    when :func:`page_facts` would parse something else, so the worker parses the body.

    The spider's parse is the corpus's when the spider read the same text (Scrapy's
    decoding equals :func:`decode_html`'s), under the same URL, and no escaped code was cut
    (only then would the corpus's code marks change the tree). It saves the workers a
    quarter of their time at crawl time, and pickling whole pages to them.
    """
    if parsed.script_removed or parsed.url != canonical_url(url):
        return None
    decoded, encoding, flags = decode_html(body, charset)
    if decoded != text:
        return None
    return _facts(parsed, text, encoding, flags)


def extract_page(
    body: bytes | str,
    url: str,
    charset: str | None = None,
    http_status: int = 200,
    index_text: bool = True,
) -> dict[str, Any]:
    """Article records of one captured page (plain dicts, safe to pickle).

    Returns ``{"url", "http_status", "kind", "engine", "site", "encoding", "flags",
    "articles"}``; ``articles`` is empty for 404, search, error, farm and other pages.
    Permalink pages give their one article (``from_permalink``); index pages give one
    record per block (``from_permalink`` False). With ``index_text=False`` index blocks
    carry ``content_html`` instead of text: most of them are dropped later (their
    permalink page was captured), so their extraction can wait (:func:`text_fields`).
    """
    return extract_facts(page_facts(body, url, charset), url, http_status, index_text)


def extract_facts(
    facts: PageFacts, url: str, http_status: int = 200, index_text: bool = True
) -> dict[str, Any]:
    """THE extraction, from a page's facts (:func:`page_facts` or :func:`reuse_parse`):
    see :func:`extract_page`."""
    page_url = facts.key
    flags = list(facts.flags)
    result: dict[str, Any] = {
        "url": url,
        "key": page_url,
        "http_status": http_status,
        "kind": facts.kind,
        "engine": facts.engine,
        "encoding": facts.encoding,
        "flags": flags,
        "site": {
            "url": autoblog_base(page_url),
            "title": one_line(facts.site_title) or None,
            "source": one_line(facts.site_url) or None,
            "engine": facts.engine,
        },
        "articles": [],
    }
    if facts.error_trailer:
        flags.append("error_trailer")
    if facts.has_update_block:
        flags.append("update_block")
    if http_status != 200 or facts.kind not in RECORD_KINDS:
        return result
    record_flags = [f for f in flags if f in ("charset_fallback", "charset_unknown")]
    if facts.error_trailer:
        record_flags.append("error_trailer")
    blocks = facts.blocks
    single = facts.kind == "article" and not _looks_like_index_url(page_url, facts.engine)
    for i, block in enumerate(blocks):
        is_permalink = bool(block.permalink) and canonical_url(block.permalink) == page_url
        is_permalink = is_permalink or (single and len(blocks) == 1)
        result["articles"].append(
            _article_record(
                block, i, url, is_permalink, record_flags, with_text=is_permalink or index_text
            )
        )
    return result
