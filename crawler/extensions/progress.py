"""Live progress while crawling: a rich line on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from twisted.internet import task

from crawler.context import ProgressOptions, RunContext
from crawler.counters import Stat

if TYPE_CHECKING:
    from rich.live import Live

logger = logging.getLogger(__name__)


class Progress:
    """Shows pages, articles, bytes, errors and rate every ``PROGRESS_INTERVAL`` seconds."""

    def __init__(self, stats: StatsCollector, options: ProgressOptions) -> None:
        self.stats = stats
        self.interval = options.interval
        self.tty = sys.stderr.isatty() and options.live
        self.started = time.monotonic()
        self._loop: task.LoopingCall | None = None
        self._live: Live | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Progress:
        """Build it from the run context and connect it to the crawl's signals."""
        ext = cls(crawler.stats, RunContext.of(crawler).progress)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def line(self) -> str:
        """The progress line: pages, articles, bytes, errors, rate."""
        get = self.stats.get_value
        elapsed = max(time.monotonic() - self.started, 1e-6)
        pages = get(Stat.RESPONSES, 0) + get(Stat.REVISITS, 0)
        errors = get(Stat.FETCH_ERRORS, 0) + get(Stat.WARC_WRITE_ERRORS, 0)
        return (
            f"pages {pages}  articles {get(Stat.ARTICLES_FOUND, 0)}  "
            f"{get(Stat.PAYLOAD_BYTES, 0) / 1e6:.1f} MB  errors {errors}  "
            f"{pages / elapsed * 60:.0f} pages/min"
        )

    def tick(self) -> None:
        """Show the line now (live on a terminal, else as a log line)."""
        if self._live is not None:
            self._live.update(self.line())
        else:
            logger.info("progress: %s", self.line())

    def spider_opened(self, spider: Spider) -> None:
        """Start the live line (a terminal) or the periodic log lines."""
        if self.tty:
            from rich.console import Console
            from rich.live import Live

            self._live = Live("", console=Console(stderr=True), refresh_per_second=4)
            self._live.start()
        self._loop = task.LoopingCall(self.tick)
        self._loop.start(1.0 if self._live else self.interval, now=False)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        """Stop the updates, leaving the last line shown."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._live is not None:
            self._live.update(self.line())
            self._live.stop()
