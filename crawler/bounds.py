"""Bounds of one run: pages per run, pages per autoblog, links per page.

An endless pagination or a farm larger than anyone planned for must not make a run
endless. A page bound does not stop the crawl dead: past it, requests are refused and
counted, the run ends as partial (exit 1) and stays resumable, so the next run with the
same seeds continues it. Pages that run already captured are read back from the WARCs
(:class:`crawler.state.ResumeFromArchive`, which sits before this middleware) and do not
count, so each run gets further and any farm is reached in finitely many runs.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler

from crawler.scope import Refused
from crawler.urls import autoblog_base

logger = logging.getLogger(__name__)

CAPPED_STAT = "bounds/capped"  # set once a page bound refused a request: the run is resumable
# Stats that make a run partial: failed fetches, failed WARC writes, spider exceptions.
ERROR_STATS = ("errors/fetch", "errors/links_cut", "warc/write_errors", "spider_exceptions/count")


def error_count(stats: Mapping[str, Any]) -> int:
    """Everything that went wrong in a run (a RecursionError in a callback included)."""
    return sum(int(stats.get(key, 0) or 0) for key in ERROR_STATS)


def capped(stats: Mapping[str, Any]) -> str | None:
    """The page bound that stopped this run (``MAX_PAGES_PER_RUN=20000``), or None."""
    return stats.get(CAPPED_STAT) or None


class PageBounds:
    """Downloader middleware: refuses network fetches past ``MAX_PAGES_PER_RUN`` or
    ``MAX_PAGES_PER_AUTOBLOG`` (0 = no bound), reporting the bound under ``skipped``."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.stats = crawler.stats
        self.per_run = settings.getint("MAX_PAGES_PER_RUN", 0)
        self.per_autoblog = settings.getint("MAX_PAGES_PER_AUTOBLOG", 0)
        self.fetched = 0
        self.by_autoblog: Counter[str] = Counter()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageBounds:
        return cls(crawler)

    def _refuse(self, request: Request, bound: str) -> None:
        if not self.stats.get_value(CAPPED_STAT):
            logger.warning("bound reached: %s; run the same command again to continue", bound)
        self.stats.set_value(CAPPED_STAT, bound)
        self.stats.inc_value(f"skipped/bound: {bound}")
        raise Refused(f"bound reached ({bound}): {request.url[:300]}")

    def process_request(self, request: Request) -> None:
        if request.url.endswith("/robots.txt"):
            return None
        if self.per_run and self.fetched >= self.per_run:
            self._refuse(request, f"MAX_PAGES_PER_RUN={self.per_run}")
        base = autoblog_base(request.url)
        if self.per_autoblog and self.by_autoblog[base] >= self.per_autoblog:
            self._refuse(request, f"MAX_PAGES_PER_AUTOBLOG={self.per_autoblog}")
        self.fetched += 1
        self.by_autoblog[base] += 1
        return None


def bounded_links(results: Iterable[Any], limit: int, stats: Any, url: str) -> Iterator[Any]:
    """A callback's output with at most ``limit`` requests (0 = all); items always pass.

    What is cut is counted under ``skipped`` and makes the run partial: those links are
    left out of this run, not deferred to the next.
    """
    sent = dropped = 0
    for result in results:
        if isinstance(result, Request) and limit:
            if sent >= limit:
                dropped += 1
                continue
            sent += 1
        yield result
    if dropped:
        logger.warning("%s: %d links past MAX_LINKS_PER_PAGE=%d not followed", url, dropped, limit)
        stats.inc_value(f"skipped/bound: MAX_LINKS_PER_PAGE={limit}", count=dropped)
        stats.inc_value("errors/links_cut")
