"""Bounds of one run: pages per run, pages per autoblog, links per page.

An endless pagination or a farm larger than anyone planned for must not make a run
endless. A page bound does not stop the crawl dead: past it, requests are refused and
counted, the run ends as partial (exit 1) and stays resumable, so the next run with the
same seeds continues it. Pages that run already captured are read back from the WARCs
(:class:`crawler.middlewares.ResumeFromArchive`, which sits before the bound) and do not
count, so each run gets further and any farm is reached in finitely many runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from scrapy import Request

from crawler.counters import Stat, bound_skipped

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinksCut:
    """Yielded by a callback beside its requests: ``count`` links it left out at the source
    (a sitemap, an export, a page's lists past ``MAX_LINKS_PER_PAGE``) without building
    them; :func:`bounded_links` adds them to what it cuts and reports both once."""

    count: int


def bounded_links(results: Iterable[Any], limit: int, stats: Any, url: str) -> Iterator[Any]:
    """A callback's output with at most ``limit`` requests (0 = all); items always pass.

    What is cut is counted under ``skipped`` and makes the run partial: those links are
    left out of this run, not deferred to the next.
    """
    sent = dropped = 0
    for result in results:
        if isinstance(result, LinksCut):
            dropped += result.count
            continue
        if isinstance(result, Request) and limit:
            if sent >= limit:
                dropped += 1
                continue
            sent += 1
        yield result
    if dropped:
        logger.warning("%s: %d links past MAX_LINKS_PER_PAGE=%d not followed", url, dropped, limit)
        stats.inc_value(bound_skipped(f"MAX_LINKS_PER_PAGE={limit}"), count=dropped)
        stats.inc_value(Stat.LINKS_CUT)


def read_in_part(stats: Any, url: str, bound: str) -> None:
    """Counts a page or file read only up to ``bound`` (named under "skipped"): the run
    is partial, since what lies past the bound was not followed (a page) or not obeyed
    (robots.txt)."""
    logger.warning("%s: read up to %s only", url, bound)
    stats.inc_value(bound_skipped(bound))
    stats.inc_value(Stat.READ_IN_PART)
