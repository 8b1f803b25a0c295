"""Reading the archive back: one record by its offset, or every record of a file in order.

Every reader of WARC files goes through here: ``verify``, ``reindex`` and the history's
rebuild, ``extract``, ``merge``, crash repair and the crawl's own read-back. A WARC file
is hostile input (its payloads came from a farm, a worker folder came from anyone), so
every read is bounded by a ``limit`` its caller passes in (``DOWNLOAD_MAXSIZE``, the
crawl's own body bound): a compressed bomb stored in a WARC is read as a prefix, never
inflated whole, and a record's block is skipped in fixed chunks. Damage is reported, not
raised: a walk over a file stops at its first unreadable record and says where.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders

from crawler.untrusted import Refused, open_regular

# Content-Encoding that cannot be undone: the payload is kept raw (``decoded=False``).
DECODE_ERRORS = (OSError, zlib.error, ValueError, EOFError)


@dataclass
class StoredRecord:
    """One record read back: its headers, where it lies, and as much of its payload as
    the reader asked for."""

    rec_type: str
    rec_headers: StatusAndHeaders
    http_headers: StatusAndHeaders | None
    payload: bytes = b""  # Content-Encoding undone, unless ``decoded`` is False; at most the limit
    decoded: bool = True
    complete: bool = True  # False: the payload goes on past the limit (only a prefix is here)
    offset: int = 0  # of its gzip member in the file
    length: int | None = None  # of its gzip member; None when read by offset alone
    defect: str | None = None  # a walk's finding: see :func:`record_defect`
    digest_problems: tuple[str, ...] = ()  # a walk with ``check_digests``: the mismatches

    def header(self, name: str) -> str | None:
        """The WARC header ``name``, or None."""
        value: str | None = self.rec_headers.get_header(name)  # warcio is untyped
        return value

    @property
    def record_id(self) -> str | None:
        """The WARC-Record-ID, or None."""
        return self.header("WARC-Record-ID")

    @property
    def target_uri(self) -> str | None:
        """The WARC-Target-URI, or None."""
        return self.header("WARC-Target-URI")

    @property
    def status(self) -> int | None:
        """The HTTP status code, if the record has HTTP headers with a numeric one."""
        code = self.http_headers.get_statuscode() if self.http_headers is not None else None
        return int(code) if code and code.isascii() and code.isdigit() else None


def read_limited(stream: BinaryIO, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of ``stream`` and whether that was all of it.

    warcio inflates a content-coded body one input block at a time, so asking for
    ``limit + 1`` bytes costs memory in proportion to ``limit``, never to the whole
    decompressed body: a gzip bomb stored in a WARC is read as a prefix, not a bomb.
    """
    data = stream.read(limit + 1) if limit >= 0 else stream.read()
    if limit >= 0 and len(data) > limit:
        return data[:limit], False
    return data, True


def record_defect(record: ArcWarcRecord) -> str | None:
    """What is wrong with a record once read to its end, or None: headers a record must
    have, and a block as long as the ``Content-Length`` it declares (a cut file, or a
    lying header). warcio itself is silent about both."""
    headers = record.rec_headers
    missing = [
        name
        for name in ("WARC-Record-ID", "WARC-Date", "Content-Length")
        if not headers.get_header(name)
    ]
    if missing:
        return f"not a complete WARC record (no {', '.join(missing)})"
    short = int(getattr(record.raw_stream, "limit", 0) or 0)
    if short:
        declared = headers.get_header("Content-Length")
        return f"block is {short} bytes shorter than its Content-Length {declared}"
    return None


def _stored(record: ArcWarcRecord, offset: int) -> StoredRecord:
    return StoredRecord(record.rec_type, record.rec_headers, record.http_headers, offset=offset)


# How much of a payload a walk reads, asked of each record (its headers are there): None
# for none, else a byte limit.
PayloadLimit = Callable[[StoredRecord], int | None]


