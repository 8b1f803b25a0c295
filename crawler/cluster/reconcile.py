"""``autoblog-archive reconcile``: queue again what captured pages list but no WARC holds.

A worker killed with requests in flight loses them: they are in the shared seen-set, so
no other worker fetches them. This reads every captured page of the merged folder back,
lets the spider say which links it follows from it (the crawl's own rules: scope,
forbidden URLs, pagination), and pushes those no merged WARC holds into the current
cluster run's queue, past the seen-set. Run the workers and ``merge`` again, until
reconcile finds nothing.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from crawler.cluster import Keys, check_crawl_id, connect, current_run
from crawler.escaping import terminal
from crawler.urls import canonical_url

if TYPE_CHECKING:
    from scrapy.settings import Settings


def _spider(seeds: list[str], autoblogs: list[str], settings: Settings) -> Any:
    """The crawl's spider, following every link of a page (no MAX_LINKS_PER_PAGE: what
    a page lists is what may be missing)."""
    from crawler.cluster.frontier import spider_outside_crawl

    own = settings.copy()
    own.set("MAX_LINKS_PER_PAGE", 0, priority="cmdline")
    return spider_outside_crawl(seeds, autoblogs, own)


def listed_requests(root: Path, spider: Any) -> Iterator[Any]:
    """Every request the spider makes from the start and from each captured response (read
    back up to the spider's own body bound, DOWNLOAD_MAXSIZE)."""
    from scrapy import Request
    from scrapy.exceptions import IgnoreRequest

    from crawler.history.readback import read_response
    from crawler.history.store import History
    from crawler.layout import OutputLayout

    async def starts() -> list[Any]:
        return [r async for r in spider.start()]

    yield from asyncio.run(starts())
    (layout,) = OutputLayout.find(root)
    with History.open(root) as history:
        captures = [c for run in history.runs() for c in history.captures_in_run(run.id)]
    for capture in captures:
        if capture.record_type != "response":
            continue  # a revisit's links were those of its original
        try:
            response = read_response(
                layout.archive / capture.filename,
                capture,
                Request(capture.url),
                spider.bounds.read_limit,
            )
        except IgnoreRequest:
            continue  # a stored body past the bound: archived, never inflated, no links
        if response is None:
            continue
        for out in spider.parse(response) or ():
            if isinstance(out, Request):
                yield out


def missing_requests(
    root: str | Path, seeds: list[str], autoblogs: list[str], settings: Settings
) -> list[Any]:
    """Requests for what the captured pages list but the merged folder does not hold."""
    from crawler.layout import OutputLayout
    from crawler.warc.cdxj import parse_cdxj_line

    root = Path(root)
    held: set[str] = set()
    for layout in OutputLayout.find(root):
        for line in layout.cdxj.read_text(encoding="utf-8").splitlines():
            parsed = parse_cdxj_line(line)
            if parsed is not None:
                held.add(canonical_url(parsed[2]["url"]))
    missing: dict[str, Any] = {}
    for request in listed_requests(root, _spider(seeds, autoblogs, settings)):
        url = canonical_url(request.url)
        if url not in held and url not in missing:
            missing[url] = request.replace(dont_filter=True)
    return list(missing.values())


def reconcile(
    redis_url: str, crawl: str, root: str | Path, settings: Settings
) -> tuple[int, list[str]]:
    """Queue the missing requests in the current cluster run; returns (run, their URLs)."""
    from crawler.cluster.frontier import seed_queue

    keys = Keys(check_crawl_id(crawl))
    run, info = current_run(connect(redis_url), keys)
    seeds, autoblogs = orjson.loads(info["seeds"]), orjson.loads(info["autoblogs"])
    missing = missing_requests(root, seeds, autoblogs, settings)
    if missing:
        spider = _spider(seeds, autoblogs, settings)
        queue = seed_queue(redis_url, spider, keys.requests(run))
        for request in missing:
            queue.push(request)
    return run, [r.url for r in missing]


def run_reconcile(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive reconcile``: queue again what no merged WARC holds."""
    from crawler.cluster.commands import cluster_options
    from crawler.context import RunContext, command_settings
    from crawler.exitcodes import EXIT_OK, EXIT_PARTIAL
    from crawler.folder import check_crawl_folder

    redis_url, crawl, _ = cluster_options(args)
    settings = command_settings(args.set)
    RunContext.from_settings(settings)  # every value checked before anything is read
    check_crawl_folder(args.merged)  # before Redis is asked anything
    run, urls = reconcile(redis_url, crawl, args.merged, settings)
    if not urls:
        print(f"complete: every page the captured pages list is archived in {args.merged}")
        return EXIT_OK
    for url in urls[:20]:
        print(terminal(f"missing: {url}"))
    print(
        f"{len(urls)} URLs listed but not archived: queued again in run {run}; "
        "run the workers, then merge and reconcile again"
    )
    return EXIT_PARTIAL
