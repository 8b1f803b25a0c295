"""The shared frontier's entries: a request as JSON data, never code.

scrapy-redis pickles requests by default, and whoever can write to the Redis would run
code in every worker that pops an entry. This module is the shared queue's serializer
(scrapy-redis's ``SCHEDULER_SERIALIZER`` interface: ``dumps``/``loads`` of
``Request.to_dict(spider=...)``), whatever that setting says: an entry is a JSON object of
the fields below, callbacks by name, header values as latin-1 text. What a request
carries that a worker's own components set again at download time (``download_slot``,
``download_timeout``, the capture of an earlier fetch, default headers they fill in
themselves) is left out; nothing the spider never makes (a body, cookies, callback
arguments, a ``Request`` subclass) is ever carried.

:func:`loads` checks the shape only; what the entry asks for (scope, callback names,
size) is checked where the worker knows its crawl: :class:`crawler.cluster.frontier.FrontierQueue`.
"""

from __future__ import annotations

from typing import Any

import orjson

from crawler.items import REASON_KEY

FIELDS: dict[str, type | tuple[type, ...]] = {
    "url": str,
    "method": str,
    "callback": (str, type(None)),
    "errback": (str, type(None)),
    "headers": dict,
    "meta": dict,
    "priority": int,
    "dont_filter": bool,
    "flags": list,
}
# The meta keys a request of this crawl carries from one worker to another: why the spider
# asked (REASON_KEY, tail_page) and the bounds Scrapy keeps across retries and redirects.
META: dict[str, type | tuple[type, ...]] = {
    REASON_KEY: str,
    "tail_page": bool,
    "depth": int,
    "retry_times": int,
    "redirect_times": int,
    "redirect_ttl": int,
    "redirect_urls": list,
    "redirect_reasons": list,
}
# Headers a request has before it is downloaded: the Referer, conditional-GET validators,
# and those of a retried or redirected request that went through the middlewares once.
HEADERS = frozenset(
    {
        b"accept",
        b"accept-encoding",
        b"accept-language",
        b"if-modified-since",
        b"if-none-match",
        b"referer",
        b"user-agent",
    }
)


class BadEntry(ValueError):
    """A frontier entry that is not a request of this crawl (the reason is its message)."""


def dumps(request: dict[str, Any]) -> bytes:
    """An entry from ``Request.to_dict(spider=...)``."""
    for field, empty in (("body", b""), ("cookies", {}), ("cb_kwargs", {}), ("encoding", "utf-8")):
        if request.get(field, empty) != empty:
            raise ValueError(f"a shared frontier does not carry a request's {field}")
    if "_class" in request:
        raise ValueError("a shared frontier carries scrapy.Request only")
    entry = {name: request[name] for name in FIELDS}
    entry["headers"] = {
        name.decode("latin-1"): [v.decode("latin-1") for v in values]
        for name, values in request["headers"].items()
        if name.lower() in HEADERS
    }
    entry["meta"] = {k: v for k, v in request["meta"].items() if k in META}
    return orjson.dumps(entry)


def loads(data: bytes) -> dict[str, Any]:
    """The ``request_from_dict`` input of an entry; ``BadEntry`` if it is not one."""
    try:
        entry = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BadEntry("not JSON") from None
    if not isinstance(entry, dict):
        raise BadEntry(f"not a request entry: a JSON {type(entry).__name__}")
    if entry.keys() != FIELDS.keys():
        raise BadEntry("not a request entry: fields " + ", ".join(sorted(entry))[:200])
    _check(entry, FIELDS, "field")
    meta = entry["meta"]
    _check(meta, META, "meta key")
    if any(isinstance(v, int) and v < 0 for v in meta.values()):
        raise BadEntry("meta: a negative count")
    for name, items, kinds in (
        ("redirect_urls", meta.get("redirect_urls", ()), str),
        ("redirect_reasons", meta.get("redirect_reasons", ()), str | int),
        ("flags", entry["flags"], str),
    ):
        if not all(isinstance(v, kinds) for v in items):
            raise BadEntry(f"{name}: not a list of strings")
    entry["headers"] = _headers(entry["headers"])
    return entry


def _check(values: dict[str, Any], types: dict[str, Any], what: str) -> None:
    for name, value in values.items():
        if name not in types:
            raise BadEntry(f"unexpected {what} {name[:80]!r}")
        if not isinstance(value, types[name]):
            raise BadEntry(f"{what} {name}: {type(value).__name__}")


def _headers(headers: dict[str, Any]) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    for name, values in headers.items():
        try:
            key = name.encode("latin-1")
            if key.lower() not in HEADERS or not isinstance(values, list):
                raise BadEntry(f"header {name[:80]!r}")
            raw = [v.encode("latin-1") for v in values]
        except (AttributeError, UnicodeEncodeError):
            raise BadEntry(f"header {name[:80]!r}: not latin-1 text") from None
        if any(b"\r" in v or b"\n" in v or b"\0" in v for v in raw):
            raise BadEntry(f"header {name[:80]!r}: a line break")
        out[key] = raw
    return out
