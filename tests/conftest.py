"""Shared fixtures (the helpers are in support.py) and the two tiers of the suite.

``pytest -m "not e2e"`` is the inner loop: tests that start no process and open no
socket. Every other test is marked ``e2e`` (a crawl, a server, the CLI as a subprocess,
pywb, Redis, Dask, Scrapyd); a test not so marked that starts one fails, saying so.
"""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator

import pytest
from support import responses, run_cli

from crawler.layout import OutputLayout
from crawler.samplefarm import RunningFarm, start_farm
from crawler.urls import canonical_url

ENGINES = ["0.3.4", "0.3.0", "0.2", "0.1", "2025", "0.3.1"]

# What an e2e test does and an inner-loop test must not (Python's audit events).
_OUTSIDE = ("subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec",
            "os.system", "socket.bind", "socket.connect")  # fmt: skip
_inner_loop: list[str] = []  # the node id of the running test that is not e2e


def _refuse_outside(event: str, args: tuple) -> None:
    if _inner_loop and event in _OUTSIDE:
        raise RuntimeError(
            f"{_inner_loop[0]} is not marked e2e but does {event}{args!r:.200}: "
            "mark it @pytest.mark.e2e or make it start nothing"
        )


sys.addaudithook(_refuse_outside)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Setup, call and teardown of a test not marked e2e run with the guard on."""
    inner = item.get_closest_marker("e2e") is None
    if inner:
        _inner_loop.append(item.nodeid)
    try:
        return (yield)
    finally:
        if inner:
            _inner_loop.clear()


# The files that take the longest (a minute or more of a worker), longest first: under
# pytest-xdist they are handed out before the others, so that no worker starts one of
# them while the others are finishing (docs/testing.md, "Two tiers"). A new long file
# joins the list; a file missing from it only goes later.
LONGEST_FIRST = (
    "test_settings.py",
    "test_operator.py",
    "test_hostile.py",
    "test_run_verdict.py",
    "test_cluster.py",
    "test_qa.py",
    "test_hostile_bounds.py",
    "test_bench.py",
    "test_history_validation.py",
    "test_bench_hostile.py",
    "test_backoff.py",
)


def _order(item: pytest.Item) -> tuple[bool, int]:
    name = item.path.name
    rank = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    return item.get_closest_marker("e2e") is None, rank


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a pytest-xdist worker (.ci/run: ``--dist loadfile --no-loadscope-reorder``, each
    file whole in one worker, handed out in this order) the e2e files go first, the
    longest of them (``LONGEST_FIRST``) before the others: the quick ones fill the end.
    A session fixture below is a crawl: the tests using it stay in one file, or each
    worker would crawl it again."""
    if hasattr(config, "workerinput"):
        items.sort(key=_order)


@pytest.fixture(scope="session")
def farm() -> RunningFarm:
    """Default farm: 3 autoblogs of 12 articles, engine 0.3.4 (La Quadrature first)."""
    with start_farm(autoblogs=3, articles=12, seed=1) as f:
        yield f


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


@pytest.fixture
def plain_site(tmp_path) -> Iterator[str]:
    """A plain web server (Python's file server): a page, but no autoblog anywhere."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html><body><p>Just a page.</p></body></html>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # noqa: D102 - keep the test output clean
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: Quiet(*a, directory=str(site))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
