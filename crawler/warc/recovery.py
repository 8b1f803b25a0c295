"""Crash repair of ``*.warc.gz.open`` files left by a killed crawl.

The writer (:mod:`crawler.warc.writer`) appends one gzip member per record and writes a
capture as one group (``response``/``revisit``, its ``request``, its ``metadata``), so
a SIGKILL can only leave a torn tail: a partial gzip member, or a group whose last
records never made it. Repair keeps the longest prefix that is whole:

1. Walk the gzip members with zlib. A member counts only if it decompresses to its end
   (the gzip trailer's CRC-32 and length match) and holds exactly one WARC record that
   parses, whose block is as long as its ``Content-Length`` and whose digests match.
   The first member that fails ends the walk: truncation cannot keep what follows.
2. Group the good records as the writer wrote them: a record opens a group unless it is
   ``WARC-Concurrent-To`` the current group's head. A ``response``/``revisit`` group is
   complete once its ``request`` is there (a missing trailing ``metadata`` is accepted:
   it holds derived data, and verify needs only the pair); any other head is complete
   on its own. The cut is the end of the last complete group, so no pair is ever split;
   an incomplete group followed by more records also ends the walk.
3. Truncate there, fsync, rename ``<name>.open`` to ``<name>`` and fsync the folder.
   A file left with nothing but its ``warcinfo`` (or nothing at all) is deleted: it
   holds no capture, and an empty ``warcinfo``-only file would only clutter the
   collection (the resumed run writes a new file with its own ``warcinfo``).

The repaired file is read once more end to end (digests checked) before it is renamed.
Captures the history noted past the cut must be forgotten
(crawler.history.consistency) and fetched again.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from warcio.exceptions import ArchiveLoadFailed

from crawler.layout import OutputLayout
from crawler.warc.names import OPEN_SUFFIX, WARC_SUFFIX
from crawler.warc.reader import RecordWalk

CHUNK = 1 << 20
# What a record holds beside its body: WARC and HTTP headers, or a metadata record's
# outlinks (MAX_LINKS_PER_PAGE of URLLENGTH_LIMIT at most).
RECORD_HEADROOM = 16 << 20
PAIRED = ("response", "revisit")


@dataclass
class Member:
    """One gzip member that decompressed fully and held one good WARC record."""

    offset: int
    end: int
    rec_type: str
    record_id: str
    concurrent_to: str | None
    target_uri: str | None


@dataclass
class Scan:
    """What a walk over a (possibly torn) WARC file found."""

    members: list[Member]
    size: int
    stop_offset: int | None = None  # where the first bad member starts, if any
    stop_reason: str | None = None


@dataclass
class Repair:
    """What :func:`repair_open_file` did to one file."""

    path: Path
    action: str  # closed | deleted | skipped
    result: Path | None
    size_before: int
    size_after: int
    kept_records: int
    kept_captures: int
    dropped_records: int
    reason: str | None = None
    dropped: list[str] = field(default_factory=list)  # "<type> <uri>" of whole records cut

    @property
    def cut_bytes(self) -> int:
        """Bytes cut off."""
        return self.size_before - self.size_after

    def describe(self) -> str:
        """The repair as one line."""
        if self.action == "skipped":
            return f"{self.path.name}: skipped ({self.reason})"
        what = f"kept {self.kept_records} records ({self.kept_captures} captures)"
        cut = f"cut {self.cut_bytes} bytes"
        if self.dropped_records:
            cut += f" incl. {self.dropped_records} whole records of an unfinished group"
        if self.reason:
            cut += f" ({self.reason})"
        target = self.result.name if self.result else "deleted (no capture left)"
        return f"{self.path.name}: {what}, {cut} -> {target}"


def _parse_member(data: bytes) -> tuple[str, str, str | None, str | None]:
    """(type, id, concurrent-to, target) of the single, complete record in ``data``."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        raise ValueError("no end of WARC headers")
    walk = RecordWalk(BytesIO(data), check_digests=True)
    found = list(walk)
    if walk.failure is not None:
        raise walk.failure
    if len(found) != 1:
        raise ValueError("no WARC record" if not found else "more than one record in a gzip member")
    (record,) = found
    declared = int(record.header("Content-Length") or -1)
    # headers, blank line, block, then the record's closing CRLF CRLF: nothing else.
    if len(data) != head_end + 4 + declared + 4 or not data.endswith(b"\r\n\r\n"):
        raise ValueError(f"record is not {declared} bytes of block as declared")
    if record.digest_problems:
        raise ValueError(f"digest mismatch {list(record.digest_problems)}")
    if not record.record_id:
        raise ValueError("record without WARC-Record-ID")
    return (
        record.rec_type,
        record.record_id,
        record.header("WARC-Concurrent-To"),
        record.target_uri,
    )


