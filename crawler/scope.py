"""What the crawler may request: the farm's own pages, never a side-effecting URL.

A farm's engine triggers work on GET: ``?update`` re-fetches a source feed,
``?updateall`` all of them, ``?reset_cache`` wipes a cache, ``?check=`` probes
a site, ``xsaf3.php`` pulls other farms. ``?q=`` is an unbounded search. The guard
sits in the downloader middleware chain so it also sees redirect targets and
requests added by any component, not only the spider's own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest

logger = logging.getLogger(__name__)

FORBIDDEN_QUERY_KEYS = {"update", "updateall", "reset_cache", "check", "q"}
FORBIDDEN_PATH = re.compile(r"/xsaf\d*\.php$", re.IGNORECASE)
SAFE_METHODS = {"GET", "HEAD"}


def forbidden_reason(url: str, method: str = "GET") -> str | None:
    """Why this URL must never be requested, or None when it is harmless."""
    if method.upper() not in SAFE_METHODS:
        return f"method {method}"
    parts = urlsplit(url)
    if FORBIDDEN_PATH.search(parts.path):
        return "xsaf"
    keys = {k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    bad = keys & FORBIDDEN_QUERY_KEYS
    if bad:
        return f"?{sorted(bad)[0]}"
    return None


class Scope:
    """Allowed origins (scheme://host:port) and, optionally, path prefixes."""

    def __init__(self, seeds: Iterable[str], extra_hosts: Iterable[str] = ()) -> None:
        self.prefixes: list[tuple[str, str]] = []
        for seed in seeds:
            parts = urlsplit(seed)
            self.prefixes.append((parts.netloc.lower(), parts.path or "/"))
        for host in extra_hosts:
            self.prefixes.append((host.lower(), "/"))

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return False
        netloc = parts.netloc.lower()
        path = parts.path or "/"
        return any(netloc == n and path.startswith(p) for n, p in self.prefixes)


class ScopeGuardMiddleware:
    """Downloader middleware: drops forbidden or out-of-scope requests, counting why."""

    def __init__(self, crawler: Crawler) -> None:
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ScopeGuardMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if request.url.endswith("/robots.txt"):
            return None
        reason = forbidden_reason(request.url, request.method)
        if reason is None:
            scope: Scope | None = getattr(spider, "scope", None)
            if scope is not None and not scope.allows(request.url):
                reason = "out of scope"
        if reason is None:
            return None
        self.stats.inc_value(f"skipped/{reason}")
        logger.info("not requesting %s (%s)", request.url, reason)
        raise IgnoreRequest(f"{reason}: {request.url}")
