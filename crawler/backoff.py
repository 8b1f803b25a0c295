"""Polite back-off: a farm that answers 429 Too Many Requests, or 503 with a
``Retry-After``, is asked again only once the wait it names has passed, and no faster than
that for the rest of the run.

Scrapy's RetryMiddleware retries such answers at once and ignores ``Retry-After``, and
AutoThrottle only reacts to latency. So :class:`Backoff` (a downloader middleware that
sees each response before RetryMiddleware) takes them: the wait is the ``Retry-After``
(seconds or an HTTP date; a bare 429 doubles the host's delay, 1 s at least), never more
than ``BACKOFF_MAX_DELAY``; the host's download slot gets it as its least delay from now
on (the ``host_throttled`` signal, which :class:`crawler.extensions.CrawlDelay` takes
and keeps there whatever AutoThrottle says) and the request is retried up to ``RETRY_TIMES``.

The WARC keeps every throttled exchange (it is what happened), but a throttled answer is
no capture of the page: the history's questions about a page skip it
(:func:`crawler.history.model.answered`), the corpus never reads it, and a page still
throttled after its last retry is named in the summary, makes the run partial, and is
named missing by the audit so that the next run fetches it first.
"""

from __future__ import annotations

import logging
import time
from email.utils import parsedate_to_datetime
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached

from crawler.context import RunContext
from crawler.counters import BACKOFF_DELAY, Stat, family
from crawler.history.model import THROTTLED
from crawler.items import host_throttled
from crawler.services import RunResults, results_of

logger = logging.getLogger(__name__)
# A Retry-After is a number or an HTTP date (29 characters): anything longer is neither.
MAX_VALUE = 64


def retry_after(value: bytes | None, now: float) -> float | None:
    """The seconds a ``Retry-After`` value asks for (delay-seconds, or an HTTP date counted
    from ``now``), or None when it holds neither."""
    if not value or len(value) > MAX_VALUE:
        return None
    text = value.decode("latin-1").strip()
    if text.isascii() and text.isdecimal():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; an obsolete form may not say so
        return None
    return max(0.0, when.timestamp() - now)


def throttle_wait(response: Response, current: float, max_delay: float) -> float | None:
    """How long the host asks to be left alone, if ``response`` is a throttled answer: a
    429, or a 503 naming a ``Retry-After`` (a bare 503 is a server error like any other,
    RetryMiddleware's). At most ``max_delay``; ``current``: the host's delay now."""
    status = response.status
    if status not in (THROTTLED, 503):
        return None
    asked = retry_after(response.headers.get(b"Retry-After"), time.time())
    if asked is None:
        if status != THROTTLED:
            return None
        asked = max(2 * current, 1.0)
    return min(asked, max_delay)


class Backoff:
    """Retries throttled answers after their wait and slows their host; names the pages
    still throttled after their last retry (``throttled``, for the summary)."""

    def __init__(self, crawler: Crawler, max_delay: float, retry: bool, max_named: int) -> None:
        self.crawler = crawler
        self.max_delay = max_delay
        self.retry = retry
        self.max_named = max_named
        self.throttled: list[dict[str, Any]] = []  # the first max_named pages given up on
        self.gave_up = 0
        self.results: RunResults | None = None  # what the summary says of throttling

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Backoff:
        """Build it from the run context's politeness and audit bounds."""
        context = RunContext.of(crawler)
        politeness = context.politeness
        backoff = cls(
            crawler, politeness.backoff_max_delay, politeness.retry, context.audit.max_missing
        )
        backoff.results = results_of(crawler)
        backoff._publish()  # nothing throttled yet: the summary says so
        return backoff

    def _slot_delay(self, request: Request) -> float:
        engine = self.crawler.engine
        key = request.meta.get("download_slot") or urlparse_cached(request).hostname or ""
        slot = engine.downloader.slots.get(key) if engine is not None else None
        return float(slot.delay) if slot is not None else 0.0

    def process_response(self, request: Request, response: Response) -> Request | Response:
        """A 429, or a 503 with Retry-After: retried after the wait, the host slowed; else as is."""
        wait = throttle_wait(response, self._slot_delay(request), self.max_delay)
        if wait is None:
            return response
        stats = self.crawler.stats
        stats.inc_value(Stat.THROTTLED)
        if wait > 0:
            self.crawler.signals.send_catch_log(host_throttled, request=request, delay=wait)
        retry = None
        if self.retry and not request.meta.get("dont_retry"):
            reason = f"throttled ({response.status}, wait {wait:g} s)"
            spider = self.crawler.spider
            assert spider is not None  # a response comes only while the spider runs
            retry = get_retry_request(request, spider=spider, reason=reason)
        if retry is None:
            self._give_up(request, response, wait)
        self._publish()
        return retry if retry is not None else response

    def _publish(self) -> None:
        if self.results is not None:
            self.results.throttled = self.summary()

    def _give_up(self, request: Request, response: Response, wait: float) -> None:
        """Still throttled after the last retry: the page is not archived by this run."""
        self.gave_up += 1
        self.crawler.stats.inc_value(Stat.THROTTLED_GAVE_UP)
        attempts = int(request.meta.get("retry_times", 0)) + 1
        logger.warning(
            "throttled: %s answered %d on each of %d attempts; the next run asks again",
            request.url,
            response.status,
            attempts,
        )
        if len(self.throttled) < self.max_named:
            self.throttled.append(
                {"url": request.url, "status": response.status, "attempts": attempts, "wait": wait}
            )

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` says of throttling (``throttled``)."""
        stats = self.crawler.stats
        return {
            "answers": stats.get_value(Stat.THROTTLED, 0),
            "pages_total": self.gave_up,
            "pages": list(self.throttled),
            "delays": family(stats.get_stats(), BACKOFF_DELAY),
        }