def _raw_members(
    fh: BinaryIO, max_record: int | None = None
) -> Iterator[tuple[int, int | None, bytes, str | None]]:
    """(offset, end, decompressed bytes, error) of each gzip member; end None if torn.

    A member is inflated in memory to check it whole: with ``max_record``, never past
    that many bytes (a member of a file from elsewhere may be a compressed bomb).
    """
    pending = b""
    pos = 0
    while True:
        if not pending:
            pending = fh.read(CHUNK)
            if not pending:
                return
        start = pos
        inflater = zlib.decompressobj(31)
        parts: list[bytes] = []
        size = 0
        while True:
            room = 0 if max_record is None else max_record + 1 - size  # 0: no bound
            try:
                out = inflater.decompress(pending, room) if pending else inflater.flush()
            except zlib.error as exc:
                yield start, None, b"", f"bad gzip data ({exc})"
                return
            parts.append(out)
            size += len(out)
            if max_record is not None and size > max_record:
                yield start, None, b"", f"a record larger than {max_record} bytes"
                return
            if inflater.eof:
                pos += len(pending) - len(inflater.unused_data)
                pending = inflater.unused_data
                break
            if inflater.unconsumed_tail:  # stopped at the bound's room: the rest is input
                pos += len(pending) - len(inflater.unconsumed_tail)
                pending = inflater.unconsumed_tail
                continue
            if not pending:  # the file ended, and flush() did not end the member
                yield start, None, b"", "gzip member cut short"
                return
            pos += len(pending)
            pending = fh.read(CHUNK)
        yield start, pos, b"".join(parts), None


def scan_members(path: str | os.PathLike[str]) -> Scan:
    """Every good member from the start of the file up to the first bad one."""
    with open(path, "rb") as fh:
        return scan_stream(fh)


def scan_stream(fh: BinaryIO, max_record: int | None = None) -> Scan:
    """:func:`scan_members` of a file already open (read from its start). ``max_record``
    bounds what one member may inflate to (a file from elsewhere); None is for the
    tool's own files, whose records its writer bounded."""
    members: list[Member] = []
    scan = Scan(members=members, size=os.fstat(fh.fileno()).st_size)
    fh.seek(0)
    for start, end, data, error in _raw_members(fh, max_record):
        if error is None:
            try:
                rec_type, rid, concurrent, target = _parse_member(data)
            except (ArchiveLoadFailed, ValueError, EOFError, OSError) as exc:
                error = f"unreadable record ({exc})"
        if error is not None or end is None:
            scan.stop_offset, scan.stop_reason = start, error
            break
        members.append(Member(start, end, rec_type, rid, concurrent, target))
    return scan


def cut_point(members: list[Member]) -> tuple[int, int]:
    """(byte offset, number of members) of the end of the last complete group."""
    cut, kept = 0, 0
    head: Member | None = None
    complete = False
    for index, member in enumerate(members):
        if head is not None and member.concurrent_to == head.record_id:
            if member.rec_type == "request":
                complete = True
        else:
            if head is not None and not complete:
                break  # an unpaired response in the middle: nothing after it can stay
            head = member
            complete = member.rec_type not in PAIRED
        if complete:
            cut, kept = member.end, index + 1
    return cut, kept


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_whole(path: Path, size: int) -> None:
    """Read the kept prefix end to end, digests checked: never rename a bad file."""
    with open(path, "rb") as fh:
        walk = RecordWalk(fh, check_digests=True)
        for record in walk:
            if record.digest_problems:
                raise ValueError(f"{path.name}: digest mismatch after repair")
        if walk.failure is not None:
            raise walk.failure
    if walk.end != size:
        raise ValueError(f"{path.name}: repaired file reads to {walk.end}, not {size}")


