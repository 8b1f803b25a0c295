"""Running a crawl end to end: Scrapy, then the indexes, then a summary.

Used by ``autoblog-archive crawl`` and ``autoblog-archive demo``; ``scrapy crawl``
gives the same capture but leaves indexing to ``autoblog-archive index``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from crawler.indexes import OutputLayout
from spiders.autoblog import AutoblogSpider

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_PARTIAL, EXIT_FAILED = 0, 1, 2

FAST_SETTINGS: dict[str, Any] = {
    "DOWNLOAD_DELAY": 0,
    "RANDOMIZE_DOWNLOAD_DELAY": False,
    "AUTOTHROTTLE_ENABLED": False,
    "CONCURRENT_REQUESTS": 32,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
}


def default_name(url: str) -> str:
    parts = urlsplit(url)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", parts.netloc or "crawl").strip("-") or "crawl"


def crawl_settings(
    output: Path, name: str, fast: bool = False, overrides: dict[str, Any] | None = None
) -> Settings:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    if fast:
        settings.update(FAST_SETTINGS, priority="cmdline")
    settings.update({"CRAWL_NAME": name, "OUTPUT_DIR": str(output)}, priority="cmdline")
    if overrides:
        settings.update(overrides, priority="cmdline")
    return settings


def summarize(stats: dict[str, Any], spider: AutoblogSpider | None, reason: str) -> dict:
    autoblogs = {}
    if spider is not None:
        for base in sorted(set(spider.engines) | set(spider.pages_per_autoblog)):
            autoblogs[base] = {
                "engine": spider.engines.get(base),
                "pages": spider.pages_per_autoblog.get(base, 0),
                "articles": spider.articles_per_autoblog.get(base, 0),
            }
    skipped = {k.split("/", 1)[1]: v for k, v in stats.items() if k.startswith("skipped/")}
    if stats.get("robotstxt/forbidden"):
        skipped["robots.txt"] = stats["robotstxt/forbidden"]
    statuses = {
        k.rsplit("/", 1)[1]: v
        for k, v in stats.items()
        if k.startswith("downloader/response_status_count/")
    }
    return {
        "finish_reason": reason,
        "requests": stats.get("downloader/request_count", 0),
        "responses": stats.get("warc/responses", 0),
        "statuses": statuses,
        "warc_records": stats.get("warc/records", 0),
        "payload_bytes": stats.get("warc/payload_bytes", 0),
        "errors": stats.get("errors/fetch", 0) + stats.get("warc/write_errors", 0),
        "truncated": stats.get("warc/truncated", 0),
        "warc_files": stats.get("warc/files", []),
        "corpus_records": stats.get("corpus/records", 0),
        "corpus_shards": stats.get("corpus/shards", []),
        "skipped": skipped,
        "autoblogs": autoblogs,
    }


def run_crawl(
    urls: list[str],
    output: str | Path,
    name: str | None = None,
    fast: bool = False,
    wacz: bool = False,
    autoblogs: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[int, dict]:
    """Crawl ``urls`` into ``output``; returns (exit code, summary)."""
    output = Path(output)
    name = name or default_name(urls[0])
    settings = crawl_settings(
        output, name, fast=fast, overrides=(overrides or {}) | {"WACZ_ENABLED": wacz}
    )
    started = datetime.now(UTC)
    process = CrawlerProcess(settings, install_root_handler=True)
    crawler_ = process.create_crawler(AutoblogSpider)
    process.crawl(crawler_, urls=list(urls), autoblogs=autoblogs or [])
    process.start()
    stats = crawler_.stats.get_stats() if crawler_.stats else {}
    reason = stats.get("finish_reason", "unknown")
    summary = summarize(stats, crawler_.spider, reason)
    layout = OutputLayout(output, name)
    summary["written"] = stats.get("output/written", {})
    summary["started"] = started.isoformat()
    summary["finished"] = datetime.now(UTC).isoformat()
    summary["seeds"] = list(urls)
    layout.summary.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if reason != "finished" or not summary["responses"] or not summary["written"]:
        code = EXIT_FAILED
    elif summary["errors"]:
        code = EXIT_PARTIAL
    else:
        code = EXIT_OK
    return code, summary


def print_summary(summary: dict, out=sys.stdout) -> None:
    print(
        f"\nCrawl {summary['finish_reason']}: {summary['responses']} responses, "
        f"{summary['warc_records']} WARC records, {summary['payload_bytes'] / 1e6:.2f} MB, "
        f"{summary['errors']} errors",
        file=out,
    )
    for base, info in summary["autoblogs"].items():
        print(
            f"  {base}  engine {info['engine']}: {info['pages']} pages, "
            f"{info['articles']} articles",
            file=out,
        )
    for name in summary["warc_files"]:
        print(f"  wrote {name}", file=out)
    if summary["corpus_shards"]:
        print(
            f"  corpus: {summary['corpus_records']} article records in "
            f"{len(summary['corpus_shards'])} shard(s)",
            file=out,
        )
    for reason, count in sorted(summary["skipped"].items()):
        print(f"  skipped {count} x {reason}", file=out)


def add_crawl_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("urls", nargs="+", metavar="URL", help="farm root or autoblog base URL")
    parser.add_argument("--output", "-o", default="output/crawl", help="output folder")
    parser.add_argument("--name", help="collection name (default: the farm's host)")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="no politeness delays (only for your own or loopback farms)",
    )
    parser.add_argument("--wacz", action="store_true", help="also write <name>.wacz")
    parser.add_argument(
        "--autoblogs",
        default="",
        help="comma-separated hidden/disabled autoblog folders to include",
    )
    parser.add_argument(
        "--warc-max-size",
        type=int,
        default=None,
        help="roll WARC files over at this many bytes (default 1 GB)",
    )
    parser.add_argument(
        "--set",
        "-s",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a Scrapy setting (repeatable)",
    )


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip()] = value
    if args.warc_max_size:
        overrides["WARC_MAX_SIZE"] = args.warc_max_size
    return overrides


def run_crawl_command(args: argparse.Namespace) -> int:
    code, summary = run_crawl(
        args.urls,
        args.output,
        name=args.name,
        fast=args.fast,
        wacz=args.wacz,
        autoblogs=[a for a in args.autoblogs.split(",") if a],
        overrides=overrides_from_args(args),
    )
    print_summary(summary)
    return code
