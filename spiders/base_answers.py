"""What answered at a seed or an autoblog's base URL, reported (``base_found``).

An autoblog that gives no page is named, never silently missing: the run's summary
lists each seed and base with what answered there, and a wrong answer makes it partial.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.http import Response

from crawler.counters import Stat
from crawler.history.model import NOT_NOW
from crawler.items import REASON_KEY, BaseFound, base_found
from crawler.parsing import ParsedPage

# Why a seed or an autoblog's base URL is asked for.
BASE_REASONS = ("seed", "listed autoblog", "farm list", "farm export")


def asked_base(request: Request) -> tuple[str, str] | None:
    """(URL as asked, why) when ``request`` asks for a seed or an autoblog's base."""
    reason = request.meta.get(REASON_KEY)
    if reason not in BASE_REASONS:
        return None
    url = (request.meta.get("redirect_urls") or [request.url])[0]
    return None if "?" in url else (url, reason)  # the farm's ?export is no autoblog


def base_answered(
    crawler: Any, request: Request, kind: str, why: str = "", count: bool = False
) -> None:
    """Report what answered; ``count`` a failure not counted yet (an answer, not a
    failed fetch) under ``autoblogs/not_archived``, which makes the run partial."""
    asked = asked_base(request)
    if asked is None:
        return
    found = BaseFound(asked[0], asked[1], kind, why)
    if count and not found.ok:
        crawler.stats.inc_value(Stat.NOT_ARCHIVED)
    crawler.signals.send_catch_log(base_found, found=found)


def base_read(crawler: Any, response: Response, page: ParsedPage | None) -> None:
    """A seed must hold a farm or an autoblog, an autoblog's base an autoblog page;
    anything else (a 404, a server error, a PNG, another site) is named and makes the
    run partial (``autoblogs/not_archived``)."""
    request = response.request
    asked = asked_base(request) if request is not None else None
    if request is None or asked is None:
        return
    status = response.status
    ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").split(";")[0]
    # The server's words go into the summary and the terminal: short and printable.
    ctype = "".join(c for c in ctype.strip().lower()[:80] if c.isprintable())
    ctype = ctype or "with no Content-Type"
    found = page.kind if page is not None and page.kind == "farm" else None
    if page is not None and page.engine and found is None:
        found = "autoblog"
    if status < 400 and (found == "autoblog" or (found == "farm" and asked[1] == "seed")):
        base_answered(crawler, request, found)
        return
    if status == 404 and asked[1] == "farm export":
        # ?export names folders, not addresses: a 0.2 autoblog is at /<sha1>/, its
        # export key autoblogs/<sha1>; the farm's index lists it where it is.
        return
    # A server error or "too many requests / too slow" is no answer yet (2: try again);
    # anything else says the address is wrong (4: fix the command).
    failed = status >= 500 or status in NOT_NOW
    if failed:
        why = f"answered {status} {ctype}"  # what it serves otherwise is unknown
    elif page is None:
        why = f"answered {status} {ctype}, not an HTML page"
    elif found == "farm":
        why = f"answered {status} {ctype}: the farm's index, not an autoblog"
    elif found is None:
        what = "an autoblog farm or autoblog" if asked[1] == "seed" else "an autoblog"
        why = f"answered {status} {ctype} but is not {what} (no VroumVroumBlog markup)"
    else:
        why = f"answered {status} {ctype}"
    base_answered(crawler, request, "failed" if failed else "not_autoblog", why, count=True)
