"""Running a crawl end to end: Scrapy, then the indexes, then a summary.

Used by ``autoblog-archive crawl`` and ``autoblog-archive demo``; ``scrapy crawl``
writes the same WARCs and indexes, without the checks, the summary and the exit code.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import orjson
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from crawler.bounds import CAPPED_STAT, error_count
from crawler.config import ConfigError, load_config
from crawler.exitcodes import (
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_PARTIAL,
    UsageError,
    UserError,
)
from crawler.folder import FolderSnapshot, captures_in_stats, check_output_folder
from crawler.indexes import OutputLayout, check_collection_name
from crawler.report import list_changes
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


def _read_report(path: str | None) -> dict | None:
    if not path or not Path(path).exists():
        return None
    return orjson.loads(Path(path).read_bytes())


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
        "report": _read_report(stats.get("run/report")),
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
    verbose: bool = False,
    log_file: str | Path | None = None,
) -> tuple[int, dict]:
    """Crawl ``urls`` into ``output``; returns (exit code, summary).

    ``mode``: ``auto`` (full the first time, then incremental), ``full`` or
    ``incremental``. A run killed earlier with the same seeds is resumed. A run that
    captured nothing leaves the folder as it found it. Scrapy's log goes to
    ``<output>/logs/`` (to the terminal with ``verbose``).
    """
    output = check_output_folder(output)
    name = check_collection_name(name or default_name(urls[0]))
    snapshot = FolderSnapshot.take(output)
    try:
        lock = RunLock(output, " ".join(sys.argv)).acquire()
    except RunLockedError as exc:
        raise UserError(exc.describe(), EXIT_LOCKED) from None
    started = datetime.now(UTC)
    log = Path(log_file) if log_file else None if verbose else _temporary_log()
    try:
        extra = {"WACZ_ENABLED": wacz, "CRAWL_MODE": mode, "RUN_LOCK_HELD": True}
        if log is not None:
            extra |= {"LOG_FILE": str(log), "LOG_FILE_APPEND": True}
        settings = crawl_settings(output, name, fast=fast, overrides=extra | (overrides or {}))
        process = CrawlerProcess(settings)
        crawler_ = process.create_crawler(AutoblogSpider)
        process.crawl(crawler_, urls=list(urls), autoblogs=autoblogs or [])
        process.start()
    finally:
        for handler in logging.root.handlers:
            handler.flush()
        lock.release()
    stats = crawler_.stats.get_stats() if crawler_.stats else {}
    spider = crawler_.spider
    summary = summarize(stats, spider, stats.get("finish_reason", "interrupted"))
    summary |= {"started": started.isoformat(), "finished": datetime.now(UTC).isoformat()}
    summary |= {"seeds": list(urls), "output": str(output), "name": name}
    summary["written"] = stats.get("output/written", {})
    layout = OutputLayout(output, name)
    files = [layout.archive / f for f in summary["warc_files"]]
    summary["warc_bytes"] = sum(p.stat().st_size for p in files if p.exists())
    code, summary["verdict"] = _verdict(summary, stats, spider)
    if log is not None:
        summary["log"] = str(log)
    if not captures_in_stats(stats.get):
        snapshot.restore()  # the log stays outside the folder, where the message points
        return code, summary
    if log is not None and not log_file:
        summary["log"] = str(_keep_log(log, output, started))
    try:
        layout.summary.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        logger.error("could not write summary.json: %s", exc)
    return code, summary


def _temporary_log() -> Path:
    """Scrapy's log, outside the output folder until the run has captured something."""
    fd, path = tempfile.mkstemp(prefix="autoblog-archive-", suffix=".log")
    os.close(fd)
    return Path(path)


def _keep_log(log: Path, output: Path, started: datetime) -> Path:
    """Move the log into ``<output>/logs/``; on a full disk it stays where it is."""
    target = output / "logs" / f"crawl-{started.strftime('%Y%m%dT%H%M%SZ')}.log"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(log, target)
    except OSError:
        target.unlink(missing_ok=True)
        return log
    return target


