"""The shared frontier: scrapy-redis scheduler settings, idle exit, cluster politeness.

A worker is an ordinary crawl (``crawler.run.run_crawl``) whose Scrapy settings swap in
scrapy-redis's scheduler and dupe filter (one queue and one seen-set per cluster run,
persistent, so the first worker to finish does not wipe them) and the cluster's crawl
state; the spider, capture, corpus and indexes are the single-process ones. The queue
holds JSON entries (:mod:`crawler.cluster.entries`), each checked as it is popped
(:class:`FrontierQueue`): the Redis is shared, what is read from it is data, never code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.settings import Settings
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.request import request_from_dict
from scrapy_redis.queue import PriorityQueue

from crawler.cluster import Keys, connect, entries
from crawler.context import ClusterOptions, RunContext
from crawler.counters import Stat
from crawler.middlewares import ScopeGuardMiddleware
from crawler.scope import refusal

logger = logging.getLogger(__name__)

# scrapy-redis's pop (the entry of highest priority: ZRANGE, ZREMRANGEBYRANK), run in Redis
# so that an entry over the size bound is removed there and only its size comes back: a
# worker never reads more than the bound. A key that is no sorted set is removed (-1).
POP = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return false end
if kind ~= 'zset' then redis.call('DEL', KEYS[1]); return -1 end
local entry = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, 0)
if string.len(entry) > tonumber(ARGV[1]) then return string.len(entry) end
return entry
"""


def worker_settings(
    redis_url: str, crawl: str, run: int, mode: str, worker: str, name: str
) -> dict[str, Any]:
    """Scrapy settings that make a crawl one worker of cluster run ``run``."""
    from crawler.context import project_settings

    project = project_settings()
    keys = Keys(crawl)
    extensions = project.getdict("EXTENSIONS")
    middlewares = project.getdict("DOWNLOADER_MIDDLEWARES")
    return {
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "SCHEDULER_QUEUE_CLASS": __name__ + ".FrontierQueue",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_PERSIST": True,
        "SCHEDULER_QUEUE_KEY": keys.requests(run),
        "SCHEDULER_DUPEFILTER_KEY": keys.dupefilter(run),
        "REDIS_URL": redis_url,
        "CLUSTER_CRAWL_ID": crawl,
        "CLUSTER_RUN": run,
        "CLUSTER_MODE": mode,
        "CLUSTER_WORKER": worker,
        # The worker id in every WARC file name: files of all workers merge into one folder.
        "WARC_PREFIX": f"{name}-{worker}",
        # A worker's history holds its own captures only: the cluster's completeness is
        # reconcile's to judge, on the merged folder.
        "AUDIT_ENABLED": False,
        # The history service follows CLUSTER_CRAWL_ID: the Redis one (crawler.services).
        "EXTENSIONS": extensions | {__name__ + ".ClusterIdle": 60},
        "DOWNLOADER_MIDDLEWARES": middlewares | {__name__ + ".ClusterPoliteness": 590},
    }


def cluster_of(options: ClusterOptions) -> tuple[Any, Keys]:
    """(Redis client, keys) of the worker's cluster; not a worker: the component is off."""
    if not options.enabled:
        raise NotConfigured
    return connect(options.redis_url), Keys(options.crawl_id)


def seed_queue(redis_url: str, spider: Spider, key: str) -> PriorityQueue:
    """The queue as ``seed`` and ``reconcile`` push their own spider's requests to it."""
    return PriorityQueue(connect(redis_url, decode=False), spider, key, serializer=entries)


def spider_outside_crawl(seeds: list[str], autoblogs: list[str], settings: Settings) -> Any:
    """The crawl's spider with a crawler of its own that crawls nothing (no extension of
    ours: no history, no capture), for ``seed`` and ``reconcile`` to ask which requests
    it makes; its options come from ``settings``, as in a crawl."""
    from scrapy.utils.test import get_crawler

    from crawler.context import context_settings
    from spiders.autoblog import AutoblogSpider

    # Only what the context reads: Scrapy's own defaults for the rest (its reactor
    # settings, no EXTENSIONS of ours).
    crawler = get_crawler(AutoblogSpider, {name: settings[name] for name in context_settings()})
    spider = AutoblogSpider.from_crawler(crawler, urls=seeds, autoblogs=autoblogs)
    crawler.spider = spider
    return spider


