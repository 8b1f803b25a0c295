"""Running a crawl end to end: Scrapy, then the indexes, then a summary.

Used by ``autoblog-archive crawl`` and ``autoblog-archive demo``; ``scrapy crawl``
writes the same WARCs and indexes, without the checks, the summary and the exit code.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from crawler.collection import check_collection_name
from crawler.config import command_config
from crawler.context import RunContext, parse_setting, project_settings
from crawler.crawl_summary import print_summary, summarize
from crawler.escaping import terminal
from crawler.exitcodes import EXIT_FAILED, EXIT_LOCKED, UsageError, UserError, resume_line
from crawler.folder import FolderSnapshot, check_log_file, check_output_folder
from crawler.processes import Job, check_processes, run_in_processes
from crawler.runlock import RunLockedError
from spiders.autoblog import AutoblogSpider

logger = logging.getLogger(__name__)


def default_name(url: str) -> str:
    """A collection name from a URL: its host, made safe for a folder name."""
    parts = urlsplit(url)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", parts.netloc or "crawl").strip("-") or "crawl"


def crawl_settings(
    output: Path, name: str, fast: bool = False, overrides: dict[str, Any] | None = None
) -> Settings:
    """The crawl's Scrapy settings: the project's, ``--fast``'s, then the command's own."""
    settings = project_settings().copy()
    if fast:
        settings.update(settings.getdict("FAST_SETTINGS"), priority="cmdline")
    settings.update({"CRAWL_NAME": name, "OUTPUT_DIR": str(output)}, priority="cmdline")
    if overrides:
        settings.update(overrides, priority="cmdline")
    return settings


# Allocations between two young-generation collections during the crawl (Python's 700
# collected every few hundred objects of a page's parse; cycles are rare in a crawl).
GC_YOUNG_THRESHOLD = 20_000


def settle_collector() -> None:
    """Before the crawl starts: what start-up made (modules, Scrapy, the components) moved
    out of the cyclic collector's reach, and its young generation made larger. The
    collector rescanning them took ~0.15 ms of CPU per page; garbage is the same."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


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
    captured nothing leaves the folder as it found it, and keeps no log (its verdict says
    what went wrong). Scrapy's log goes to ``<output>/logs/`` (to the terminal with
    ``verbose``); it is written in the temporary folder until the run has captured
    something, and never left there unless the summary says so (a full disk).
    """
    output = check_output_folder(output)
    name = check_collection_name(name or default_name(urls[0]))
    snapshot = FolderSnapshot.take(output)
    started = datetime.now(UTC)
    log = Path(log_file) if log_file else None if verbose else _temporary_log()
    temporary = log if log is not None and not log_file else None
    summary: dict[str, Any] = {}
    try:
        move_log = temporary is not None
        code, summary = _crawl(
            urls,
            output,
            name,
            snapshot,
            started,
            log,
            move_log,
            fast,
            wacz,
            autoblogs,
            overrides,
            mode,
        )
        return code, summary
    finally:
        # Never left behind in the temporary folder, unless the summary shows it there (a
        # full disk kept it out of the output folder).
        if temporary is not None and summary.get("log") != str(temporary):
            temporary.unlink(missing_ok=True)


def _crawl(
    urls: list[str],
    output: Path,
    name: str,
    snapshot: FolderSnapshot,
    started: datetime,
    log: Path | None,
    move_log: bool,
    fast: bool,
    wacz: bool,
    autoblogs: list[str] | None,
    overrides: dict[str, Any] | None,
    mode: str,
) -> tuple[int, dict]:
    """Scrapy's run, then its summary (see :func:`run_crawl`); ``move_log``: ``log`` is
    temporary, moved into the output folder if the run captured something."""
    failures: list[Any] = []
    try:
        extra = {"WACZ_ENABLED": wacz, "CRAWL_MODE": mode}
        if log is not None:
            extra |= {"LOG_FILE": str(log), "LOG_FILE_APPEND": True}
        settings = crawl_settings(output, name, fast=fast, overrides=extra | (overrides or {}))
        # Every value checked before anything starts, whatever set it (exit 4, one line);
        # each component then takes its part of the same context (RunContext.of).
        context = RunContext.from_settings(settings)
        process = CrawlerProcess(settings)
        crawler_ = process.create_crawler(AutoblogSpider)
        done = process.crawl(crawler_, urls=list(urls), autoblogs=autoblogs or [])
        done.addErrback(failures.append)
        settle_collector()
        process.start()
    finally:
        # The crawl is over (or never started): a Ctrl-C now would only interrupt the
        # summary, or land in Scrapy's handler with no reactor left to stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for handler in logging.root.handlers:
            handler.flush()
    for failure in failures:
        if failure.check(RunLockedError):
            # Raised by CrawlState, the first component built: nothing of ours was written,
            # and the folder is another run's (never undo anything in it).
            raise UserError(failure.value.describe(), EXIT_LOCKED)
        if failure.check(UserError):
            # Refused before the run started (a malformed history): leave no trace.
            snapshot.restore()
        failure.raiseException()
    summary, outcome = summarize(crawler_, urls)
    summary |= {"started": started.isoformat(), "finished": datetime.now(UTC).isoformat()}
    summary |= {"seeds": list(urls), "output": str(output), "name": name}
    layout = context.layout
    files = [layout.archive / f for f in summary["warc_files"]]
    summary["warc_bytes"] = sum(p.stat().st_size for p in files if p.exists())
    code, summary["verdict"] = outcome.verdict()
    if log is not None:
        summary["log"] = str(log)
    if not outcome.held:
        snapshot.restore()
        if move_log:  # nowhere to keep it: the verdict says what went wrong
            del summary["log"]
        return code, summary
    if log is not None and move_log:
        summary["log"] = str(_keep_log(log, layout.crawl_log(started)))
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


def _keep_log(log: Path, target: Path) -> Path:
    """Move the log into ``<output>/logs/``; on a full disk it stays where it is."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(log, target)
    except OSError:
        target.unlink(missing_ok=True)
        return log
    return target


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The settings ``--set`` and ``--warc-max-size`` give, each checked (exit 4 if bad)."""
    overrides = dict(parse_setting(item) for item in args.set)
    if args.warc_max_size is not None:
        if args.warc_max_size <= 0:
            raise UsageError("--warc-max-size must be a positive number of bytes")
        overrides["WARC_MAX_SIZE"] = args.warc_max_size
    return overrides


def check_urls(urls: list[str]) -> list[str]:
    """Farm URLs must be http(s) with a host and a valid port: anything else is bad usage,
    not a dead farm."""
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"{url!r} is not an http(s) URL",
                "give a farm root like https://autoblog.example.org/",
            )
        try:
            bad_port = parts.port == 0
        except ValueError:  # not a number, or past 65535
            bad_port = True
        if bad_port:
            raise UsageError(f"{url!r}: the port must be a number from 1 to 65535")
    return urls


def run_crawl_command(args: argparse.Namespace) -> int:
    """``autoblog-archive crawl``: the command line's arguments to :func:`run_crawl`."""
    urls = list(args.urls)
    output = args.output
    name, wacz = args.name, args.wacz
    autoblogs = [a for a in args.autoblogs.split(",") if a]
    overrides: dict[str, Any] = {}
    mode = args.mode or "auto"
    if args.config:
        config = command_config(args.config)
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
    # Every option value is checked before anything starts (exit 4, one line).
    check_urls(urls)
    overrides.update(overrides_from_args(args))
    output_dir = check_output_folder(output or "output/crawl")
    name = check_collection_name(name or default_name(urls[0]))
    check_log_file(args.log_file)
    RunContext.from_settings(crawl_settings(output_dir, name, args.fast, overrides))
    processes = check_processes(args.processes)
    if processes > 1:
        return run_in_processes(Job(args, urls, output_dir, name, wacz, overrides, processes))
    if args.quiet:
        overrides["PROGRESS_LIVE"] = False
    code, summary = run_crawl(
        urls,
        output_dir,
        name=name,
        fast=args.fast,
        wacz=wacz,
        autoblogs=autoblogs,
        overrides=overrides,
        mode=mode,
        verbose=args.verbose,
        log_file=args.log_file,
    )
    share = overrides.get("PROCESS_SHARE")
    if args.quiet:
        print(terminal(summary["verdict"]), file=sys.stdout if code < EXIT_FAILED else sys.stderr)
    else:
        print_summary(summary, out=sys.stdout if code < EXIT_FAILED else sys.stderr)
    run = summary["run"]
    if code == EXIT_FAILED and not share and run["id"] is not None and run["status"] != "discarded":
        print(resume_line(), file=sys.stderr)  # a run to resume exists
    return code
