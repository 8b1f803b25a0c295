"""Measuring one tool's run as its own process: wall time, CPU time, peak RSS; the machine."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crawler.children import python_command

# ---------------------------------------------------------------- measuring processes


@dataclass
class Run:
    """One process: wall time, CPU time (with its waited-for children), peak RSS, pages."""

    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    pages: int = 0
    exit_code: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# A spawned process inherits its parent's peak RSS (Linux records the old address space's
# high-water mark at exec), so the tools are started from this small launcher, not from
# the bench process: the floor of every figure is then ~10 MB, not the bench's own size.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write("%f %f %d %d" % (time.perf_counter() - started, usage.ru_utime + usage.ru_stime,
                              usage.ru_maxrss, os.waitstatus_to_exitcode(status)))
"""


def measure(cmd: Sequence[str], log: Path) -> Run:
    """Run ``cmd`` to completion: its wall time, CPU time and peak RSS (from ``wait4``)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    figures = log.with_suffix(".rusage")
    with open(log, "wb") as out:
        subprocess.run(
            python_command("-S", "-c", LAUNCHER, str(figures), *cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    seconds, cpu, rss_kib, code = figures.read_text().split()
    return Run(
        seconds=round(float(seconds), 3),
        cpu_seconds=round(float(cpu), 3),
        peak_rss_mb=round(int(rss_kib) / 1024, 1),  # KiB on Linux
        exit_code=int(code),
    )


def summarize_runs(runs: list[Run]) -> dict[str, Any]:
    """Median and spread (min, max) of repeated runs; rates use the median time."""
    seconds = [r.seconds for r in runs]
    pages = runs[0].pages
    median = statistics.median(seconds)
    return {
        "runs": [asdict(r) for r in runs],
        "pages": pages,
        "median_seconds": round(median, 3),
        "min_seconds": min(seconds),
        "max_seconds": max(seconds),
        "pages_per_s": round(pages / median, 1) if median else None,
        "cpu_ms_per_page": round(1000 * statistics.median(r.cpu_seconds for r in runs) / pages, 2)
        if pages
        else None,
        "peak_rss_mb": max(r.peak_rss_mb for r in runs),
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was (2 shared cores here)."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("scrapy", "twisted", "warcio", "trafilatura", "lxml"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:  # noqa: BLE001 - a missing package is just not reported
            versions[package] = None
    wget = shutil.which("wget")
    wget_version = None
    if wget:
        first = subprocess.run([wget, "--version"], capture_output=True, text=True).stdout
        wget_version = first.splitlines()[0] if first else None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "loadavg_before": list(os.getloadavg()),
        "packages": versions,
        "wget": wget_version,
        "commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
        )
    except OSError:
        return None
    return done.stdout.strip() or None
