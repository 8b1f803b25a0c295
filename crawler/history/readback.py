"""Captures read back from WARC records: what the history stores of each, and the run
that wrote it (the ``warcinfo`` fields of :func:`crawler.history.model.warcinfo_run_fields`).

Every read goes through the WARC layer's bounded reader (:mod:`crawler.warc.reader`):
an HTML page's body only up to the body bound its caller passes (``read_limit``,
DOWNLOAD_MAXSIZE), to digest it and list its articles, a ``warcinfo``'s fields only up to
a megabyte, nothing of any other record.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes
from warcio.exceptions import ArchiveLoadFailed

from crawler.history.digests import page_digests
from crawler.history.model import (
    CAPTURE_TYPES,
    RUN_FIELD,
    RUN_MODE_FIELD,
    RUN_STARTED_FIELD,
    Capture,
)
from crawler.history.validate import MAX_ID, is_stamp
from crawler.layout import OutputLayout
from crawler.parsing import parse_page
from crawler.warc.reader import (
    NoRecord,
    PayloadLimit,
    RecordWalk,
    StoredRecord,
    open_warc,
    read_record_at,
)

logger = logging.getLogger(__name__)

READ_ERRORS = (ArchiveLoadFailed, OSError, EOFError, ValueError, zlib.error)


@dataclass
class FoundRecord:
    """A response/revisit read from a WARC file, with what the history stores about it."""

    url: str
    warc_date: str
    status: int | None
    payload_digest: str | None
    record_type: str
    filename: str
    offset: int
    length: int
    record_id: str
    refers_to: str | None
    page_digest: str | None
    articles: list[tuple[str, str]]
    run_key: str | None = None
    run_started: str | None = None
    run_mode: str | None = None
    directory: Path | None = None  # the archive folder, to find a revisit's original


def is_page(record: StoredRecord) -> bool:
    """An HTML page answered 200: what the history digests and lists the articles of."""
    if record.rec_type != "response" or record.status != 200 or not record.http_headers:
        return False
    return "html" in (record.http_headers.get_header("Content-Type") or "").lower()


def payload_limit(read_limit: int) -> PayloadLimit:
    """What of a record the history reads: a warcinfo's fields, an HTML page's body up to
    ``read_limit`` bytes (to digest and list its articles; Content-Encoding undone, a
    bounded prefix only: a stored bomb stays small), nothing of any other record."""

    def limit(record: StoredRecord) -> int | None:
        if record.rec_type == "warcinfo":
            return WARCINFO_READ_LIMIT
        return read_limit if is_page(record) else None

    return limit


def found_record(
    record: StoredRecord, path: Path, run: tuple[str | None, str | None, str | None]
) -> FoundRecord:
    """What the history keeps of a response or revisit record read back; ValueError when
    it lacks what every capture has (a target URI, a date, a record id)."""
    headers = record.rec_headers
    url, date, record_id = record.target_uri, record.header("WARC-Date"), record.record_id
    if not (url and date and record_id):
        raise ValueError("no target URI, date or record id")
    digest: str | None = None
    articles: list[tuple[str, str]] = []
    if is_page(record):
        body = record.payload
        if not record.decoded:
            logger.warning("history: cannot decode %s", url)
            body = b""
        elif not record.complete:
            # The payload read is the bound: a prefix of exactly that many bytes.
            logger.warning("history: %s larger than %d bytes, not parsed", url, len(body))
            body = b""
        if body:
            page = parse_page(body, url)
            digest, blocks = page_digests(page)
            if digest is not None and page.kind in ("index", "article"):
                articles = blocks
    return FoundRecord(
        url=url,
        warc_date=date,
        status=record.status,
        payload_digest=headers.get_header("WARC-Payload-Digest"),
        record_type=record.rec_type,
        filename=path.name,
        offset=record.offset,
        length=record.length or 0,
        record_id=record_id,
        refers_to=headers.get_header("WARC-Refers-To"),
        page_digest=digest,
        articles=articles,
        run_key=run[0],
        run_started=run[1],
        run_mode=run[2],
        directory=path.parent,
    )


WARCINFO_READ_LIMIT = 1 << 20


def _warcinfo_fields(record: StoredRecord) -> dict[str, str]:
    text = record.payload.decode("utf-8", errors="replace")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def first_warcinfo(path: Path) -> dict[str, str] | None:
    """The fields of the ``warcinfo`` record that starts a WARC file (read bounded), or
    None if the file starts with another record. Raises :data:`READ_ERRORS`."""
    first = read_record_at(path, 0, payload_limit(0))  # a page's body: not read at all
    return _warcinfo_fields(first) if first.rec_type == "warcinfo" else None


def _run_info(fields: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    return fields.get(RUN_FIELD), fields.get(RUN_STARTED_FIELD), fields.get(RUN_MODE_FIELD)


def iter_warc_captures(path: Path, start: int, read_limit: int) -> Iterator[FoundRecord]:
    """Response/revisit records of one WARC from byte ``start``, with offsets and lengths
    (a page's body read up to ``read_limit`` bytes)."""
    run: tuple[str | None, str | None, str | None] = (None, None, None)
    with open_warc(path) as fh:
        fh.seek(start)
        walk = RecordWalk(fh, payload=payload_limit(read_limit))
        for record in walk:
            if record.rec_type == "warcinfo":
                run = _run_info(_warcinfo_fields(record))
            elif record.rec_type in CAPTURE_TYPES:
                yield found_record(record, path, run)
        if walk.failure is not None:
            logger.warning(
                "history: %s unreadable after offset %s (%s)", path.name, start, walk.failure
            )


def cdxj_entries(layout: OutputLayout) -> dict[str, list[tuple[int, int]]]:
    """(offset, length) of every CDXJ line, grouped by file: the index drives the rebuild."""
    by_file: dict[str, list[tuple[int, int]]] = {}
    if not layout.cdxj.exists():
        return by_file
    with open(layout.cdxj, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.rstrip("\n").split(" ", 2)
            try:
                fields = json.loads(parts[2])
                if fields.get("mime") in ("application/warc-fields",):
                    continue
                entry = (int(fields["offset"]), int(fields["length"]))
                if entry[0] < 0 or entry[1] < 1:
                    continue
                by_file.setdefault(str(fields["filename"]), []).append(entry)
            except (IndexError, ValueError, KeyError, TypeError, AttributeError):
                continue  # a damaged index line: `verify` reports it
    for entries in by_file.values():
        entries.sort()
    return by_file


def read_captures_at(
    path: Path, entries: list[tuple[int, int]], problems: list[str], read_limit: int
) -> Iterator[FoundRecord]:
    """The capture at each CDXJ offset, with the file's warcinfo run (a page's body read up
    to ``read_limit`` bytes); an unreadable record is noted in ``problems`` and skipped,
    and the rest of the file is still read."""
    run: tuple[str | None, str | None, str | None] = (None, None, None)
    try:
        run = _run_info(first_warcinfo(path) or {})
    except READ_ERRORS as exc:
        problems.append(f"{path.name}: warcinfo unreadable ({exc}), run taken from the name")
    with open_warc(path) as fh:
        for offset, length in entries:
            try:
                record = read_record_at(fh, offset, payload_limit(read_limit))
                if record.rec_type not in CAPTURE_TYPES:
                    continue
                record.length = length
                found = found_record(record, path, run)
                if not is_stamp(found.warc_date):
                    raise ValueError(f"WARC-Date {found.warc_date[:80]!r} is not an ISO date")
                if found.status is not None and not 0 <= found.status < MAX_ID:
                    found.status = None  # a status line no server sends: not a number to keep
            except NoRecord:
                continue  # an index line past the end of its file
            except READ_ERRORS as exc:
                problems.append(f"{path.name} offset {offset}: unreadable record skipped ({exc})")
                continue
            yield found


def validators_at(path: Path, offset: int) -> dict[str, str]:
    """Conditional-GET headers (``If-None-Match``, ``If-Modified-Since``) from the ETag and
    Last-Modified of the response record at ``offset``; none when it cannot be read."""
    try:
        record = read_record_at(path, offset, limit=0)
    except (OSError, ValueError, EOFError):
        return {}
    http = record.http_headers
    if http is None:
        return {}
    headers = {}
    if etag := http.get_header("ETag"):
        headers["If-None-Match"] = etag
    if modified := http.get_header("Last-Modified"):
        headers["If-Modified-Since"] = modified
    return headers


def read_response(path: Path, capture: Capture, request: Request, limit: int) -> Response | None:
    """The Scrapy response stored at ``capture`` (body decoded, as Scrapy would give it,
    up to ``limit`` bytes: DOWNLOAD_MAXSIZE)."""
    try:
        record = read_record_at(path, capture.offset, limit)
    except (OSError, ValueError, EOFError) as exc:
        logger.warning("cannot read back %s from %s (%s); fetching again", request.url, path, exc)
        return None
    if not record.complete:
        # A stored body past the bound (a compressed bomb): already archived, never inflated.
        raise IgnoreRequest(f"stored body larger than {limit} bytes: {request.url}")
    body = record.payload
    pairs = record.http_headers.headers if record.http_headers else []
    headers = Headers()
    for name, value in pairs:
        if name.lower() not in ("content-encoding", "content-length", "transfer-encoding"):
            headers.appendlist(name, value)
    cls = responsetypes.from_args(headers=headers, url=request.url, body=body)
    return cls(
        url=request.url,
        status=capture.status or 200,
        headers=headers,
        body=body,
        request=request,
        flags=["archived"],
    )
