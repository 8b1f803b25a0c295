"""Reading the archive back: one record by its offset, or every record of a file.

Every read is bounded (``READ_LIMIT``, the crawl's own body bound): content from a farm is
hostile, and a compressed bomb stored in a WARC must never be inflated whole.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders

from crawler.settings import DOWNLOAD_MAXSIZE

# What a reader of the archive takes of one payload at most (the crawl's own body bound).
READ_LIMIT = DOWNLOAD_MAXSIZE


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
