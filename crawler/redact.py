"""What may be shown or stored of a URL or a command line: never its credentials.

A Redis URL carries its password (``redis://:secret@host:6379/0``, or ``?password=``),
and ``worker --redis URL`` puts it on the command line, which the history, the run lock,
the report and the summary keep. Everything that shows or stores a URL or a command
line goes through :func:`redacted_url` or :func:`redacted_command`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# Schemes whose URL is a Redis connection: redis-py reads a password from its query too.
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


def redacted_url(url: str) -> str:
    """``url`` with its credentials masked: ``redis://***@host:port/db``.

    User and password become ``***``; so does every query value of a Redis URL (redis-py
    takes ``?password=``). A Redis URL with an ``@`` past its host (a password holding an
    unescaped ``/``, ``?`` or ``#``) shows only its scheme: no guess at where a password
    ends is printed.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        scheme, sep, _ = url.partition("://")
        return f"{scheme}{sep}{MASK}"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    if parts.scheme.lower() not in REDIS_SCHEMES:
        return urlunsplit(parts._replace(netloc=netloc))
    if "@" in parts.path or "@" in parts.query or parts.fragment:
        return f"{parts.scheme}://{MASK}"
    query = "&".join(f"{p.partition('=')[0]}={MASK}" for p in parts.query.split("&") if p)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redacted_command(argv: Sequence[str] | None = None) -> str:
    """The command line (``sys.argv`` by default) as the history and the run lock keep it:
    every URL in it redacted, ``--redis=URL`` and ``NAME=URL`` included."""
    return " ".join(_redacted_arg(arg) for arg in (sys.argv if argv is None else argv))


def _redacted_arg(arg: str) -> str:
    at = arg.find("://")
    if at < 0:
        return arg
    start = at
    while start > 0 and arg[start - 1] in SCHEME_CHARS:
        start -= 1
    while start < at and not arg[start].isalpha():  # a scheme starts with a letter
        start += 1
    return arg[:start] + redacted_url(arg[start:])
