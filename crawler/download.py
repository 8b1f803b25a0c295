"""Bounds of what one fetch may read: response headers, and robots.txt.

Scrapy bounds a response's body (``DOWNLOAD_MAXSIZE``) but not its headers: Twisted keeps
every header line it is sent, and a million of them took a crawl to 923 MB. Here each
response is read up to ``MAX_RESPONSE_HEADERS`` header lines and, headers and body
together, ``DOWNLOAD_MAXSIZE`` bytes; past either bound the fetch fails with that reason
(:func:`crawler.failures.failure_reason`).

robots.txt is read up to ``ROBOTSTXT_MAX_SIZE`` bytes, as Google reads 500 KiB and
ignores the rest: the download stops there (the WARC record says ``WARC-Truncated``) and
what was read is parsed, so a 50 MB robots.txt is obeyed as far as it was read, not
thrown away.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.core.downloader.handlers.http11 import (
    HTTP11DownloadHandler,
    _LenientHTTP11ClientFactory,
    _LenientHTTP11ClientProtocol,
    _LenientHTTPClientParser,
)
from scrapy.crawler import Crawler
from scrapy.exceptions import StopDownload
from scrapy.http import Headers
from scrapy.robotstxt import ProtegoRobotParser

from crawler.bounds import read_in_part
from crawler.context import RunContext


class HeadersTooLarge(Exception):
    """A response's header section passed a bound; the message names it."""


class BoundedDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, with response headers counted and bounded while they
    are parsed (one handler per scheme: the signals side is :class:`FetchBounds`)."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        bounds = RunContext.of(crawler).bounds
        limits = (bounds.response_headers, bounds.read_limit)
        # The pool builds a protocol per connection and each protocol a parser per response:
        # Scrapy swaps in its lenient parser the same way (scrapy/.../http11.py); Twisted
        # types the pool's private _factory as the class, any callable making one serves.
        self._pool._factory = lambda *args: _BoundedClientFactory(*args, limits=limits)  # type: ignore[assignment]


class FetchBounds:
    """What a fetch may read once its headers are in: the body gets what the headers left
    of ``DOWNLOAD_MAXSIZE``; a robots.txt download stops past ``ROBOTSTXT_MAX_SIZE``."""

    def __init__(self, max_size: int, robots_max_size: int) -> None:
        self.max_size = max_size
        self.robots_max_size = robots_max_size

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FetchBounds:
        """Build it from the run context's bounds and connect it to the download signals."""
        context = RunContext.of(crawler).bounds
        bounds = cls(context.read_limit, context.robots_size)
        crawler.signals.connect(bounds.headers_received, signal=signals.headers_received)
        crawler.signals.connect(bounds.bytes_received, signal=signals.bytes_received)
        return bounds

    def headers_received(self, headers: Headers, body_length: int, request: Request) -> None:
        """Scrapy reads ``download_maxsize`` from the request right after this signal."""
        if not self.max_size:
            return
        used = sum(len(k) + 4 + len(v) for k, values in headers.items() for v in values)
        request.meta["download_maxsize"] = max(self.max_size - used, 1)

    def bytes_received(self, data: bytes, request: Request) -> None:
        """Stops a robots.txt download past ``ROBOTSTXT_MAX_SIZE``, keeping what was read."""
        if not self.robots_max_size or not is_robots_request(request):
            return
        read = request.meta.get(ROBOTS_READ_KEY, 0) + len(data)
        request.meta[ROBOTS_READ_KEY] = read
        if read > self.robots_max_size:
            raise StopDownload(fail=False)


ROBOTS_READ_KEY = "robotstxt_bytes_read"


def is_robots_request(request: Request) -> bool:
    """Scrapy's own robots.txt request (RobotsTxtMiddleware marks it so)."""
    return bool(request.meta.get("dont_obey_robotstxt")) and (
        urlsplit(request.url).path == "/robots.txt"
    )


class _BoundedClientFactory(_LenientHTTP11ClientFactory):
    def __init__(self, *args: Any, limits: tuple[int, int]) -> None:
        super().__init__(*args)
        self.limits = limits

    def buildProtocol(self, addr: Any) -> _BoundedClientProtocol:  # noqa: N802 - Twisted's
        return _BoundedClientProtocol(self._quiescentCallback, self.limits)


class _BoundedClientProtocol(_LenientHTTP11ClientProtocol):
    def __init__(self, quiescent_callback: Any, limits: tuple[int, int]) -> None:
        super().__init__(quiescent_callback)
        self.limits = limits

    def request(self, request: Any) -> Any:
        d = super().request(request)
        parser = cast(_BoundedHeadersParser, self._parser)  # made by request(): now ours
        parser.__class__ = _BoundedHeadersParser
        parser.max_lines, parser.max_bytes = self.limits
        parser.lines = parser.size = 0
        return d


class _BoundedHeadersParser(_LenientHTTPClientParser):
    """Counts the status and header lines of one response, and their bytes.

    Raising here makes Twisted drop the connection and fail the request with this
    exception inside its ``ResponseFailed``.
    """

    max_lines = max_bytes = lines = size = 0

    def lineReceived(self, line: bytes) -> None:  # noqa: N802 - Twisted's name
        self.lines += bool(line)  # the empty line that ends the headers is not one
        self.size += len(line) + 2
        if self.max_lines and self.lines > self.max_lines + 1:  # + the status line
            raise HeadersTooLarge(f"more than {self.max_lines} header lines")
        if self.max_bytes and self.size > self.max_bytes:
            raise HeadersTooLarge(f"headers larger than DOWNLOAD_MAXSIZE ({self.max_bytes} bytes)")
        super().lineReceived(line)


class BoundedRobotParser(ProtegoRobotParser):
    """Scrapy's robots.txt parser (Protego), given only the first ``ROBOTSTXT_MAX_SIZE``
    bytes (up to the last whole line), as Google reads 500 KiB and ignores the rest."""

    @classmethod
    def from_crawler(cls, crawler: Crawler, robotstxt_body: bytes) -> BoundedRobotParser:
        """Scrapy's hook: the parser of ``robotstxt_body`` cut to ``ROBOTSTXT_MAX_SIZE``."""
        limit = RunContext.of(crawler).bounds.robots_size if crawler else 0
        if limit and len(robotstxt_body) > limit:
            end = robotstxt_body.rfind(b"\n", 0, limit + 1)
            robotstxt_body = robotstxt_body[: end + 1 if end >= 0 else limit]
            if crawler.stats is not None:
                read_in_part(crawler.stats, "robots.txt", f"ROBOTSTXT_MAX_SIZE={limit}")
        return cls(robotstxt_body, crawler.spider if crawler else None)
