"""THE article extraction: one captured autoblog page in, article records out.

Used by both the crawl-time corpus pipeline and ``autoblog-archive extract`` (offline, from
WARCs), so the two corpora are the same by construction. Why it is built this way (see
shared/guides/corpus.md):

- trafilatura keeps one main container per page and takes title/URL/language from the page
  head (the mirrored blog's, not the article's), so the article block is cut out with the
  engine's template (:mod:`crawler.templates`) and trafilatura only sees the block's
  ``div.content``, wrapped as a tiny document. Title, permalink, source URL and date come
  from the template.
- ``deduplicate`` stays off: deduplication is an annotation made later over the whole
  corpus, never a silent, order-dependent drop.
- Escaped ``&lt;script``/``&lt;style`` source is cut from the raw markup by the template
  module before parsing; a residue check flags anything that still looks like code.
- trafilatura errs silently on feed content (doubled short posts, dropped tables and
  captions): every text is checked against the block's own visible text and repaired or
  replaced, flagged (:mod:`crawler.selfcheck`).

Everything here is pure and picklable (plain dicts out), to run in worker processes.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import lxml.etree
import lxml.html
import numpy as np
import trafilatura

import crawler
from crawler.dates import date_from_v01_slug, parse_engine_date
from crawler.parsing import CODE_REMOVED_MARK, PAGE_QUERY, ArticleBlock, parse_page
from crawler.selfcheck import check_text, parse_block, visible_text
from crawler.urls import autoblog_base
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
    "version": trafilatura.__version__,
    "options": TRAFILATURA_OPTIONS,
    "input": "template article block (div.content) wrapped as <html><body>...</body></html>",
    "pipeline": f"autoblog-archive {crawler.__version__}",
}
SHORT_TEXT_WORDS = 25
LANG_MAX_CHARS = 10_000
SHINGLE = 3

LATIN1_LABELS = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "cp1252", "windows-1252"}
LATIN1_LABELS |= {"us-ascii", "ascii", "iso-8859-15", "latin-9"}
META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
CHARSET_PARAM = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)
# Script/style source that escaped the template cleaning would look like this.
CODE_RESIDUE = re.compile(
    r"<script|</script|&lt;script|<style|&lt;style|jQuery\s*\(|document\.write\s*\("
    r"|\bfunction\s+\w+\s*\([^)]*\)\s*\{",
    re.IGNORECASE,
)
SURROGATES = re.compile("[\ud800-\udfff]")
WORD = re.compile(r"\w+", re.UNICODE)
ASCII_SPACE = re.compile(r"[ \t\n\r\f\v]+")
LINE_SPACE = re.compile(r"[ \t\f\v]+")  # ASCII whitespace but line breaks


# A page's URL and its blocks' permalinks are canonicalised several times each.
canonical_url = lru_cache(maxsize=4096)(_canonical_url)

# ---------------------------------------------------------------- charset


def charset_from_content_type(value: str | bytes | None) -> str | None:
    """The ``charset=`` parameter of a Content-Type header value, if any."""
    if not value:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    m = CHARSET_PARAM.search(value)
    return m.group(1).strip().lower() if m else None


def decode_html(body: bytes, declared: str | None = None) -> tuple[str, str, list[str]]:
    """Decode page bytes: declared charset, else ``<meta charset>``, else UTF-8, else cp1252.

    Returns ``(text, encoding_used, flags)``; ``charset_fallback`` when the declared (or
    assumed UTF-8) charset did not decode the bytes and another one was used.
    """
    if not body:
        return "", (declared or "utf-8"), []
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", errors="replace"), "utf-8", []
    label = (declared or "").strip().lower() or None
    if label is None:
        m = META_CHARSET.search(body[:4096])
        label = m.group(1).decode("ascii", "replace").lower() if m else None
    try:
        name = codecs.lookup(label).name if label else None
    except LookupError:
        name = None
    flags: list[str] = []
    if label and name is None:
        flags.append("charset_unknown")
    if name and (label in LATIN1_LABELS or name in ("cp1252", "latin_1", "ascii", "iso8859-15")):
        # A page labelled Latin-1 whose bytes are valid, non-ASCII UTF-8 is mislabelled.
        if not body.isascii():
            try:
                return body.decode("utf-8"), "utf-8", ["charset_fallback"]
            except UnicodeDecodeError:
                pass
        return _decode_cp1252(body), "cp1252", flags
    if name and name != "utf-8":
        try:
            return body.decode(name), name, flags
        except UnicodeDecodeError:
            flags.append("charset_fallback")
    try:
        return body.decode("utf-8"), "utf-8", flags
    except UnicodeDecodeError:
        pass
    if "charset_fallback" not in flags:
        flags.append("charset_fallback")
    return _decode_cp1252(body), "cp1252", flags


def _decode_cp1252(body: bytes) -> str:
    """WHATWG treats ISO-8859-1 as windows-1252; the 5 undefined bytes map to C1 controls."""
    try:
        return body.decode("cp1252")
    except UnicodeDecodeError:
        return "".join(
            b.to_bytes(1, "big").decode("cp1252", errors="ignore") or chr(b) for b in body
        )


# ---------------------------------------------------------------- text helpers


def repair_surrogates(text: str) -> str:
    """Join valid surrogate pairs and replace lone surrogates (orjson refuses them)."""
    if not SURROGATES.search(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clean_text(text: str) -> str:
    """NFC, one paragraph per line, no blank or padded lines (no-break spaces kept)."""
    text = repair_surrogates(unicodedata.normalize("NFC", text))
    # One substitution over the whole text: runs of spaces never cross a line break.
    text = LINE_SPACE.sub(" ", text.replace("\r", "\n"))
    return "\n".join(line for line in (x.strip(" ") for x in text.split("\n")) if line)


def one_line(text: str | None) -> str:
    """A title or URL on one line: NFC, ASCII whitespace collapsed, no-break spaces kept."""
    text = unicodedata.normalize("NFC", repair_surrogates(text or ""))
    return ASCII_SPACE.sub(" ", text).strip(" ")


def simhash64(text: str, shingle: int = SHINGLE) -> int:
    """64-bit SimHash over lower-cased word ``shingle``-grams (frequency weighted)."""
    words = WORD.findall(text.lower())
    if not words:
        return 0
    if len(words) < shingle:
        grams = [" ".join(words)]
    else:
        grams = [" ".join(words[i : i + shingle]) for i in range(len(words) - shingle + 1)]
    digests = b"".join([hashlib.blake2b(g.encode(), digest_size=8).digest() for g in grams])
    hashes = np.frombuffer(digests, dtype="<u8")
    bits = np.unpackbits(hashes.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    votes = bits.sum(axis=0, dtype=np.int64) * 2 - len(grams)
    packed = np.packbits((votes > 0).astype(np.uint8), bitorder="little")
    return int.from_bytes(packed.tobytes(), "little")


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@lru_cache(maxsize=1)
def _lang_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def warm_up() -> None:
    """Load what the first extraction would load (the language model), ahead of time."""
    _lang_identifier()


def detect_language(text: str) -> tuple[str | None, float | None]:
    """Offline language id (py3langid's shipped model, normalised probability)."""
    if not text.strip():
        return None, None
    lang, prob = _lang_identifier().classify(text[:LANG_MAX_CHARS])
    return str(lang), round(float(prob), 4)


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
    """:func:`block_text` plus what the self-check (:mod:`crawler.selfcheck`) measured."""
    if html is None:
        return "", ["no_content_block"], None
    flags = ["script_removed"] if CODE_REMOVED_MARK in html else []
    # Code and comments are never the article. trafilatura drops them too, but not always
    # (a <script> in an unclosed <blockquote> came out as text): gone before it looks.
    doc = lxml.html.document_fromstring(f"<html><body>{html}</body></html>")
    lxml.etree.strip_elements(doc, "script", "style", lxml.etree.Comment, with_tail=False)
    wrapped = lxml.html.tostring(doc, encoding="unicode")
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
    if CODE_RESIDUE.search(text):
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
    block: ArticleBlock,
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
    html = block_html(block.content)
    if with_text:
        merge_text_fields(record, text_fields(html))
    else:
        record["content_html"] = html  # text deferred: see CorpusBuilder.close
        record["quality_flags"] = sorted(set(flags))
    return record


def merge_text_fields(record: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Fill a record's text fields from :func:`text_fields` (flags are merged)."""
    for key in ("lang", "lang_score", "text", "n_words", "hashes", "check"):
        record[key] = fields[key]
    record["quality_flags"] = sorted(set(record["quality_flags"]) | set(fields["text_flags"]))
    record.pop("content_html", None)
    return record


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
    flags: list[str] = []
    if isinstance(body, bytes):
        text, encoding, flags = decode_html(body, charset)
    else:
        text, encoding = body, "unicode"
    if not text.strip():
        flags.append("empty_page")
    page_url = canonical_url(url)
    parsed = parse_page(text, page_url, mark_removed=True)
    result: dict[str, Any] = {
        "url": url,
        "key": page_url,
        "http_status": http_status,
        "kind": parsed.kind,
        "engine": parsed.engine,
        "encoding": encoding,
        "flags": flags,
        "site": {
            "url": autoblog_base(page_url),
            "title": one_line(parsed.site_title) or None,
            "source": one_line(parsed.site_url) or None,
            "engine": parsed.engine,
        },
        "articles": [],
    }
    if parsed.error_trailer:
        flags.append("error_trailer")
    if parsed.has_update_block:
        flags.append("update_block")
    if http_status != 200 or parsed.kind not in ("article", "index"):
        return result
    record_flags = [f for f in flags if f in ("charset_fallback", "charset_unknown")]
    if parsed.error_trailer:
        record_flags.append("error_trailer")
    single = parsed.kind == "article" and not _looks_like_index_url(page_url, parsed.engine)
    for i, block in enumerate(parsed.articles):
        is_permalink = bool(block.permalink) and canonical_url(block.permalink) == page_url
        is_permalink = is_permalink or (single and len(parsed.articles) == 1)
        result["articles"].append(
            _article_record(
                block, i, url, is_permalink, record_flags, with_text=is_permalink or index_text
            )
        )
    return result
