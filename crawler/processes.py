"""``crawl --processes N``: one farm crawled by N processes on one machine, one output.

Scrapy runs on one core, and a farm's autoblogs are independent of each other. So the
farm's autoblogs are dealt out between N crawl processes: each is an ordinary ``crawl``
into its own folder under ``<output>/processes/<i>/`` (its own history, so its next run
is incremental), and :func:`crawler.cluster.merge.merge` makes the one output folder of
them that pywb, ``verify`` and the corpus tools read.

The deal is balanced and stable: the autoblogs the farm's index lists are dealt out
round-robin the first time and keep their process afterwards (``processes/deal.json``);
an autoblog the index does not list (``?export`` only, ``--autoblogs``) goes by a hash
of its URL. Every process reads the same deal, so each autoblog has exactly one owner.
Farm-level pages (the index, its exports) are fetched by every process; the merge keeps
one copy of each.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import signal
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from crawler.children import python_command
from crawler.escaping import terminal
from crawler.exitcodes import EXIT_FAILED, EXIT_LOCKED, EXIT_PARTIAL, EXIT_USAGE, UsageError
from crawler.urls import canonical_url

if TYPE_CHECKING:
    from crawler.context import ProcessOptions

logger = logging.getLogger(__name__)

DEAL_NAME = "deal.json"


def processes_root(output: str | Path) -> Path:
    """The folder of the processes' own output folders."""
    return Path(output) / "processes"


# Why the spider asks for an autoblog's base URL: an unlisted one is dealt by hash.
AUTOBLOG_REASONS = ("farm list", "farm export", "listed autoblog")


class Share:
    """The autoblogs one of N processes crawls (built by the spider from its settings)."""

    def __init__(self, index: int, count: int, owners: dict[str, int]) -> None:
        self.index = index
        self.count = count
        self.owners = {b: o for b, o in owners.items() if 0 <= o < count}

    def owner_of(self, url: str) -> int | None:
        """The process of the dealt autoblog ``url`` lies in (None: farm-level, unknown)."""
        if not url.isascii():
            url = canonical_url(url)
        url = url.split("?", 1)[0].split("#", 1)[0]
        slash = url.rfind("/")
        root = url.find("//") + 2
        while slash >= root:
            owner = self.owners.get(url[: slash + 1])
            if owner is not None:
                return owner
            slash = url.rfind("/", 0, slash)
        return None

    def keeps(self, url: str, reason: str | None) -> bool:
        """Whether this process fetches ``url``, found on a farm-level page for ``reason``."""
        owner = self.owner_of(url)
        # An autoblog's base URL has no query; the farm's own ``?export`` has one.
        if owner is None and reason in AUTOBLOG_REASONS and "?" not in url:
            key = canonical_url(url)
            owner = self.owners[key] = zlib.crc32(key.encode()) % self.count
        return owner is None or owner == self.index

    @classmethod
    def of(cls, options: ProcessOptions) -> Share | None:
        """``PROCESS_SHARE`` is ``i/N`` (empty: this process crawls everything), the deal
        in ``PROCESS_DEAL``."""
        if not options.share:
            return None
        index, _, count = options.share.partition("/")
        if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
            raise UsageError(f"PROCESS_SHARE={options.share}: expected i/N with i < N")
        owners = read_deal(Path(options.deal)).get("autoblogs", {}) if options.deal else {}
        return cls(int(index), int(count), owners)


def read_deal(path: Path) -> dict[str, Any]:
    """``processes/deal.json`` as the tool writes it, or ``{}`` (then the deal is made
    again): a process count, and each autoblog's process number. Read as any state file
    (not followed, bounded), and only entries of the right types are kept."""
    from crawler.untrusted import read_json_object

    data = read_json_object(path) or {}
    count = data.get("processes")
    owners = data.get("autoblogs")
    if not isinstance(count, int) or isinstance(count, bool) or not isinstance(owners, dict):
        return {}
    return {
        "processes": count,
        "autoblogs": {
            base: owner
            for base, owner in owners.items()
            if isinstance(owner, int) and not isinstance(owner, bool) and 0 <= owner < count
        },
    }


def listed_autoblogs(url: str, max_bytes: int, timeout: float, user_agent: str) -> list[str]:
    """The autoblogs a farm's index lists, read once before the processes start.

    One bounded GET of the seed itself (which every process fetches anyway), no
    redirect followed: a seed that is not a readable farm index gives an empty list,
    and the deal falls back to the hash.
    """
    parts = urlsplit(url)
    https = parts.scheme == "https"
    conn_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn = conn_class(parts.netloc, timeout=timeout)
        try:
            conn.request("GET", path, headers={"User-Agent": user_agent})
            response = conn.getresponse()
            if response.status != 200:
                return []
            body = response.read(max_bytes + 1)
        finally:
            conn.close()
    except (OSError, http.client.HTTPException, ValueError):
        return []
    if len(body) > max_bytes:
        return []
    from crawler.farm_documents import read_farm_page

    return [canonical_url(b) for b in read_farm_page(body, url).autoblogs]


