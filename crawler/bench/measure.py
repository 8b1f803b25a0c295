"""Measuring one tool's run as its own process: wall time, CPU time, peak RSS; the machine."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import threading
import time
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


def measure(cmd: Sequence[str], log: Path, rss_every: float = 0.0) -> Run:
    """Run ``cmd`` to completion: its wall time, CPU time and peak RSS (from ``wait4``);
    with ``rss_every`` > 0, also the memory of its whole process tree (PSS, MB) every
    ``rss_every`` seconds, in ``extra["rss_mb_over_time"]`` as (seconds, MB) pairs."""
    log.parent.mkdir(parents=True, exist_ok=True)
    figures = log.with_suffix(".rusage")
    series: list[tuple[float, float]] = []
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            python_command("-S", "-c", LAUNCHER, str(figures), *cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        started = time.perf_counter()
        if rss_every > 0:
            while proc.poll() is None:
                kb = sum(pss for pss, _ in tree_memory_kb(proc.pid).values())
                series.append((round(time.perf_counter() - started, 1), round(kb / 1024, 1)))
                try:
                    proc.wait(timeout=rss_every)
                except subprocess.TimeoutExpired:
                    continue
        if proc.wait() != 0:
            raise subprocess.CalledProcessError(proc.returncode, cmd)
    seconds, cpu, rss_kib, code = figures.read_text().split()
    run = Run(
        seconds=round(float(seconds), 3),
        cpu_seconds=round(float(cpu), 3),
        peak_rss_mb=round(int(rss_kib) / 1024, 1),  # KiB on Linux
        exit_code=int(code),
    )
    if rss_every > 0:
        run.extra["rss_mb_over_time"] = series
    return run


# ---------------------------------------------------------------- a process tree's memory


def _children(pid: int) -> list[int]:
    """The processes ``pid``'s threads started (Linux's ``/proc/PID/task/TID/children``)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                found.extend(int(child) for child in fh.read().split())
        except (OSError, ValueError):
            continue
    return found


def _memory_kb(pid: int) -> tuple[int, int] | None:
    """(PSS, VmHWM) in kB of one process, or None once it is gone."""
    try:
        high = 0
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    high = int(line.split()[1])
        pss = 0
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pss, high


def tree_memory_kb(root: int) -> dict[int, tuple[int, int]]:
    """(PSS, VmHWM) in kB of ``root`` and every descendant now (Linux /proc).

    PSS shares a page between the processes mapping it, so forked workers' sums are real.
    The tree is walked from ``root`` down, never by reading every process of the machine:
    the sampler runs every 10 ms, and a scan of a busy machine's /proc took most of a core
    from the command it measured.
    """
    tree: dict[int, tuple[int, int]] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in tree:
            continue
        memory = _memory_kb(pid)
        if memory is not None:
            tree[pid] = memory
            todo.extend(_children(pid))
    return tree


@dataclass
class Measured:
    """What one measured command did: its exit, output and peak memory."""

    returncode: int
    stdout: str
    stderr: str
    peak_process_mb: float  # the largest peak (VmHWM) of any process of the tree
    peak_tree_mb: float  # the largest sampled sum of proportional memory (PSS) over the tree
    seconds: float = 0.0  # wall time


# The tree's memory is read every 10 ms, or less often when a reading takes longer: the
# kernel walks every page of a process for its PSS (11 ms for 200 MB), and a sampler that
# read without pause took a core from the command it measured. Waiting nine times what a
# reading took keeps the sampler to a tenth of a core; each process's own peak (VmHWM) is
# the kernel's and exact whatever the pace.
SAMPLE_EVERY = 0.01
SAMPLE_SHARE = 9


def run_measured(argv: list[str], timeout: float = 300) -> Measured:
    """Run a command, watching the memory of its whole process tree (every 10 ms, or
    ``SAMPLE_SHARE`` times what a reading takes); past ``timeout`` seconds it is killed
    (its return code then says so).

    ``getrusage`` only sees children that were waited for, and extraction workers are
    children of a forkserver: so each process's own high-water mark is read from /proc.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hwm: dict[int, int] = {}
    tree_peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal tree_peak
        while not done.is_set():
            began = time.perf_counter()
            tree = tree_memory_kb(proc.pid)
            tree_peak = max(tree_peak, sum(pss for pss, _ in tree.values()))
            for pid, (_, high) in tree.items():
                hwm[pid] = max(hwm.get(pid, 0), high)
            done.wait(max(SAMPLE_EVERY, SAMPLE_SHARE * (time.perf_counter() - began)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # A stall guard: the command is stopped (not left running) and says so.
        proc.kill()
        out, err = proc.communicate()
        err += f"\n[run_measured: killed after {timeout} s]"
    finally:
        done.set()
        sampler.join()
    return Measured(
        proc.returncode,
        out,
        err,
        max(hwm.values(), default=0) / 1024,
        tree_peak / 1024,
        round(time.perf_counter() - started, 3),
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
    versions: dict[str, str | None] = {}
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
