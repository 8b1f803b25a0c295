"""``autoblog-archive merge``: the workers' folders become one output folder.

One collection holding every worker's WARC files (exact duplicates dropped), one CDXJ,
one ``pages.jsonl``, a pywb config, a history rebuilt from those WARCs, one change
report and one corpus. Duplicates are full ``response`` records of the same URL with the
same payload digest (robots.txt fetched by each worker, a page fetched again after
reconciliation): the first capture is kept with its request and metadata records, later
ones are left out of the merged files. Revisits are kept: they record a later fetch.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.layout import OutputLayout
from crawler.urls import canonical_url

logger = logging.getLogger(__name__)


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


@dataclass
class MergeResult:
    files: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # record ids of dropped duplicates
    corpus_records: int = 0
    written: dict[str, str] = field(default_factory=dict)


def members(path: Path) -> Iterator[Member]:
    from warcio.archiveiterator import ArchiveIterator

    with open(path, "rb") as fh:
        it = ArchiveIterator(fh)
        for record in it:
            it.read_to_end(record)
            h = record.rec_headers
            key = None
            if record.rec_type == "response" and h.get_header("WARC-Payload-Digest"):
                url = canonical_url(h.get_header("WARC-Target-URI"))
                key = (url, h.get_header("WARC-Payload-Digest"))
            yield Member(
                it.get_record_offset(),
                it.get_record_length(),
                record.rec_type,
                h.get_header("WARC-Record-ID") or "",
                h.get_header("WARC-Concurrent-To"),
                key,
                h.get_header("WARC-Date") or "",
            )


def duplicates(merged: dict[Path, list[Member]], new: dict[Path, list[Member]]) -> set[str]:
    """Record ids to leave out: later full responses of a (url, payload digest) and the
    request/metadata records that belong to them. What an earlier merge kept stays first."""
    first: dict[tuple[str, str], tuple[int, str, str, int, str]] = {}
    files = merged | new
    for path, found in files.items():
        for m in found:
            if m.key is None:
                continue
            rank = (int(path in new), m.date, path.name, m.offset, m.record_id)
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


def copy_without(source: Path, target: Path, found: list[Member], dropped: set[str]) -> None:
    """``source`` to ``target`` member by member (each record is its own gzip member),
    leaving the dropped records out; written as ``.open`` and renamed when complete.
    A file kept whole is hard-linked where the file system allows: closed WARC files
    never change, and a big archive is not stored twice."""
    partial = target.with_name(target.name + ".open")
    if not any(m.record_id in dropped for m in found):
        try:
            os.link(source, partial)
        except OSError:
            pass
        else:
            partial.replace(target)
            return
    with open(source, "rb") as src, open(partial, "wb") as out:
        if not any(m.record_id in dropped for m in found):
            shutil.copyfileobj(src, out, 1 << 20)
        else:
            for m in found:
                if m.record_id not in dropped:
                    src.seek(m.offset)
                    out.write(src.read(m.length))
    partial.replace(target)


def worker_layouts(roots: Iterable[str | Path], name: str | None) -> list[Any]:
    """The collections of finished worker folders, ``.open`` files of a killed one repaired."""
    from crawler.exitcodes import UsageError
    from crawler.runlock import RunLock, RunLockedError
    from crawler.warc.recovery import repair_output

    layouts = []
    for root in roots:
        if not Path(root).is_dir():
            # A worker the others left nothing to leaves no folder (crawler.run).
            logger.warning("%s: no such folder (that worker captured nothing)", root)
            continue
        try:
            lock = RunLock(Path(root), "autoblog-archive merge").acquire()
        except RunLockedError as exc:
            raise UsageError(f"{root}: a worker is still running ({exc.describe()})") from None
        try:
            for repair in repair_output(root):
                logger.warning("crash recovery: %s", repair.describe())
        finally:
            lock.release()
        layouts += [x for x in OutputLayout.find(root) if name is None or x.name == name]
    return layouts


def merge_corpora(roots: Iterable[str | Path], target: Path) -> int:
    """One corpus from the workers' corpus parts: a record per (url, payload digest), the
    first capture's; index-only records only for articles no worker fetched the page of."""
    from crawler.corpus.dedup import NEAR_DUP_DISTANCE, annotate_duplicates
    from crawler.corpus.shards import RECORDS_PER_SHARD, read_corpus, write_shards

    pages: dict[tuple[str, str], dict] = {}
    index_only: dict[str, dict] = {}
    for root in roots:
        if not Path(root).is_dir():
            continue
        for rec in read_corpus(root):
            rec["dup"] = None
            url = canonical_url(rec["url"])
            if "from_index_only" in rec["quality_flags"]:
                if url not in index_only or rec["id"] < index_only[url]["id"]:
                    index_only[url] = rec
                continue
            key = (url, (rec.get("warc") or {}).get("payload_digest") or rec["id"])
            if key not in pages or (rec["crawl_date"], rec["id"]) < (
                pages[key]["crawl_date"],
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
    from crawler.exitcodes import UsageError
    from crawler.history.rebuild import rebuild_from_indexes
    from crawler.history.report import build_report, write_report
    from crawler.history.store import History, merge_histories, read_runs, run_seeds
    from crawler.warc.indexes import adopt_cdxj_lines, finish_output

    layouts = worker_layouts(roots, name)
    names = {x.name for x in layouts}
    if len(names) != 1:
        raise UsageError(f"expected one collection in the worker folders, found {sorted(names)}")
    target = OutputLayout(output, names.pop())
    target.archive.mkdir(parents=True, exist_ok=True)
    # Every new file at once: the first capture of a duplicate is kept whichever worker's.
    new = {p: [] for x in layouts for p in x.warcs() if not (target.archive / p.name).exists()}
    dropped: set[str] = set()
    if not keep_duplicates:
        new = {p: list(members(p)) for p in new}
        dropped = duplicates({p: list(members(p)) for p in target.warcs()}, new)
    result = MergeResult(dropped=sorted(dropped))
    for path, found in sorted(new.items()):
        copy_without(path, target.archive / path.name, found, dropped)
        result.files.append(path.name)
    for layout in layouts:
        whole = {
            p.name
            for p in layout.warcs()
            if p in new and not any(m.record_id in dropped for m in new[p])
        }
        adopt_cdxj_lines(target, layout, whole)
    # The corpus first: the WACZ's pages carry its text.
    result.corpus_records = merge_corpora(roots, Path(output))
    seeds = [s for x in layouts for row in read_runs(x.history).values() for s in run_seeds(row)]
    result.written = finish_output(
        target, wacz=wacz, earlier=[x.pages for x in layouts], seeds=list(dict.fromkeys(seeds))
    )
    if keep_duplicates:
        merge_histories(target.history, [x.history for x in layouts])
    else:
        rebuild_from_indexes(target.root)
    with History.open(target.root) as history:
        latest = history.latest_run()
        if latest is not None:
            write_report(target, build_report(history, latest.id))
    return result


def run_merge(args: argparse.Namespace) -> int:
    from crawler.exitcodes import EXIT_OK

    result = merge(args.workers, args.output, args.name)
    print(
        f"merged {len(result.files)} new WARC files, {len(result.dropped)} duplicate records "
        f"left out, {result.corpus_records} corpus records -> {args.output}"
    )
    print(f"check it: autoblog-archive verify {args.output}")
    return EXIT_OK
