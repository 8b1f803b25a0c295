"""The indexes of a collection beside its CDXJ: pages.jsonl, the pywb config, the WACZ.

The output folder IS a pywb root: WARCs live in ``collections/<name>/archive/`` and the
sorted CDXJ (:mod:`crawler.warc.cdxj`) in ``collections/<name>/indexes/index.cdxj``, so
``wayback`` started in the folder replays the crawl with no import step, and later
crawls of the same farm add to the same collection (which pywb needs to resolve revisit
records). A page's title in pages.jsonl is the engine's markup read
(:mod:`crawler.parsing`): this sits above the WARC layer, which knows no page.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

import orjson
from warcio.timeutils import timestamp_to_iso_date

from crawler.children import python_command
from crawler.layout import OutputLayout
from crawler.parsing import parse_html, parse_page
from crawler.spill import DiskMap
from crawler.warc.cdxj import parse_cdxj_line, write_cdxj
from crawler.warc.names import warc_name_problem
from crawler.warc.reader import StoredRecord, read_record_at

logger = logging.getLogger(__name__)


PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}


def check_collection_name(name: str) -> str:
    """A collection name is a folder name under ``collections/``, never a path.

    ``--name ../../x`` or ``--name /abs`` would put WARCs and indexes outside the output
    folder: refused (exit 4) before anything is written.
    """
    from crawler.exitcodes import UsageError

    if not name or name in (".", "..") or ".." in name or any(c in name for c in "/\\\0"):
        raise UsageError(
            f"collection name {name!r} is not a plain name",
            hint="use letters, digits, '-', '_' or '.', without '/' or '..'",
        )
    return name


def page_title(body: bytes, url: str) -> str:
    """An article page's title is the article's; any other page's, the site's."""
    page = parse_page(body, url)
    if page.kind == "article" and page.articles:
        return page.articles[0].title
    return page.site_title or url


TITLE_READ_LIMIT = 1 << 20  # a title is in the first megabyte of any page worth a title


def _page_at(layout: OutputLayout, fields: dict, what: str) -> StoredRecord | None:
    """The page a CDXJ line points at, its payload read up to TITLE_READ_LIMIT; None if
    it cannot be read or decoded (one bad record must not stop the indexes)."""
    if warc_name_problem(fields["filename"]) is not None:
        return None  # an index line never points out of the archive folder
    try:
        record = read_record_at(
            layout.archive / fields["filename"], int(fields["offset"]), TITLE_READ_LIMIT
        )
    except Exception as exc:  # noqa: BLE001 - one bad record must not stop the indexes
        logger.warning("%s: cannot read %s (%r)", what, fields.get("url"), exc)
        return None
    if not record.decoded:
        logger.warning("%s: cannot decode %s", what, fields["url"])
        return None
    if not record.complete:
        logger.warning(
            "%s: %s larger than %d bytes, read from its start",
            what,
            fields["url"],
            TITLE_READ_LIMIT,
        )
    return record


def _title_at(layout: OutputLayout, fields: dict) -> str:
    """The page's title from a bounded prefix of its record; its URL if none is readable."""
    record = _page_at(layout, fields, "pages.jsonl")
    return page_title(record.payload, fields["url"]) if record else fields["url"]


class TitleLookup(Protocol):
    """Page titles by URL: a dict, or the crawl's :class:`crawler.spill.DiskMap`."""

    def get(self, key: str, /) -> str | None:
        """The value of ``key``, or None."""


