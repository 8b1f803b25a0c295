"""``autoblog-archive merge``: the workers' folders become one output folder.

One collection holding every worker's WARC files (exact duplicates dropped), one CDXJ,
one ``pages.jsonl``, a pywb config, a history rebuilt from those WARCs, one change
report and one corpus. Duplicates are full ``response`` records of the same URL with the
same payload digest (robots.txt fetched by each worker, a page fetched again after
reconciliation): the first capture is kept with its request and metadata records, later
ones are left out of the merged files. Revisits are kept: they record a later fetch.

The workers' folders are untrusted input, read and never written (:mod:`.intake`): what
is not a real directory or a regular file with a plain name is refused and named in the
merge's report (exit 1), and the rest is merged. Nothing is written outside the output
folder and no file in it is ever replaced: a WARC file is known by its first record's id,
so a file merged before is not taken again, and a different file with a name already
taken gets a new name made from that id (``<name>-<12 hex>.warc.gz``), which its CDXJ
lines, history rows and corpus records follow. A corpus record that is not what the tool
writes is named and skipped; the others are merged. The WARC files' part is
:mod:`.merge_warcs`, the corpus' :mod:`.merge_corpus`; this module runs them in order.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from crawler.cluster.intake import Intake, Worker
from crawler.cluster.merge_corpus import merge_corpora
from crawler.cluster.merge_warcs import (
    Member,
    adopt_index_lines,
    copy_without,
    duplicates,
    members,
    name_sources,
)
from crawler.layout import OutputLayout
from crawler.untrusted import shown

logger = logging.getLogger(__name__)

LISTED = 20  # refusals and skipped records printed by name; the rest are counted


@dataclass
class MergeResult:
    """What a merge did: new files, renamed ones, duplicates dropped, corpus records."""

    files: list[str] = field(default_factory=list)  # new files, by their merged name
    renamed: list[str] = field(default_factory=list)  # "<worker file> -> <merged name>"
    dropped: list[str] = field(default_factory=list)  # record ids of dropped duplicates
    corpus_records: int = 0
    refused: list[str] = field(default_factory=list)  # what was not taken, and why
    recovered: list[str] = field(default_factory=list)  # .open files whose groups were taken
    skipped: list[str] = field(default_factory=list)  # corpus records left out, and why
    skipped_count: int = 0
    written: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Everything the workers offered was merged."""
        return not self.refused and not self.skipped_count


def _skip(result: MergeResult, message: str) -> None:
    logger.info("merge: corpus record skipped: %s", message)  # printed with the outcome
    result.skipped_count += 1
    if len(result.skipped) < 100:
        result.skipped.append(message)


# -- the merge -------------------------------------------------------------------------------


def merge(
    roots: Iterable[str | Path],
    output: str | Path,
    read_limit: int,
    name: str | None = None,
    wacz: bool = False,
    keep_duplicates: bool = False,
) -> MergeResult:
    """Merge worker output folders into ``output`` (again after each cluster run: files
    already merged stay, new ones are added); a page read back from a WARC is read up to
    ``read_limit`` bytes (DOWNLOAD_MAXSIZE).

    ``keep_duplicates`` (``crawl --processes``, whose processes share run numbers): every
    capture is kept, files are hard-linked, not copied, and the indexes, titles and history
    are merged from the workers' own instead of being read again from the WARCs.
    """
    Path(output).mkdir(parents=True, exist_ok=True)
    for stale in Path(output).glob(".merge-*"):  # a killed merge's (the output is locked)
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix=".merge-", dir=output))
    intake = Intake(scratch, read_limit)
    try:
        return _merge(intake, roots, Path(output), name, wacz, keep_duplicates, read_limit)
    finally:
        intake.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _merge(
    intake: Intake,
    roots: Iterable[str | Path],
    output: Path,
    name: str | None,
    wacz: bool,
    keep_duplicates: bool,
    read_limit: int,
) -> MergeResult:
    from crawler.collection import check_collection_name, finish_output
    from crawler.exitcodes import UsageError
    from crawler.history.rebuild import rebuild_from_indexes
    from crawler.history.report import build_report, write_report
    from crawler.history.store import History, merge_histories

    workers = _open_workers(intake, roots, name)
    names = {w.collection for w in workers if w.collection}
    every = {n for w in workers for n in w.collections}
    if not every and intake.refused:
        raise UsageError(
            f"nothing to merge: {len(intake.refused)} refused, the first {intake.refused[0]}"
        )
    if len(names) != 1 or every != names:
        shown_names = ", ".join(map(shown, sorted(every)))
        raise UsageError(f"expected one collection in the worker folders, found [{shown_names}]")
    target = OutputLayout(output, check_collection_name(names.pop()))
    target.archive.mkdir(parents=True, exist_ok=True)
    for worker in workers:
        intake.find_sources(worker)
    new = name_sources(workers, target.archive)
    result = MergeResult()
    found: dict[str, list[Member]] | None = None
    dropped: set[str] = set()
    if not keep_duplicates:
        found = {}
        for source in list(new):
            try:
                found[source.target] = list(members(source.fh))
            except Exception as exc:  # noqa: BLE001 - a damaged file: refused, not merged
                intake.refuse(source.where, f"unreadable WARC file ({type(exc).__name__})")
                new.remove(source)
                source.target = ""  # nothing of the merge points at it
        merged = {}
        for path in target.warcs():
            with open(path, "rb") as fh:
                merged[path.name] = list(members(fh))
        dropped = duplicates(merged, found)
    result.dropped = sorted(dropped)
    for source in new:
        records = found[source.target] if found is not None else []
        copy_without(source, target.archive / source.target, records, dropped)
        result.files.append(source.target)
        if source.renamed:
            result.renamed.append(f"{shown(source.where)} -> {source.target}")
    for worker in workers:
        whole = [
            s
            for s in new
            if s.worker is worker
            and not (found and any(m.record_id in dropped for m in found[s.target]))
        ]
        adopt_index_lines(target, worker, whole, found, intake.scratch)
    pages = [intake.open_optional(w, "pages.jsonl") for w in workers]
    # The corpus first: the WACZ's pages carry its text.
    result.corpus_records = merge_corpora(intake, output, lambda why: _skip(result, why))
    histories = list(_worker_histories(intake, workers)) if keep_duplicates else []
    seeds = _seeds(intake, workers, histories) if wacz else []
    result.written = finish_output(
        target,
        wacz=wacz,
        earlier=[p for p in pages if p],
        seeds=seeds,
    )
    for page_file in pages:
        if page_file is not None:
            page_file.close()
    if keep_duplicates:
        merge_histories(target.history, histories)
    else:
        rebuild_from_indexes(target.root, read_limit)
    with History.open(target.root) as history:
        latest = history.latest_run()
        if latest is not None:
            write_report(target, build_report(history, latest.id), history)
    result.refused = list(intake.refused)
    result.recovered = list(intake.recovered)
    return result