class RecordWalk:
    """Every record of an open file, from where it stands, in order; each one read to its
    end (raw, in bounded chunks) before it is handed out, so its offset and length are
    known and nothing of it is left to read.

    ``payload`` says which records to read a payload prefix of (Content-Encoding undone,
    ``decoded=False`` and no payload if it cannot be); ``check_digests`` checks the block
    and payload digests as the block goes by. Iteration stops at the first record warcio
    cannot read: ``failure`` holds why, and :meth:`stopped` says it in one line, as it
    does for bytes left after the last record (a file cut inside a record's headers,
    which warcio passes over without a word).
    """

    def __init__(
        self,
        fh: BinaryIO,
        *,
        payload: PayloadLimit | None = None,
        check_digests: bool = False,
    ) -> None:
        self.fh = fh
        self.payload = payload
        self.check_digests = check_digests
        self.count = 0
        self.end = fh.tell()  # where the last record read whole ends
        self.failure: Exception | None = None
        self.finished = False

    def __iter__(self) -> Iterator[StoredRecord]:
        if self.finished:
            return
        it = ArchiveIterator(self.fh, check_digests=self.check_digests)
        try:
            for record in it:
                stored = _stored(record, it.offset)
                limit = self.payload(stored) if self.payload is not None else None
                if limit is not None:
                    try:
                        stored.payload, stored.complete = read_limited(
                            record.content_stream(), limit
                        )
                    except DECODE_ERRORS:
                        stored.payload, stored.decoded = b"", False
                it.read_to_end(record)
                stored.offset, stored.length = it.get_record_offset(), it.get_record_length()
                stored.defect = record_defect(record)
                checker = record.digest_checker
                if self.check_digests and checker.passed is False:
                    stored.digest_problems = tuple(checker.problems)
                self.count += 1
                self.end = stored.offset + stored.length
                yield stored
        except Exception as exc:  # noqa: BLE001 - any damage ends the walk, said by stopped()
            self.failure = exc
        self.finished = True

    def unread_tail(self) -> int:
        """Bytes of the file past the last record read whole (0 before the walk ends)."""
        if not self.finished or self.failure is not None:
            return 0
        return max(0, self.fh.seek(0, os.SEEK_END) - self.end)

    def stopped(self, name: str) -> str | None:
        """Why the walk ended before the end of the file ``name``, in one line; None if it
        read the file whole."""
        if self.failure is not None:
            return f"{name}: unreadable after {self.count} records ({self.failure!r})"
        tail = self.unread_tail()
        if tail:
            return f"{name}: {tail} bytes after its last record"
        return None


def open_warc(path: str | os.PathLike[str]) -> BinaryIO:
    """The WARC file at ``path``, open for reading, its last component not followed: a
    link, a FIFO or a device is an ``OSError`` naming what it is, like a missing file."""
    try:
        return open_regular(path)
    except Refused as exc:
        raise OSError(str(exc)) from None


@contextmanager
def walk_file(
    path: str | os.PathLike[str],
    *,
    payload: PayloadLimit | None = None,
    check_digests: bool = False,
) -> Iterator[RecordWalk]:
    """A :class:`RecordWalk` over the file at ``path``, opened without following a link
    (a link, a FIFO or a device is not a WARC file of the archive); a file that cannot be
    opened is a walk that failed before its first record."""
    try:
        fh = open_warc(path)
    except OSError as exc:
        with open(os.devnull, "rb") as empty:
            walk = RecordWalk(empty)
        walk.failure, walk.finished = exc, True
        yield walk
        return
    with fh:
        yield RecordWalk(fh, payload=payload, check_digests=check_digests)


def warc_defects(path: str | os.PathLike[str]) -> list[str]:
    """Every record of a file read to its end, its defects listed: a cut or unreadable
    file is named, never raised."""
    name = os.path.basename(path)
    with walk_file(path) as walk:
        problems = [f"{name} offset {r.offset}: {r.defect}" for r in walk if r.defect]
        stopped = walk.stopped(name)
    return problems + ([stopped] if stopped else [])


class NoRecord(EOFError):
    """Nothing at all at an offset (the end of the file, or past it)."""


def read_record_at(
    source: str | os.PathLike[str] | BinaryIO, offset: int, limit: int | PayloadLimit
) -> StoredRecord:
    """The record whose gzip member starts at ``offset`` of a file (a path, or a file
    already open), payload read up to ``limit`` bytes (or up to what ``limit`` says of the
    record, given its headers: None for no payload).

    Never more: a reader wanting headers only passes ``limit=0``; one that needs the whole
    body checks ``complete``. A body whose Content-Encoding cannot be undone is returned
    raw (``decoded=False``) rather than lost. Raises ``OSError``/``ValueError``/``EOFError``
    or warcio's ``ArchiveLoadFailed`` when nothing readable is there (``OSError`` too
    for a path that is a link or no regular file: it is not followed).
    """
    if isinstance(source, str | os.PathLike):
        with open_warc(source) as fh:
            return _read_at(fh, offset, limit, source)
    return _read_at(source, offset, limit, "the file")


def _read_at(fh: BinaryIO, offset: int, limit: int | PayloadLimit, where: object) -> StoredRecord:
    fh.seek(offset)
    record = next(iter(ArchiveIterator(fh)), None)
    if record is None:
        raise NoRecord(f"no record at offset {offset} of {where}")
    stored = _stored(record, offset)
    if not isinstance(limit, int):
        wanted = limit(stored)
        if wanted is None:
            return stored
        limit = wanted
    try:
        stored.payload, stored.complete = read_limited(record.content_stream(), limit)
    except DECODE_ERRORS:
        fh.seek(offset)
        record = next(iter(ArchiveIterator(fh)))
        stored.payload, stored.complete = read_limited(record.raw_stream, limit)
        stored.decoded = False
    return stored


def first_record(fh: BinaryIO) -> StoredRecord | None:
    """A file's first record, headers only (its ``warcinfo``, in a file of ours), or None
    if nothing readable starts it."""
    try:
        return read_record_at(fh, 0, 0)
    except EOFError:
        return None
