"""What the components of one crawl share, created once per crawl and handed to each.

Scrapy hands every component the crawler, its settings, stats and signals; this adds the
two things our components share beyond those, keyed by the crawler like Scrapy's stats:

- the history service (:class:`crawler.history.service.HistoryService`): created and
  opened once, by :class:`crawler.extensions.CrawlState` (the first extension built, so
  the folder is locked and repaired before anything else), and handed to the spider, the
  downloader middlewares and the pipelines through :func:`history_of` in their
  ``from_crawler``. A spider used outside a crawl (``seed``, ``reconcile``) gets None;
  a worker of a Redis cluster gets the shared implementation, behind the same interface;
- the run's results (:class:`RunResults`): the part of the summary and the verdict each
  component owns, written by that component alone and read once Scrapy has stopped
  (:func:`crawler.crawl_summary.summarize`).

So no component looks another up through the crawler: each is given what it needs.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler

from crawler.context import RunContext
from crawler.counters import Stat
from crawler.history.audit import AuditBounds
from crawler.history.service import HistoryService
from crawler.items import BaseFound


@dataclass
class Findings:
    """What the crawl found (crawler.extensions.RunSummary): per autoblog its engine,
    pages and articles; what answered at each seed; the bases that gave no autoblog page;
    the first failed fetch."""

    autoblogs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seeds: dict[str, BaseFound] = field(default_factory=dict)
    not_archived: dict[str, BaseFound] = field(default_factory=dict)
    first_failure: str | None = None


@dataclass
class RunResults:
    """Each component's part of the summary and the verdict, written by its owner."""

    found: Findings = field(default_factory=Findings)
    # The capture (pipelines.warc_capture): the files it closed, the error that stopped it.
    warc_files: list[Path] = field(default_factory=list)
    warc_write_error: str | None = None
    # The indexes (crawler.extensions.IndexOnClose): what they wrote, or why they failed.
    written: dict[str, str] = field(default_factory=dict)
    index_error: str | None = None
    # The corpus (pipelines.research_corpus): its records and shards, or its shortfall.
    corpus_records: int = 0
    corpus_shards: list[str] = field(default_factory=list)
    corpus_shortfall: dict[str, Any] | None = None
    # Throttling (crawler.backoff): the pages given up on, the hosts slowed.
    throttled: dict[str, Any] | None = None


@dataclass
class _Shared:
    results: RunResults = field(default_factory=RunResults)
    history: HistoryService | None = None


_shared: weakref.WeakKeyDictionary[Crawler, _Shared] = weakref.WeakKeyDictionary()


def _of(crawler: Crawler) -> _Shared:
    shared = _shared.get(crawler)
    if shared is None:
        shared = _shared[crawler] = _Shared()
    return shared


def results_of(crawler: Crawler) -> RunResults:
    """The crawl's results, each component's part (empty until the component writes it)."""
    return _of(crawler).results


def history_of(crawler: Crawler) -> HistoryService | None:
    """The crawl's history service, or None (``HISTORY_ENABLED=False``, or no crawl yet)."""
    return _of(crawler).history


def open_history(crawler: Crawler) -> HistoryService:
    """Create the crawl's history service and open it: lock the folder, repair it, check
    the history (``RunLockedError``, ``HistoryError``). Once per crawl."""
    shared = _of(crawler)
    if shared.history is not None:
        raise RuntimeError("the crawl's history is already open")
    context = RunContext.of(crawler)
    options = context.history

    def count(stat: Stat, value: int) -> None:
        if crawler.stats is not None:
            crawler.stats.inc_value(stat, count=value)

    made: dict[str, Any] = dict(
        layout=context.layout,
        mode=options.mode,
        full_every=options.full_every,
        margin_pages=options.margin_pages,
        command=options.command,
        read_limit=context.bounds.read_limit,
        audit_bounds=AuditBounds.of(context) if context.audit.enabled else None,
        count=count,
    )
    if not context.cluster.enabled:
        shared.history = HistoryService(**made).open()
        return shared.history
    # A worker of a shared frontier; Redis is the [cluster] extra: imported only here.
    from crawler.history.shared import SharedHistoryService

    worker = SharedHistoryService(**made).open()
    try:
        shared.history = worker.join(context.cluster)
    except BaseException:
        worker.close()
        raise
    return worker
