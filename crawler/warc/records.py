"""The records of one capture, built with warcio's ``RecordBuilder`` from what was fetched.

Each network fetch becomes a ``response`` record (or an identical-payload-digest
``revisit`` when an earlier run stored the same payload), its ``request`` record
(``WARC-Concurrent-To``) and a ``metadata`` record with the page's outlinks and fetch
time. A fetch that failed gets a ``metadata`` record ``fetchError: <reason>``, so the
archive itself says what is missing and why.

The exchange is described by what it is (:class:`HttpResponse`, :class:`HttpRequest`,
:class:`Original`), not by whose object it is: Scrapy's requests and responses and the
history's captures fit, and nothing here imports either (pipelines.warc_capture adapts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from io import BytesIO
from typing import Protocol
from urllib.parse import urlsplit

from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date

from crawler.warc.writer import make_record_builder

# Headers Twisted consumes or rewrites: the stored body is de-chunked, so describing
# it as chunked would make readers misparse it.
HOP_BY_HOP = {b"transfer-encoding", b"connection", b"keep-alive", b"content-length"}

HEADERS_NOTE = (
    "HTTP headers were reconstructed from the crawler's parsed response (Scrapy/Twisted), "
    "not copied from the wire: header case may differ, hop-by-hop headers are dropped, "
    "Content-Length equals the stored body, bodies are stored as received (still "
    "content-coded)."
)


class Headers(Protocol):
    """HTTP headers as Scrapy keeps them: every value of each name, as bytes."""

    def items(self) -> Iterable[tuple[bytes, list[bytes]]]:
        """Each header name with its values."""


class HttpResponse(Protocol):
    """What a response record is made of (a ``scrapy.http.Response`` is one); read-only,
    as Scrapy's ``url`` and ``body`` are."""

    @property
    def url(self) -> str:
        """The URL."""

    @property
    def status(self) -> int:
        """The HTTP status code."""

    @property
    def headers(self) -> Headers:
        """The response headers."""

    @property
    def body(self) -> bytes:
        """The body, as received."""

    @property
    def ip_address(self) -> object | None:
        """The server's IP address, if known."""

    @property
    def protocol(self) -> str | None:
        """The HTTP version, if known."""


class HttpRequest(Protocol):
    """What a request record is made of (a ``scrapy.Request`` is one); read-only."""

    @property
    def url(self) -> str:
        """The URL."""

    @property
    def method(self) -> str:
        """The HTTP method."""

    @property
    def headers(self) -> Headers:
        """The request headers."""

    @property
    def body(self) -> bytes:
        """The request body."""


class Original(Protocol):
    """The earlier capture a revisit refers to (a history capture is one); read only."""

    @property
    def url(self) -> str:
        """The original's target URI."""

    @property
    def warc_date(self) -> str:
        """The original's WARC-Date."""

    @property
    def record_id(self) -> str:
        """The original's WARC-Record-ID."""

    @property
    def payload_digest(self) -> str | None:
        """The payload digest both records share."""


@dataclass(frozen=True)
class FetchNotes:
    """What a page's metadata record says beside its fetch time, read from the crawl."""

    via: str | None = None  # the Referer the request was sent with
    hops: str | None = None  # why it was asked for (hopsFromSeed)
    outlinks: tuple[str, ...] = ()
    outlinks_cut: bool = False  # only the first ``max_outlinks`` are listed


