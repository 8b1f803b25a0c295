"""Why a fetch failed, in words an operator understands: Twisted's own messages can be
empty or misleading ("closed cleanly" for a header line over 16 kB)."""

from __future__ import annotations

from typing import Any

from scrapy.exceptions import DownloadCancelledError, DownloadFailedError, IgnoreRequest
from twisted.internet.defer import CancelledError
from twisted.web._newclient import ResponseFailed


def failure_reason(failure: Any, max_size: int = 0) -> str:
    if failure.check(CancelledError, DownloadCancelledError):
        return f"body larger than DOWNLOAD_MAXSIZE ({max_size} bytes)" if max_size else "cancelled"
    if failure.check(IgnoreRequest) and "DOWNLOAD_MAXSIZE" in str(failure.value):
        # HttpCompressionMiddleware: the captured body inflates past the bound (a bomb?).
        return f"body larger than DOWNLOAD_MAXSIZE ({max_size} bytes) once decompressed"
    if failure.check(ResponseFailed) or (
        failure.check(DownloadFailedError) and "ConnectionDone" in str(failure.value)
    ):
        # Twisted drops the connection on a header line over 16 kB and says "closed cleanly".
        return "connection closed before a complete response (or a header line over 16 kB)"
    return type(failure.value).__name__  # its message (often per URL) goes to the log only
