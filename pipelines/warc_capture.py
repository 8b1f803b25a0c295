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
from crawler.indexes import OutputLayout
from crawler.outlinks import page_outlinks
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
        self.builder = make_record_builder()
        self.writer = RollingWarcWriter(
            directory=Path(directory),
            prefix=SAFE_PREFIX.sub("-", settings.get("WARC_PREFIX", name)),
            warcinfo=self._warcinfo(settings, name),
            max_size=settings.getint("WARC_MAX_SIZE", 1_000_000_000),
        )
        self.on_capture: list = []

    @classmethod
    def from_crawler(cls, crawler_: Crawler) -> WarcCapture:
        ext = cls(crawler_)
        crawler_.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        crawler_.signals.connect(ext.spider_closed, signal=signals.spider_closed)
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

    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        try:
            locations = self.capture(response, request)
        except OSError as exc:
            # A full disk must stop the crawl, not silently drop captures.
            logger.error("WARC write failed (%s); stopping the crawl", exc)
            self.stats.inc_value("warc/write_errors")
            self.crawler.engine.close_spider(spider, reason="warc_write_error")
            return
        request.meta["warc"] = locations[0].as_dict() | {
            "payload_digest": self._last_payload_digest,
            "http_status": response.status,
        }
        request.meta["warc_date"] = self._last_warc_date
        for callback in self.on_capture:
            callback(response, request, locations[0])

    def capture(self, response: Response, request: Request) -> list[RecordLocation]:
        latency = float(request.meta.get("download_latency") or 0.0)
        # warcio formats naive UTC datetimes; an aware one would print "+00:00Z".
        started = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=latency)
        # Second precision: py-wacz (via warcio) overflows on fractional WARC-Dates.
        warc_date = datetime_to_iso_date(started, use_micros=False)
        response_rec = self._response_record(response, warc_date)
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
        self._last_payload_digest = response_rec.rec_headers.get_header("WARC-Payload-Digest")
        self._last_warc_date = warc_date
        self.stats.inc_value("warc/records", count=3)
        self.stats.inc_value("warc/responses")
        self.stats.inc_value("warc/payload_bytes", count=len(response.body))
        return locations

    def _response_record(self, response: Response, warc_date: str) -> ArcWarcRecord:
        warc_headers = {"WARC-Date": warc_date}
        if response.ip_address is not None:
            warc_headers["WARC-IP-Address"] = str(response.ip_address)
        if response.protocol:
            warc_headers["WARC-Protocol"] = response.protocol.lower()
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

    def spider_closed(self, spider: Spider, reason: str) -> None:
        self.writer.close()
        self.stats.set_value("warc/files", [p.name for p in self.writer.closed_files])
