"""The least delay between two requests to a host, as the host asked for it: robots.txt
``Crawl-delay`` (which Scrapy parses but does not enforce) and the wait of a throttled
answer (``crawler.backoff``), which slows that host for the rest of the run.

Connected after AutoThrottle (which lowers delays when the server is fast), it puts
the slot delay back up to the host's floor after every response.
"""

from __future__ import annotations

import logging
import time

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached

from crawler.context import RunContext
from crawler.counters import BACKOFF_DELAY, CRAWL_DELAY
from crawler.items import host_throttled

logger = logging.getLogger(__name__)


class CrawlDelay:
    """A host's least delay: robots.txt's Crawl-delay and the back-offs it asked for."""

    def __init__(self, crawler: Crawler, user_agent: str) -> None:
        self.crawler = crawler
        self.delays: dict[str, float] = {}  # host -> the least delay it asked for
        self.user_agent = user_agent or "*"  # whose Crawl-delay robots.txt gives

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlDelay:
        """Build it for the crawl's user agent and connect it to the crawl's signals."""
        ext = cls(crawler, RunContext.of(crawler).politeness.user_agent)
        crawler.signals.connect(ext.robots_parsed, signal=signals.robots_parsed)
        crawler.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        crawler.signals.connect(ext.back_off, signal=host_throttled)
        return ext

    def robots_parsed(self, robotparser, request: Request) -> None:
        """Take the host's Crawl-delay for our user agent from its parsed robots.txt."""
        parser = getattr(robotparser, "rp", None)
        if parser is None or not hasattr(parser, "crawl_delay"):
            return
        delay = parser.crawl_delay(self.user_agent)
        if delay:
            host = urlparse_cached(request).hostname or ""
            self._raise(host, float(delay))
            self.crawler.stats.set_value(CRAWL_DELAY + host, float(delay))
            logger.info("robots.txt of %s asks for Crawl-delay: %s s", host, delay)
            self._apply(request)

    def back_off(self, request: Request, delay: float) -> None:
        """A throttled answer (``host_throttled``): the host is asked again ``delay``
        seconds from now at the earliest, and no more often than that for the rest of the
        run."""
        host = urlparse_cached(request).hostname or ""
        if self._raise(host, delay):
            self.crawler.stats.set_value(BACKOFF_DELAY + host, delay)
            logger.warning("%s throttles the crawl: one request every %.1f s from now", host, delay)
        self._apply(request, restart=True)

    def _raise(self, host: str, delay: float) -> bool:
        if delay <= self.delays.get(host, 0.0):
            return False
        self.delays[host] = delay
        return True

    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        """After each download, hold the host's slot to its least delay."""
        if self.delays:
            self._apply(request)

    def _apply(self, request: Request, restart: bool = False) -> None:
        """The slot's delay up to the host's floor; ``restart``: counted from now, not
        from the last request sent (Scrapy's slot clock is ``time.monotonic``)."""
        host = urlparse_cached(request).hostname or ""
        delay = self.delays.get(host)
        engine = self.crawler.engine
        if delay is None or engine is None:
            return
        key = request.meta.get("download_slot") or host
        slot = engine.downloader.slots.get(key)
        if slot is None:
            return
        if slot.delay * (1 - slot.jitter) < delay:  # the jitter may not go below the floor
            slot.delay = max(slot.delay, delay)
            slot.jitter = 0
        if restart:
            slot.lastseen = max(slot.lastseen, time.monotonic())
