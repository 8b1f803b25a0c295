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
writes is named and skipped; the others are merged.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from crawler.cluster.intake import Intake, Source, Worker, first_record_id
from crawler.layout import OutputLayout
from crawler.untrusted import shown
from crawler.urls import canonical_url
from crawler.warc.names import OPEN_SUFFIX, WARC_SUFFIX, renamed_warc_name
from crawler.warc.reader import RecordWalk

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_RECORD_LINE = 1 << 27  # a corpus record holds at most a page's text (64 MB of page)
LISTED = 20  # refusals and skipped records printed by name; the rest are counted
INDEXED = ("response", "revisit")  # the records a CDXJ line points at, in our WARCs


@dataclass
class Member:
    """One record of a WARC file: where its gzip member lies and what it is."""

    offset: int
    length: int
    rec_type: str
    record_id: str
    concurrent_to: str | None
    key: tuple[str, str] | None  # (canonical url, payload digest) of a response record
    date: str
    uri: str = ""


@dataclass
class MergeResult:
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


def members(fh: BinaryIO) -> Iterator[Member]:
    """Every record of a worker's file, where it lies and what it is; raises at the first
    unreadable one (the file is then refused whole)."""
    fh.seek(0)
    walk = RecordWalk(fh)
    for record in walk:
        h = record.rec_headers
        uri = record.target_uri or ""
        key = None
        if record.rec_type == "response" and h.get_header("WARC-Payload-Digest"):
            key = (canonical_url(uri), h.get_header("WARC-Payload-Digest"))
        assert record.length is not None  # a walk reads every record to its end
        yield Member(
            record.offset,
            record.length,
            record.rec_type,
            record.record_id or "",
            h.get_header("WARC-Concurrent-To"),
            key,
            h.get_header("WARC-Date") or "",
            uri,
        )
    if walk.failure is not None:
        raise walk.failure


def duplicates(merged: dict[str, list[Member]], new: dict[str, list[Member]]) -> set[str]:
    """Record ids to leave out: later full responses of a (url, payload digest) and the
    request/metadata records that belong to them. What an earlier merge kept stays first.
    Files are named by their name in the merged archive."""
    first: dict[tuple[str, str], tuple[int, str, str, int, str]] = {}
    files = merged | new
    for name, found in files.items():
        for m in found:
            if m.key is None:
                continue
            rank = (int(name in new), m.date, name, m.offset, m.record_id)
            if m.key not in first or rank < first[m.key]:
                first[m.key] = rank
    keep = {rank[4] for rank in first.values()}
    dropped = {
        m.record_id
        for found in files.values()
        for m in found
        if m.key is not None and m.record_id not in keep
    }
    dropped |= {
        m.record_id for found in files.values() for m in found if m.concurrent_to in dropped
    }
    return dropped


# -- names in the merged archive ------------------------------------------------------------


def name_sources(workers: list[Worker], archive: Path) -> list[Source]:
    """Give every source its name in the merged archive; the new ones, in order.

    A file whose first record id a merged file has was merged before: it keeps that
    file's name and is not copied again (also when two workers hold one file). Another
    file keeps its name if it is free, else gets
    :func:`~crawler.warc.names.renamed_warc_name`. Workers are taken in the order given,
    their files by name: the same merge names the same way every time.
    """
    taken = set(os.listdir(archive))
    merged: dict[str, str] = {}
    for name in sorted(taken):
        if name.endswith(WARC_SUFFIX):
            with contextlib.suppress(Exception), open(archive / name, "rb") as fh:
                merged.setdefault(first_record_id(fh), name)
    new = []
    for worker in workers:
        for source in sorted(worker.sources, key=lambda s: s.name):
            if source.identity in merged:
                source.target, source.new = merged[source.identity], False
                continue
            source.target = source.name
            if source.name in taken or source.name + OPEN_SUFFIX in taken:
                source.target = renamed_warc_name(source.name, source.identity, taken)
            taken |= {source.target, source.target + OPEN_SUFFIX}
            merged[source.identity] = source.target
            new.append(source)
    return new


# -- copying ---------------------------------------------------------------------------------


def copy_without(source: Source, target: Path, found: list[Member], dropped: set[str]) -> None:
    """``source`` to ``target`` member by member (each record is its own gzip member),
    leaving the dropped records out. A file kept whole is hard-linked where the file system
    allows (closed WARC files never change, and a big archive is not stored twice), the
    very file that was checked (same inode); else written as ``.open`` and linked to its
    name when complete. Never replaces a file: ``target`` is a free name."""
    whole = not any(m.record_id in dropped for m in found)
    if whole and _link(source, target):
        return
    partial = target.with_name(target.name + OPEN_SUFFIX)
    fh = source.fh
    with open(partial, "xb") as out:
        if whole:
            fh.seek(0)
            shutil.copyfileobj(fh, out, CHUNK)
        else:
            for m in found:
                if m.record_id not in dropped:
                    fh.seek(m.offset)
                    _copy_bytes(fh, out, m.length)
    os.link(partial, target)  # FileExistsError rather than a replaced file
    partial.unlink()


