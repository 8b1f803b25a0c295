"""Scale-out: crawl workers on a shared scrapy-redis frontier, merged afterwards.

Off unless a worker is started with ``--redis URL``: the single-process crawl never
imports this package, and ``crawl --processes`` only its merge. Redis, scrapy-redis and
Dask are the ``cluster`` extra (``pip install 'autoblog-archive[cluster]'``); a command
that needs them checks first (:func:`require_cluster_extra`).

Every Redis key of one distributed crawl starts with ``autoblog-archive:<crawl id>:`` so
several crawls can share one Redis (and a Redis ACL can hold a crawl's user to its own
keys). The URL's password is never shown or stored (:mod:`crawler.redact`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from crawler.redact import redacted_url

PREFIX = "autoblog-archive"
# What the commands of the shared frontier (seed, worker, reconcile) and `extract --dask`
# import: the `cluster` extra of pyproject.toml.
REDIS_MODULES = ("redis", "scrapy_redis")
DASK_MODULES = ("dask", "distributed")
CLUSTER_EXTRA = "pip install 'autoblog-archive[cluster]'"
CRAWL_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Keys:
    """The Redis key names of one distributed crawl (``run`` is the cluster run number)."""

    crawl: str

    def key(self, *parts: object) -> str:
        """The key of ``parts`` under this crawl's prefix."""
        return ":".join([PREFIX, self.crawl, *map(str, parts)])

    @property
    def run(self) -> str:
        """The current cluster run number (INCR by ``seed``)."""
        return self.key("run")  # the current cluster run number (INCR by `seed`)

    def run_info(self, run: int) -> str:
        """Hash of cluster run ``run``: mode, seeds, name, autoblogs."""
        return self.key("run", run)  # hash: mode, seeds, name, autoblogs

    def requests(self, run: int) -> str:
        """The scrapy-redis priority queue of run ``run``."""
        return self.key(run, "requests")  # scrapy-redis priority queue

    def dupefilter(self, run: int) -> str:
        """The scrapy-redis seen-set (request fingerprints) of run ``run``."""
        return self.key(run, "dupefilter")  # scrapy-redis seen-set (fingerprints)

    def busy(self, run: int, worker: str = "*") -> str:
        """A worker with requests in flight (a TTL key); ``*`` matches them all."""
        return self.key(run, "busy", worker)  # a worker with requests in flight (TTL)

    def slot(self, host: str) -> str:
        """The cluster-wide politeness gate of ``host``."""
        return self.key("slot", host)  # cluster-wide politeness gate of one host

    # The crawl history every worker shares (see crawler.history.shared).
    @property
    def captures(self) -> str:
        """Hash: each URL's newest successful capture, by any worker."""
        return self.key("captures")

    @property
    def previous(self) -> str:
        """Hash: each URL's capture before that one (an earlier cluster run's)."""
        return self.key("previous")

    @property
    def originals(self) -> str:
        """Hash: the first capture of each payload digest and URL (a revisit's original)."""
        return self.key("originals")

    @property
    def articles(self) -> str:
        """Hash: the cluster run each article permalink was first seen in."""
        return self.key("articles")


def require_cluster_extra(modules: tuple[str, ...] = REDIS_MODULES, what: str = "") -> None:
    """Exit 4 in one line when the ``cluster`` extra is not installed, before anything
    starts: without it the command would fail deep inside on an ImportError."""
    from importlib.util import find_spec

    from crawler.exitcodes import UsageError

    missing = [name for name in modules if find_spec(name) is None]
    if missing:
        needs = f"{what} needs" if what else "needs"
        raise UsageError(
            f"{needs} the cluster extra ({', '.join(missing)} not installed): {CLUSTER_EXTRA}"
        )


def check_crawl_id(crawl: str) -> str:
    """``crawl`` if it is a valid crawl id, else a usage error (exit 4)."""
    from crawler.exitcodes import UsageError

    if not CRAWL_ID.match(crawl or ""):
        raise UsageError(f"--crawl-id {crawl!r}: use letters, digits, '.', '_' or '-'")
    return crawl


REDIS_SCHEMES = ("redis", "rediss", "unix")


def check_redis_url(url: str) -> str:
    """``--redis URL`` as redis-py reads it, checked before anything starts: a bad one is
    bad usage (exit 4, one line), never an exception from the client.

    A password holding ``/ ? # @`` must be percent-escaped: unescaped, part of it would
    be read as the host or the database, and shown wherever the URL is.
    """
    from redis.connection import parse_url

    from crawler.exitcodes import UsageError

    shown = redacted_url(url)
    hint = "expected redis://[[user]:password@]host[:port][/db], rediss://... or unix:///path"
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES or not (parts.hostname or parts.path):
        raise UsageError(f"--redis {shown}: {hint}")
    try:
        port = parts.port
        parse_url(url)
    except ValueError as exc:
        # urlsplit says "Port out of range 0-65535"; keep its words, they name the fault.
        reason = str(exc)
        if not reason or url in reason or (parts.password or "\0") in reason:
            reason = "not a redis://, rediss:// or unix:// URL"
        raise UsageError(f"--redis {shown}: {reason}") from None
    if shown.endswith("://***"):
        raise UsageError(
            f"--redis {shown}: not a URL redis://[[user]:password@]host[:port][/db]",
            "percent-escape / ? # @ in a password (%2F %3F %23 %40)",
        )
    db = parts.path.strip("/")
    if port == 0 or (parts.scheme != "unix" and db and not db.isdigit()):
        raise UsageError(f"--redis {shown}: the port and the database must be numbers; {hint}")
    return url


def connect(url: str, decode: bool = True) -> Any:
    """A Redis client (str answers unless ``decode`` is false); exit 4 when Redis does not
    answer. The URL is shown redacted, never with its password."""
    import redis

    from crawler.exitcodes import UsageError

    client = redis.Redis.from_url(url, decode_responses=decode)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise UsageError(f"--redis {redacted_url(url)}: {exc}") from None
    return client


def current_run(client: Any, keys: Keys) -> tuple[int, dict[str, str]]:
    """The cluster run `seed` started last, and its description."""
    from crawler.exitcodes import UsageError

    run = int(client.get(keys.run) or 0)
    if not run:
        raise UsageError(
            f"no run of crawl {keys.crawl!r} in Redis", "start one with `autoblog-archive seed`"
        )
    info = client.hgetall(keys.run_info(run))
    if not info:
        raise UsageError(f"run {run} of crawl {keys.crawl!r} is still being seeded; try again")
    return run, info
