"""Raw WARC capture, hooked on Scrapy's ``response_downloaded`` signal: the one writer of
the WARC files.

That signal fires once per network fetch (redirect hops and retries included), before
any downloader middleware has decoded the body, and never for cache hits: it is the
one place where the exchange is still as it came off the wire. Where each fetch landed
travels on with the request as a :class:`crawler.items.Captured` under
``request.meta[CAPTURE_KEY]``; the history learns of it through
:meth:`crawler.history.service.HistoryService.record_capture` (the service the crawl
hands it).

Scrapy calls this an extension; it lives here because capture is the first pipeline
stage of the archive. Enable with ``WARC_ENABLED`` (on in ``crawler.settings``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

import crawler
from crawler.context import Politeness, RunContext, WarcOptions
from crawler.counters import Stat
from crawler.history.digests import payload_digest
from crawler.history.model import warcinfo_run_fields
from crawler.history.service import HistoryService
from crawler.items import (
    CAPTURE_KEY,
    REASON_KEY,
    Captured,
    RunInfo,
    captured_of,
    fetch_failed,
    run_started,
    warc_files_closed,
)
from crawler.outcome import Finish
from crawler.outlinks import page_outlinks
from crawler.services import RunResults, history_of, results_of
from crawler.warc.cdxj import CaptureIndex
from crawler.warc.records import HEADERS_NOTE, CaptureRecords, FetchNotes, warc_date_now
from crawler.warc.writer import RollingWarcWriter

logger = logging.getLogger(__name__)

SAFE_PREFIX = re.compile(r"[^A-Za-z0-9_.-]+")


def warcinfo_fields(warc: WarcOptions, politeness: Politeness, name: str) -> dict[str, str]:
    """What every WARC file of the crawl says about itself in its ``warcinfo`` record."""
    return {
        "software": f"autoblog-archive/{crawler.__version__} (Scrapy, warcio)",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "isPartOf": name,
        "robots": "obey" if politeness.obey_robots else "ignore",
        "http-header-user-agent": politeness.user_agent,
        "operator": warc.operator,
        "description": warc.description,
        "note": HEADERS_NOTE,
    }


def cut_short(response: Response) -> bool:
    """The body is not the whole of what the server sent: the connection was lost, or
    the download was stopped on purpose (robots.txt past ROBOTSTXT_MAX_SIZE) before the
    end the server announced (or before any announced end)."""
    if "dataloss" in response.flags:
        return True
    if "download_stopped" not in response.flags:
        return False
    length = response.headers.get(b"Content-Length")
    return length is None or length != str(len(response.body)).encode()


class WarcCapture:
    """Writes every downloaded exchange to rolling WARC files of the collection."""

    def __init__(self, writer: RollingWarcWriter, max_outlinks: int, stats=None) -> None:
        self.writer = writer
        self.stats = stats
        self.records = CaptureRecords(max_outlinks)
        self.max_outlinks = max_outlinks  # 0: all of a page's
        self.state: HistoryService | None = None  # the history, if the crawl keeps one
        self.crawler: Crawler | None = None
        self.captured = 0  # response and revisit records written
        self.write_error: str | None = None
        self.results: RunResults | None = None  # the files closed, the error, for the summary

    @classmethod
    def from_crawler(cls, crawler_: Crawler) -> WarcCapture:
        """Build it from the run context (NotConfigured without WARCs)."""
        context = RunContext.of(crawler_)
        warc = context.warc
        if not warc.enabled:
            raise NotConfigured
        layout = context.layout
        writer = RollingWarcWriter(
            directory=layout.archive,
            prefix=SAFE_PREFIX.sub("-", warc.prefix or layout.name),
            warcinfo=warcinfo_fields(warc, context.politeness, layout.name),
            max_size=warc.max_size,
            observer=CaptureIndex(layout.capture_index),
        )
        # A page's metadata record lists as many outlinks as the spider may follow from it.
        ext = cls(writer, context.bounds.links_per_page, crawler_.stats)
        ext.crawler = crawler_
        ext.results = results_of(crawler_)
        ext.results.warc_files = writer.closed_files  # the writer's list, as it grows
        crawler_.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler_.signals.connect(ext.run_started, signal=run_started)
        crawler_.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        crawler_.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler_.signals.connect(ext.fetch_failed, signal=fetch_failed)
        return ext

    @property
    def closed_files(self) -> list[Path]:
        """The WARC files this crawl wrote and closed, in order."""
        return list(self.writer.closed_files)

    def _count(self, key: Stat, value: int = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(key, count=value)

    def spider_opened(self, spider: Spider) -> None:
        """Take the crawl's history service (opened by then, if the crawl keeps one)."""
        if self.crawler is not None:
            self.state = history_of(self.crawler)

    def run_started(self, run: RunInfo) -> None:
        """Name the run in the next files' warcinfo."""
        # Lets a rebuild from the WARCs alone regroup files by run (crawler.history.rebuild).
        fields = warcinfo_run_fields(run.warcinfo_id, run.started, run.mode)
        self.writer.warcinfo_fields.update(fields)

    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        """Write the response's records to the WARC files."""
        if self.write_error is not None:
            # Responses already in flight when the crawl was stopped: not archived.
            self._count(Stat.NOT_WRITTEN_AFTER_ERROR)
            return
        try:
            request.meta[CAPTURE_KEY] = self.capture(response, request)
        except OSError as exc:
            # A full disk must stop the crawl, not silently drop captures: said once.
            self.write_error = exc.strerror or str(exc)
            if self.results is not None:
                self.results.warc_write_error = self.write_error
            logger.error("WARC write failed (%s); stopping the crawl", self.write_error)
            self._count(Stat.WARC_WRITE_ERRORS)
            if self.crawler is not None:
                self.crawler.engine.close_spider(spider, reason=Finish.WARC_WRITE_ERROR)

    def capture(self, response: Response, request: Request) -> Captured:
        """Write a fetch's records (response or revisit, request, metadata)."""
        latency = float(request.meta.get("download_latency") or 0.0)
        warc_date = warc_date_now(seconds_ago=latency)
        digest = payload_digest(response.body)
        truncated = cut_short(response)
        original = None
        # Revisits only for real content: not for cut bodies, empty bodies or 304s.
        if self.state is not None and not truncated and response.body and response.status < 300:
            original = self.state.find_original(response.url, digest)
        if original is not None:
            first = self.records.revisit(response, warc_date, original)
        else:
            first = self.records.response(response, warc_date, digest, truncated)
            if truncated:
                self._count(Stat.TRUNCATED)
        record_id = first.rec_headers.get_header("WARC-Record-ID")
        group = [
            first,
            self.records.request(request, response.url, warc_date, record_id),
            self.records.metadata(
                response.url, warc_date, record_id, latency, self.fetch_notes(response, request)
            ),
        ]
        pointers = self.writer.write_group(group)
        self.captured += 1
        self._count(Stat.RECORDS, 3)
        self._count(Stat.REVISITS if first.rec_type == "revisit" else Stat.RESPONSES)
        self._count(Stat.PAYLOAD_BYTES, len(response.body))
        if self.state is not None:
            self.state.record_capture(
                response.url,
                pointers[0],
                warc_date=warc_date,
                status=response.status,
                payload_digest=digest,
                record_type=first.rec_type,
                refers_to=original.record_id if original else None,
                bytes_written=sum(p.length for p in pointers),
            )
        return Captured(pointers[0], digest, response.status, warc_date, first.rec_type)

    def fetch_notes(self, response: Response, request: Request) -> FetchNotes:
        """What the page's metadata record says of how it was reached and where it links."""
        referer = request.headers.get("Referer")
        links, cut = page_outlinks(response, self.max_outlinks)
        return FetchNotes(
            via=referer.decode("latin-1") if referer else None,
            hops=request.meta.get(REASON_KEY) or None,
            outlinks=tuple(links),
            outlinks_cut=cut,
        )

    def fetch_failed(self, request: Request, reason: str) -> None:
        """The archive says what is missing and why (``fetchError`` metadata record)."""
        captured = captured_of(request.meta)
        concurrent_to = captured.pointer.record_id if captured else None
        hops = request.meta.get(REASON_KEY) or None
        record = self.records.fetch_error(request.url, reason, hops, concurrent_to)
        try:
            self.writer.write_group([record])
        except OSError as exc:
            logger.error("WARC write failed (%s)", exc)
            self._count(Stat.WARC_WRITE_ERRORS)
            return
        self._count(Stat.RECORDS)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        """Close the WARC files."""
        try:
            self.writer.close()
        except OSError as exc:
            # The .open file stays; the next run repairs it (crawler.warc.recovery).
            logger.error("closing the WARC file failed (%s); the next run repairs it", exc)
        if self.writer.observer is not None:
            self.writer.observer.finish()
        # Each file starts with its warcinfo record: counted so totals match `verify`.
        self._count(Stat.RECORDS, len(self.writer.closed_files))
        if self.crawler is not None:
            self.crawler.signals.send_catch_log(warc_files_closed, files=self.closed_files)
