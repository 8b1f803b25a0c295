"""Downloader middlewares: what may go out, what a resumed run already holds, the bounds.

In ``DOWNLOADER_MIDDLEWARES`` order (``crawler/settings.py``): the scope guard first (it
also sees redirect targets and requests any component adds), then the read-back of a
resumed run, then the page bounds (pages read back do not count towards them).
"""

from __future__ import annotations

import logging
from collections import Counter

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.context import RunContext
from crawler.counters import Stat, bound_skipped, skipped
from crawler.history.readback import read_response
from crawler.history.service import HistoryService
from crawler.items import (
    CAPTURE_KEY,
    Captured,
    CrawlPlan,
    crawl_planned,
)
from crawler.scope import Refused, Scope, refusal
from crawler.services import history_of
from crawler.urls import autoblog_base

logger = logging.getLogger(__name__)


class ScopeGuardMiddleware:
    """Drops forbidden, out-of-scope or too long requests, counting why.

    Fails closed: until the spider's plan (``crawl_planned``) gave the scope, nothing but
    robots.txt of a seed's origin goes out.
    """

    def __init__(self, max_url_length: int, stats=None) -> None:
        self.max_url_length = max_url_length
        self.stats = stats
        self.scope: Scope | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ScopeGuardMiddleware:
        """Build it from the run context's bounds; it arms when the crawl is planned."""
        guard = cls(RunContext.of(crawler).bounds.url_length, crawler.stats)
        crawler.signals.connect(guard.crawl_planned, signal=crawl_planned)
        return guard

    def crawl_planned(self, plan: CrawlPlan) -> None:
        """Take the crawl's scope."""
        self.scope = plan.scope

    def reason(self, request: Request) -> str | None:
        """Why ``request`` must not go out, or None."""
        reason = refusal(self.scope, request.url, request.method, self.max_url_length)
        if reason is not None and request.meta.get("redirect_times"):
            reason += " (redirect target)"
        return reason

    def refused(self, request: Request) -> str | None:
        """Why ``request`` must not go out (counted under ``skipped``, logged), or None."""
        reason = self.reason(request)
        if reason is not None:
            if self.stats is not None:
                self.stats.inc_value(skipped(reason))
            logger.warning("not requesting %s (%s)", request.url[:300], reason)
        return reason

    def process_request(self, request: Request) -> None:
        """Refuse a request the crawl's scope or URL bound forbids."""
        reason = self.refused(request)
        if reason is not None:
            raise Refused(f"{reason}: {request.url[:300]}")


class ResumeFromArchive:
    """In a resumed run, answers from the WARC what this run already captured.

    A crawl killed half-way resumes with the same command. Pages it had already
    captured are not fetched again (no second response record in the run), but the
    spider still needs their links and the corpus their text: this reads the record
    back and hands it on as if downloaded, without a new capture.
    """

    def __init__(self, state: HistoryService | None, max_size: int, stats=None) -> None:
        self.state = state
        # Read back no more than the crawl would download (a bomb is never inflated whole).
        self.max_size = max_size
        self.stats = stats
        self.read_back = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ResumeFromArchive:
        """Build it with the crawl's history, reading up to DOWNLOAD_MAXSIZE."""
        max_size = RunContext.of(crawler).bounds.read_limit
        return cls(history_of(crawler), max_size, crawler.stats)

    def process_request(self, request: Request) -> Response | None:
        """This run's capture of the URL, read back from the WARC, instead of a fetch."""
        state = self.state
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
        request.meta[CAPTURE_KEY] = Captured(
            capture.pointer, capture.payload_digest, capture.status, capture.warc_date, "response"
        )
        self.read_back += 1
        if self.stats is not None:
            self.stats.inc_value(Stat.FROM_ARCHIVE)
        return response


class PageBounds:
    """Refuses network fetches past ``MAX_PAGES_PER_RUN`` or ``MAX_PAGES_PER_AUTOBLOG``
    (0 = no bound), reporting the bound under ``skipped`` (see :mod:`crawler.bounds`)."""

    def __init__(self, per_run: int, per_autoblog: int, stats=None) -> None:
        self.per_run = per_run
        self.per_autoblog = per_autoblog
        self.stats = stats
        self.fetched = 0
        self.by_autoblog: Counter[str] = Counter()
        self.bound_reached: str | None = None  # the bound that refused a request: resumable

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageBounds:
        """Build it from the run context's page bounds."""
        bounds = RunContext.of(crawler).bounds
        return cls(bounds.pages_per_run, bounds.pages_per_autoblog, crawler.stats)

    def _refuse(self, request: Request, bound: str) -> None:
        if self.bound_reached is None:
            logger.warning("bound reached: %s; run the same command again to continue", bound)
        self.bound_reached = bound
        if self.stats is not None:
            self.stats.set_value(Stat.BOUND_REACHED, bound)  # the run resumes (crawler.bounds)
            self.stats.inc_value(bound_skipped(bound))
        raise Refused(f"bound reached ({bound}): {request.url[:300]}")

    def process_request(self, request: Request) -> None:
        """Refuse a fetch past MAX_PAGES_PER_RUN or MAX_PAGES_PER_AUTOBLOG."""
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
