"""Crawl-time corpus: feeds every captured autoblog page to :class:`crawler.corpus.CorpusBuilder`.

The spider yields a ``page`` item for each HTML page it parsed (body as Scrapy decoded
it, headers, status, and the WARC pointer the capture left in ``response.meta``). The
builder extracts in worker processes, so ``process_item`` only queues; the final
write (``close``) waits for the workers and runs in a thread, off the reactor.

Each run writes its own ``corpus/run-NNNNN/``: a scheduled re-crawl adds the new and
changed articles and leaves earlier shards untouched. Pages captured as ``revisit``
records (unchanged since an earlier run) add nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from crawler.corpus import CorpusBuilder
from crawler.indexes import OutputLayout
from crawler.state import crawl_state

logger = logging.getLogger(__name__)


class CorpusPipeline:
    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("CORPUS_ENABLED", True):
            raise NotConfigured
        self.crawler = crawler
        self.layout = OutputLayout(settings["OUTPUT_DIR"], settings.get("CRAWL_NAME", "autoblog"))
        self.workers = settings.getint("CORPUS_WORKERS", 2)
        self.timeout = settings.getfloat("CORPUS_TIMEOUT", 30.0)
        self.stats = crawler.stats
        self.builder: CorpusBuilder | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CorpusPipeline:
        return cls(crawler)

    def _builder(self) -> CorpusBuilder:
        """Created on the first page, once the run (and so its folder) is known."""
        if self.builder is None:
            state = crawl_state(self.crawler)
            run = state.run if state is not None else None
            folder = self.layout.corpus / (f"run-{run.id:05d}" if run else "run")
            self.builder = CorpusBuilder(
                self.layout.root, workers=self.workers, timeout=self.timeout, corpus_dir=folder
            )
        return self.builder

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        if not isinstance(item, dict) or item.get("type") != "page":
            return item
        pointer = item.pop("warc", None)
        body, headers = item.pop("body"), item.pop("headers")
        if pointer is None:
            self.stats.inc_value("corpus/pages_without_warc")
            return item
        if item.get("warc_record_type") == "revisit":
            self.stats.inc_value("corpus/pages_unchanged")
            return item
        queued = self._builder().add_page(
            item["url"],
            body=body,
            headers=headers,
            http_status=item["http_status"],
            warc_pointer=pointer,
            crawl_date=item["warc_date"],
        )
        self.stats.inc_value("corpus/pages_queued" if queued else "corpus/pages_ignored")
        return item

    async def close_spider(self, spider: Spider | None = None) -> None:
        if self.builder is None:
            return
        builder, self.builder = self.builder, None
        state = crawl_state(self.crawler)
        known: set[str] = set()
        if state is not None and state.run is not None:
            known = state.history.articles_known_before(state.run.id)
        shards = await maybe_deferred_to_future(deferToThread(builder.close, known))
        self.stats.set_value("corpus/shards", [str(s) for s in shards])
        records = builder.stats.permalink_records + builder.stats.index_only_records
        self.stats.set_value("corpus/records", records)
        self.stats.set_value("corpus/index_only_records", builder.stats.index_only_records)
