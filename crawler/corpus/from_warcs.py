"""``autoblog-archive extract WARC... --output DIR``: rebuild the corpus from WARC files alone.

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

import argparse
import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from crawler.corpus.builder import CorpusBuilder, is_html
from crawler.corpus.output import check_extract_output, remove_leftovers, replaced_corpus
from crawler.escaping import TerminalFormatter, terminal
from crawler.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, UsageError, UserError
from crawler.settings import CORPUS_MAX_TASKS, CORPUS_TIMEOUT

logger = logging.getLogger(__name__)


def scan_warc(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Pointers of the HTML 200/404 ``response`` records of one WARC file, in file order,
    and what was wrong with the file: a damaged file gives the records before the damage
    and a problem line, never an exception."""
    from warcio.archiveiterator import ArchiveIterator

    from crawler.warc.reader import record_defect, unread_tail

    out: list[dict[str, Any]] = []
    problems: list[str] = []
    name = Path(path).name
    if name.endswith(".open"):
        name = name[: -len(".open")]
    end = 0
    try:
        with open(path, "rb") as fh:
            it = ArchiveIterator(fh)
            for record in it:
                # Leave the payload unread: the iterator skips it, and the offsets it reports
                # are those of the gzip member holding this record.
                it.read_to_end(record)
                end = it.get_record_offset() + it.get_record_length()
                defect = record_defect(record)
                if defect:
                    uri = record.rec_headers.get_header("WARC-Target-URI")
                    where = f"{name} offset {it.get_record_offset()}"
                    problems.append(f"{where}: record of {uri} skipped: {defect}")
                    continue
                entry = _html_entry(record, it, name, path)
                if entry is not None:
                    out.append(entry)
    except Exception as exc:  # noqa: BLE001 - any damage: keep what came before it
        problems.append(f"{name}: unreadable after {len(out)} pages, rest skipped ({exc!r})")
    else:
        if unread_tail(path, end):
            problems.append(f"{name}: {unread_tail(path, end)} bytes after its last record")
    return out, problems


def _html_entry(record: Any, it: Any, name: str, path: str | os.PathLike[str]) -> dict | None:
    """The pointer of an HTML 200/404 response record, or None for any other record."""
    if record.rec_type != "response" or record.http_headers is None:
        return None
    code = record.http_headers.get_statuscode() or ""
    status = int(code) if code.isdigit() else 0
    ctype = record.http_headers.get_header("Content-Type")
    if status not in (200, 404) or not ctype or not is_html(ctype):
        return None
    rh = record.rec_headers
    return {
        "url": rh.get_header("WARC-Target-URI"),
        "crawl_date": rh.get_header("WARC-Date"),
        "content_type": ctype,
        "pointer": {
            "filename": name,
            "record_id": rh.get_header("WARC-Record-ID"),
            "offset": it.get_record_offset(),
            "length": it.get_record_length(),
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
    workers: int = 2,
    timeout: float = CORPUS_TIMEOUT,
    max_tasks_per_worker: int = CORPUS_MAX_TASKS,
) -> dict[str, Any]:
    """Write ``<output_dir>/corpus/`` from WARC files (replacing the corpus there, whole,
    once the new one is complete); returns counts and timings."""
    files = sorted({str(Path(p)) for p in paths})
    started = time.monotonic()
    with replaced_corpus(output_dir) as corpus_dir:
        builder = CorpusBuilder(
            output_dir,
            workers=workers,
            timeout=timeout,
            max_tasks_per_worker=max_tasks_per_worker,
            corpus_dir=corpus_dir,
        )
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


def warc_paths(given: Iterable[str]) -> list[str]:
    """The WARC files given: files as they are, folders searched for ``*.warc.gz``."""
    paths: list[str] = []
    for w in given:
        p = Path(w)
        if p.is_dir():
            # A folder: its WARCs, or an output folder's (collections/*/archive/).
            found = sorted(p.rglob("*.warc.gz"))
            if not found:
                raise UsageError(f"{w}: no .warc.gz file in this folder or below it")
            paths.extend(str(x) for x in found)
        elif not p.exists():
            raise UsageError(f"{w}: no such file or folder")
        else:
            paths.append(w)
    return paths


def log_to_terminal() -> None:
    """``extract`` prints its own lines; warnings (a page skipped) go to stderr, escaped,
    and nothing less (the counts are in the last line)."""
    handler = logging.StreamHandler()
    handler.setFormatter(TerminalFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)


def extract_into(args: argparse.Namespace, work: Callable[[list[str], Path], dict]) -> dict:
    """What ``extract`` does around its work, on one engine or the other: the inputs and
    the output checked before anything is written, the output folder held (one run at a
    time), what a killed run left removed, and a failure to write as one line (exit 2)."""
    from crawler.runlock import hold_folder

    paths = warc_paths(args.warcs)
    output = check_extract_output(args.output, args.force)
    lock = hold_folder(output)
    try:
        remove_leftovers(output)
        return work(paths, output)
    except (OSError, sqlite3.Error) as exc:
        full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UserError(
            f"writing the corpus into {output} failed ({why}); its corpus/ was left as it "
            f"was; {'free space and ' if full else ''}run the same command again",
            EXIT_FAILED,
        ) from None
    finally:
        lock.release()


def run_extract(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive extract`` (without ``--dask``)."""
    log_to_terminal()
    result = extract_into(
        args,
        lambda paths, output: extract_warcs(
            paths,
            output,
            workers=args.workers,
            timeout=args.timeout,
            max_tasks_per_worker=args.max_tasks_per_worker,
        ),
    )
    for problem in result["problems"]:
        print(terminal(f"PROBLEM  {problem}"))
    print(
        terminal(
            f"{result['records']} records ({result['index_only_records']} from index pages "
            f"only) from {result['pages']} pages in {result['files']} WARC files, "
            f"{result['skipped_pages']} skipped, {result['seconds']}s -> {args.output}/corpus/"
        )
    )
    if result["unreadable_files"] == result["files"]:
        return EXIT_FAILED  # nothing readable at all (not a WARC file, say): said above
    # Partial: something in the archive could not be read or extracted (said above).
    return EXIT_PARTIAL if result["problems"] or result["skipped_pages"] else EXIT_OK