def _verdict(summary: dict, stats: dict[str, Any], spider: Any) -> tuple[int, str]:
    """The exit code and the one sentence an operator reads first."""
    reason = summary["finish_reason"]
    seeds = ", ".join(summary["seeds"])
    first_failure = getattr(spider, "first_failure", None)
    if not captures_in_stats(stats.get):
        if reason in ("shutdown", "interrupted"):
            return EXIT_FAILED, "interrupted before anything was captured; the folder is unchanged"
        why = first_failure or f"{seeds} did not answer"
        return EXIT_FAILED, f"nothing was captured ({why}); the output folder was left as it was"
    if reason in ("shutdown", "interrupted"):
        return EXIT_FAILED, "interrupted: run the same command again to resume"
    if reason == "warc_write_error":
        return EXIT_FAILED, (
            f"stopped: writing the WARC failed ({stats.get('warc/write_error', 'disk full?')}); "
            "everything written before is kept; free space and run the same command again"
        )
    if stats.get("output/index_error"):
        return EXIT_FAILED, (
            f"writing the indexes failed ({stats['output/index_error']}); the WARCs are "
            "kept; run the same command again"
        )
    if reason != "finished":
        return EXIT_FAILED, f"stopped early ({reason}): run the same command again to resume"
    if not summary["autoblogs"]:
        return EXIT_FAILED, (
            f"no autoblog found at {seeds}: is it a Projet Autoblog farm root or an "
            "autoblog's base URL (ending in /)?"
        )
    if summary["capped"]:
        return EXIT_PARTIAL, (
            f"partial: the bound {summary['capped']} was reached; run the same command "
            "again to continue where this run stopped"
        )
    if summary["errors"]:
        return EXIT_PARTIAL, (
            f"partial: {summary['errors']} fetches failed, everything fetched is archived; "
            "the next run fetches them again"
        )
    return EXIT_OK, "complete"


def print_summary(summary: dict, out: TextIO | None = None) -> None:
    """The end of a run on the terminal: one line per autoblog, the report's URLs, totals."""
    out = out or sys.stdout
    run = summary["run"]
    resumed = ", resumed" if run.get("resumed") else ""
    counted = run.get("id") is not None and run.get("status") != "discarded"
    head = f"Run {run['id']} ({run['mode']}{resumed})" if counted else "Crawl"
    print(f"{head}: {summary['verdict']}", file=out)
    report = summary.get("report") or {}
    changes = report.get("autoblogs", {})
    for base, info in summary["autoblogs"].items():
        counts = changes.get(base, {}).get("articles", {})
        change = ", ".join(
            f"{len(counts[k])} {k}" for k in ("new", "changed", "gone") if counts.get(k)
        )
        print(
            f"  {base}  engine {info['engine'] or 'not identified'}: {info['pages']} pages, "
            f"{info['articles']} articles" + (f" ({change})" if change else ""),
            file=out,
        )
    if report.get("run", {}).get("id", 1) > 1:  # a first crawl's URLs are all new: noise
        for line in list_changes(report, limit=20):
            print(f"  {line}", file=out)
    for reason, count in sorted(summary.get("error_reasons", {}).items()):
        print(f"  failed {count} x {reason}", file=out)
    for reason, count in sorted(summary["skipped"].items()):
        print(f"  skipped {count} x {reason}", file=out)
    if summary["from_archive"]:
        print(
            f"  {summary['from_archive']} pages captured before the interruption were read "
            "back from the WARCs, not fetched again",
            file=out,
        )
    if summary["warc_records"]:
        print(
            f"WARC: {summary['responses']} responses, {summary['revisits']} revisits, "
            f"{summary['warc_records']} records in {len(summary['warc_files'])} files, "
            f"{summary['warc_bytes'] / 1e6:.2f} MB written "
            f"({summary['payload_bytes'] / 1e6:.2f} MB of HTTP payload)",
            file=out,
        )
    if summary["corpus_shards"]:
        folder = Path(summary["corpus_shards"][0]).parent
        print(f"Corpus: {summary['corpus_records']} article records in {folder}/", file=out)
    if summary.get("log"):
        print(f"Log: {summary['log']}", file=out)


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """How much a run prints: quiet like wget by default, Scrapy's log in a file."""
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument(
        "--verbose", "-v", action="store_true", help="Scrapy's log on the terminal, not in a file"
    )
    loud.add_argument(
        "--quiet", "-q", action="store_true", help="no progress line, only the final verdict"
    )
    parser.add_argument(
        "--log-file",
        default=None,
        help="write Scrapy's log here (default: <output>/logs/crawl-<time>.log)",
    )


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
    add_output_arguments(parser)
    parser.add_argument(
        "--set",
        "-s",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a Scrapy setting (repeatable)",
    )


