"""URL keys and shapes shared by the spider, the history and the corpus.

Permalinks parsed from a page keep their raw accents (``?vidéo``); requests and
``WARC-Target-URI`` carry ``?vid%C3%A9o``. Every component that compares URLs goes
through :func:`canonical_url` so both spellings meet. What a URL's shape says (an
autoblog's root, a numbered page) is decided here too, from the URL alone.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from w3lib.url import safe_url_string

# Pages of one autoblog; whole query string selects the page (no ?page= parameter).
PAGE_QUERY = re.compile(r"^(?:page)?\d+$")


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


def is_autoblog_root(url: str) -> bool:
    """An autoblog's own base URL (no query, no last path segment): always its first index
    page, even when it shows one article and no pagination (a new autoblog); every engine's
    permalink has a query (0.3, 0.1) or a last segment (0.2)."""
    parts = urlsplit(url)
    return not parts.query and parts.path.rsplit("/", 1)[-1] in ("", "index.php")


def is_index_page(url: str) -> bool:
    """An autoblog's numbered page: ``?N`` / ``?pageN`` query, or a 0.2 ``/<sha1>/N`` path."""
    parts = urlsplit(url)
    if parts.query:
        return bool(PAGE_QUERY.match(parts.query))
    return parts.path.rstrip("/").rsplit("/", 1)[-1].isdigit()


# Re-rooted on the autoblog base: 0.2 pages link "?feed" relative to every page.
AUTOBLOG_QUERY_RESOURCES = {"feed", "opml", "media"}


def autoblog_files(links: list[str], base: str) -> list[str]:
    """Feed, OPML, media list, vvb.ini and articles.db, re-rooted on the autoblog base."""
    found: list[str] = []
    for link in links:
        parts = urlsplit(link)
        if parts.query in AUTOBLOG_QUERY_RESOURCES:
            found.append(base + "?" + parts.query)
        elif parts.path.endswith(("/vvb.ini", "/articles.db")) and not parts.query:
            found.append(link)
    return found
