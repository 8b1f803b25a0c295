"""The corpus rebuilt from WARC files alone, on this machine (``extract``'s engine without
``--dask``; the command itself is :mod:`crawler.corpus.extract`).

A corpus must be rebuildable without crawling again (e.g. with a newer extractor), and it
must equal the crawl-time one: so this only scans WARC files for HTML ``response`` records
(status 200/404) and feeds them to the same :class:`~crawler.corpus.CorpusBuilder` the
crawl uses. The files are scanned in this process while the workers extract what was
found; each worker process reads its own record straight from the file
(``offset``/``length`` of the gzip member), so page bodies never travel between processes.

The corpus is written aside and replaces ``<output>/corpus`` whole when complete
(:mod:`crawler.corpus.output`): a failed run leaves the folder's corpus as it was.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.corpus.builder import CorpusBuilder
from crawler.corpus.output import replaced_corpus
from crawler.corpus.text import is_html

if TYPE_CHECKING:
    from crawler.context import CorpusOptions
    from crawler.warc.reader import StoredRecord

logger = logging.getLogger(__name__)


def scan_warc(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Pointers of the HTML 200/404 ``response`` records of one WARC file, in file order,
    and what was wrong with the file: a damaged file gives the records before the damage
    and a problem line, never an exception."""
    from crawler.warc.names import closed_name
    from crawler.warc.reader import walk_file

    out: list[dict[str, Any]] = []
    problems: list[str] = []
    name = closed_name(Path(path).name)
    # Payloads are left unread: the walk skips them, and the offsets it reports are those
    # of the gzip members holding the records.
    with walk_file(path) as walk:
        for record in walk:
            if record.defect:
                where = f"{name} offset {record.offset}"
                problems.append(f"{where}: record of {record.target_uri} skipped: {record.defect}")
                continue
            entry = _html_entry(record, name, path)
            if entry is not None:
                out.append(entry)
        stopped = walk.stopped(name)
    if stopped:
        problems.append(stopped)
    return out, problems


def _html_entry(record: StoredRecord, name: str, path: str | os.PathLike[str]) -> dict | None:
    """The pointer of an HTML 200/404 response record, or None for any other record."""
    if record.rec_type != "response" or record.http_headers is None:
        return None
    status = record.status or 0
    ctype = record.http_headers.get_header("Content-Type")
    if status not in (200, 404) or not ctype or not is_html(ctype):
        return None
    rh = record.rec_headers
    return {
        "url": record.target_uri,
        "crawl_date": rh.get_header("WARC-Date"),
        "content_type": ctype,
        "pointer": {
            "filename": name,
            "record_id": record.record_id,
            "offset": record.offset,
            "length": record.length,
            "payload_digest": rh.get_header("WARC-Payload-Digest"),
            "http_status": status,
        },
        "path": str(Path(path).resolve()),
    }


def queue_pages(builder: CorpusBuilder, entries: Iterable[dict[str, Any]]) -> int:
    """Queue the pages :func:`scan_warc` found; returns how many the builder accepted."""
    return sum(
        builder.add_page(
            e["url"],
            headers={"Content-Type": e["content_type"]},
            http_status=e["pointer"]["http_status"],
            warc_pointer=e["pointer"],
            crawl_date=e["crawl_date"],
            warc_path=e["path"],
        )
        for e in entries
    )


def extract_warcs(
    paths: Iterable[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    options: CorpusOptions,
    read_limit: int,
) -> dict[str, Any]:
    """Write ``<output_dir>/corpus/`` from WARC files (replacing the corpus there, whole,
    once the new one is complete), the workers reading at most ``read_limit`` bytes of a
    page (DOWNLOAD_MAXSIZE); returns counts and timings."""
    files = sorted({str(Path(p)) for p in paths})
    started = time.monotonic()
    with replaced_corpus(output_dir) as corpus_dir:
        builder = CorpusBuilder(output_dir, options, read_limit, corpus_dir=corpus_dir)
        # Files are scanned here, one after the other, while the workers already extract
        # what was found: scanning only reads headers, and the workers have the cores.
        pages, problems, unreadable, scan_s = 0, [], 0, 0.0
        for path in files:
            scan_started = time.monotonic()
            entries, found = scan_warc(path)
            scan_s += time.monotonic() - scan_started
            problems += found
            unreadable += bool(found and not entries)
            pages += queue_pages(builder, entries)
        shards = builder.close()
    corpus = Path(output_dir) / "corpus"
    elapsed = time.monotonic() - started
    return {
        "files": len(files),
        "pages": pages,
        "records": builder.stats.permalink_records + builder.stats.index_only_records,
        "index_only_records": builder.stats.index_only_records,
        "skipped_pages": builder.stats.failures,
        "problems": problems,
        # Files that gave nothing at all (not a WARC, damaged from the start).
        "unreadable_files": unreadable,
        "shards": [str(corpus / p.name) for p in shards],
        "scan_seconds": round(scan_s, 3),
        "seconds": round(elapsed, 3),
        "pool": dict(builder.pool.stats),
    }
