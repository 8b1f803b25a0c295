"""What the crawler may request: the farm's own pages, never a side-effecting URL.

A farm's engine triggers work on GET: ``?update`` re-fetches a source feed,
``?updateall`` all of them, ``?reset_cache`` wipes a cache, ``?check=`` probes
a site, ``xsaf3.php`` pulls other farms. ``?q=`` is an unbounded search.

Both checks judge the URL as the server will read it, not as text: Apache decodes
``%2E`` and resolves ``..`` before it picks a file, serves ``/xsaf3.php/x`` (PATH_INFO)
with ``xsaf3.php``, and PHP strips leading spaces from query keys, turns ``.`` and
space into ``_`` and reads ``update[]`` as ``update``. The guard sits in the downloader
middleware chain, so it also sees redirect targets and requests added by any component,
not only the spider's own (:class:`crawler.middlewares.ScopeGuardMiddleware`).
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterable
from urllib.parse import unquote, unquote_plus, urlsplit

from scrapy.exceptions import IgnoreRequest

logger = logging.getLogger(__name__)

FORBIDDEN_QUERY_KEYS = frozenset({"update", "updateall", "reset_cache", "check", "q"})
# A path segment naming xsaf (xsaf3.php, XSAF2.PHP, or xsaf3 served by MultiViews).
FORBIDDEN_SEGMENT = re.compile(r"xsaf\d*(?:\.|$)", re.IGNORECASE)
SAFE_METHODS = frozenset({"GET", "HEAD"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# Enough rounds to undo any nesting a hostile link could hold within a sane URL length.
MAX_DECODE_ROUNDS = 8


def _decoded(text: str, plus: bool = False) -> str:
    """Percent-decoding repeated until stable: ``%252E`` is refused like ``%2E``."""
    for _ in range(MAX_DECODE_ROUNDS):
        step = unquote_plus(text) if plus else unquote(text)
        if step == text:
            break
        text = step
    return text


def server_path(path: str) -> str:
    """The path a web server resolves: decoded, ``//`` collapsed, dot segments applied."""
    decoded = _decoded(path).replace("\\", "/").split("\x00", 1)[0]
    normal = posixpath.normpath("/" + decoded.lstrip("/"))
    normal = "/" + normal.lstrip("/")  # normpath keeps a leading "//"
    if decoded.endswith("/") and not normal.endswith("/"):
        normal += "/"
    return normal


def php_key(raw: str) -> str:
    """The ``$_GET`` name PHP files a raw query key under (``update[]`` -> ``update``)."""
    key = _decoded(raw, plus=True).split("\x00", 1)[0].lstrip(" ")
    out: list[str] = []
    for i, char in enumerate(key):
        if char == "[":
            if "]" in key[i + 1 :]:
                break  # an array key: the name is what came before
            # No closing bracket: PHP keeps going with "[" (and "." and " ") as "_".
            out.extend("_" if c in " .[" else c for c in key[i:])
            break
        out.append("_" if char in " ." else char)
    return "".join(out)


def query_keys(query: str) -> set[str]:
    """Every ``$_GET`` name a query string sets, as PHP parses it (``&``; ``;`` too)."""
    return {php_key(pair.split("=", 1)[0]).lower() for pair in re.split(r"[&;]", query) if pair}


def forbidden_reason(url: str, method: str = "GET") -> str | None:
    """Why this URL must never be requested, or None when it is harmless."""
    if method.upper() not in SAFE_METHODS:
        return f"method {method}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "malformed URL"
    segments = server_path(parts.path).split("/")
    if any(FORBIDDEN_SEGMENT.match(s.strip(" .")) for s in segments if s):
        return "xsaf"
    bad = query_keys(parts.query) & FORBIDDEN_QUERY_KEYS
    if bad:
        return f"?{sorted(bad)[0]}"
    return None


def _origin(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the default port filled in; None if unparseable."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or 0


class Scope:
    """Allowed origins (scheme, host, port) and, for the seeds, path prefixes."""

    def __init__(self, seeds: Iterable[str], extra_hosts: Iterable[str] = ()) -> None:
        self.prefixes: list[tuple[tuple[str, str, int], str]] = []
        for seed in seeds:
            parts = urlsplit(seed)
            origin = _origin(parts.scheme.lower(), parts.netloc)
            if origin is not None:
                self.prefixes.append((origin, server_path(parts.path or "/")))
        for host in extra_hosts:
            for scheme in ("http", "https"):
                origin = _origin(scheme, host)
                if origin is not None:
                    self.prefixes.append((origin, "/"))

    def allows(self, url: str) -> bool:
        """In scope as the server resolves it: same origin, path under a seed's folder."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            return False
        origin = _origin(scheme, parts.netloc)
        if origin is None:
            return False
        path = server_path(parts.path or "/")
        return any(origin == o and path.startswith(p) for o, p in self.prefixes)

    def allows_origin(self, url: str) -> bool:
        """Same origin as a seed, whatever the path (robots.txt lives at the root)."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        origin = _origin(parts.scheme.lower(), parts.netloc)
        return origin is not None and any(origin == o for o, _ in self.prefixes)


def refusal(
    scope: Scope | None, url: str, method: str = "GET", max_url_length: int = 0
) -> str | None:
    """Why a request must not go out, or None: the rule of the scope guard
    (:class:`crawler.middlewares.ScopeGuardMiddleware`) and of a shared frontier's entries.

    Fails closed: with no scope known yet, nothing goes out.
    """
    if max_url_length and len(url) > max_url_length:
        return f"URL longer than {max_url_length} characters"
    if scope is None:
        return "no scope known"
    try:
        path = urlsplit(url).path
    except ValueError:
        return "malformed URL"
    if path == "/robots.txt" and scope.allows_origin(url):
        return None
    reason = forbidden_reason(url, method)
    if reason is None and not scope.allows(url):
        reason = "out of scope"
    return reason


class Refused(IgnoreRequest):
    """A request refused on purpose (scope, forbidden URL, bound): counted under ``skipped``
    where it is refused, so the spider's errback does not count it as a failure."""
