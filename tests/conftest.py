"""Shared fixtures: a sample farm started on a free port for the whole test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.layout import OutputLayout
from crawler.samplefarm import RunningFarm, start_farm
from crawler.urls import canonical_url

ENGINES = ["0.3.4", "0.3.0", "0.2", "0.1", "2025", "0.3.1"]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def farm() -> RunningFarm:
    """Default farm: 3 autoblogs of 12 articles, engine 0.3.4 (La Quadrature first)."""
    with start_farm(autoblogs=3, articles=12, seed=1) as f:
        yield f


def run_cli(
    *args: str, timeout: float = 300, cwd: str | os.PathLike[str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "autoblog-archive"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def crawl_log(result: subprocess.CompletedProcess) -> str:
    """The Scrapy log of a crawl run from the command line (its path ends the summary)."""
    for line in (result.stdout + result.stderr).splitlines():
        if line.startswith("Log: "):
            return Path(line[len("Log: ") :].strip()).read_text(encoding="utf-8", errors="replace")
    raise AssertionError("no 'Log:' line in the crawl's output")


def responses(archive: Path) -> list[tuple[str, object, bytes]]:
    """(target URI, http headers, raw stored body) of every response record."""
    out = []
    for path in sorted(archive.glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh, no_record_parse=False):
                if record.rec_type == "response":
                    uri = record.rec_headers.get_header("WARC-Target-URI")
                    out.append((uri, record.http_headers, record.raw_stream.read()))
    return out


@pytest.fixture(scope="session")
def crawled(tmp_path_factory):
    """A farm with every engine, gzip on one autoblog, a hidden one, and a robots.txt."""
    out = tmp_path_factory.mktemp("crawl")
    with start_farm(
        autoblogs=7,
        articles=23,
        engine=ENGINES,
        fault=["1:gzip", "6:disabled", "*:update"],
        robots="User-agent: *\nDisallow: /private/\n",
    ) as farm:
        result = run_cli("crawl", farm.url, "--output", str(out), "--name", "farm", "--fast")
        yield {
            "farm": farm,
            "out": out,
            "result": result,
            "requests": farm.requests(),
            "truth": farm.truth()["autoblogs"],
            "responses": responses(out / "collections" / "farm" / "archive"),
        }


@pytest.fixture(scope="session")
def history_crawls(tmp_path_factory):
    """Three real crawls of one changing farm into one output folder (read it, never
    write it: copy it first). 2 autoblogs of 12 articles, engines 0.3.4 and 2025:

    - run 1, the first crawl (a full pass);
    - ``grown``: K=3 new articles in autoblog 0; ``edited``: a paragraph appended to the
      oldest article of autoblog 1 (page 3: an incremental run does not look there);
    - run 2, ``--incremental``;
    - ``deleted``: the newest article of autoblog 0 (one of the grown) is deleted;
    - run 3, ``--full``.

    ``requests`` holds the farm's request log of each run, in order.
    """
    out = tmp_path_factory.mktemp("history")
    with start_farm(autoblogs=2, articles=12, seed=1, engine=["0.3.4", "2025"]) as farm:
        truth = farm.truth()["autoblogs"]
        folders = list(truth)
        crawl = ["crawl", farm.url, "-o", str(out), "--name", "farm", "--fast"]
        logs: list[list[dict]] = []

        def run(*extra: str) -> None:
            seen = len(farm.requests())
            result = run_cli(*crawl, *extra)
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
            logs.append(farm.requests()[seen:])

        run()
        grown = farm.grow(folders[0], 3)["articles"]
        edited = farm.edit(folders[1], 0)["articles"][0]
        run("--incremental")
        deleted = farm.delete(folders[0], 1)["articles"][0]
        run("--full")
        yield {
            "farm_url": farm.url,
            "out": out,
            "layout": OutputLayout(out, "farm"),
            "runs": (1, 2, 3),
            "requests": logs,
            "bases": tuple(truth[f]["base_url"] for f in folders),
            "truth": truth,
            "truth_after": farm.truth()["autoblogs"],
            "grown": [canonical_url(a["permalink"]) for a in grown],
            "edited": canonical_url(edited["permalink"]),
            "deleted": canonical_url(deleted["permalink"]),
        }


def requested_urls(farm_url: str, log: list[dict]) -> list[str]:
    """The canonical URLs of a farm request log, in order."""
    return [canonical_url(farm_url.rstrip("/") + r["path"]) for r in log]


# The read-only reference pages the real engine rendered, beside the repository.
REFERENCE_PAGES = Path(__file__).resolve().parents[2] / "shared" / "autoblog-reference" / "pages"


def kill_when_ready(script: str, settle: float) -> None:
    """Run a writer script until it prints "ready", let it write ``settle`` s more, SIGKILL it.

    The kill lands wherever the writer is, mid-record included: what crash recovery
    must cope with.
    """
    import os
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(settle)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


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


def default_context(**corpus: object):
    """The run context of the project's default settings (what every command starts
    from), its corpus options changed as given (``workers=2``, ``timeout=20``...)."""
    from dataclasses import replace

    from crawler.context import RunContext, project_settings

    context = RunContext.from_settings(project_settings())
    return replace(context, corpus=replace(context.corpus, **corpus))
