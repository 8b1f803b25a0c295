"""Crawl-time corpus: feeds every captured autoblog page to :class:`crawler.corpus.CorpusBuilder`.

The spider yields a :class:`crawler.items.PageItem` for each HTML page it parsed (body
as Scrapy decoded it, headers, status, and where the capture put it). The
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
from scrapy.statscollectors import StatsCollector
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from crawler.context import CorpusOptions, RunContext
from crawler.corpus.builder import CorpusBuilder
from crawler.counters import Stat
from crawler.history.service import HistoryService
from crawler.items import PageItem, RunInfo, run_started
from crawler.layout import OutputLayout
from crawler.services import RunResults, history_of, results_of

logger = logging.getLogger(__name__)


class CorpusPipeline:
    """Queues every archived page for extraction; writes the run's corpus at the end."""

    def __init__(self, layout: OutputLayout, options: CorpusOptions, read_limit: int) -> None:
        self.layout = layout
        self.options = options  # workers, time limit, recycling, CORPUS_MIN_RECORDS
        self.read_limit = read_limit
        self.stats: StatsCollector | None = None
        self.state: HistoryService | None = None  # the crawl history, if the crawl keeps one
        # Records, shards, or the shortfall, for the summary: the crawl's, once built by it.
        self.results = RunResults()
        self.run_id: int | None = None
        self.builder: CorpusBuilder | None = None
        self.article_pages = 0  # article pages (HTTP 200) queued for extraction

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CorpusPipeline:
        """Build it from the run context (NotConfigured without a corpus)."""
        context = RunContext.of(crawler)
        if not context.corpus.enabled:
            raise NotConfigured
        pipeline = cls(context.layout, context.corpus, context.bounds.read_limit)
        pipeline.stats = crawler.stats
        pipeline.state = history_of(crawler)
        pipeline.results = results_of(crawler)
        crawler.signals.connect(pipeline.run_started, signal=run_started)
        # Ctrl-C once stops the crawl gracefully (the corpus is written); twice stops the
        # reactor now: the workers are stopped before the reactor waits for its threads
        # (the corpus's close among them), so "now" does not wait for extraction.
        from twisted.internet import reactor

        reactor.addSystemEventTrigger("before", "shutdown", pipeline.abandon)  # type: ignore[arg-type]
        return pipeline

    def _count(self, key: Stat) -> None:
        if self.stats is not None:
            self.stats.inc_value(key)

    def run_started(self, run: RunInfo) -> None:
        """Keep the run id: the corpus of this run goes in its folder."""
        self.run_id = run.id

    def _builder(self) -> CorpusBuilder:
        """Created on the first page, once the run (and so its folder) is known."""
        if self.builder is None:
            self.builder = CorpusBuilder(
                self.layout.root,
                self.options,
                self.read_limit,
                corpus_dir=self.layout.run_corpus(self.run_id),
            )
        return self.builder

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        """Hand an archived page to the corpus builder."""
        if not isinstance(item, PageItem):
            return item
        captured = item.captured
        if captured is None:
            self._count(Stat.CORPUS_WITHOUT_WARC)
            return item
        if captured.record_type == "revisit":
            self._count(Stat.CORPUS_UNCHANGED)
            return item
        queued = self._builder().add_page(
            item.url,
            body=item.body,
            headers=item.headers,
            http_status=item.http_status,
            warc_pointer=captured.pointer.as_dict()
            | {"payload_digest": captured.payload_digest, "http_status": captured.http_status},
            crawl_date=captured.warc_date,
            parsed=item.parsed,
            text=item.text,
        )
        # Body and parse are no longer needed once queued: items stay small for later stages.
        item.body, item.parsed, item.text = b"", None, None
        self._count(Stat.CORPUS_QUEUED if queued else Stat.CORPUS_IGNORED)
        if queued and item.kind == "article" and item.http_status == 200:
            self.article_pages += 1
        return item

    async def close_spider(self, spider: Spider | None = None) -> None:
        """Finish the corpus once the crawl ends (in a thread)."""
        if self.builder is None:
            return
        builder = self.builder
        known = self.state.articles_known_before() if self.state is not None else set()
        try:
            shards = await maybe_deferred_to_future(deferToThread(builder.close, known))
        except Exception as exc:  # noqa: BLE001 - said in the verdict, never a silent loss
            logger.exception("corpus: writing the run's corpus failed")
            self._short(0, f"writing the corpus failed: {type(exc).__name__}: {exc}")
            return
        finally:
            self.builder = None
        if self.stats is not None:  # pages whose spider parse the workers reused
            self.stats.set_value(
                Stat.CORPUS_PARSES_REUSED, builder.stats.extra.get("parses_reused", 0)
            )
            self.stats.set_value(Stat.CORPUS_PROCESSES, builder.pool.stats["spawned"])
        self.results.corpus_shards = [str(s) for s in shards]
        self.results.corpus_records = (
            builder.stats.permalink_records + builder.stats.index_only_records
        )
        made = builder.stats.permalink_records
        if made < self.options.min_records * self.article_pages:
            why = builder.stats.first_failure or "extraction gave no record for them"
            self._short(made, f"{builder.stats.failures} pages failed extraction, first: {why}")

    def _short(self, records: int, why: str) -> None:
        """Far fewer records than article pages: the run is partial (``corpus/shortfall``).

        The WARCs hold every page, so ``autoblog-archive extract`` rebuilds the corpus."""
        self.results.corpus_shortfall = {
            "article_pages": self.article_pages,
            "records": records,
            "why": why,
        }
        logger.error(
            "corpus: %d records for %d article pages captured (%s)",
            records,
            self.article_pages,
            why,
        )
        self._count(Stat.CORPUS_SHORTFALL)

    def abandon(self) -> None:
        """The crawl is stopped now (a second Ctrl-C): stop the extraction workers, write
        no corpus (the resumed run writes this run's corpus whole)."""
        builder, self.builder = self.builder, None
        if builder is not None:
            builder.pool.stop()
