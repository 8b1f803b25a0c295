"""The crawl's history on the crawl's signals: the one extension that opens the history
service (:mod:`crawler.history.service`) and tells it how the crawl goes.

Built first (``EXTENSIONS``), before anything is fetched or written: opening the service
takes the folder's run lock, repairs ``.open`` WARC files a killed crawl left and checks
the history against the WARCs. The run starts when the spider sends its plan
(``crawl_planned``), and the run's number goes out to the capture and the corpus
(``run_started``); the spider's pages come in as items; the run ends with Scrapy's
finish reason and what the crawl holds (read from the counters), and the audit closes it
once the WARC files are. ``autoblog-archive crawl`` and ``scrapy crawl`` both go through
it. What the other components ask of the history during the crawl, they ask the service
they were handed (:func:`crawler.services.history_of`), not this extension.
"""

from __future__ import annotations

from pathlib import Path

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawler.context import RunContext
from crawler.counters import Stat, bound_reached, captures_held, error_count
from crawler.history.service import HistoryService, RunEnd
from crawler.items import CrawlPlan, crawl_planned, run_started, warc_files_closed
from crawler.services import open_history


class CrawlState:
    """Connects the history service to the crawl's signals."""

    def __init__(self, crawler: Crawler, service: HistoryService, cluster: bool) -> None:
        self.crawler = crawler
        self.service = service
        self.cluster = cluster  # a worker of a shared frontier keeps every capture

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlState:
        """Open the crawl's history service (NotConfigured without a history)."""
        context = RunContext.of(crawler)
        if not context.history.enabled:
            raise NotConfigured
        ext = cls(crawler, open_history(crawler), context.cluster.enabled)
        crawler.signals.connect(ext.crawl_planned, signal=crawl_planned)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.warc_files_closed, signal=warc_files_closed)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        return ext

    def crawl_planned(self, plan: CrawlPlan) -> None:
        """Start the run for the spider's plan; tell the capture and the corpus its number."""
        run = self.service.start_run(plan)
        if run is not None:
            self.crawler.signals.send_catch_log(run_started, run=run)

    def item_scraped(self, item: object, response=None, spider=None) -> None:
        """A page the spider read: its digests and articles go to the history."""
        self.service.note_page(item)

    def spider_idle(self, spider: Spider) -> None:
        """Commit the history's pending batch while the crawl waits."""
        self.service.commit()

    def spider_closed(self, spider: Spider, reason: str) -> None:
        """End the run, with what the crawl's counters say it holds and what went wrong."""
        stats = self.crawler.stats.get_stats() if self.crawler.stats is not None else {}
        end = RunEnd(
            reason=reason,
            errors=error_count(stats),
            held=captures_held(stats, cluster=self.cluster),
            bound=bound_reached(stats),
        )
        self.service.end_run(end)

    def warc_files_closed(self, files: list[Path] | None = None) -> None:
        """The WARC files are closed: the audit can read them and close the run."""
        stats = self.crawler.stats
        self.service.close_with_audit(stats.get_value(Stat.FINISH_REASON) if stats else None)

    def engine_stopped(self) -> None:
        """Close the history and release the folder's lock."""
        self.service.close()
