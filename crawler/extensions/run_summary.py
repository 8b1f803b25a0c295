"""What the crawl found, per autoblog, and the first thing that went wrong: for the summary
the command line prints and writes to ``summary.json``.

Built from the spider's items (``item_scraped``), failed fetches (``fetch_failed``) and
what answered at the seeds and the autoblogs' base URLs (``base_found``), never from the
spider's own attributes. Which permalinks were already counted is asked of
a :class:`crawler.spill.DiskMap`: a set of every article's URL would grow with the crawl.
"""

from __future__ import annotations

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Request

from crawler.counters import Stat
from crawler.items import ArticleItem, BaseFound, PageItem, base_found, fetch_failed
from crawler.services import Findings, results_of
from crawler.spill import DiskMap


class RunSummary:
    """Per autoblog: engine, pages read, distinct articles seen; the first failed fetch;
    what answered at each seed, and every autoblog base that gave no autoblog page."""

    def __init__(self, found: Findings, stats=None) -> None:
        # The crawl's results hold what it found: the summary reads them at the end.
        # Bases (and seeds) that gave no autoblog page are kept once per farm listing at
        # most (every base is asked for once, the scheduler's dupe filter sees to it).
        self.found = found
        self.stats = stats
        self._permalinks = DiskMap()  # permalinks counted, used as a set

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunSummary:
        """Build it and connect it to the crawl's signals."""
        ext = cls(results_of(crawler).found, crawler.stats)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(ext.fetch_failed, signal=fetch_failed)
        crawler.signals.connect(ext.base_found, signal=base_found)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def _entry(self, autoblog: str) -> dict:
        return self.found.autoblogs.setdefault(
            autoblog, {"engine": None, "pages": 0, "articles": 0}
        )

    def item_scraped(self, item: object, response=None, spider=None) -> None:
        """Count a page for its autoblog (engine, pages, articles)."""
        if isinstance(item, PageItem) and item.engine and item.autoblog:
            entry = self._entry(item.autoblog)
            entry["engine"] = entry["engine"] or item.engine
            entry["pages"] += 1
            if item.captured is not None and self.stats is not None:
                # A run exists only once it holds one (crawler.counters.captures_held).
                self.stats.inc_value(Stat.AUTOBLOG_PAGES)
        elif isinstance(item, ArticleItem) and item.permalink:
            if not self._permalinks.add(item.permalink):
                return
            self._entry(item.autoblog)["articles"] += 1
            if self.stats is not None:
                self.stats.inc_value(Stat.ARTICLES_FOUND)

    def spider_closed(self, spider=None, reason: str | None = None) -> None:
        """No item comes after: the counts are kept, the permalinks dropped."""
        self._permalinks.close()

    def fetch_failed(self, request: Request, reason: str) -> None:
        """Keep the run's first failure for the summary."""
        if self.found.first_failure is None:
            self.found.first_failure = f"{request.url}: {reason}"

    def base_found(self, found: BaseFound) -> None:
        """Keep what answered at a seed or an autoblog's base."""
        if found.asked_as == "seed":
            self.found.seeds[found.url] = found
        if found.ok:
            self.found.not_archived.pop(found.url, None)
        else:
            self.found.not_archived.setdefault(found.url, found)