def _copy_bytes(fh: BinaryIO, out: BinaryIO, size: int) -> None:
    while size:
        chunk = fh.read(min(CHUNK, size))
        if not chunk:
            raise ValueError("file shorter than its records")
        out.write(chunk)
        size -= len(chunk)


def _link(source: Source, target: Path) -> bool:
    """Hard-link the checked file itself to ``target`` (never what a link points at)."""
    try:
        if source.recovered is not None:
            os.link(source.recovered, target, follow_symlinks=False)
        else:
            assert source.worker.archive is not None
            os.link(
                source.name,
                target,
                src_dir_fd=source.worker.archive.fd,
                follow_symlinks=False,
            )
    except OSError:
        return False
    linked, checked = os.lstat(target), os.fstat(source.fd)
    if (linked.st_dev, linked.st_ino) != (checked.st_dev, checked.st_ino):
        target.unlink()  # swapped since it was checked: copy from the open file instead
        return False
    return True


# -- index lines -----------------------------------------------------------------------------


def adopt_index_lines(
    target: OutputLayout,
    worker: Worker,
    whole: list[Source],
    found: dict[str, list[Member]] | None,
    scratch: Path,
) -> None:
    """Add the worker's index lines of files copied whole to the merged index, each
    ``filename`` the file's merged name: their offsets hold, so :func:`write_cdxj` need not
    read the files again. Only an index written after a file was closed is trusted to
    cover it, and with ``found`` (the files' records, read by the merge) only if its lines
    point at exactly the file's responses and revisits, each at its offset, length, URL
    and date; any other file is indexed again from its records."""
    from warcio.timeutils import iso_date_to_timestamp

    from crawler.warc.cdxj import LINE_FILE, parse_cdxj_line

    if worker.cdxj is None or not whole:
        return
    written = os.fstat(worker.cdxj.fileno()).st_mtime
    sources = {s.name: s for s in whole if s.recovered is None and s.mtime <= written}
    if not sources:
        return
    expected: dict[str, dict[tuple[int, int], tuple[str, str]]] = {}
    if found is not None:
        for name, source in sources.items():
            expected[name] = {
                (m.offset, m.length): (m.uri, iso_date_to_timestamp(m.date))
                for m in found[source.target]
                if m.rec_type in INDEXED
            }
    counts = dict.fromkeys(sources, 0)
    bad: set[str] = set()
    worker.cdxj.seek(0)
    lines = io_text(worker.cdxj)
    with tempfile.TemporaryFile("w+", dir=scratch, **LINE_FILE) as kept:
        for line in lines:
            parsed = parse_cdxj_line(line)
            if parsed is None or not line.endswith("\n") or parsed[2]["filename"] not in sources:
                continue
            key, ts, fields = parsed
            name = fields["filename"]
            counts[name] += 1
            if found is not None:
                at = (int(fields["offset"]), int(fields["length"]))
                if expected[name].get(at) != (fields["url"], ts):
                    bad.add(name)
                    continue
            source = sources[name]
            if source.renamed:
                fields["filename"] = source.target
                line = f"{key} {ts} {json.dumps(fields)}\n"  # as cdxj-indexer writes it
            kept.write(f"{name}\t{line}")
        if found is not None:
            bad |= {name for name, count in counts.items() if count != len(expected[name])}
        if bad:
            logger.info("merge: index lines of %d files not adopted, indexed again", len(bad))
        kept.seek(0)
        target.cdxj.parent.mkdir(parents=True, exist_ok=True)
        with open(target.cdxj, "a", encoding="utf-8") as out:
            for tagged in kept:
                name, line = tagged.split("\t", 1)
                if name not in bad:
                    out.write(line)


def io_text(fh: BinaryIO) -> Iterator[str]:
    """Lines of a binary file as text (undecodable bytes replaced: such a line is not
    one of ours and parses as nothing)."""
    for raw in fh:
        yield raw.decode("utf-8", errors="replace")


# -- the corpus ------------------------------------------------------------------------------


