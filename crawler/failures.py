"""Why a fetch failed, in words an operator understands: Twisted's own messages can be
empty or misleading ("closed cleanly" for a header line over 16 kB)."""

from __future__ import annotations

from typing import Any

from scrapy.exceptions import DownloadCancelledError, DownloadFailedError, IgnoreRequest
from twisted.internet.defer import CancelledError
from twisted.web._newclient import ResponseFailed


def failure_reason(failure: Any, max_size: int = 0) -> str:
    """Why a fetch failed, in words for the summary and the history."""
    if failure.check(CancelledError, DownloadCancelledError):
        return f"body larger than DOWNLOAD_MAXSIZE ({max_size} bytes)" if max_size else "cancelled"
    if failure.check(IgnoreRequest) and "DOWNLOAD_MAXSIZE" in str(failure.value):
        # HttpCompressionMiddleware: the captured body inflates past the bound (a bomb?).
        return f"body larger than DOWNLOAD_MAXSIZE ({max_size} bytes) once decompressed"
    too_large = _headers_too_large(failure)
    if too_large is not None:
        return f"response {too_large}"
    if failure.check(ResponseFailed) or (
        failure.check(DownloadFailedError) and "ConnectionDone" in str(failure.value)
    ):
        # Twisted drops the connection on a header line over 16 kB and says "closed cleanly".
        return "connection closed before a complete response (or a header line over 16 kB)"
    return type(failure.value).__name__  # its message (often per URL) goes to the log only


def _headers_too_large(failure: Any) -> str | None:
    """The bound a response's headers passed (:mod:`crawler.download`), if that failed it."""
    from crawler.download import HeadersTooLarge

    failed = failure.value
    if isinstance(failed, DownloadFailedError):  # Scrapy's wrapper of Twisted's failure
        failed = failed.__cause__
    for reason in getattr(failed, "reasons", None) or ():
        if reason.check(HeadersTooLarge):
            return str(reason.value)
    return None
