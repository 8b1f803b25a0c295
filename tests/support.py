"""Helpers the test files share: the real command line, what a crawl left behind, waiting.

Fixtures live in conftest.py; everything a test calls lives here, once. Waiting is
always on something that happens (a line printed, a port, a file, the farm's request
log), never a fixed sleep: a busy machine only makes the wait longer.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.urls import canonical_url

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
# The read-only reference pages the real engine rendered, beside the repository.
REFERENCE_PAGES = ROOT.parent / "shared" / "autoblog-reference" / "pages"
IS_ROOT = os.geteuid() == 0


# ---------------------------------------------------------------- the command line


def run_cli(
    *args: str,
    timeout: float = 300,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``autoblog-archive ARGS`` as a user runs it: its exit code and what it printed."""
    return subprocess.run(
        [str(BIN / "autoblog-archive"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def crawl_argv(url: str, out: Path, *extra: str, name: str = "f") -> list[str]:
    """The command line of a ``--fast`` crawl of ``url`` into ``out`` (collection ``name``)."""
    argv = [str(BIN / "autoblog-archive"), "crawl", url, "-o", str(out), "--name", name]
    return [*argv, "--fast", *extra]


def crawl(
    url: str, out: Path, *extra: str, name: str = "f", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """A ``--fast`` crawl through the real command line, run to its end."""
    argv = crawl_argv(url, out, *extra, name=name)
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)


def crawl_process(url: str, out: Path, *extra: str, name: str = "f", **kw: Any) -> subprocess.Popen:
    """The same crawl, started and left running (to be interrupted or killed)."""
    return subprocess.Popen(
        crawl_argv(url, out, *extra, name=name),
        stdout=kw.pop("stdout", subprocess.PIPE),
        stderr=kw.pop("stderr", subprocess.PIPE),
        text=True,
        **kw,
    )


def said(result: subprocess.CompletedProcess) -> str:
    """Everything a command printed, stdout then stderr."""
    return result.stdout + result.stderr


def crawl_log(result: subprocess.CompletedProcess) -> str:
    """The Scrapy log of a crawl run from the command line (its path ends the summary)."""
    for line in said(result).splitlines():
        if line.startswith("Log: "):
            return Path(line[len("Log: ") :].strip()).read_text(encoding="utf-8", errors="replace")
    raise AssertionError("no 'Log:' line in the crawl's output")


def warcio_check(files: Sequence[Path]) -> subprocess.CompletedProcess:
    """The real ``warcio check`` over ``files``: every record's digests."""
    assert files, "no WARC file to check"
    argv = [str(BIN / "warcio"), "check", *map(str, files)]
    return subprocess.run(argv, capture_output=True, text=True)


# ---------------------------------------------------------------- what a crawl left


def summary_of(out: Path) -> dict:
    """The last run's ``summary.json``."""
    return orjson.loads((out / "summary.json").read_bytes())


def responses(archive: Path) -> list[tuple[str, Any, bytes]]:
    """(target URI, http headers, raw stored body) of every response record."""
    out = []
    for path in sorted(archive.glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh, no_record_parse=False):
                if record.rec_type == "response":
                    uri = record.rec_headers.get_header("WARC-Target-URI")
                    out.append((uri, record.http_headers, record.raw_stream.read()))
    return out


def records_by_run(archive: Path) -> list[tuple[str, str, str, dict]]:
    """(crawlRun of the file's warcinfo, record type, target URI, WARC headers) of every
    record but the warcinfo."""
    out = []
    for path in sorted(archive.glob("*.warc.gz")):
        run = "?"
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == "warcinfo":
                    for line in record.content_stream().read().decode().splitlines():
                        if line.startswith("crawlRun:"):
                            run = line.split(":", 1)[1].strip()
                    continue
                uri = record.rec_headers.get_header("WARC-Target-URI")
                out.append((run, record.rec_type, uri, dict(record.rec_headers.headers)))
    return out


def path_of(url: str) -> str:
    """Path and query, percent-decoded: how the farm's log, its truth and WARCs compare."""
    parts = urlsplit(url)
    return unquote(parts.path + (f"?{parts.query}" if parts.query else ""))


def archived_paths(out: Path, name: str = "f") -> set[str]:
    """:func:`path_of` every response the collection ``name`` holds."""
    archive = out / "collections" / name / "archive"
    return {path_of(uri) for uri, _h, _b in responses(archive)}


def permalinks(farm) -> set[str]:
    """:func:`path_of` every article the farm serves now."""
    blogs = farm.truth()["autoblogs"].values()
    return {path_of(a["permalink"]) for blog in blogs for a in blog["articles"]}


def reachable_articles(truth: dict) -> set[str]:
    """The percent-decoded URL of every article a permalink serves, of a farm's truth
    (``farm.truth()["autoblogs"]``)."""
    blogs = truth.values()
    return {unquote(a["url"]) for blog in blogs for a in blog["articles"] if a["reachable"]}


def requested_urls(farm_url: str, log: list[dict]) -> list[str]:
    """The canonical URLs of a farm request log, in order."""
    return [canonical_url(farm_url.rstrip("/") + r["path"]) for r in log]


def corpus_records(folder: Path, pattern: str = "corpus/**/part-*.jsonl.gz") -> list[dict]:
    """Every record of the shards below ``folder`` matching ``pattern``, shard by shard."""
    out = []
    for shard in sorted(folder.glob(pattern)):
        out += [orjson.loads(line) for line in gzip.decompress(shard.read_bytes()).splitlines()]
    return out


def snapshot(root: Path, times: bool = True) -> dict[str, tuple]:
    """``root`` and every entry below it (links not followed): mode, size, content hash,
    and mtime unless ``times`` is false: what "untouched" compares."""
    out = {".": _seen(root, times)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            out[str(path.relative_to(root))] = _seen(path, times)
    return out


def _seen(path: Path, times: bool) -> tuple:
    st = path.lstat()
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
    return (st.st_mode, st.st_size, digest) + ((st.st_mtime_ns,) if times else ())


def tree(folder: Path) -> dict[str, int]:
    """Every file below ``folder`` with its size: what "left as it was" compares."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- waiting, ports


def wait_for(
    condition: Callable[[], object],
    what: str,
    proc: subprocess.Popen | None = None,
    timeout: float = 120,
) -> None:
    """Until ``condition()`` holds; fails if ``proc`` ended first, or after ``timeout``
    seconds (a stall guard, never a timing assertion)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout} s: {what}")
        tick.wait(0.02)


def wait_for_requests(farm, n: int, proc: subprocess.Popen | None = None) -> None:
    """Until the farm has seen ``n`` requests (the crawl must still run meanwhile)."""
    wait_for(lambda: len(farm.requests()) >= n, f"{n} requests at the farm", proc)


def free_port() -> int:
    """A loopback port nothing listens on (the OS's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# ---------------------------------------------------------------- processes, filesystems


def hold_in_subprocess(output: Path) -> subprocess.Popen:
    """A process holding the run lock of ``output`` until the test ends it (or closes its
    standard input)."""
    script = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from crawler.runlock import RunLock\n"
        f"RunLock({str(output)!r}, command='autoblog-archive crawl http://farm.test/').acquire()\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def kill_when_ready(script: str, growing: Path, more: int) -> None:
    """Run a writer script until it prints "ready", then until the ``.open`` file in
    ``growing`` holds ``more`` bytes past what it held then, and SIGKILL it.

    The kill lands wherever the writer is, mid-record included: what crash recovery
    must cope with.
    """
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

        def written() -> int:
            return sum(p.stat().st_size for p in growing.glob("*.open"))

        start = written()
        wait_for(lambda: written() >= start + more, f"{more} more bytes written", proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def must_mount(*argv: str, what: str) -> None:
    """``mount ARGV`` (root only): in CI a failure fails the test, elsewhere skips it."""
    if subprocess.run(["mount", *argv]).returncode:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount {what}")
        pytest.skip(f"cannot mount {what} here (needs root)")


@contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A small filesystem of our own on ``folder``, unmounted at the end."""
    folder.mkdir()
    must_mount("-t", "tmpfs", "-o", options, "tmpfs", str(folder), what=f"a tmpfs on {folder}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)])


# ---------------------------------------------------------------- replay


def replayed(root: Path, path: str) -> bytes:
    """What a real pywb serves at ``<its base URL><path>`` for the output folder ``root``."""
    import urllib.request

    from crawler.replay import Wayback

    with Wayback(root) as base:
        return urllib.request.urlopen(base + path).read()


def _pywb_available() -> bool:
    from crawler.replay import find_wayback

    return find_wayback() is not None


# Replay tests need pywb in its own environment; in CI (.ci/run installs it) a missing
# pywb is a failure, never a silent skip.
needs_pywb = pytest.mark.skipif(
    not _pywb_available() and not os.environ.get("CI"),
    reason="pywb not installed (python3 -m venv .venv-pywb && .venv-pywb/bin/pip install pywb)",
)


# ---------------------------------------------------------------- the run context


def default_context(**corpus: object):
    """The run context of the project's default settings (what every command starts
    from), its corpus options changed as given (``workers=2``, ``timeout=20``...)."""
    from dataclasses import replace

    from crawler.context import RunContext, project_settings

    context = RunContext.from_settings(project_settings())
    return replace(context, corpus=replace(context.corpus, **corpus))
