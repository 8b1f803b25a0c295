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

from crawler.bounds import CAPPED_STAT, error_count
from crawler.config import ConfigError, load_config
from crawler.exitcodes import EXIT_FAILED, EXIT_LOCKED, EXIT_OK, EXIT_PARTIAL
from crawler.indexes import OutputLayout, check_collection_name
from crawler.runlock import RunLock, RunLockedError
from spiders.autoblog import AutoblogSpider

logger = logging.getLogger(__name__)


FAST_SETTINGS: dict[str, Any] = {
    "DOWNLOAD_DELAY": 0,
    "DOWNLOAD_DELAY_JITTER": 0,
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
        "run": {
            "id": stats.get("run/id"),
            "mode": stats.get("run/mode"),
            "resumed": stats.get("run/resumed"),
            "status": stats.get("run/status"),
            "report": stats.get("run/report"),
        },
        "report_text": stats.get("run/report_text", ""),
        "requests": stats.get("downloader/request_count", 0),
        "responses": stats.get("warc/responses", 0),
        "revisits": stats.get("warc/revisits", 0),
        "from_archive": stats.get("resume/from_archive", 0),
        "statuses": statuses,
        "warc_records": stats.get("warc/records", 0),
        "payload_bytes": stats.get("warc/payload_bytes", 0),
        "errors": error_count(stats),
        "error_reasons": {
            k.split("/", 1)[1]: v
            for k, v in stats.items()
            if k.startswith("errors/") and k != "errors/fetch"
        },
        "capped": stats.get(CAPPED_STAT),
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
    mode: str = "auto",
) -> tuple[int, dict]:
    """Crawl ``urls`` into ``output``; returns (exit code, summary).

    ``mode``: ``auto`` (full the first time, then incremental), ``full`` or
    ``incremental``. A run killed earlier with the same seeds is resumed.
    """
    name = check_collection_name(name or default_name(urls[0]))
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    try:
        lock = RunLock(output, " ".join(sys.argv)).acquire()
    except RunLockedError as exc:
        return EXIT_LOCKED, {"error": exc.describe()}
    try:
        extra = {"WACZ_ENABLED": wacz, "CRAWL_MODE": mode, "RUN_LOCK_HELD": True}
        settings = crawl_settings(output, name, fast=fast, overrides=extra | (overrides or {}))
        started = datetime.now(UTC)
        process = CrawlerProcess(settings)
        crawler_ = process.create_crawler(AutoblogSpider)
        process.crawl(crawler_, urls=list(urls), autoblogs=autoblogs or [])
        process.start()
    finally:
        lock.release()
    stats = crawler_.stats.get_stats() if crawler_.stats else {}
    reason = stats.get("finish_reason", "unknown")
    summary = summarize(stats, crawler_.spider, reason)
    layout = OutputLayout(output, name)
    summary["written"] = stats.get("output/written", {})
    summary["started"] = started.isoformat()
    summary["finished"] = datetime.now(UTC).isoformat()
    summary["seeds"] = list(urls)
    layout.summary.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    # A resumed run may find everything already captured: that is success too.
    captured = summary["responses"] + summary["revisits"] + summary["from_archive"]
    if reason != "finished" or not captured or not summary["written"]:
        code = EXIT_FAILED
    elif summary["errors"] or summary["capped"]:
        code = EXIT_PARTIAL
    else:
        code = EXIT_OK
    return code, summary


def print_summary(summary: dict, out=sys.stdout) -> None:
    if "error" in summary:
        print(summary["error"], file=out)
        return
    run = summary["run"]
    if run["id"] is not None:
        resumed = ", resumed" if run["resumed"] else ""
        print(f"\nRun {run['id']} ({run['mode']}{resumed}): {run['status']}", file=out)
    print(
        f"\nCrawl {summary['finish_reason']}: {summary['responses']} responses, "
        f"{summary['warc_records']} WARC records, {summary['payload_bytes'] / 1e6:.2f} MB, "
        f"{summary['revisits']} unchanged (revisit records), {summary['errors']} errors",
        file=out,
    )
    if summary["from_archive"]:
        print(
            f"  {summary['from_archive']} pages captured before the interruption were read "
            "back from the WARCs, not fetched again",
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
    if summary["report_text"]:
        print("\n" + summary["report_text"], file=out)


def add_crawl_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("urls", nargs="*", metavar="URL", help="farm root or autoblog base URL")
    parser.add_argument("--config", "-c", help="TOML file with farms, output and politeness")
    parser.add_argument("--output", "-o", default=None, help="output folder (default output/crawl)")
    parser.add_argument("--name", help="collection name (default: the farm's host)")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="no politeness delays (only for your own or loopback farms)",
    )
    parser.add_argument("--wacz", action="store_true", help="also write <name>.wacz")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--full",
        action="store_const",
        dest="mode",
        const="full",
        help="a full pass even when the folder already holds a crawl",
    )
    mode.add_argument(
        "--incremental",
        action="store_const",
        dest="mode",
        const="incremental",
        help="only new articles and changed pages (default after the first run)",
    )
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
    urls = list(args.urls)
    output = args.output
    name, wacz = args.name, args.wacz
    autoblogs = [a for a in args.autoblogs.split(",") if a]
    overrides: dict[str, Any] = {}
    mode = args.mode or "auto"
    if args.config:
        try:
            config = load_config(args.config)
        except (ConfigError, OSError) as exc:
            print(f"configuration error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        urls = urls or config.urls
        output = output or str(config.output)
        name = name or config.name
        wacz = wacz or config.wacz
        autoblogs += config.hidden_autoblogs
        overrides.update(config.scrapy_overrides())
        if args.mode is None:
            mode = overrides.pop("CRAWL_MODE")
    if not urls:
        print("give at least one farm URL, or --config FILE", file=sys.stderr)
        return EXIT_FAILED
    overrides.update(overrides_from_args(args))
    code, summary = run_crawl(
        urls,
        output or "output/crawl",
        name=name,
        fast=args.fast,
        wacz=wacz,
        autoblogs=autoblogs,
        overrides=overrides,
        mode=mode,
    )
    print_summary(summary, out=sys.stderr if code == EXIT_LOCKED else sys.stdout)
    return code
