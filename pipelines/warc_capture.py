"""Raw WARC capture, hooked on Scrapy's ``response_downloaded`` signal.

That signal fires once per network fetch (redirect hops and retries included), before
any downloader middleware has decoded the body, and never for cache hits: it is the
one place where the exchange is still as it came off the wire. Each fetch becomes a
``response`` record, its ``request`` record (adjacent, ``WARC-Concurrent-To``) and a
``metadata`` record with the page's outlinks and fetch time.

Enable with the ``WARC_ENABLED`` setting (on by default in ``crawler.settings``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date

import crawler
from crawler.history import payload_digest, revisit_arguments, warcinfo_run_fields
from crawler.indexes import OutputLayout
from crawler.outlinks import page_outlinks
from crawler.state import crawl_state
from crawler.warcfiles import RecordLocation, RollingWarcWriter, make_record_builder

logger = logging.getLogger(__name__)

# Headers Twisted consumes or rewrites: the stored body is de-chunked, so describing
# it as chunked would make readers misparse it.
HOP_BY_HOP = {b"transfer-encoding", b"connection", b"keep-alive", b"content-length"}
SAFE_PREFIX = re.compile(r"[^A-Za-z0-9_.-]+")

HEADERS_NOTE = (
    "HTTP headers were reconstructed from the crawler's parsed response (Scrapy/Twisted), "
    "not copied from the wire: header case may differ, hop-by-hop headers are dropped, "
    "Content-Length equals the stored body, bodies are stored as received (still "
    "content-coded)."
)


# Sent by the spider for a fetch that failed (request=, reason=): the capture writes a
# metadata record, so the archive itself says what is missing and why.
fetch_failed = object()


@dataclass(frozen=True)
class CaptureResult:
    locations: list[RecordLocation]
    payload_digest: str
    warc_date: str
    record_type: str  # response | revisit


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


class WarcCapture:
    """Writes every downloaded exchange to rolling WARC files in ``WARC_DIR``."""

    def __init__(self, crawler_: Crawler) -> None:
        settings = crawler_.settings
        if not settings.getbool("WARC_ENABLED", True):
            raise NotConfigured
        name = settings.get("CRAWL_NAME", "autoblog")
        directory = settings.get("WARC_DIR") or OutputLayout(settings["OUTPUT_DIR"], name).archive
        self.crawler = crawler_
        self.stats = crawler_.stats
        self.write_error: str | None = None
        self.builder = make_record_builder()
        self.writer = RollingWarcWriter(
            directory=Path(directory),
            prefix=SAFE_PREFIX.sub("-", settings.get("WARC_PREFIX", name)),
            warcinfo=self._warcinfo(settings, name),
            max_size=settings.getint("WARC_MAX_SIZE", 1_000_000_000),
        )

    @classmethod
    def from_crawler(cls, crawler_: Crawler) -> WarcCapture:
        ext = cls(crawler_)
        crawler_.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler_.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        crawler_.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler_.signals.connect(ext.fetch_failed, signal=fetch_failed)
        return ext

    @staticmethod
    def _warcinfo(settings, name: str) -> dict[str, str]:
        return {
            "software": f"autoblog-archive/{crawler.__version__} (Scrapy, warcio)",
            "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
            "isPartOf": name,
            "robots": "obey" if settings.getbool("ROBOTSTXT_OBEY") else "ignore",
            "http-header-user-agent": settings.get("USER_AGENT", ""),
            "operator": settings.get("WARC_OPERATOR", "unknown operator"),
            "description": settings.get("WARC_DESCRIPTION", "Projet Autoblog farm crawl"),
            "note": HEADERS_NOTE,
        }

    def spider_opened(self, spider: Spider) -> None:
        state = crawl_state(self.crawler)
        if state is not None and state.run is not None:
            # Lets a rebuild from the WARCs alone regroup files by run (crawler.history).
            self.writer.warcinfo_fields.update(
                warcinfo_run_fields(state.run.id, state.run.started, state.run.mode)
            )

    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        if self.write_error is not None:
            # Responses already in flight when the crawl was stopped: not archived.
            self.stats.inc_value("warc/not_written_after_error")
            return
        try:
            result = self.capture(response, request)
        except OSError as exc:
            # A full disk must stop the crawl, not silently drop captures: said once.
            self.write_error = exc.strerror or str(exc)
            logger.error("WARC write failed (%s); stopping the crawl", self.write_error)
            self.stats.inc_value("warc/write_errors")
            self.stats.set_value("warc/write_error", self.write_error)
            self.crawler.engine.close_spider(spider, reason="warc_write_error")
            return
        request.meta["warc"] = result.locations[0].as_dict() | {
            "payload_digest": result.payload_digest,
            "http_status": response.status,
        }
        request.meta["warc_date"] = result.warc_date
        request.meta["warc_record_type"] = result.record_type

    def capture(self, response: Response, request: Request) -> CaptureResult:
        latency = float(request.meta.get("download_latency") or 0.0)
        # warcio formats naive UTC datetimes; an aware one would print "+00:00Z".
        started = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=latency)
        # Second precision: py-wacz (via warcio) overflows on fractional WARC-Dates.
        warc_date = datetime_to_iso_date(started, use_micros=False)
        digest = payload_digest(response.body)
        state = crawl_state(self.crawler)
        original = None
        # Revisits only for real content: not for cut bodies, empty bodies or 304s.
        if (
            state is not None
            and state.run is not None
            and state.has_earlier_captures
            and "dataloss" not in response.flags
            and response.body
            and response.status < 300
        ):
            original = state.history.find_original(response.url, digest)
        if original is not None:
            response_rec = self._revisit_record(response, warc_date, original)
        else:
            response_rec = self._response_record(response, warc_date, digest)
        response_id = response_rec.rec_headers.get_header("WARC-Record-ID")
        request_rec = self.builder.create_warc_record(
            response.url,
            "request",
            payload=BytesIO(request.body or b""),
            length=len(request.body or b""),
            http_headers=request_http_headers(request),
            warc_headers_dict={"WARC-Date": warc_date, "WARC-Concurrent-To": response_id},
        )
        metadata_rec = self._metadata_record(response, request, warc_date, response_id, latency)
        locations = self.writer.write_group([response_rec, request_rec, metadata_rec])
        result = CaptureResult(locations, digest, warc_date, response_rec.rec_type)
        self.stats.inc_value("warc/records", count=3)
        self.stats.inc_value(f"warc/{response_rec.rec_type}s")
        self.stats.inc_value("warc/payload_bytes", count=len(response.body))
        if state is not None and state.run is not None:
            # Recorded only once the group is on disk: the history never points at
            # records a crash lost.
            state.history.record_capture(
                url=response.url,
                run_id=state.run.id,
                warc_date=warc_date,
                status=response.status,
                payload_digest=digest,
                record_type=response_rec.rec_type,
                filename=locations[0].filename,
                offset=locations[0].offset,
                length=locations[0].length,
                record_id=response_id,
                refers_to=original.record_id if original else None,
                bytes_written=sum(loc.length for loc in locations),
            )
        return result

    def _response_record(self, response: Response, warc_date: str, digest: str) -> ArcWarcRecord:
        warc_headers = {"WARC-Date": warc_date, "WARC-Payload-Digest": digest}
        warc_headers.update(self._network_headers(response))
        if "dataloss" in response.flags:
            warc_headers["WARC-Truncated"] = "length"
            self.stats.inc_value("warc/truncated")
        return self.builder.create_warc_record(
            response.url,
            "response",
            payload=BytesIO(response.body),
            length=len(response.body),
            http_headers=response_http_headers(response),
            warc_headers_dict=warc_headers,
        )

    def _revisit_record(self, response: Response, warc_date: str, original) -> ArcWarcRecord:
        """Identical-payload-digest revisit: HTTP headers, no body, refers to the original."""
        kwargs, extra = revisit_arguments(original)
        headers = {"WARC-Date": warc_date, **extra, **self._network_headers(response)}
        return self.builder.create_revisit_record(
            response.url,
            http_headers=response_http_headers(response),
            warc_headers_dict=headers,
            **kwargs,
        )

    @staticmethod
    def _network_headers(response: Response) -> dict[str, str]:
        headers = {}
        if response.ip_address is not None:
            headers["WARC-IP-Address"] = str(response.ip_address)
        if response.protocol:
            headers["WARC-Protocol"] = response.protocol.lower()
        return headers

    def _metadata_record(
        self, response: Response, request: Request, warc_date: str, refers_to: str, latency: float
    ) -> ArcWarcRecord:
        lines = [f"fetchTimeMs: {int(latency * 1000)}"]
        referer = request.headers.get("Referer")
        if referer:
            lines.append(f"via: {referer.decode('latin-1')}")
        reason = request.meta.get("reason")
        if reason:
            lines.append(f"hopsFromSeed: {reason}")
        for link in page_outlinks(response):
            lines.append(f"outlink: {link}")
        payload = ("\r\n".join(lines) + "\r\n").encode("utf-8")
        return self.builder.create_warc_record(
            response.url,
            "metadata",
            payload=BytesIO(payload),
            length=len(payload),
            warc_content_type="application/warc-fields",
            warc_headers_dict={"WARC-Date": warc_date, "WARC-Concurrent-To": refers_to},
        )

    def fetch_failed(self, request: Request, reason: str) -> None:
        """A ``metadata`` record ``fetchError: <reason>`` for a fetch that failed: a body cut
        at the size bound leaves no response record, a bomb's response says nothing of it."""
        lines = [f"fetchError: {reason}"]
        if request.meta.get("reason"):
            lines.append(f"hopsFromSeed: {request.meta['reason']}")
        payload = ("\r\n".join(lines) + "\r\n").encode("utf-8")
        headers = {"WARC-Date": datetime_to_iso_date(datetime.now(UTC).replace(tzinfo=None))}
        captured = request.meta.get("warc")
        if captured:
            headers["WARC-Concurrent-To"] = captured["record_id"]
        record = self.builder.create_warc_record(
            request.url,
            "metadata",
            payload=BytesIO(payload),
            length=len(payload),
            warc_content_type="application/warc-fields",
            warc_headers_dict=headers,
        )
        try:
            self.writer.write_group([record])
        except OSError as exc:
            logger.error("WARC write failed (%s)", exc)
            self.stats.inc_value("warc/write_errors")
            return
        self.stats.inc_value("warc/records")

    def spider_closed(self, spider: Spider, reason: str) -> None:
        try:
            self.writer.close()
        except OSError as exc:
            # The .open file stays; the next run repairs it (crawler.recovery).
            logger.error("closing the WARC file failed (%s); the next run repairs it", exc)
        self.stats.set_value("warc/files", [p.name for p in self.writer.closed_files])
        # Each file starts with its warcinfo record: counted so totals match `verify`.
        self.stats.inc_value("warc/records", count=len(self.writer.closed_files))