def repair_open_file(path: str | os.PathLike[str]) -> Repair:
    """Cut one ``.open`` file back to its last complete group and close (or delete) it."""
    path = Path(path)
    if not path.name.endswith(OPEN_SUFFIX):
        raise ValueError(f"{path}: not a {OPEN_SUFFIX} file")
    final = path.with_name(path.name[: -len(OPEN_SUFFIX)])
    if final.exists():
        size = path.stat().st_size
        return Repair(path, "skipped", None, size, size, 0, 0, 0, f"{final.name} already exists")
    return cut_back(path, final)


def repair_truncated_file(path: str | os.PathLike[str]) -> Repair:
    """Cut a closed file that ends mid-record (a copy cut short, a failing disk) back to its
    last complete group, in place: what follows the cut cannot be read anyway."""
    path = Path(path)
    return cut_back(path, path)


def cut_back(path: Path, final: Path) -> Repair:
    """Truncate ``path`` after its last complete group, check it, and move it to ``final``
    (or delete it when no capture is left)."""
    size = path.stat().st_size
    scan = scan_members(path)
    cut, kept = cut_point(scan.members)
    kept_members = scan.members[:kept]
    dropped = [f"{m.rec_type} {m.target_uri}" for m in scan.members[kept:]]
    reason = scan.stop_reason
    if dropped and reason is None:
        reason = "last group incomplete (response without its request)"
    elif dropped:
        reason = f"last group incomplete, then {reason}"
    captures = sum(1 for m in kept_members if m.rec_type in PAIRED)
    if captures == 0:
        # Nothing but a warcinfo (or nothing readable): no capture to keep.
        path.unlink()
        _fsync_dir(path.parent)
        return Repair(path, "deleted", None, size, 0, 0, 0, len(dropped), reason, dropped)
    with open(path, "r+b") as fh:
        fh.truncate(cut)
        fh.flush()
        os.fsync(fh.fileno())
    _check_whole(path, cut)
    if final != path:
        os.replace(path, final)
    _fsync_dir(path.parent)
    return Repair(path, "closed", final, size, cut, kept, captures, len(dropped), reason, dropped)


def copy_whole_prefix(source: BinaryIO, name: str, target: Path, read_limit: int) -> Repair:
    """Copy the complete groups of a torn ``.open`` file (``source``, open for reading and
    named ``name``) to ``target``, checked end to end, leaving the file itself untouched:
    ``merge`` recovers a killed worker's files this way, writing only in its own output.
    ``action`` is ``closed`` (``target`` written) or ``deleted`` (no capture: nothing).
    ``read_limit`` is the crawl's body bound (``DOWNLOAD_MAXSIZE``): no record of ours is
    larger than that and its headers, so a larger one ends the whole prefix."""
    scan = scan_stream(source, read_limit + RECORD_HEADROOM)
    cut, kept = cut_point(scan.members)
    dropped = [f"{m.rec_type} {m.target_uri}" for m in scan.members[kept:]]
    reason = scan.stop_reason or ("last group incomplete" if dropped else None)
    captures = sum(1 for m in scan.members[:kept] if m.rec_type in PAIRED)
    path = Path(name)
    if captures == 0:
        return Repair(path, "deleted", None, scan.size, 0, 0, 0, len(dropped), reason, dropped)
    source.seek(0)
    with open(target, "xb") as out:
        left = cut
        while left:
            chunk = source.read(min(CHUNK, left))
            if not chunk:
                raise ValueError(f"{name}: shorter than its own scan")
            out.write(chunk)
            left -= len(chunk)
    _check_whole(target, cut)
    return Repair(path, "closed", target, scan.size, cut, kept, captures, len(dropped), reason)


def repair_directory(directory: str | os.PathLike[str]) -> list[Repair]:
    """Repair every ``*.warc.gz.open`` file of one archive folder."""
    found = sorted(Path(directory).glob("*" + WARC_SUFFIX + OPEN_SUFFIX))
    return [repair_open_file(p) for p in found]


def repair_output(root: str | os.PathLike[str]) -> list[Repair]:
    """Repair the ``.open`` files of every collection of an output folder."""
    repairs: list[Repair] = []
    for layout in OutputLayout.find(root):
        if layout.archive.is_dir():
            repairs.extend(repair_directory(layout.archive))
    return repairs
