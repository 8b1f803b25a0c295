"""Reading captures back from the WARCs: the history is rebuilt from them, never trusted over them.

:func:`rebuild_from_indexes` rebuilds ``history.sqlite`` from the CDXJ lines and the
records they point at (``autoblog-archive reindex``); :func:`reconcile_files` re-reads
the records a crash left out of the history (an uncommitted batch). Runs are tied to
their WARC files by the ``warcinfo`` fields of :func:`crawler.history.model.warcinfo_run_fields`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from crawler.history.files import malformed, read_runs
from crawler.history.model import (
    FINISHED,
)
from crawler.history.readback import (
    READ_ERRORS,
    FoundRecord,
    cdxj_entries,
    found_record,
    iter_warc_captures,
    payload_limit,
    read_captures_at,
)
from crawler.history.store import History
from crawler.history.validate import MAX_ID, MODES, is_stamp
from crawler.layout import OutputLayout
from crawler.urls import autoblog_base
from crawler.warc.names import parse_warc_filename, warc_name_problem
from crawler.warc.reader import read_record_at

logger = logging.getLogger(__name__)


def index_record(history: History, found: FoundRecord, run_id: int, read_limit: int) -> None:
    """Record one response/revisit read back from a WARC (rebuild and reconcile).

    A revisit has no body: its page digest and articles are its original's, re-read
    from the original record (identical payload, identical page; up to ``read_limit``).
    """
    if found.record_type == "revisit" and found.refers_to and found.page_digest is None:
        _complete_revisit(history, found, read_limit)
    history.record_capture(
        url=found.url,
        run_id=run_id,
        warc_date=found.warc_date,
        status=found.status,
        payload_digest=found.payload_digest,
        normalized_digest=found.page_digest,
        record_type=found.record_type,
        filename=found.filename,
        offset=found.offset,
        length=found.length,
        record_id=found.record_id,
        refers_to=found.refers_to,
    )
    _note_articles(history, found, run_id)


def _complete_revisit(history: History, found: FoundRecord, read_limit: int) -> None:
    original = history.capture_by_record_id(found.refers_to) if found.refers_to else None
    if original is None or original.normalized_digest is None or found.directory is None:
        return
    path = found.directory / original.filename
    try:
        record = read_record_at(path, original.offset, payload_limit(read_limit))
        read = found_record(record, path, (None, None, None))
    except READ_ERRORS as exc:
        logger.warning("history: original of %s unreadable (%s)", found.url, exc)
        return
    found.page_digest = read.page_digest
    found.articles = read.articles


def reconcile_files(history: History, warcs: Iterable[Path], run_id: int, read_limit: int) -> int:
    """Re-read what a crash kept out of the history (an uncommitted batch).

    Two things can be lost: capture rows, and what the crawl noted about a captured page
    once parsed (its normalised digest, the articles it lists), which is written after
    the row. Only the tail of each file past its last known capture is read, plus the
    pages of unfinished runs still without a note, so calling it on every closed file of
    the collection at the start of a resumed run is cheap. Records land in the run their
    file's ``warcinfo`` names, else in ``run_id``. Returns how many captures were added.
    """
    added = 0
    for path in warcs:
        start, file_run = history.file_extent(path.name)
        unnoted = history.unnoted_pages(path.name)
        target = file_run
        begin = min([start, *(offset for offset, _run in unnoted.values())])
        for found in iter_warc_captures(path, begin, read_limit):
            if found.record_id in unnoted:
                _note_page(history, found, unnoted[found.record_id][1])
            if found.offset < start:
                continue
            if found.run_key is not None and target is None:
                target = _run_for_key(history, found.run_key, run_id)
            if found.offset == start and file_run is not None:
                continue
            if history.capture_by_record_id(found.record_id) is not None:
                continue
            index_record(history, found, target if target is not None else run_id, read_limit)
            added += 1
    history.commit()
    return added


def _note_page(history: History, found: FoundRecord, run_id: int) -> None:
    """What the crawl notes about a parsed page, read back: articles first, digest last."""
    if found.page_digest is None:
        return
    _note_articles(history, found, run_id)
    history.set_normalized_digest(found.record_id, found.page_digest)


def _note_articles(history: History, found: FoundRecord, run_id: int) -> None:
    for permalink, digest in found.articles:
        history.note_article(permalink, autoblog_base(found.url), run_id, digest)


def _run_number(key: str) -> int | None:
    """The run number a warcinfo ``crawlRun`` field names, if it is one the history holds."""
    if not (key.isascii() and key.isdigit() and len(key) <= 10):
        return None
    number = int(key)
    return number if 0 < number < MAX_ID else None


def _run_for_key(history: History, key: str, default: int) -> int:
    wanted = _run_number(key)
    return wanted if wanted is not None and history.get_run(wanted) is not None else default


@dataclass
class RebuildReport:
    """What a rebuild of the history from the WARCs found and read."""

    runs: int = 0
    captures: int = 0
    articles: int = 0
    files: int = 0
    cdxj_lines: int = 0
    problems: list[str] = field(default_factory=list)


def rebuild_from_indexes(output_dir: str | os.PathLike[str], read_limit: int) -> RebuildReport:
    """Rebuild ``history.sqlite`` from the collections' CDXJ indexes and WARC records.

    Captures come from the CDXJ lines (file, offset, length), each completed from its
    record (record id, date, digests, normalised digest of HTML pages); articles from the
    article blocks of captured index and permalink pages. Runs come from the ``crawlRun``
    warcinfo field (files without it: one run per writing process), keeping the details
    (command, seeds, status) of a still-readable previous history. Written to a temporary
    file, then swapped in, so a failed rebuild leaves the old history alone.
    """
    root = Path(output_dir)
    report = RebuildReport()
    target = OutputLayout(root).history
    tmp = target.with_name(target.name + ".rebuild")
    for leftover in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
        leftover.unlink(missing_ok=True)
    old_runs = read_runs(target)
    if target.exists() and (bad := malformed(target)) is not None:
        report.problems.append(f"{target.name}: {bad}; its malformed rows are not kept")
    # First pass: group the records by run key, in file order.
    groups: dict[str, list[FoundRecord]] = {}
    started: dict[str, str] = {}
    modes: dict[str, str] = {}
    for layout in OutputLayout.find(root):
        by_file = cdxj_entries(layout)
        report.cdxj_lines += sum(len(v) for v in by_file.values())
        for path in layout.warcs():
            entries = by_file.get(path.name)
            if not entries:
                continue
            problem = warc_name_problem(path.name)
            if problem is not None:
                report.problems.append(f"{path.name!r}: {problem}, not in the history")
                continue
            report.files += 1
            try:
                for found in read_captures_at(path, entries, report.problems, read_limit):
                    key = found.run_key
                    if key is None:
                        written = parse_warc_filename(path.name)
                        key = f"pid:{written.pid}" if written else f"file:{path.name}"
                    groups.setdefault(key, []).append(found)
                    # warcinfo fields are read from the file: kept only if they are the
                    # tool's, so that the history rebuilt passes its own check.
                    first = found.run_started
                    first = first if is_stamp(first) else found.warc_date
                    started[key] = min(started.get(key, first), first)
                    if found.run_mode in MODES:
                        modes[key] = found.run_mode
            except READ_ERRORS as exc:
                report.problems.append(f"{path.name}: unreadable, skipped ({exc})")
    history = History.open(tmp, batch_size=5000, batch_seconds=60)
    try:
        numeric = {k: int(k) for k in groups if _run_number(k) is not None}
        next_id = max([*numeric.values(), *old_runs.keys(), 0]) + 1
        ordered = sorted(groups, key=lambda k: (started[k], k))
        for key in ordered:
            records = groups[key]
            if key in numeric:
                run_id = numeric[key]
            else:
                run_id, next_id = next_id, next_id + 1
            old = old_runs.get(run_id, {})
            dates = [r.warc_date for r in records]
            history.insert_run(
                (
                    run_id,
                    old.get("started") or started[key],
                    old.get("finished") or max(dates),
                    old.get("status") or FINISHED,
                    old.get("seeds") or "[]",
                    old.get("command") or "rebuilt by autoblog-archive reindex",
                    old.get("mode") or modes.get(key) or "full",
                    old.get("resumed") or 0,
                    old.get("stats"),
                ),
            )
            for found in records:
                index_record(history, found, run_id, read_limit)
            report.runs += 1
            report.captures += len(records)
        history.commit()
        report.articles = history.article_count()
        history.checkpoint()
    finally:
        history.close()
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    os.replace(tmp, target)
    return report
