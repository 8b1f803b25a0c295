"""The records of one capture, built with warcio's ``RecordBuilder`` from what Scrapy fetched.

Each network fetch becomes a ``response`` record (or an identical-payload-digest
``revisit`` when an earlier run stored the same payload), its ``request`` record
(``WARC-Concurrent-To``) and a ``metadata`` record with the page's outlinks and fetch
time. A fetch that failed gets a ``metadata`` record ``fetchError: <reason>``, so the
archive itself says what is missing and why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from io import BytesIO
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.http import Response
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date

from crawler.history.model import Capture
from crawler.items import REASON_KEY
from crawler.outlinks import page_outlinks
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


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def response_http_headers(response: Response) -> StatusAndHeaders:
    """Status line + every header value (``getlist``), hop-by-hop ones dropped."""
    headers: list[tuple[str, str]] = []
    for name, values in response.headers.items():
        if name.lower() in HOP_BY_HOP:
            continue
        for value in values:
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
    headers.append(("Content-Length", str(len(response.body))))
    return StatusAndHeaders(status_line(response.status), headers, protocol="HTTP/1.1")


def request_http_headers(request: Request) -> StatusAndHeaders:
    """The real request line (path and query string) with a ``Host`` header first."""
    parts = urlsplit(request.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [("Host", parts.netloc)]
    for name, values in request.headers.items():
        for value in values:
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
    return StatusAndHeaders(f"{request.method} {target} HTTP/1.1", headers, is_http_request=True)


def revisit_arguments(original: Capture) -> tuple[dict[str, str], dict[str, str]]:
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
    return datetime_to_iso_date(when, use_micros=False)


def _fields_payload(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


class CaptureRecords:
    """Builds the records of captures; holds nothing but warcio's record builder."""

    def __init__(self, max_outlinks: int = 0) -> None:
        self.builder = make_record_builder()
        self.max_outlinks = max_outlinks  # 0: all of a page's

    def response(
        self, response: Response, warc_date: str, digest: str, truncated: bool
    ) -> ArcWarcRecord:
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

    def revisit(self, response: Response, warc_date: str, original: Capture) -> ArcWarcRecord:
        """Identical-payload-digest revisit: HTTP headers, no body, refers to the original."""
        kwargs, extra = revisit_arguments(original)
        headers = {"WARC-Date": warc_date, **extra, **self._network_headers(response)}
        return self.builder.create_revisit_record(
            response.url,
            http_headers=response_http_headers(response),
            warc_headers_dict=headers,
            **kwargs,
        )

    def request(self, request: Request, url: str, warc_date: str, concurrent_to: str):
        return self.builder.create_warc_record(
            url,
            "request",
            payload=BytesIO(request.body or b""),
            length=len(request.body or b""),
            http_headers=request_http_headers(request),
            warc_headers_dict={"WARC-Date": warc_date, "WARC-Concurrent-To": concurrent_to},
        )

    def metadata(
        self, response: Response, request: Request, warc_date: str, refers_to: str, latency: float
    ) -> ArcWarcRecord:
        lines = [f"fetchTimeMs: {int(latency * 1000)}"]
        referer = request.headers.get("Referer")
        if referer:
            lines.append(f"via: {referer.decode('latin-1')}")
        reason = request.meta.get(REASON_KEY)
        if reason:
            lines.append(f"hopsFromSeed: {reason}")
        links, cut = page_outlinks(response, self.max_outlinks)
        lines.extend(f"outlink: {link}" for link in links)
        if cut:
            lines.append(f"outlinksCut: only the first {self.max_outlinks} are listed")
        return self._fields(
            response.url, {"WARC-Date": warc_date, "WARC-Concurrent-To": refers_to}, lines
        )

    def fetch_error(self, request: Request, reason: str, concurrent_to: str | None):
        """``fetchError: <reason>``: a body cut at the size bound leaves no response
        record, a bomb's response says nothing of it."""
        lines = [f"fetchError: {reason}"]
        if request.meta.get(REASON_KEY):
            lines.append(f"hopsFromSeed: {request.meta[REASON_KEY]}")
        headers = {"WARC-Date": warc_date_now()}
        if concurrent_to:
            headers["WARC-Concurrent-To"] = concurrent_to
        return self._fields(request.url, headers, lines)

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
    def _network_headers(response: Response) -> dict[str, str]:
        headers = {}
        if response.ip_address is not None:
            headers["WARC-IP-Address"] = str(response.ip_address)
        if response.protocol:
            headers["WARC-Protocol"] = response.protocol.lower()
        return headers
