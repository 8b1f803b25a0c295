"""The crawl history's questions answered for the whole cluster, from Redis.

Each worker keeps its own ``history.sqlite`` (resume, its own WARC files); what the
spider and the capture ask across workers (archived before? with which payload? did an
earlier run see this article?) is answered from Redis hashes every worker writes to, in
cluster run numbers, so a page one worker archived is a revisit for another and an
incremental run works whichever worker fetched what last time.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import orjson
from scrapy import Spider, signals
from scrapy.crawler import Crawler

from crawler.cluster import Keys, connect
from crawler.history import Capture, History, warcinfo_run_fields
from crawler.state import FULL, CrawlState, crawl_state
from crawler.urls import canonical_url

logger = logging.getLogger(__name__)


def _dump(capture: Capture, run: int) -> str:
    # The field values only, in Capture's order: half the memory of a JSON object.
    return orjson.dumps(dataclasses.astuple(dataclasses.replace(capture, run_id=run))).decode()


def _load(raw: str | None) -> Capture | None:
    return Capture(*orjson.loads(raw)) if raw else None


class SharedHistory:
    """The worker's History, with the cross-worker questions answered from Redis.

    Everything else is the local history (``__getattr__``): resume, reconcile, reports.
    """

    def __init__(self, local: History, client: Any, keys: Keys, run: int) -> None:
        self.local = local
        self.client = client
        self.keys = keys
        self.run = run  # the cluster run number
        # Fewer round trips (each blocks the crawl's loop): this worker's captures until
        # their page is parsed, and the permalinks it already noted.
        self._mine: dict[str, Capture] = {}
        self._noted: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.local, name)

    def record_capture(self, **fields: Any) -> None:
        self.local.record_capture(**fields)
        url = canonical_url(fields["url"])
        status = fields.get("status") or 0
        if not 200 <= status < 400:
            return
        capture = Capture(**{"normalized_digest": None, **fields, "url": url, "run_id": self.run})
        self._mine[capture.record_id] = capture
        raw = _dump(capture, self.run)
        old = _load(self.client.hget(self.keys.captures, url)) if self.run > 1 else None
        pipe = self.client.pipeline()
        if old is not None and old.run_id < self.run:
            pipe.hset(self.keys.previous, url, _dump(old, old.run_id))
        pipe.hset(self.keys.captures, url, raw)
        if capture.record_type == "response" and capture.payload_digest:
            pipe.hsetnx(self.keys.originals, f"{capture.payload_digest} {url}", raw)
        pipe.execute()

    def set_normalized_digest(self, record_id: str, digest: str | None) -> None:
        self.local.set_normalized_digest(record_id, digest)
        mine = self._mine.pop(record_id, None)
        if mine is not None:
            updated = dataclasses.replace(mine, normalized_digest=digest)
            self.client.hset(self.keys.captures, mine.url, _dump(updated, self.run))

    def find_original(self, url: str, payload_digest: str) -> Capture | None:
        raw = self.client.hget(self.keys.originals, f"{payload_digest} {canonical_url(url)}")
        original = _load(raw)
        return original if original is not None and original.run_id < self.run else None

    def note_article(
        self, permalink: str, autoblog: str, run_id: int, normalized_digest: str | None = None
    ) -> None:
        self.local.note_article(permalink, autoblog, run_id, normalized_digest)
        key = canonical_url(permalink)
        if key not in self._noted:
            self._noted.add(key)
            self.client.hsetnx(self.keys.articles, key, self.run)

    def articles_known_before(self, run_id: int) -> set[str]:
        return {p for p, r in self.client.hgetall(self.keys.articles).items() if int(r) < self.run}

    def archived_before(self, url: str) -> Capture | None:
        """The newest successful capture of ``url`` from an earlier cluster run."""
        url = canonical_url(url)
        for key in (self.keys.captures, self.keys.previous):
            capture = _load(self.client.hget(key, url))
            if capture is not None and capture.run_id < self.run:
                return capture
        return None

    def article_first_run(self, permalink: str) -> int | None:
        raw = self.client.hget(self.keys.articles, canonical_url(permalink))
        return int(raw) if raw else None


class ClusterCrawlState(CrawlState):
    """:class:`~crawler.state.CrawlState` of a worker: its run follows the cluster run.

    Takes the place of ``crawler.state.CrawlState`` in ``EXTENSIONS`` (see
    :func:`crawler.cluster.frontier.worker_settings`); the spider and the capture find it
    through ``crawl_state`` as usual.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.keys = Keys(settings["CLUSTER_CRAWL_ID"])
        self.cluster_run = settings.getint("CLUSTER_RUN")
        self.cluster_mode = settings.get("CLUSTER_MODE", FULL)
        self.shared = SharedHistory(
            self.history, connect(settings["REDIS_URL"]), self.keys, self.cluster_run
        )
        self.history = self.shared  # type: ignore[assignment]

    def _mode(self) -> str:
        return self.cluster_mode

    def spider_opened(self, spider: Spider) -> None:
        super().spider_opened(spider)
        self.has_earlier_captures = self.cluster_run > 1
        self.crawler.stats.set_value("cluster/run", self.cluster_run)

    def archived_before(self, url: str) -> Capture | None:
        capture = self.shared.archived_before(url)
        if capture is None or capture.status is None or not 200 <= capture.status < 400:
            return None
        return capture

    def article_known_before(self, permalink: str) -> bool:
        first = self.shared.article_first_run(permalink)
        return first is not None and first < self.cluster_run


class ClusterRunInfo:
    """Writes the cluster run (not the worker's own run number) into each WARC file's
    ``warcinfo``: a history rebuilt from the merged WARCs groups captures by cluster run.

    Ordered after ``pipelines.warc_capture.WarcCapture`` in ``EXTENSIONS``, so its
    ``spider_opened`` comes last; files are opened at the first capture, after it.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterRunInfo:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        from pipelines.warc_capture import WarcCapture

        state = crawl_state(self.crawler)
        if not isinstance(state, ClusterCrawlState) or state.run is None:
            return
        fields = warcinfo_run_fields(state.cluster_run, state.run.started, state.run.mode)
        for ext in self.crawler.extensions.middlewares:
            if isinstance(ext, WarcCapture):
                ext.writer.warcinfo_fields.update(fields)
