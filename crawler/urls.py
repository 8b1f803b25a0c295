"""URL keys shared by the spider, the history and the corpus.

Permalinks parsed from a page keep their raw accents (``?vidéo``); requests and
``WARC-Target-URI`` carry ``?vid%C3%A9o``. Every component that compares URLs goes
through :func:`canonical_url` so both spellings meet.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from w3lib.url import safe_url_string


def canonical_url(url: str) -> str:
    """The URL as a crawler requests it (percent-encoded UTF-8), without fragment."""
    parts = urlsplit(safe_url_string(url.strip(), encoding="utf-8"))
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, ""))


def autoblog_base(url: str) -> str:
    """The autoblog a URL belongs to: its path cut after the last ``/``, no query.

    Holds for every engine: ``B?N``, ``B?slug`` (0.3, 0.1), ``/<sha1>/N`` and
    ``/<sha1>/slug`` (0.2) all give ``B``.
    """
    parts = urlsplit(canonical_url(url))
    path = parts.path[: parts.path.rfind("/") + 1] or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def page_number(url: str) -> tuple[str, int] | None:
    """(prefix, N) of a URL that ends in a page number (``…/?12``, ``…?page12``, ``…/12``),
    or None. Linear in the URL's length: URLs come from farm pages."""
    prefix = url.rstrip("0123456789")
    digits = url[len(prefix) :]
    if not digits or len(digits) > 12:
        return None
    return prefix, int(digits)