class FrontierQueue(PriorityQueue):
    """scrapy-redis's priority queue of a worker (``SCHEDULER_QUEUE_CLASS``): JSON entries
    (:mod:`crawler.cluster.entries`, whatever ``SCHEDULER_SERIALIZER`` says), each checked
    as it is popped.

    An entry that is no request of this crawl (not JSON of the entries' shape, larger than
    ``CLUSTER_MAX_ENTRY_SIZE``, a URL the scope guard refuses, a callback the spider does
    not offer in ``request_callbacks``) is dropped, logged with the queue's key, and
    counted under ``Stat.FRONTIER_REJECTED``, which makes the run partial; the worker goes on
    with the next entry. So that whatever is in the queue out of scope was put there by
    someone else, a request the scope guard would refuse at download (a redirect out of
    the farm) is refused before it is shared, counted under ``skipped`` as it would be.
    """

    def __init__(self, server: Any, spider: Spider, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, entries)
        crawler = spider.crawler
        self.stats = crawler.stats
        context = RunContext.of(crawler)
        self.max_size = context.cluster.max_entry_size
        # The scope guard's own rule, on the spider's scope (known from its arguments).
        self.guard = ScopeGuardMiddleware(context.bounds.url_length, crawler.stats)
        self.guard.scope = getattr(spider, "scope", None)
        self._pop = server.register_script(POP)

    def push(self, request: Request) -> None:
        """Queue ``request`` unless the crawl's scope refuses it."""
        if self.guard.refused(request) is None:
            super().push(request)

    def pop(self, timeout: int = 0) -> Request | None:
        """The next request of the shared queue; entries that are not one are dropped."""
        while True:  # past every bad entry: one never stalls the worker
            entry = self._pop(keys=[self.key], args=[self.max_size])
            if entry is None:
                return None
            request = self._decode_request(entry)
            if request is not None:
                return request

    def _decode_request(self, entry: bytes | int) -> Request | None:
        spider = self.spider
        try:
            if isinstance(entry, int):
                raise entries.BadEntry(
                    f"{entry} bytes, over CLUSTER_MAX_ENTRY_SIZE={self.max_size}"
                    if entry > 0
                    else "the key held no sorted set: removed"
                )
            data = entries.loads(entry)
            for name in (data["callback"], data["errback"]):
                if name is not None and name not in spider.request_callbacks:
                    raise entries.BadEntry(f"no callback {name[:80]!r} on the spider")
            request = request_from_dict(data, spider=spider)
            why = refusal(spider.scope, request.url, request.method, spider.bounds.url_length)
            if why is not None:
                raise entries.BadEntry(why)
        except (ValueError, TypeError) as exc:
            shown = "" if isinstance(entry, int) else f": {entry[:100]!r}"
            logger.error("dropped an entry of the shared frontier %s (%s)%s", self.key, exc, shown)
            self.stats.inc_value(Stat.FRONTIER_REJECTED)
            return None
        return request


class ClusterIdle:
    """Keeps an idle worker up while another one may still add requests; then lets it exit.

    A worker with work in flight holds a ``busy`` key (refreshed as it works, expiring
    after ``CLUSTER_BUSY_TTL`` seconds, so a killed worker is not waited for forever). An
    idle worker exits once the queue is empty and no other worker is busy.
    """

    def __init__(self, crawler: Crawler, options: ClusterOptions) -> None:
        self.crawler = crawler
        self.client, self.keys = cluster_of(options)
        self.run = options.run
        self.busy_key = self.keys.busy(self.run, options.worker)
        self.ttl = options.busy_ttl
        self.poll = options.poll_interval
        self._marked = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterIdle:
        """Build it from the run context and connect it to the crawl's signals."""
        ext = cls(crawler, RunContext.of(crawler).cluster)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.working, signal=signals.request_scheduled)
        crawler.signals.connect(ext.working, signal=signals.response_received)
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        """Poll the shared queue faster than Scrapy's heartbeat while idle."""
        # An idle worker looks at the shared queue every heartbeat (Scrapy's is 5 s):
        # shorter, so it joins in as soon as another worker adds requests.
        engine = self.crawler.engine
        engine._SLOT_HEARTBEAT_INTERVAL = self.poll

    def working(self, **kwargs: Any) -> None:
        """Mark this worker busy in Redis (every 20 signals, with a TTL)."""
        # One SET per 20 signals keeps Redis calls off the hot path; the TTL covers gaps.
        if self._marked % 20 == 0:
            self.client.set(self.busy_key, 1, ex=self.ttl)
        self._marked += 1

    def spider_idle(self, spider: Spider) -> None:
        """Stay open while the queue holds requests or another worker is busy."""
        self.client.delete(self.busy_key)
        self._marked = 0
        if self.client.exists(self.keys.requests(self.run)):
            raise DontCloseSpider
        others = list(self.client.scan_iter(match=self.keys.busy(self.run), count=100))
        if others:
            logger.info("frontier empty; waiting for %d busy worker(s)", len(others))
            raise DontCloseSpider

    def spider_closed(self, spider: Spider) -> None:
        """No longer busy: the other workers may finish."""
        self.client.delete(self.busy_key)


class ClusterPoliteness:
    """Downloader middleware: the delay between requests to one host holds cluster-wide.

    Before a request goes out, its host's gate key is taken in Redis for the slot's
    current delay (``DOWNLOAD_DELAY``, AutoThrottle, robots.txt Crawl-delay via
    ``crawler.politeness``); a worker that finds it taken waits for it to expire. With no
    delay (``--fast``) it costs nothing.
    """

    def __init__(self, crawler: Crawler, options: ClusterOptions) -> None:
        self.crawler = crawler
        self.client, self.keys = cluster_of(options)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterPoliteness:
        """Build it from the run context's cluster options."""
        return cls(crawler, RunContext.of(crawler).cluster)

    def _slot(self, request: Request) -> Any:
        engine = self.crawler.engine
        key = request.meta.get("download_slot") or urlparse_cached(request).hostname or ""
        return engine.downloader.slots.get(key) if engine is not None else None

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        """Wait for the host's cluster-wide slot before the request is sent."""
        slot = self._slot(request)
        delay = float(slot.delay) if slot is not None else 0.0
        if delay <= 0:
            return None
        gate = self.keys.slot(urlparse_cached(request).hostname or "")
        while True:
            # First the worker's own slot delay, so the request leaves as soon as it holds
            # the gate: the gap between two requests of the cluster is the gate's.
            local = slot.lastseen + delay - time.monotonic()
            if local > 0:
                await asyncio.sleep(local)
                continue
            if self.client.set(gate, 1, px=max(1, int(delay * 1000)), nx=True):
                return None
            self.crawler.stats.inc_value(Stat.CLUSTER_POLITENESS_WAITS)
            await asyncio.sleep(max(self.client.pttl(gate), 10) / 1000)
