"""Applies robots.txt ``Crawl-delay``, which Scrapy parses but does not enforce.

Connected after AutoThrottle (which lowers delays when the server is fast), it puts
the slot delay back up to the farm's Crawl-delay after every response.
"""

from __future__ import annotations

import logging

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached

from crawler.context import RunContext
from crawler.counters import CRAWL_DELAY

logger = logging.getLogger(__name__)


class CrawlDelay:
    def __init__(self, crawler: Crawler, user_agent: str) -> None:
        self.crawler = crawler
        self.delays: dict[str, float] = {}
        self.user_agent = user_agent or "*"  # whose Crawl-delay robots.txt gives

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlDelay:
        ext = cls(crawler, RunContext.of(crawler).politeness.user_agent)
        crawler.signals.connect(ext.robots_parsed, signal=signals.robots_parsed)
        crawler.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        return ext

    def robots_parsed(self, robotparser, request: Request) -> None:
        parser = getattr(robotparser, "rp", None)
        if parser is None or not hasattr(parser, "crawl_delay"):
            return
        delay = parser.crawl_delay(self.user_agent)
        if delay:
            host = urlparse_cached(request).hostname or ""
            self.delays[host] = float(delay)
            self.crawler.stats.set_value(CRAWL_DELAY + host, float(delay))
            logger.info("robots.txt of %s asks for Crawl-delay: %s s", host, delay)
            self._apply(request)

    def response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        if self.delays:
            self._apply(request)

    def _apply(self, request: Request) -> None:
        host = urlparse_cached(request).hostname or ""
        delay = self.delays.get(host)
        engine = self.crawler.engine
        if delay is None or engine is None:
            return
        key = request.meta.get("download_slot") or host
        slot = engine.downloader.slots.get(key)
        if slot is not None and slot.delay < delay:
            slot.delay = delay
            slot.jitter = 0