def merge_corpora(intake: Intake, target: Path, result: MergeResult) -> int:
    """One corpus from the workers' corpus parts: a record per (url, payload digest), the
    first capture's; index-only records only for articles no worker fetched the page of.
    A record that is not what the tool writes is named in ``result`` and left out; a
    record's ``warc.filename`` follows its file's name in the merged archive."""
    from crawler.corpus.dedup import NEAR_DUP_DISTANCE, annotate_duplicates
    from crawler.corpus.shards import RECORDS_PER_SHARD, record_problem, write_shards

    pages: dict[tuple[str, str], dict] = {}
    index_only: dict[str, dict] = {}
    for worker in intake.workers:
        names = {s.name: s.target for s in worker.sources if s.target}
        for where, rec in _corpus_records(intake, worker, result):
            problem = record_problem(rec)
            if problem is not None:
                _skip(result, f"{where}: {problem}")
                continue
            try:
                url = canonical_url(rec["url"])
            except ValueError:  # UnicodeError included
                _skip(result, f"{where}: url is not a URL")
                continue
            warc = rec.get("warc")
            if warc and warc.get("filename") in names:
                rec["warc"] = warc | {"filename": names[warc["filename"]]}
            rec["dup"] = None
            if "from_index_only" in rec["quality_flags"]:
                if url not in index_only or rec["id"] < index_only[url]["id"]:
                    index_only[url] = rec
                continue
            key = (url, (rec.get("warc") or {}).get("payload_digest") or rec["id"])
            if key not in pages or (rec["crawl_date"] or "", rec["id"]) < (
                pages[key]["crawl_date"] or "",
                pages[key]["id"],
            ):
                pages[key] = rec
    fetched = {url for url, _ in pages}
    records = list(pages.values()) + [r for u, r in index_only.items() if u not in fetched]
    records.sort(key=lambda r: (r["url"], r["id"]))
    annotate_duplicates(records, NEAR_DUP_DISTANCE)
    folder = OutputLayout(target).corpus
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.jsonl.gz"):
        old.unlink()
    write_shards(records, folder, RECORDS_PER_SHARD)
    return len(records)


def _corpus_records(
    intake: Intake, worker: Worker, result: MergeResult
) -> Iterator[tuple[str, Any]]:
    """("<shard> line N", parsed JSON) of every line of the worker's corpus shards; a line
    that is not JSON, too long, or a shard that stops reading is noted in ``result``."""
    for path, fh in intake.corpus_shards(worker):
        number = 0
        try:
            with gzip.GzipFile(fileobj=fh, mode="rb") as lines:
                while line := lines.readline(MAX_RECORD_LINE + 1):
                    number += 1
                    where = f"{shown(path)} line {number}"
                    if not line.endswith(b"\n") and len(line) > MAX_RECORD_LINE:
                        while line and not line.endswith(b"\n"):  # the rest of it, unread
                            line = lines.readline(CHUNK)
                        _skip(result, f"{where}: longer than {MAX_RECORD_LINE} bytes")
                        continue
                    if not line.strip():
                        continue
                    try:
                        yield where, orjson.loads(line)
                    except orjson.JSONDecodeError:
                        _skip(result, f"{where}: not JSON")
        except (OSError, EOFError, zlib.error) as exc:
            _skip(result, f"{shown(path)}: unreadable after line {number} ({exc})")


def _skip(result: MergeResult, message: str) -> None:
    logger.info("merge: corpus record skipped: %s", message)  # printed with the outcome
    result.skipped_count += 1
    if len(result.skipped) < 100:
        result.skipped.append(message)


# -- the merge -------------------------------------------------------------------------------


def merge(
    roots: list[str | Path],
    output: str | Path,
    name: str | None = None,
    wacz: bool = False,
    keep_duplicates: bool = False,
) -> MergeResult:
    """Merge worker output folders into ``output`` (again after each cluster run: files
    already merged stay, new ones are added).

    ``keep_duplicates`` (``crawl --processes``, whose processes share run numbers): every
    capture is kept, files are hard-linked, not copied, and the indexes, titles and history
    are merged from the workers' own instead of being read again from the WARCs.
    """
    Path(output).mkdir(parents=True, exist_ok=True)
    for stale in Path(output).glob(".merge-*"):  # a killed merge's (the output is locked)
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix=".merge-", dir=output))
    intake = Intake(scratch)
    try:
        return _merge(intake, roots, Path(output), name, wacz, keep_duplicates)
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
    result.written = finish_output(target, wacz=wacz, earlier=[p for p in pages if p])
    for fh in pages:
        if fh is not None:
            fh.close()
    if keep_duplicates:
        merge_histories(target.history, _worker_histories(intake, workers))
    else:
        rebuild_from_indexes(target.root)
    with History.open(target.root) as history:
        latest = history.latest_run()
        if latest is not None:
            write_report(target, build_report(history, latest.id))
    result.corpus_records = merge_corpora(intake, output, result)
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

    from crawler.history.store import read_only
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


def run_merge(args: argparse.Namespace) -> int:
    from crawler.exitcodes import EXIT_LOCKED, EXIT_OK, EXIT_PARTIAL, UserError
    from crawler.runlock import RunLock, RunLockedError

    try:
        lock = RunLock(args.output, "autoblog-archive merge").acquire()
    except RunLockedError as exc:
        raise UserError(exc.describe(), EXIT_LOCKED) from None
    try:
        result = merge(args.workers, args.output, args.name)
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