def status_line(status: int) -> str:
    """An HTTP status line's code and phrase."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def response_http_headers(response: HttpResponse) -> StatusAndHeaders:
    """Status line + every header value (``getlist``), hop-by-hop ones dropped."""
    headers: list[tuple[str, str]] = []
    for name, values in response.headers.items():
        if name.lower() in HOP_BY_HOP:
            continue
        for value in values:
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
    headers.append(("Content-Length", str(len(response.body))))
    return StatusAndHeaders(status_line(response.status), headers, protocol="HTTP/1.1")


def request_http_headers(request: HttpRequest) -> StatusAndHeaders:
    """The real request line (path and query string) with a ``Host`` header first."""
    parts = urlsplit(request.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [("Host", parts.netloc)]
    for name, values in request.headers.items():
        for value in values:
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
    return StatusAndHeaders(f"{request.method} {target} HTTP/1.1", headers, is_http_request=True)


def revisit_arguments(original: Original) -> tuple[dict[str, str], dict[str, str]]:
    """(keyword arguments, extra WARC headers) for warcio's ``create_revisit_record``.

    The identical-payload-digest profile: same digest, ``WARC-Refers-To`` the original's
    record id, ``-Target-URI`` and ``-Date`` its URL and date (pywb needs all three).
    """
    assert original.payload_digest, "a revisit needs the original's payload digest"
    kwargs = {
        "digest": original.payload_digest,
        "refers_to_uri": original.url,
        "refers_to_date": original.warc_date,
    }
    return kwargs, {"WARC-Refers-To": original.record_id}


def warc_date_now(seconds_ago: float = 0.0) -> str:
    """A WARC-Date, second precision (py-wacz, via warcio, overflows on fractions);
    from a naive UTC datetime (warcio would print an aware one as "+00:00Z")."""
    when = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=seconds_ago)
    stamp: str = datetime_to_iso_date(when, use_micros=False)  # warcio is untyped
    return stamp


def _fields_payload(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


class CaptureRecords:
    """Builds the records of captures; holds nothing but warcio's record builder."""

    def __init__(self, max_outlinks: int = 0) -> None:
        self.builder = make_record_builder()
        self.max_outlinks = max_outlinks  # 0: all of a page's

    def response(
        self, response: HttpResponse, warc_date: str, digest: str, truncated: bool
    ) -> ArcWarcRecord:
        """The response record (WARC-Truncated when the body was cut)."""
        warc_headers = {"WARC-Date": warc_date, "WARC-Payload-Digest": digest}
        warc_headers.update(self._network_headers(response))
        if truncated:
            warc_headers["WARC-Truncated"] = "length"
        return self.builder.create_warc_record(
            response.url,
            "response",
            payload=BytesIO(response.body),
            length=len(response.body),
            http_headers=response_http_headers(response),
            warc_headers_dict=warc_headers,
        )

    def revisit(self, response: HttpResponse, warc_date: str, original: Original) -> ArcWarcRecord:
        """Identical-payload-digest revisit: HTTP headers, no body, refers to the original."""
        kwargs, extra = revisit_arguments(original)
        headers = {"WARC-Date": warc_date, **extra, **self._network_headers(response)}
        return self.builder.create_revisit_record(
            response.url,
            http_headers=response_http_headers(response),
            warc_headers_dict=headers,
            **kwargs,
        )

    def request(
        self, request: HttpRequest, url: str, warc_date: str, concurrent_to: str
    ) -> ArcWarcRecord:
        """The request record, concurrent to the response."""
        return self.builder.create_warc_record(
            url,
            "request",
            payload=BytesIO(request.body or b""),
            length=len(request.body or b""),
            http_headers=request_http_headers(request),
            warc_headers_dict={"WARC-Date": warc_date, "WARC-Concurrent-To": concurrent_to},
        )

    def metadata(
        self, url: str, warc_date: str, refers_to: str, latency: float, notes: FetchNotes
    ) -> ArcWarcRecord:
        """The metadata record: fetch time, via, hops, outlinks."""
        lines = [f"fetchTimeMs: {int(latency * 1000)}"]
        if notes.via:
            lines.append(f"via: {notes.via}")
        if notes.hops:
            lines.append(f"hopsFromSeed: {notes.hops}")
        lines.extend(f"outlink: {link}" for link in notes.outlinks)
        if notes.outlinks_cut:
            lines.append(f"outlinksCut: only the first {self.max_outlinks} are listed")
        return self._fields(url, {"WARC-Date": warc_date, "WARC-Concurrent-To": refers_to}, lines)

    def fetch_error(
        self, url: str, reason: str, hops: str | None, concurrent_to: str | None
    ) -> ArcWarcRecord:
        """``fetchError: <reason>``: a body cut at the size bound leaves no response
        record, a bomb's response says nothing of it."""
        lines = [f"fetchError: {reason}"]
        if hops:
            lines.append(f"hopsFromSeed: {hops}")
        headers = {"WARC-Date": warc_date_now()}
        if concurrent_to:
            headers["WARC-Concurrent-To"] = concurrent_to
        return self._fields(url, headers, lines)

    def _fields(self, url: str, headers: dict[str, str], lines: list[str]) -> ArcWarcRecord:
        payload = _fields_payload(lines)
        return self.builder.create_warc_record(
            url,
            "metadata",
            payload=BytesIO(payload),
            length=len(payload),
            warc_content_type="application/warc-fields",
            warc_headers_dict=headers,
        )

    @staticmethod
    def _network_headers(response: HttpResponse) -> dict[str, str]:
        headers = {}
        if response.ip_address is not None:
            headers["WARC-IP-Address"] = str(response.ip_address)
        if response.protocol:
            headers["WARC-Protocol"] = response.protocol.lower()
        return headers