def deal(listed: list[str], count: int, earlier: dict[str, Any]) -> dict[str, int]:
    """Each listed autoblog's process: the one it had (same N), else the least loaded."""
    owners: dict[str, int] = {}
    if earlier.get("processes") == count:
        owners = dict(earlier.get("autoblogs", {}))  # checked by read_deal
    load = [0] * count
    for owner in owners.values():
        load[owner] += 1
    for base in listed:
        if base not in owners:
            owner = min(range(count), key=lambda i: (load[i], i))
            owners[base] = owner
            load[owner] += 1
    return owners


def child_command(
    args: argparse.Namespace, output: Path, index: int, count: int, delay: float | None
) -> list[str]:
    """The ``crawl`` command line of process ``index``: the user's, into its own folder,
    with the delay between requests multiplied by N unless ``--fast`` (``delay``): the
    farm then sees the request rate its politeness settings promise, not N times it."""
    # The operator's own directory stays theirs (relative paths in the arguments), and
    # nothing is imported from it (python -P).
    cmd = python_command("-m", "crawler.cli", "crawl", *args.urls, "-o", str(output), "--quiet")
    if args.config:
        cmd += ["--config", args.config]
    if args.name:
        cmd += ["--name", args.name]
    if args.fast:
        cmd.append("--fast")
    if args.mode:
        cmd.append(f"--{args.mode}")
    if args.autoblogs:
        cmd += ["--autoblogs", args.autoblogs]
    if args.warc_max_size is not None:
        cmd += ["--warc-max-size", str(args.warc_max_size)]
    for item in args.set:
        cmd += ["--set", item]
    if delay is not None:
        cmd += ["--set", f"DOWNLOAD_DELAY={delay * count}"]
    deal_file = output.parent / DEAL_NAME
    cmd += ["--set", f"PROCESS_SHARE={index}/{count}", "--set", f"PROCESS_DEAL={deal_file}"]
    return cmd


@dataclass
class Job:
    """One ``crawl --processes N`` as the command line resolved it (config included)."""

    args: argparse.Namespace
    urls: list[str]
    output: Path
    name: str
    wacz: bool
    overrides: dict[str, Any]
    processes: int  # N, once capped at the cores


def run_in_processes(job: Job) -> int:
    """Deal the farm out, run the N crawls side by side, merge them into the output."""
    from crawler.folder import FolderSnapshot
    from crawler.runlock import RunLock, RunLockedError

    snapshot = FolderSnapshot.take(job.output)
    try:
        lock = RunLock(job.output, "autoblog-archive crawl --processes").acquire()
    except RunLockedError as exc:
        print(f"error: {exc.describe()}", file=sys.stderr)
        return EXIT_LOCKED
    try:
        code, merged = _crawl_and_merge(job)
    finally:
        lock.release()
    if not merged:
        snapshot.restore()
    if code == EXIT_FAILED and merged:
        from crawler.exitcodes import resume_line

        print(resume_line(), file=sys.stderr)
    return code


