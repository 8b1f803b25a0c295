"""WARC files: naming, one gzip member per record, `.open` while written, size rollover.

Records are built with warcio (so headers and digests are what every reader expects),
serialised uncompressed, then gzipped here: with ISA-L (python-isal) at its level 2 when
installed, about 8x faster than zlib's level 6 for files ~8% larger, else with zlib at
level 6 (warcio hard-codes level 9, ~40% slower again for the same size). Either is a
standard gzip member; the digests are of the uncompressed record. Writing each record
as its own member is what lets a reader seek straight to ``offset`` and lets recovery
cut a file back to its last complete record after a crash.
"""

from __future__ import annotations

import os
import time
import zlib
from datetime import UTC, datetime
from io import BytesIO, FileIO
from pathlib import Path
from types import ModuleType
from typing import Protocol

from warcio.recordbuilder import RecordBuilder
from warcio.recordloader import ArcWarcRecord
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from crawler.warc import WarcPointer
from crawler.warc.names import OPEN_SUFFIX, warc_filename


def _deflate() -> tuple[ModuleType, int]:
    """ISA-L's zlib-compatible module and its level, or zlib's if it is not installed."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib, 6
    return isal_zlib, 2


DEFLATE, GZIP_LEVEL = _deflate()


def gzip_member(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """One complete gzip member (header, deflate stream, trailer), mtime 0."""
    compressor = DEFLATE.compressobj(level, DEFLATE.DEFLATED, 31)
    member: bytes = compressor.compress(data) + compressor.flush()
    return member


def serialize_record(record: ArcWarcRecord) -> bytes:
    """The uncompressed bytes of one WARC record, digests computed by warcio."""
    buf = BytesIO()
    WARCWriter(buf, gzip=False, warc_version="WARC/1.1").write_record(record)
    return buf.getvalue()


def make_record_builder() -> RecordBuilder:
    """warcio's record factory (``create_warc_record`` and friends), WARC/1.1."""
    return RecordBuilder(warc_version="WARC/1.1")


class RecordObserver(Protocol):
    """Told of each record as written and of each file once closed whole (the capture-time
    index, :class:`crawler.warc.cdxj.CaptureIndex`)."""

    def written(self, record: ArcWarcRecord, data: bytes, pointer: WarcPointer) -> None:
        """A record was written at ``pointer``."""

    def closed(self, name: str) -> None:
        """The file ``name`` was closed."""

    def finish(self) -> None:
        """The writer is done."""


class RollingWarcWriter:
    """Appends groups of records to `.warc.gz` files in ``directory``, rolling over by size.

    A group (response + request + metadata) always lands in one file: the size check
    (``max_size``, the ``WARC_MAX_SIZE`` setting) happens between groups. ``warcinfo`` is
    called for every new file so each file starts with its own ``warcinfo`` record.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        prefix: str,
        warcinfo: dict[str, str],
        max_size: int,
        fsync: bool = True,
        observer: RecordObserver | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.observer = observer
        # Records written but not yet told to the observer: a group cut back on a full
        # disk must not leave index lines pointing past the end of its file.
        self._unannounced: list[tuple[ArcWarcRecord, bytes, WarcPointer]] = []
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.warcinfo_fields = warcinfo
        self.max_size = max_size
        self.fsync = fsync
        self.serial = 0
        self.closed_files: list[Path] = []
        self._builder = make_record_builder()
        self._fh: FileIO | None = None
        self._name: str | None = None
        self._size = 0

    @property
    def current_name(self) -> str | None:
        """The name of the file being written, or None."""
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
            self._unannounced.clear()
            self._fh.close()
            (self.directory / (self._name + OPEN_SUFFIX)).unlink(missing_ok=True)
            self._fh, self._name = None, None
            raise
        self._announce()

    def _append(self, record: ArcWarcRecord) -> WarcPointer:
        assert self._fh is not None and self._name is not None
        data = serialize_record(record)
        member = gzip_member(data)
        offset = self._size
        view = memoryview(member)
        while view:
            view = view[self._fh.write(view) :]
        self._size += len(member)
        pointer = WarcPointer(
            filename=self._name,
            offset=offset,
            length=len(member),
            record_id=record.rec_headers.get_header("WARC-Record-ID"),
        )
        self._unannounced.append((record, data, pointer))
        return pointer

    def _announce(self) -> None:
        """Tell the observer of the records just written, once they are sure to stay."""
        if self.observer is not None:
            for record, data, pointer in self._unannounced:
                self.observer.written(record, data, pointer)
        self._unannounced.clear()

    def write_group(self, records: list[ArcWarcRecord]) -> list[WarcPointer]:
        """Write records that belong together; flush so a crash loses at most this group."""
        if self._fh is None:
            self._open()
        assert self._fh is not None
        start = self._size
        try:
            locations = [self._append(r) for r in records]
        except OSError:
            # A full disk mid-group: cut the file back so it ends with a whole group.
            self._unannounced.clear()
            os.ftruncate(self._fh.fileno(), start)
            self._fh.seek(start)
            self._size = start
            raise
        self._announce()
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
        if self.observer is not None:
            self.observer.closed(self._name)
        self._name = None
        return final