def write_pages(
    layout: OutputLayout,
    titles: TitleLookup | None = None,
    earlier: Sequence[Path | BinaryIO] = (),
) -> Path:
    """pages.jsonl (url, ISO ``ts``, title) for every HTML 200 capture in the CDXJ.

    Titles the spider already read are passed in; so are other collections' pages.jsonl
    (``earlier``: a merge); the others (``reindex``) are read back from the WARC record
    the CDXJ line points at.
    """
    lookup: TitleLookup = titles if titles is not None else {}
    known = _earlier_titles([*earlier, layout.pages])
    tmp = layout.pages.with_suffix(".jsonl.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(orjson.dumps(PAGES_HEADER, option=orjson.OPT_APPEND_NEWLINE))
            for url, iso, _ts, fields in html_pages(layout):
                title = (
                    known.get(_earlier_key(url, iso))
                    or lookup.get(url)
                    or _title_at(layout, fields)
                )
                entry = {"url": url, "ts": iso, "title": title}
                out.write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
    finally:
        known.close()
    os.replace(tmp, layout.pages)
    return layout.pages


def html_pages(layout: OutputLayout) -> Iterator[tuple[str, str, str, dict]]:
    """(url, ISO date, CDXJ timestamp, CDXJ fields) of every HTML 200 capture in the CDXJ,
    in its order: the pages of pages.jsonl."""
    with open(layout.cdxj, encoding="utf-8") as cdxj:
        for line in cdxj:
            parsed = parse_cdxj_line(line)
            if parsed is None:
                continue  # a damaged index line: `verify` reports it
            _key, ts, fields = parsed
            mime = fields.get("mime")
            if fields.get("status") != "200" or not isinstance(mime, str) or "html" not in mime:
                continue
            try:
                url, iso = fields["url"], timestamp_to_iso_date(ts)
            except ValueError:
                continue
            yield url, iso, ts, fields


def _earlier_key(url: str, iso: str) -> str:
    return f"{iso} {url}"


def _earlier_titles(files: Sequence[Path | BinaryIO]) -> DiskMap:
    """Titles earlier runs already wrote, so they are not read back from the WARCs (on
    disk: a scheduled crawl's pages.jsonl lists every page the collection holds). A file
    may be given open (``merge`` opens a worker's without following a link)."""
    known = DiskMap()
    for pages in files:
        if isinstance(pages, Path):
            if not pages.exists():
                continue
            with open(pages, "rb") as fh:
                _add_titles(known, fh)
        else:
            pages.seek(0)
            _add_titles(known, pages)
    return known


def _add_titles(known: DiskMap, fh: BinaryIO) -> None:
    for line in fh:
        try:
            entry = orjson.loads(line)
            url, iso, title = entry["url"], entry["ts"], entry["title"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(url, str) and isinstance(iso, str) and isinstance(title, str):
            known[_earlier_key(url, iso)] = title


def write_pywb_config(layout: OutputLayout) -> Path:
    """A minimal ``config.yaml`` so ``wayback`` run in the folder serves its collections."""
    config = layout.pywb_config
    if not config.exists():
        config.write_text(
            "# pywb configuration written by autoblog-archive.\n"
            "# Run `wayback -p 8080` in this folder; collections/ is found automatically.\n"
            "framed_replay: false\n",
            encoding="utf-8",
        )
    return config


# Text per page in the WACZ's pages.jsonl, for ReplayWeb.page's full-text search: most
# articles whole, the start of the longest (and of index pages, which repeat articles).
PAGE_TEXT_CHARS = 20_000


def _article_texts(layout: OutputLayout) -> DiskMap:
    """The corpus text of each article page capture, by (URL, date) of the capture: the
    text researchers get is the text the archive's search finds (on disk, bounded)."""
    from crawler.corpus.shards import iter_corpus

    texts = DiskMap()
    for record in iter_corpus(layout.root):
        warc = record.get("warc") or {}
        url, date, text = warc.get("target_uri"), record.get("crawl_date"), record.get("text")
        if "from_index_only" in (record.get("quality_flags") or []):
            continue  # an index page's article: that page's text is its own
        if isinstance(url, str) and isinstance(date, str) and isinstance(text, str):
            key = _earlier_key(url, date)
            texts[key] = ((texts.get(key) or "") + "\n" + text).strip()[:PAGE_TEXT_CHARS]
    return texts


def _visible_text_at(layout: OutputLayout, fields: dict) -> str:
    """What a page shows as text (its body, without script and style), read back from a
    bounded prefix of its record: for pages that are not one article."""
    from crawler.corpus.selfcheck import visible_text
    from crawler.corpus.text import charset_from_content_type, decode_html

    record = _page_at(layout, fields, "WACZ pages")
    if record is None:
        return ""
    headers = record.http_headers
    declared = headers.get_header("Content-Type") if headers is not None else None
    try:
        html, _, _ = decode_html(record.payload, charset_from_content_type(declared))
        doc = parse_html(html, fields["url"])
        body = doc.find("body")
        return visible_text(body if body is not None else doc)[:PAGE_TEXT_CHARS]
    except Exception as exc:  # noqa: BLE001 - one bad page must not stop the WACZ
        logger.warning("WACZ pages: no text for %s (%r)", fields["url"], exc)
        return ""


def write_wacz_pages(
    layout: OutputLayout, path: Path, seeds: Sequence[str] = ()
) -> tuple[str, str] | None:
    """The WACZ's pages.jsonl with a ``text`` per page (the corpus text of an article
    page, else the page's visible text), and no ``hasText`` in the header: with it,
    ReplayWeb.page (wabac.js) reads the file as a text index and searches only its first
    MiB; without it, it searches the text of every page it loaded (docs/outputs.md).
    Returns (URL, CDXJ timestamp) of the main page: the first seed's latest capture."""
    texts = _article_texts(layout)
    titles = _earlier_titles([layout.pages])
    main: dict[str, str] = {}
    try:
        with open(path, "wb") as out:
            out.write(orjson.dumps(PAGES_HEADER, option=orjson.OPT_APPEND_NEWLINE))
            for url, iso, ts, fields in html_pages(layout):
                key = _earlier_key(url, iso)
                text = texts.get(key) or _visible_text_at(layout, fields)
                entry = {
                    "id": hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32],
                    "url": url,
                    "ts": iso,
                    "title": titles.get(key) or url,
                    "text": text,
                }
                out.write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
                if url in seeds:
                    main[url] = max(main.get(url, ts), ts)
    finally:
        texts.close()
        titles.close()
    first = next((s for s in seeds if s in main), None)
    return (first, main[first]) if first else None


def write_wacz(layout: OutputLayout, seeds: Sequence[str] = ()) -> Path:
    """One-file package (WARCs, CDXJ, pages with their text, datapackage with digests and
    the main page) via py-wacz, which copies our pages file as it is (``--copy-pages``)."""
    # A private temporary folder: nothing of it is left in the output folder, whatever happens.
    with tempfile.TemporaryDirectory(prefix="autoblog-wacz-") as scratch:
        pages = Path(scratch) / "pages.jsonl"
        main = write_wacz_pages(layout, pages, seeds)
        cmd = python_command(
            "-m",
            "wacz.main",
            "create",
            "-o",
            str(layout.wacz.resolve()),
            "-p",
            str(pages.resolve()),
            "--copy-pages",
            "--title",
            layout.name,
            *(["--url", main[0], "--ts", main[1]] if main else []),
            *[str(p.resolve()) for p in layout.warcs()],
        )
        # Run from the output folder (every path above is absolute): a known directory.
        subprocess.run(cmd, check=True, capture_output=True, cwd=layout.root)
    return layout.wacz


def finish_output(
    layout: OutputLayout,
    wacz: bool = False,
    titles: TitleLookup | None = None,
    earlier: Sequence[Path | BinaryIO] = (),
    seeds: Sequence[str] = (),
) -> dict[str, str]:
    """Write every index of a collection; returns what was written. ``seeds``: the URLs
    crawled, the first one captured being the WACZ's main page."""
    written = {
        "cdxj": str(write_cdxj(layout)),
        "pages": str(write_pages(layout, titles, earlier)),
        "pywb_config": str(write_pywb_config(layout)),
    }
    if wacz:
        written["wacz"] = str(write_wacz(layout, seeds))
    return written