def _crawl_and_merge(job: Job) -> tuple[int, bool]:
    from crawler.cluster.merge import merge, print_outcome
    from crawler.context import command_context

    args, urls, output = job.args, job.urls, job.output

    count = job.processes
    context = command_context([], job.overrides)
    politeness = context.politeness
    delay = None if args.fast else politeness.delay
    listed: list[str] = []
    for url in urls:
        listed += listed_autoblogs(
            url, context.bounds.read_limit, politeness.timeout, politeness.user_agent
        )
    root = processes_root(output)
    root.mkdir(parents=True, exist_ok=True)
    deal_file = root / DEAL_NAME
    owners = deal(listed, count, read_deal(deal_file))
    deal_file.write_bytes(
        orjson.dumps({"processes": count, "autoblogs": owners}, option=orjson.OPT_INDENT_2)
    )
    folders = [root / str(i) for i in range(count)]
    codes = run_children([child_command(args, f, i, count, delay) for i, f in enumerate(folders)])
    refused = [code for code in codes if code in (EXIT_LOCKED, EXIT_USAGE)]
    if refused:
        return max(refused), False
    summaries = {f: read_summary(f / "summary.json") for f in folders}
    kept = [f for f, s in summaries.items() if s is not None]
    if not kept:
        print(
            f"nothing was captured: no process found an autoblog page at {', '.join(urls)}; "
            "the output folder was left as it was",
            file=sys.stderr,
        )
        return EXIT_FAILED, False
    result = merge(
        kept, output, context.bounds.read_limit, job.name, wacz=job.wacz, keep_duplicates=True
    )
    summary = merged_summary([s for s in summaries.values() if s], result.corpus_records)
    code = max(codes)
    if not result.complete:
        print_outcome(result)
        code = max(code, EXIT_PARTIAL)
    if not summary["autoblogs"] and code < EXIT_FAILED:
        code = EXIT_FAILED
        print(f"no autoblog found at {', '.join(urls)}: is it a Projet Autoblog farm root?")
    (output / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    print(
        f"merged into {output}: {summary['responses']} responses, "
        f"{len(summary['autoblogs'])} autoblogs, {len(result.files)} new WARC files, "
        f"{result.corpus_records} corpus records"
    )
    return code, True


def run_children(commands: list[list[str]]) -> list[int]:
    """Run the processes side by side; print each one's verdict; their exit codes.

    Each runs in its own session, so a Ctrl-C at the terminal reaches this process only
    and is passed on once to each: Scrapy stops gracefully on the first SIGINT and
    uncleanly on the second, as in a one-process crawl. SIGTERM is passed on the same way.
    """
    children = [
        subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        for cmd in commands
    ]

    def pass_on(signum: int, frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = []
        for i, child in enumerate(children):
            said = child.communicate()[0].strip()
            codes.append(child.returncode)
            said = said or f"exit {child.returncode}"
            print(terminal(f"process {i + 1}/{len(children)}: {said}"))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return codes


SUMMED = ("requests", "responses", "revisits", "warc_records", "payload_bytes", "errors")


def read_summary(path: Path) -> dict | None:
    """A process's ``summary.json`` (it captured something), kept only in the shape the
    merged summary reads: counts that are numbers, autoblogs an object."""
    from crawler.untrusted import read_json_object

    data = read_json_object(path)
    if data is None:
        return None
    for key in SUMMED:
        value = data.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            data[key] = 0
    if not isinstance(data.get("autoblogs"), dict):
        data["autoblogs"] = {}
    return data


def merged_summary(summaries: list[dict], corpus_records: int) -> dict:
    """The processes' summaries in one: counts summed (farm-level pages every process
    fetched are counted once per process), autoblogs together, each process's verdict."""
    merged: dict[str, Any] = {key: sum(s.get(key, 0) for s in summaries) for key in SUMMED}
    merged["autoblogs"] = {b: e for s in summaries for b, e in s.get("autoblogs", {}).items()}
    merged["corpus_records"] = corpus_records
    merged["processes"] = [
        {"output": s.get("output"), "verdict": s.get("verdict"), "run": s.get("run")}
        for s in summaries
    ]
    # Each process audits its own autoblogs (crawler.history.audit): together, the farm.
    audits = [s["audit"] for s in summaries if s.get("audit")]
    merged["audit"] = (
        {
            **{key: sum(a[key] for a in audits) for key in ("autoblogs", "checked")},
            "complete": all(a["complete"] for a in audits),
            "missing_total": sum(a["missing_total"] for a in audits),
            "missing": [m for a in audits for m in a["missing"]],
            "notes": [n for a in audits for n in a["notes"]],
        }
        if audits
        else None
    )
    merged["throttled"] = merged_throttled(summaries)
    return merged


def _count(value: object) -> float:
    """A count or a delay read from a process's summary: a number, 0 if it is none."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return max(float(value), 0.0)


def merged_throttled(summaries: list[dict]) -> dict[str, Any] | None:
    """What the processes say of throttling, together: answers and pages summed, the
    pages named, each host's delay the longest any process was asked for (crawler.backoff).
    A summary is read as any file from outside: what is not of the shape is left out."""
    parts = [s["throttled"] for s in summaries if isinstance(s.get("throttled"), dict)]
    if not parts:
        return None
    delays: dict[str, float] = {}
    for part in parts:
        listed = part.get("delays")
        for host, delay in listed.items() if isinstance(listed, dict) else ():
            delays[host] = max(delays.get(host, 0.0), _count(delay))
    return {
        "answers": int(sum(_count(p.get("answers")) for p in parts)),
        "pages_total": int(sum(_count(p.get("pages_total")) for p in parts)),
        "pages": [
            page
            for p in parts
            if isinstance(p.get("pages"), list)
            for page in p["pages"]
            if isinstance(page, dict)
        ],
        "delays": delays,
    }


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_processes(count: int | None) -> int:
    """``--processes N``: 1 or more, and no more than the cores (each process keeps one
    busy: more only take turns; the outside check measured 64 on 2 cores 2.5 times
    slower than 2)."""
    if count is None:
        return 1
    if count < 1:
        raise UsageError("--processes must be 1 or more")
    cores = available_cores()
    if count > cores:
        print(f"--processes {count}: capped at {cores}, the cores this machine gives the crawl",
              file=sys.stderr)  # fmt: skip
        return cores
    return count


def share_label(spec: str) -> str:
    """``PROCESS_SHARE`` ``i/N`` (0-based, as the folders are named) as the operator
    counts processes: ``process i+1/N``."""
    index, _, count = spec.partition("/")
    return f"process {int(index) + 1}/{count}"
