"""The history service of a cluster worker: its questions answered for every worker, from Redis.

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

from crawler.cluster import Keys, connect
from crawler.context import ClusterOptions
from crawler.counters import Stat
from crawler.history.model import Capture
from crawler.history.service import FULL, HistoryService, _successful
from crawler.history.store import History
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
        """Record locally, and share a successful capture with the other workers."""
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
        """Record the page's digest locally, and on the shared capture of this worker."""
        self.local.set_normalized_digest(record_id, digest)
        mine = self._mine.pop(record_id, None)
        if mine is not None:
            updated = dataclasses.replace(mine, normalized_digest=digest)
            self.client.hset(self.keys.captures, mine.url, _dump(updated, self.run))

    def find_original(self, url: str, payload_digest: str) -> Capture | None:
        """The earlier cluster runs' capture of this payload at ``url``, if any worker made one."""
        raw = self.client.hget(self.keys.originals, f"{payload_digest} {canonical_url(url)}")
        original = _load(raw)
        return original if original is not None and original.run_id < self.run else None

    def note_article(
        self, permalink: str, autoblog: str, run_id: int, normalized_digest: str | None = None
    ) -> None:
        """Note locally, and the article's first cluster run in Redis (once per worker)."""
        self.local.note_article(permalink, autoblog, run_id, normalized_digest)
        key = canonical_url(permalink)
        if key not in self._noted:
            self._noted.add(key)
            self.client.hsetnx(self.keys.articles, key, self.run)

    def articles_known_before(self, run_id: int) -> set[str]:
        """Permalinks an earlier cluster run saw (``run_id`` is the local one: unused)."""
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
        """The cluster run that first saw ``permalink``, or None."""
        raw = self.client.hget(self.keys.articles, canonical_url(permalink))
        return int(raw) if raw else None


class SharedHistoryService(HistoryService):
    """:class:`~crawler.history.service.HistoryService` of a worker: its run follows the
    cluster run.

    :func:`crawler.services.open_history` builds this one for a worker of a shared
    frontier (``CLUSTER_CRAWL_ID`` set). Its history answers the cross-worker questions
    from Redis (:class:`SharedHistory`), and the WARC files of every worker name the
    cluster run in their warcinfo, so a history rebuilt from the merged WARCs groups
    captures by cluster run.
    """

    keys: Keys
    cluster_run: int
    cluster_mode: str
    shared: SharedHistory

    def join(self, cluster: ClusterOptions) -> SharedHistoryService:
        """Answer from the cluster's Redis too (the local history is open)."""
        assert self.history is not None
        self.keys = Keys(cluster.crawl_id)
        self.cluster_run = cluster.run
        self.cluster_mode = cluster.mode or FULL
        self.shared = SharedHistory(
            self.history, connect(cluster.redis_url), self.keys, self.cluster_run
        )
        # A proxy of the local History (its __getattr__), not a subclass of it.
        self.history = self.shared  # type: ignore[assignment]
        self.count(Stat.CLUSTER_RUN, self.cluster_run)  # the stats name the cluster run
        return self

    def _mode(self) -> str:
        return self.cluster_mode

    def _archive_run(self, run_id: int) -> int | None:
        return self.cluster_run

    def _earlier_captures(self, run_id: int) -> bool:
        return self.cluster_run > 1

    def archived_before(self, url: str) -> Capture | None:
        """The newest successful capture of ``url`` by any worker in an earlier cluster run."""
        capture = self.shared.archived_before(url)
        return capture if _successful(capture) else None

    def article_known_before(self, permalink: str) -> bool:
        """Was the article seen by an earlier cluster run (the incremental stop rule)?"""
        first = self.shared.article_first_run(permalink)
        return first is not None and first < self.cluster_run
