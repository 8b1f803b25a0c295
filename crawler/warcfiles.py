"""WARC files: naming, one gzip member per record, `.open` while written, size rollover.

Records are built with warcio (so headers and digests are what every reader expects),
serialised uncompressed, then gzipped here at level 6: warcio hard-codes level 9,
which costs ~40% more time for the same size. Writing each record as its own member
is what lets a reader seek straight to ``offset`` and lets recovery cut a file back
to its last complete record after a crash.
"""

from __future__ import annotations

import os
import socket
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from crawler.settings import DOWNLOAD_MAXSIZE

OPEN_SUFFIX = ".open"
DEFAULT_MAX_SIZE = 1_000_000_000
GZIP_LEVEL = 6
# What a reader of the archive takes of one payload at most (the crawl's own body bound).
READ_LIMIT = DOWNLOAD_MAXSIZE


@dataclass(frozen=True)
class RecordLocation:
    """Where a record landed: enough for a reader to jump straight to it."""

    filename: str
    offset: int
    length: int
    record_id: str

    def as_dict(self) -> dict[str, object]:
        return {
            "filename": self.filename,
            "offset": self.offset,
            "length": self.length,
            "record_id": self.record_id,
        }


def gzip_member(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """One complete gzip member (header, deflate stream, trailer), mtime 0."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def serialize_record(record: ArcWarcRecord) -> bytes:
    """The uncompressed bytes of one WARC record, digests computed by warcio."""
    buf = BytesIO()
    WARCWriter(buf, gzip=False, warc_version="WARC/1.1").write_record(record)
    return buf.getvalue()


def make_record_builder() -> WARCWriter:
    """A writer used only as a record factory (``create_warc_record`` and friends)."""
    return WARCWriter(BytesIO(), gzip=False, warc_version="WARC/1.1")


def warc_filename(prefix: str, serial: int, when: datetime | None = None) -> str:
    """``<prefix>-<YYYYMMDDhhmmssfff>-<serial:05d>-<host>-<pid>.warc.gz``."""
    when = when or datetime.now(UTC)
    stamp = when.strftime("%Y%m%d%H%M%S") + f"{when.microsecond // 1000:03d}"
    host = socket.gethostname().split(".")[0] or "localhost"
    return f"{prefix}-{stamp}-{serial:05d}-{host}-{os.getpid()}.warc.gz"


class RollingWarcWriter:
    """Appends groups of records to `.warc.gz` files in ``directory``, rolling over by size.

    A group (response + request + metadata) always lands in one file: the size check
    happens between groups. ``warcinfo`` is called for every new file so each file
    starts with its own ``warcinfo`` record.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        prefix: str,
        warcinfo: dict[str, str],
        max_size: int = DEFAULT_MAX_SIZE,
        fsync: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.warcinfo_fields = warcinfo
        self.max_size = max_size
        self.fsync = fsync
        self.serial = 0
        self.closed_files: list[Path] = []
        self._builder = make_record_builder()
        self._fh = None
        self._name: str | None = None
        self._size = 0

    @property
    def current_name(self) -> str | None:
        return self._name

    def _open(self) -> None:
        # Serial numbers continue after files already in the folder from earlier runs.
        self._name = warc_filename(self.prefix, self.serial)
        while (self.directory / self._name).exists() or (
            self.directory / (self._name + OPEN_SUFFIX)
        ).exists():
            self.serial += 1
            time.sleep(0.001)
            self._name = warc_filename(self.prefix, self.serial)
        self.serial += 1
        # Unbuffered: a failed write leaves nothing pending that a later close could flush.
        self._fh = open(self.directory / (self._name + OPEN_SUFFIX), "wb", buffering=0)
        self._size = 0
        info = self._builder.create_warcinfo_record(self._name, self.warcinfo_fields)
        # One date precision in the whole archive (seconds; see pipelines.warc_capture).
        info.rec_headers.replace_header(
            "WARC-Date", datetime_to_iso_date(datetime.now(UTC).replace(tzinfo=None))
        )
        try:
            self._append(info)
        except OSError:
            # Not even the warcinfo fits: leave no torn file behind.
            self._fh.close()
            (self.directory / (self._name + OPEN_SUFFIX)).unlink(missing_ok=True)
            self._fh, self._name = None, None
            raise

    def _append(self, record: ArcWarcRecord) -> RecordLocation:
        assert self._fh is not None and self._name is not None
        member = gzip_member(serialize_record(record))
        offset = self._size
        view = memoryview(member)
        while view:
            view = view[self._fh.write(view) :]
        self._size += len(member)
        return RecordLocation(
            filename=self._name,
            offset=offset,
            length=len(member),
            record_id=record.rec_headers.get_header("WARC-Record-ID"),
        )

    def write_group(self, records: list[ArcWarcRecord]) -> list[RecordLocation]:
        """Write records that belong together; flush so a crash loses at most this group."""
        if self._fh is None:
            self._open()
        assert self._fh is not None
        start = self._size
        try:
            locations = [self._append(r) for r in records]
        except OSError:
            # A full disk mid-group: cut the file back so it ends with a whole group.
            os.ftruncate(self._fh.fileno(), start)
            self._fh.seek(start)
            self._size = start
            raise
        if self._size >= self.max_size:
            self.close()
        return locations

    def close(self) -> Path | None:
        """Sync, then rename `<name>.open` to `<name>`: a closed name means a complete file."""
        if self._fh is None:
            return None
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        assert self._name is not None
        final = self.directory / self._name
        os.replace(self.directory / (self._name + OPEN_SUFFIX), final)
        self.closed_files.append(final)
        self._name = None
        return final


@dataclass(frozen=True)
class StoredRecord:
    """One record read back by its offset: what a corpus pointer or a CDXJ line leads to."""

    rec_type: str
    rec_headers: StatusAndHeaders
    http_headers: StatusAndHeaders | None
    payload: bytes  # Content-Encoding undone, unless ``decoded`` is False; at most ``limit``
    decoded: bool = True
    complete: bool = True  # False: the payload goes on past the limit (only a prefix is here)

    def header(self, name: str) -> str | None:
        return self.rec_headers.get_header(name)


def read_limited(stream, limit: int) -> tuple[bytes, bool]:
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


def unread_tail(path: str | os.PathLike[str], end: int) -> int:
    """Bytes of a file past ``end``, where its last record read whole stops. warcio stops
    without a word at a record whose headers were cut: a cut file shows up only here."""
    return max(0, os.path.getsize(path) - end)


def warc_defects(path: str | os.PathLike[str]) -> list[str]:
    """Every record of a file read to its end (raw, in bounded chunks), its defects listed:
    a cut or unreadable file is named, never raised."""
    name = Path(path).name
    problems: list[str] = []
    count = end = 0
    try:
        with open(path, "rb") as fh:
            it = ArchiveIterator(fh)
            for record in it:
                it.read_to_end(record)
                count += 1
                end = it.get_record_offset() + it.get_record_length()
                defect = record_defect(record)
                if defect:
                    problems.append(f"{name} offset {it.get_record_offset()}: {defect}")
    except Exception as exc:  # noqa: BLE001 - any damage is a finding, not a crash
        problems.append(f"{name}: unreadable after {count} records ({exc!r})")
    else:
        if unread_tail(path, end):
            problems.append(f"{name}: {unread_tail(path, end)} bytes after its last record")
    return problems


def read_record_at(
    path: str | os.PathLike[str], offset: int, limit: int = READ_LIMIT
) -> StoredRecord:
    """The record whose gzip member starts at ``offset``, payload read up to ``limit`` bytes.

    Never more: a reader wanting headers only passes ``limit=0``; one that needs the whole
    body checks ``complete``. A body whose Content-Encoding cannot be undone is returned
    raw (``decoded=False``) rather than lost. Raises ``OSError``/``ValueError``/``EOFError``
    or warcio's ``ArchiveLoadFailed`` when nothing readable is there.
    """
    with open(path, "rb") as fh:
        fh.seek(offset)
        record = next(iter(ArchiveIterator(fh)), None)
        if record is None:
            raise EOFError(f"no record at offset {offset} of {path}")
        try:
            payload, complete = read_limited(record.content_stream(), limit)
            decoded = True
        except (OSError, zlib.error, ValueError, EOFError):
            fh.seek(offset)
            record = next(iter(ArchiveIterator(fh)))
            payload, complete = read_limited(record.raw_stream, limit)
            decoded = False
        return StoredRecord(
            record.rec_type,
            record.rec_headers,
            record.http_headers,
            payload,
            decoded=decoded,
            complete=complete,
        )
