"""Crawl state across runs: one Scrapy extension owns the history of an output folder.

Before the first request it takes the folder's run lock, repairs ``.open`` WARC files
left by a killed crawl, opens ``history.sqlite`` and starts the run, or resumes the
same seeds' unfinished one. During the crawl the capture and the spider ask it what
was archived before; at the end it closes the run and writes the change report.
Both ``autoblog-archive crawl`` and ``scrapy crawl`` go through it.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured

from crawler.bounds import capped, error_count
from crawler.config import Incremental
from crawler.consistency import reconcile_with_warcs
from crawler.folder import captures_in_stats
from crawler.history import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    PARTIAL,
    Capture,
    History,
)
from crawler.indexes import OutputLayout
from crawler.recovery import repair_output
from crawler.report import build_report, write_report
from crawler.runlock import RunLock
from crawler.urls import canonical_url
from crawler.warcfiles import READ_LIMIT, read_record_at

logger = logging.getLogger(__name__)

FULL, INCREMENTAL = "full", "incremental"

# One state per crawler; weak, so a finished crawler (tests run several) is not kept.
_STATES: WeakKeyDictionary[Crawler, CrawlState] = WeakKeyDictionary()


@dataclass
class RunInfo:
    id: int
    mode: str
    started: str
    resumed: bool


class CrawlState:
    """The history of one output folder, for the duration of one crawl."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("HISTORY_ENABLED", True):
            raise NotConfigured
        self.crawler = crawler
        self.stats = crawler.stats
        self.layout = OutputLayout(settings["OUTPUT_DIR"], settings.get("CRAWL_NAME", "autoblog"))
        self.requested_mode = settings.get("CRAWL_MODE", "auto")
        self.full_every = settings.getint("FULL_PASS_EVERY", 0)
        self.margin_pages = settings.getint("INCREMENTAL_MARGIN_PAGES", 1)
        self.lock: RunLock | None = None
        if not settings.getbool("RUN_LOCK_HELD"):
            self.lock = RunLock(self.layout.root, " ".join(sys.argv)).acquire()
        for repair in repair_output(self.layout.root):
            logger.warning("crash recovery: %s", repair.describe())
            self.stats.inc_value("recovery/files")
        self.reconciled = reconcile_with_warcs(self.layout.root)
        if self.reconciled.rebuilt:
            self.stats.set_value("history/rebuilt", self.reconciled.rebuilt)
        self.stats.set_value("history/forgotten", len(self.reconciled.forgotten))
        self.history = History.open(self.layout.root)
        self.run: RunInfo | None = None
        self.captured_this_run: set[str] = set()
        self.has_earlier_captures = False
        self._interrupted = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlState:
        state = cls(crawler)
        _STATES[crawler] = state
        crawler.signals.connect(state.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(state.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(state.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(state.engine_stopped, signal=signals.engine_stopped)
        return state

    # -- the run -----------------------------------------------------------------

    def _mode(self) -> str:
        if self.requested_mode in (FULL, INCREMENTAL):
            return self.requested_mode
        previous = [r for r in self.history.runs() if r.status in (FINISHED, PARTIAL)]
        if not previous:
            return FULL
        rule = Incremental(full_every=self.full_every, margin_pages=self.margin_pages)
        return FULL if rule.full_pass_due(self.history.runs_since_full()) else INCREMENTAL

    def spider_opened(self, spider: Spider) -> None:
        seeds = list(getattr(spider, "seeds", []))
        resumable = self.history.resumable_run(seeds)
        mode = resumable.mode if resumable else self._mode()
        if mode != FULL and self.reconciled.lost_before(resumable.id if resumable else None):
            logger.warning("captures were lost from the WARCs: this run is a full pass")
            mode = FULL
        elif mode != FULL and self.reconciled.rebuilt:
            # Whether the lost history's last run had finished is written nowhere else.
            logger.warning("the history was rebuilt: this run is a full pass")
            mode = FULL
        run_id = self.history.start_run(seeds, " ".join(sys.argv), mode=mode)
        run = self.history.get_run(run_id)
        assert run is not None
        self.run = RunInfo(id=run_id, mode=mode, started=run.started, resumed=bool(resumable))
        self.history.reconcile_files(self.layout.warcs(), run_id)
        self.captured_this_run = self.history.urls_captured_in_run(run_id)
        # A first crawl has nothing to be a revisit of: no lookup per capture.
        self.has_earlier_captures = self.history.has_captures_before(run_id)
        self.stats.set_value("run/id", run_id)
        self.stats.set_value("run/mode", mode)
        self.stats.set_value("run/resumed", bool(resumable))
        if resumable:
            logger.info(
                "resuming run %d (%s): %d URLs already captured",
                run_id,
                mode,
                len(self.captured_this_run),
            )
        else:
            logger.info("run %d (%s)", run_id, mode)

    def spider_idle(self, spider: Spider) -> None:
        self.history.commit()

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.run is None:
            return
        if not captures_in_stats(self.stats.get_value) and not self.run.resumed:
            # A dead URL or a wrong path must not leave a run later runs build on.
            self.history.discard_run(self.run.id)
            self.stats.set_value("run/status", "discarded")
            return
        errors = error_count(self.stats.get_stats())
        if reason == "shutdown" or (reason == "finished" and capped(self.stats.get_stats())):
            # A bound stopped it: the next run with the same seeds resumes it (crawler.bounds).
            status = INTERRUPTED
        elif reason != "finished":
            status = FAILED
        else:
            status = PARTIAL if errors else FINISHED
        self.history.commit()
        bound = capped(self.stats.get_stats())
        why = f"bound reached: {bound}" if bound and reason == "finished" else reason
        self.history.finish_run(self.run.id, status, stats={"reason": why, "errors": errors})
        report = build_report(self.history, self.run.id)
        path = write_report(self.layout.root, report)
        self.stats.set_value("run/status", status)
        self.stats.set_value("run/report", str(path))

    def engine_stopped(self) -> None:
        self.history.close()
        if self.lock is not None:
            self.lock.release()

    # -- questions asked during the crawl -------------------------------------------

    @property
    def incremental(self) -> bool:
        return self.run is not None and self.run.mode == INCREMENTAL

    def captured_in_this_run(self, url: str) -> Capture | None:
        """This run's complete capture of ``url`` (a resumed run does not fetch it again)."""
        if self.run is None or canonical_url(url) not in self.captured_this_run:
            return None
        capture = self.history.latest_capture(url)
        if capture is None or capture.run_id != self.run.id:
            return None
        if capture.status is None or capture.status >= 500:
            return None
        return capture

    def archived_before(self, url: str) -> Capture | None:
        """The newest successful capture of ``url`` from an earlier run."""
        if self.run is None:
            return None
        capture = self.history.latest_capture(url, before_run=self.run.id)
        if capture is None or capture.status is None or not 200 <= capture.status < 400:
            return None
        return capture

    def validators(self, url: str) -> dict[str, str]:
        """Conditional-GET headers from the last capture's ETag / Last-Modified, if any.

        Autoblog pages send neither; static files served by the web server itself
        (``articles.db``, ``vvb.ini``, media) usually do, and a 304 costs no body.
        """
        capture = self.history.latest_complete(url, self.run.id) if self.run else None
        if capture is None:
            return {}
        try:
            record = read_record_at(self.layout.archive / capture.filename, capture.offset, limit=0)
        except (OSError, ValueError, EOFError):
            return {}
        http = record.http_headers
        if http is None:
            return {}
        headers = {}
        if http.get_header("ETag"):
            headers["If-None-Match"] = http.get_header("ETag")
        if http.get_header("Last-Modified"):
            headers["If-Modified-Since"] = http.get_header("Last-Modified")
        return headers

    def article_known_before(self, permalink: str) -> bool:
        """Was this article archived by an earlier run (the incremental stop rule)?"""
        if self.run is None:
            return False
        article = self.history.article(permalink)
        return article is not None and article["first_seen_run"] < self.run.id


def crawl_state(crawler: Crawler) -> CrawlState | None:
    """The running crawl's state, if the extension is enabled (asked on every request)."""
    return _STATES.get(crawler)


class ResumeFromArchive:
    """Downloader middleware: in a resumed run, answer from the WARC what was captured.

    A crawl killed half-way resumes with the same command. Pages it had already
    captured are not fetched again (no second response record in the run), but the
    spider still needs their links and the corpus their text: this reads the record
    back and hands it on as if downloaded, without a new capture.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        # Read back no more than the crawl would download (a bomb is never inflated whole).
        self.max_size = crawler.settings.getint("DOWNLOAD_MAXSIZE", READ_LIMIT) or READ_LIMIT

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ResumeFromArchive:
        return cls(crawler)

    def process_request(self, request, spider: Spider | None = None):
        state = crawl_state(self.crawler)
        if state is None or not state.captured_this_run:
            return None
        capture = state.captured_in_this_run(request.url)
        if capture is None or capture.record_type != "response":
            return None
        response = read_response(
            state.layout.archive / capture.filename, capture, request, self.max_size
        )
        if response is None:
            return None
        request.meta["warc"] = {
            "filename": capture.filename,
            "record_id": capture.record_id,
            "offset": capture.offset,
            "length": capture.length,
            "payload_digest": capture.payload_digest,
            "http_status": capture.status,
        }
        request.meta["warc_date"] = capture.warc_date
        request.meta["warc_record_type"] = "response"
        self.crawler.stats.inc_value("resume/from_archive")
        return response


def read_response(path, capture: Capture, request, limit: int = READ_LIMIT):
    """The Scrapy response stored at ``capture`` (body decoded, as Scrapy would give it)."""
    from scrapy.http import Headers
    from scrapy.responsetypes import responsetypes

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
