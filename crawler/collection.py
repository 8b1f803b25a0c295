"""The indexes of a collection beside its CDXJ: pages.jsonl, the pywb config, the WACZ.

The output folder IS a pywb root: WARCs live in ``collections/<name>/archive/`` and the
sorted CDXJ (:mod:`crawler.warc.cdxj`) in ``collections/<name>/indexes/index.cdxj``, so
``wayback`` started in the folder replays the crawl with no import step, and later
crawls of the same farm add to the same collection (which pywb needs to resolve revisit
records). A page's title in pages.jsonl is the engine's markup read
(:mod:`crawler.parsing`): this sits above the WARC layer, which knows no page.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

import orjson
from warcio.timeutils import timestamp_to_iso_date

from crawler.children import python_command
from crawler.layout import OutputLayout
from crawler.parsing import parse_page
from crawler.spill import DiskMap
from crawler.warc.cdxj import parse_cdxj_line, write_cdxj
from crawler.warc.names import warc_name_problem
from crawler.warc.reader import read_record_at

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


def _title_at(layout: OutputLayout, fields: dict) -> str:
    """The page's title from a bounded prefix of its record; its URL if none is readable."""
    if warc_name_problem(fields["filename"]) is not None:
        return fields["url"]  # an index line never points out of the archive folder
    try:
        record = read_record_at(
            layout.archive / fields["filename"], int(fields["offset"]), TITLE_READ_LIMIT
        )
    except Exception as exc:  # noqa: BLE001 - one bad record must not stop the indexes
        logger.warning("pages.jsonl: cannot read %s (%r)", fields.get("url"), exc)
        return fields["url"]
    if not record.decoded:
        logger.warning("pages.jsonl: cannot decode %s", fields["url"])
        return fields["url"]
    if not record.complete:
        logger.warning(
            "pages.jsonl: %s larger than %d bytes, title from its start",
            fields["url"],
            TITLE_READ_LIMIT,
        )
    return page_title(record.payload, fields["url"])


class TitleLookup(Protocol):
    """Page titles by URL: a dict, or the crawl's :class:`crawler.spill.DiskMap`."""

    def get(self, key: str, /) -> str | None: ...


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
        with open(tmp, "wb") as out, open(layout.cdxj, encoding="utf-8") as cdxj:
            out.write(orjson.dumps(PAGES_HEADER, option=orjson.OPT_APPEND_NEWLINE))
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


def write_wacz(layout: OutputLayout) -> Path:
    """One-file package (WARCs, CDXJ, pages, datapackage with digests) via py-wacz."""
    cmd = python_command(
        "-m",
        "wacz.main",
        "create",
        "-o",
        str(layout.wacz.resolve()),
        "-p",
        str(layout.pages.resolve()),
        "--title",
        layout.name,
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
) -> dict[str, str]:
    """Write every index of a collection; returns what was written."""
    written = {
        "cdxj": str(write_cdxj(layout)),
        "pages": str(write_pages(layout, titles, earlier)),
        "pywb_config": str(write_pywb_config(layout)),
    }
    if wacz:
        written["wacz"] = str(write_wacz(layout))
    return written
