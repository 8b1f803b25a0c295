"""What an incremental run walks of an autoblog, from what earlier runs archived.

The spider asks; this answers with URLs and counts its decisions. Kept apart from the
spider because it is the one place the incremental stop rule lives (docs/history.md).
"""

from __future__ import annotations

from collections import Counter

from scrapy.statscollectors import StatsCollector

from crawler.counters import Stat
from crawler.history.service import HistoryService
from crawler.parsing import ParsedPage
from crawler.urls import canonical_url


class IncrementalWalk:
    """The incremental rules of one run, over the crawl history ``state``."""

    def __init__(self, state: HistoryService, stats: StatsCollector) -> None:
        self.state = state
        self.stats = stats
        self._known_pages: Counter[str] = Counter()
        # Autoblog base -> whether this run walks it in full (see first_walk).
        self._first_walk: dict[str, bool] = {}

    def unchanged(self, url: str, base: str, digest: str | None) -> bool:
        """An autoblog whose first page lists the same articles is skipped."""
        if url != base or digest is None:
            return False
        previous = self.state.archived_before(url)
        if previous is None or previous.normalized_digest != digest:
            return False
        self.stats.inc_value(Stat.UNCHANGED_AUTOBLOGS)
        return True

    def unarchived_pages(self, url: str, page: ParsedPage, base: str) -> list[str]:
        """The pages an autoblog's first page lists that no run captured.

        When an autoblog gains articles its pagination shifts and new last pages appear
        past where the newest-first walk stops; without them the archive's newest pages
        link to pages it does not hold. Each is fetched once and does not continue the
        walk (the spider marks it ``tail_page``).
        """
        if url != base or self.first_walk(base):
            return []  # walked in full: its pages are not tail pages
        found = [
            link
            for link in page.page_links
            if link != base and self.state.archived_before(link) is None
        ]
        if found:
            self.stats.inc_value(Stat.UNARCHIVED_PAGES, len(found))
        return found

    def pages_to_walk(self, page: ParsedPage, base: str) -> list[str]:
        """Newest first, until known articles.

        Follows "older" only while pages still show articles no earlier run archived,
        plus ``INCREMENTAL_MARGIN_PAGES`` pages of margin, and always into a page no run
        captured. An autoblog no earlier run archived is walked in full
        (:meth:`first_walk`).
        """
        state = self.state
        if self.first_walk(base):
            return page.page_links
        if page.kind != "index" or page.next_page is None:
            return []
        if state.archived_before(page.next_page) is None:
            # Past where earlier walks ended: a 0.1 engine's new tail is only reached so.
            return [page.next_page]
        if any(a.permalink and not state.article_known_before(a.permalink) for a in page.articles):
            self._known_pages[base] = 0
        else:
            self._known_pages[base] += 1
        if self._known_pages[base] > state.margin_pages:
            self.stats.inc_value(Stat.WALKS_STOPPED)
            return []
        return [page.next_page]

    def first_walk(self, base: str) -> bool:
        """Whether an autoblog is walked in full: no earlier run archived its first page,
        so there is nothing known to stop at. (A 0.1 engine links only the next page: cut
        where the incremental rule stops, it stayed cut for good.)"""
        if base not in self._first_walk:
            self._first_walk[base] = self.state.archived_before(base) is None
        return self._first_walk[base]

    def old_last_page(self, url: str, page: ParsedPage, base: str) -> str | None:
        """An engine that links only the next page (0.1), first page changed: the last
        page an earlier run archived, to fetch again. Growth pushed articles past it onto
        pages page 1 does not name; from it the walk goes on into the pages no run
        captured (:meth:`pages_to_walk`)."""
        following = page.next_page
        if url != base or following is None:
            return None
        if set(page.page_links) != {following} or self.first_walk(base):
            return None
        last = self.state.last_numbered_page(following)
        if last is not None and last != canonical_url(following):
            self.stats.inc_value(Stat.OLD_LAST_PAGES)
            return last
        return None
