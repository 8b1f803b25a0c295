"""Writes a collection's indexes once the crawl's WARC files are closed.

Triggered by the capture's ``warc_files_closed`` signal (not by its place in an order
list), so ``scrapy crawl`` and ``autoblog-archive crawl`` leave the same output. The
titles of pages.jsonl come from the spider's page items, so indexing need not parse
every page again; they wait on disk (:class:`crawler.spill.DiskMap`), not in memory, so
a big crawl's memory does not grow with its pages.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from scrapy import signals
from scrapy.crawler import Crawler

from crawler.collection import finish_output
from crawler.context import RunContext
from crawler.counters import captures_held
from crawler.items import CrawlPlan, PageItem, crawl_planned, warc_files_closed
from crawler.layout import OutputLayout
from crawler.services import RunResults, results_of
from crawler.spill import DiskMap

logger = logging.getLogger(__name__)


class IndexOnClose:
    """CDXJ, pages.jsonl, pywb config (and WACZ) for the collection, after the last WARC."""

    def __init__(self, layout: OutputLayout, wacz: bool, results: RunResults) -> None:
        self.layout = layout
        self.wacz = wacz
        self.titles = DiskMap()  # page URL -> title, until the indexes are written
        self.crawler: Crawler | None = None
        self.cluster = False  # a worker of a shared frontier keeps every capture
        self.results = results  # what was written, or why not: for the summary
        self.seeds: list[str] = []  # the spider's, for the WACZ's main page

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IndexOnClose:
        """Build it from the run context and connect it to the crawl's signals."""
        context = RunContext.of(crawler)
        ext = cls(context.layout, context.output.wacz, results_of(crawler))
        ext.crawler = crawler
        ext.cluster = context.cluster.enabled
        crawler.signals.connect(ext.crawl_planned, signal=crawl_planned)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(ext.warc_files_closed, signal=warc_files_closed)
        return ext

    def crawl_planned(self, plan: CrawlPlan) -> None:
        """Keep the seeds: the WACZ names the first as its main page."""
        self.seeds = list(plan.seeds)

    def item_scraped(self, item: object, response=None, spider=None) -> None:
        """Keep a page's title for pages.jsonl."""
        if isinstance(item, PageItem) and item.title:
            self.titles[item.url] = item.title

    def warc_files_closed(self, files: list[Path]) -> None:
        """Write the indexes, pages.jsonl, pywb config and WACZ once the WARCs are closed."""
        try:
            stats = self.crawler.stats if self.crawler is not None else None
            if stats is not None and not captures_held(stats.get_stats(), self.cluster):
                return  # nothing captured: the folder stays as it was
            self.results.written = finish_output(
                self.layout, wacz=self.wacz, titles=self.titles, seeds=self.seeds
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            logger.error("writing the indexes of %s failed: %s", self.layout.root, exc)
            self.results.index_error = str(exc)
        finally:
            self.titles.close()
