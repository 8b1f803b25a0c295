"""``autoblog-archive seed`` and ``autoblog-archive worker``: a crawl shared through Redis.

``seed`` starts a cluster run (its number, mode and seeds go to Redis, the seed requests
into the shared queue); ``worker`` crawls from that queue into its own output folder
until the whole cluster is idle. Several workers on several machines share one Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from typing import Any

import orjson

from crawler.cluster import (
    Keys,
    check_crawl_id,
    check_redis_url,
    connect,
    current_run,
    require_cluster_extra,
)
from crawler.exitcodes import EXIT_FAILED, EXIT_OK, UsageError


def cluster_options(args: argparse.Namespace) -> tuple[str, str, Any]:
    """(Redis URL, crawl id, the TOML config or None): options first, then ``[cluster]``;
    every command of the shared frontier starts here, so the extra is checked here."""
    from crawler.config import command_config

    require_cluster_extra()

    config = command_config(args.config) if args.config else None
    redis_url = args.redis or (config.cluster.redis if config else None)
    crawl = args.crawl_id or (config.cluster.crawl_id if config else None)
    if not redis_url or not crawl:
        raise UsageError("give --redis URL and --crawl-id NAME (or [cluster] in --config)")
    return check_redis_url(redis_url), check_crawl_id(crawl), config


def seed_run(
    redis_url: str,
    crawl: str,
    urls: list[str],
    name: str | None = None,
    autoblogs: list[str] | None = None,
    full: bool = False,
) -> int:
    """Start cluster run N+1: full the first time (or with ``full``), then incremental."""
    from scrapy_redis.dupefilter import RFPDupeFilter

    from crawler.cluster.frontier import seed_queue, spider_outside_crawl
    from crawler.collection import check_collection_name
    from crawler.context import command_settings
    from crawler.run import check_urls, default_name

    keys = Keys(check_crawl_id(crawl))
    spider = spider_outside_crawl(check_urls(urls), autoblogs or [], command_settings([]))
    name = check_collection_name(name or default_name(spider.seeds[0]))
    client = connect(redis_url)
    run = int(client.incr(keys.run))
    info = {
        "mode": "full" if full or run == 1 else "incremental",
        "seeds": orjson.dumps(spider.seeds).decode(),
        "autoblogs": orjson.dumps(autoblogs or []).decode(),
        "name": name,
    }
    client.hset(keys.run_info(run), mapping=info)

    async def starts() -> list[Any]:
        return [request async for request in spider.start()]

    queue = seed_queue(redis_url, spider, keys.requests(run))
    seen = RFPDupeFilter(queue.server, keys.dupefilter(run))
    for request in asyncio.run(starts()):
        if not seen.request_seen(request):
            queue.push(request)
    return run


def run_seed(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive seed``: start the next cluster run."""
    redis_url, crawl, config = cluster_options(args)
    autoblogs = [a for a in args.autoblogs.split(",") if a]
    urls, name = list(args.urls), args.name
    if config is not None:
        urls, name = urls or config.urls, name or config.name
        autoblogs += config.hidden_autoblogs
    if not urls:
        raise UsageError("give at least one farm URL, or --config FILE")
    run = seed_run(redis_url, crawl, urls, name, autoblogs, args.full)
    print(f"crawl {crawl}: run {run} seeded; start the workers")
    return EXIT_OK


def default_worker_id(output: str) -> str:
    """``<host>-<output folder name>``: unique per machine and folder, fit for file names."""
    folder = os.path.basename(os.path.abspath(output))
    return f"{socket.gethostname()}-{folder}".replace("_", "-")


def run_worker(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive worker``: crawl the shared queue until the cluster is idle."""
    redis_url, crawl, config = cluster_options(args)  # first: it checks the extra
    from crawler.cluster.frontier import worker_settings
    from crawler.crawl_summary import print_summary
    from crawler.folder import check_log_file, check_output_folder
    from crawler.run import overrides_from_args, run_crawl

    worker = args.worker_id or default_worker_id(args.output)
    if not all(c.isalnum() or c in ".-" for c in worker):
        raise UsageError(f"--worker-id {worker!r}: use letters, digits, '.' or '-'")
    args.warc_max_size = None
    overrides = config.scrapy_overrides() if config is not None else {}
    overrides.pop("CRAWL_MODE", None)  # the cluster run's, from `seed`
    overrides |= overrides_from_args(args)
    check_output_folder(args.output)
    check_log_file(args.log_file)
    run, info = current_run(connect(redis_url), Keys(crawl))
    overrides |= worker_settings(redis_url, crawl, run, info["mode"], worker, info["name"])
    if args.quiet:
        overrides["PROGRESS_LIVE"] = False
    code, summary = run_crawl(
        orjson.loads(info["seeds"]),
        args.output,
        name=info["name"],
        fast=args.fast,
        autoblogs=orjson.loads(info["autoblogs"]),
        overrides=overrides,
        mode=info["mode"],
        verbose=args.verbose,
        log_file=args.log_file,
    )
    if args.quiet:
        print(summary["verdict"], file=sys.stdout if code < EXIT_FAILED else sys.stderr)
    else:
        print_summary(summary, out=sys.stdout if code < EXIT_FAILED else sys.stderr)
    return code