def _open_workers(intake: Intake, roots: Iterable[str | Path], name: str | None) -> list[Worker]:
    workers = []
    for root in roots:
        if not Path(root).is_dir():
            # A worker the others left nothing to leaves no folder (crawler.run).
            logger.warning("%s: no such folder (that worker captured nothing)", shown(root))
            continue
        worker = intake.open_worker(os.fspath(root), name)
        if worker is not None and worker.collections:
            workers.append(worker)
    return workers


def _worker_histories(
    intake: Intake, workers: list[Worker]
) -> Iterator[tuple[Path, dict[str, str]]]:
    """Each worker's history (a checked copy) with the renames its file names follow;
    a malformed one stops the merge naming the worker's own file."""
    import sqlite3

    from crawler.history.files import read_only
    from crawler.history.validate import HistoryError, check_connection
    from crawler.layout import HISTORY_NAME

    for number, worker in enumerate(workers):
        copy = intake.copy_history(worker, number)
        if copy is None:
            continue
        try:
            with read_only(copy) as conn:
                check_connection(conn, copy)
        except HistoryError as exc:
            raise HistoryError(Path(worker.root, HISTORY_NAME), exc.problem) from None
        except sqlite3.Error as exc:
            raise HistoryError(Path(worker.root, HISTORY_NAME), f"unreadable ({exc})") from None
        yield copy, {s.name: s.target for s in worker.sources if s.target and s.renamed}


def _seeds(
    intake: Intake, workers: list[Worker], histories: list[tuple[Path, dict[str, str]]]
) -> list[str]:
    """The seeds the workers' runs list (the WACZ's main page is the first one captured),
    read from checked copies; a worker history that is not one lists none, since the
    rebuild from the indexes does not need it."""
    from crawler.history.files import read_runs, run_seeds
    from crawler.history.validate import HistoryError

    if not histories:
        try:
            histories = list(_worker_histories(intake, workers))
        except HistoryError:
            return []
    seeds = [s for copy, _ in histories for row in read_runs(copy).values() for s in run_seeds(row)]
    return list(dict.fromkeys(seeds))


def run_merge(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive merge``: the workers' folders into one."""
    from crawler.context import command_context
    from crawler.exitcodes import EXIT_LOCKED, EXIT_OK, EXIT_PARTIAL, UserError
    from crawler.runlock import RunLock, RunLockedError

    context = command_context(args.set)
    try:
        lock = RunLock(args.output, "autoblog-archive merge").acquire()
    except RunLockedError as exc:
        raise UserError(exc.describe(), EXIT_LOCKED) from None
    try:
        result = merge(args.workers, args.output, context.bounds.read_limit, args.name)
    finally:
        lock.release()
    print_outcome(result)
    print(
        f"merged {len(result.files)} new WARC files, {len(result.dropped)} duplicate records "
        f"left out, {result.corpus_records} corpus records -> {args.output}"
    )
    print(f"check it: autoblog-archive verify {args.output}")
    return EXIT_OK if result.complete else EXIT_PARTIAL


def print_outcome(result: MergeResult) -> None:
    """What was refused, recovered, renamed or skipped, one line each (names escaped)."""
    for line in result.refused[:LISTED]:
        print(f"REFUSED  {line}")
    if len(result.refused) > LISTED:
        print(f"REFUSED  ... and {len(result.refused) - LISTED} more (see the log)")
    for line in result.recovered:
        print(f"RECOVERED  {line}")
    for line in result.renamed:
        print(f"RENAMED  {line} (its name was taken)")
    for line in result.skipped[:LISTED]:
        print(f"SKIPPED  corpus record {line}")
    if result.skipped_count > LISTED:
        print(f"SKIPPED  ... and {result.skipped_count - LISTED} more corpus records")