SETTING_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def parse_setting(item: str, known: Settings) -> tuple[str, Any]:
    """``NAME=VALUE`` from ``--set``, typed like the setting's default (bad usage if not)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not SETTING_NAME.match(key):
        raise UsageError(f"--set {item!r}: expected NAME=VALUE, e.g. --set DOWNLOAD_DELAY=2")
    default = known.get(key)
    if default is None and key not in known:
        close = difflib.get_close_matches(key, list(known.attributes), n=1, cutoff=0.85)
        if close:
            raise UsageError(f"--set {key}: unknown setting; did you mean {close[0]}?")
        return key, raw
    try:
        if isinstance(default, bool):
            if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return key, raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return key, int(raw)
        if isinstance(default, float):
            return key, float(raw)
        if isinstance(default, dict | list):
            value = orjson.loads(raw)
            if not isinstance(value, type(default)):
                raise ValueError(raw)
            return key, value
    except ValueError:
        kind = type(default).__name__
        raise UsageError(f"--set {key}={raw}: {key} takes a {kind} (default {default!r})") from None
    return key, raw


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    known = Settings()
    known.setmodule("crawler.settings", priority="project")
    overrides = dict(parse_setting(item, known) for item in args.set)
    if args.warc_max_size is not None:
        if args.warc_max_size <= 0:
            raise UsageError("--warc-max-size must be a positive number of bytes")
        overrides["WARC_MAX_SIZE"] = args.warc_max_size
    return overrides


def check_urls(urls: list[str]) -> list[str]:
    """Farm URLs must be http(s) with a host: anything else is bad usage, not a dead farm."""
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"{url!r} is not an http(s) URL",
                "give a farm root like https://autoblog.example.org/",
            )
    return urls


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
            raise UsageError(f"configuration error: {exc}") from None
        urls = urls or config.urls
        output = output or str(config.output)
        name = name or config.name
        wacz = wacz or config.wacz
        autoblogs += config.hidden_autoblogs
        overrides.update(config.scrapy_overrides())
        if args.mode is None:
            mode = overrides.pop("CRAWL_MODE")
    if not urls:
        raise UsageError("give at least one farm URL, or --config FILE")
    check_urls(urls)
    overrides.update(overrides_from_args(args))
    if args.quiet:
        overrides["PROGRESS_LIVE"] = False
    code, summary = run_crawl(
        urls,
        output or "output/crawl",
        name=name,
        fast=args.fast,
        wacz=wacz,
        autoblogs=autoblogs,
        overrides=overrides,
        mode=mode,
        verbose=args.verbose,
        log_file=args.log_file,
    )
    if args.quiet:
        print(f"{summary['verdict']}", file=sys.stdout if code < EXIT_FAILED else sys.stderr)
    else:
        print_summary(summary, out=sys.stdout if code < EXIT_FAILED else sys.stderr)
    return code
