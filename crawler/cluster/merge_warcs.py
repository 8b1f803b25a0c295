"""The WARC files of a merge: their records, the duplicates left out, their names in the
merged archive, the copies, and the index lines taken over from the workers.

Duplicates are full ``response`` records of the same URL with the same payload digest:
the first capture is kept with its request and metadata records, later ones are left
out of the merged files. A file is known by its first record's id
(:func:`crawler.cluster.intake.first_record_id`), so a file merged before is not taken
again, and a different file with a name already taken gets a new one
(:func:`crawler.warc.names.renamed_warc_name`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from crawler.cluster.intake import Source, Worker, first_record_id
from crawler.layout import OutputLayout
from crawler.urls import canonical_url
from crawler.warc.names import OPEN_SUFFIX, WARC_SUFFIX, renamed_warc_name
from crawler.warc.reader import RecordWalk

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
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
