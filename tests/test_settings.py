"""Every setting the tool reads takes effect (issue 21): none is accepted and ignored.

The list is what the run context reads (``crawler.context.context_settings``); the settings
table of docs/crawling.md must be exactly that list, with its defaults. For each setting,
a real crawl or offline command on loopback shows that changing it changes what the user
gets, against the same farm crawled with the defaults; settings whose effects cannot mix
share one crawl. ``@shows`` records which test shows which setting, and the first test
checks that every setting is shown.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import sqlite3
import subprocess
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hostile import HostileServer, Reply
from support import BIN, needs_pywb
from test_cluster import redis_server
from test_qa import needs_chromium
from warcio.archiveiterator import ArchiveIterator

from crawler.cluster import Keys
from crawler.context import context_settings, project_settings
from crawler.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL
from crawler.samplefarm import start_farm
from crawler.urls import autoblog_base, canonical_url

ROOT = Path(__file__).resolve().parents[1]
SHOWN: dict[str, list[str]] = {}  # setting -> the tests that show it taking effect
# An allow-all robots.txt of 6 KB (a comment per line), so a smaller ROBOTSTXT_MAX_SIZE cuts it.
ROBOTS = "User-agent: *\nDisallow: /private/\n" + "# a comment line of the farm\n" * 200
AGENT = "settings-test/1.0 (+http://127.0.0.1/)"


def shows(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Records that the test shows these settings taking effect (an end-to-end test)."""

    def mark(test: Callable[..., Any]) -> Callable[..., Any]:
        for name in names:
            SHOWN.setdefault(name, []).append(test.__name__)
        return pytest.mark.e2e(test)

    return mark


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "autoblog-archive"), *args], capture_output=True, text=True, timeout=600, env=env
    )


def crawl(url: str, out: Path, *sets: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``crawl URL -o OUT --name farm --fast``, each of ``sets`` as a ``--set``."""
    argv = ["crawl", url, "-o", str(out), "--name", "farm", "--fast"]
    return cli(*argv, *(x for s in sets for x in ("--set", s)), env=env)


def said(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def log_of(out: Path) -> str:
    (log,) = (out / "logs").glob("crawl-*.log")
    return log.read_text(encoding="utf-8", errors="replace")


def warcs(out: Path) -> list[Path]:
    return sorted((out / "collections" / "farm" / "archive").glob("*.warc.gz"))


def warcinfo(path: Path) -> dict[str, str]:
    """The fields of a WARC file's first record, its warcinfo."""
    with open(path, "rb") as fh:
        record = next(iter(ArchiveIterator(fh)))
        assert record.rec_type == "warcinfo"
        text = record.content_stream().read().decode()
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def articles_in(history: Path) -> int:
    with sqlite3.connect(history) as conn:
        return conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0]


def requests_during(farm: Any, run: Callable[[], Any]) -> tuple[Any, list[dict]]:
    """What ``run`` returned, and the farm's log of the requests made meanwhile."""
    seen = len(farm.requests())
    result = run()
    return result, farm.requests()[seen:]


def in_pty(argv: list[str]) -> tuple[int, str]:
    """Run a command with a terminal for its stdin, stdout and stderr; (exit code, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    while True:  # read until the command closes its end: a full pty would block it
        ready, _, _ = select.select([master], [], [], 600)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer is gone
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=600), out.decode(errors="replace")


# ---------------------------------------------------------------- the list itself


def test_every_setting_the_context_reads_is_shown_to_take_effect() -> None:
    assert sorted(SHOWN) == sorted(context_settings())
    assert len(context_settings()) == len(set(context_settings()))


def documented() -> dict[str, str]:
    """The settings table of docs/crawling.md: name -> default cell."""
    text = (ROOT / "docs" / "crawling.md").read_text(encoding="utf-8")
    table = text.split("\n## Settings\n", 1)[1]
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|", table, flags=re.MULTILINE)
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)), "a setting documented twice"
    return {name: default.strip() for name, default in rows}


def test_the_docs_list_every_setting_the_context_reads_with_its_default() -> None:
    """docs/crawling.md documents the settings the context reads, no more, no fewer, each
    number and switch with the default crawler/settings.py gives it."""
    docs = documented()
    assert list(docs) == context_settings()
    defaults = project_settings()
    for name, cell in docs.items():
        default = defaults[name]
        if isinstance(default, bool | int | float):
            assert cell == f"`{default}`", (name, cell, default)
        elif default == "":
            assert cell == '`""`', (name, cell)


def test_no_module_imports_a_setting_default() -> None:
    """Defaults are read from settings (crawler.context), never imported as constants."""
    imports = re.compile(r"from crawler(\.settings import| import settings)|import crawler\.set")
    for folder in ("crawler", "spiders", "pipelines"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not imports.search(path.read_text(encoding="utf-8")), path


# ---------------------------------------------------------------- one farm, many crawls


@pytest.fixture(scope="module")
def farm() -> Iterator[Any]:
    """2 autoblogs of 12 articles and a 6 KB robots.txt; its request log tells the crawls apart."""
    with start_farm(autoblogs=2, articles=12, seed=3, robots=ROBOTS) as running:
        yield running


@pytest.fixture(scope="module")
def defaults(farm, tmp_path_factory) -> dict:
    """The farm crawled with the default settings (and --fast): what each setting changes."""
    out = tmp_path_factory.mktemp("defaults") / "out"
    result, asked = requests_during(farm, lambda: crawl(farm.url, out))
    assert result.returncode == EXIT_OK, said(result)[-3000:]
    return {"out": out, "result": result, "asked": asked, "summary": summary(out)}


@pytest.fixture(scope="module")
def bounded(farm, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bounded") / "out"
    sets = [
        "MAX_LINKS_PER_PAGE=3",
        "URLLENGTH_LIMIT=150",
        "MAX_PAGES_PER_AUTOBLOG=2",
        "ROBOTSTXT_MAX_SIZE=1000",
        "WARC_PREFIX=bounded",
        "WARC_MAX_SIZE=20000",
        "WARC_OPERATOR=the settings test",
        "WARC_DESCRIPTION=a bounded crawl",
        f"USER_AGENT={AGENT}",
        "PROGRESS_INTERVAL=0.1",
        "RUN_COMMAND=nightly farm job",
        "SCHEDULER_MEMORY_REQUESTS=1",
    ]
    result, asked = requests_during(farm, lambda: crawl(farm.url, out, *sets))
    assert result.returncode == EXIT_PARTIAL, said(result)[-3000:]
    return {"out": out, "result": result, "asked": asked, "summary": summary(out)}


@shows(
    "MAX_LINKS_PER_PAGE",
    "URLLENGTH_LIMIT",
    "MAX_PAGES_PER_AUTOBLOG",
    "ROBOTSTXT_MAX_SIZE",
)
def test_bounds_cut_what_they_bound(defaults, bounded) -> None:
    skipped = bounded["summary"]["skipped"]
    assert skipped["bound: MAX_LINKS_PER_PAGE=3"] > 0
    assert skipped["URL longer than 150 characters"] > 0
    assert skipped["bound: MAX_PAGES_PER_AUTOBLOG=2"] > 0
    assert skipped["bound: ROBOTSTXT_MAX_SIZE=1000"] == 1
    assert bounded["summary"]["capped"] == "MAX_PAGES_PER_AUTOBLOG=2"
    asked = [r["path"] for r in bounded["asked"] if r["path"] != "/robots.txt"]
    fetched = Counter(autoblog_base(path) for path in asked)
    assert max(fetched.values()) == 2, fetched  # fetches of one autoblog folder, no more
    assert not [k for k in defaults["summary"]["skipped"] if "bound" in k or "longer" in k]
    assert len(defaults["asked"]) > len(bounded["asked"])


def enqueued(out: Path) -> Counter:
    """Requests the crawl's scheduler put in memory and on disk (Scrapy's stats, logged)."""
    found = re.findall(r"'scheduler/enqueued/(memory|disk)': (\d+)", log_of(out))
    return Counter({where: int(n) for where, n in found})


@shows("SCHEDULER_MEMORY_REQUESTS")
def test_pending_requests_wait_in_memory_up_to_their_bound(defaults, bounded) -> None:
    """A small farm's pending requests all wait in memory (nothing serialised); past the
    bound they go to the disk queues, so memory stays bounded on a big farm."""
    default, one = enqueued(defaults["out"]), enqueued(bounded["out"])
    assert default["memory"] > 1 and default["disk"] == 0, default
    assert one["memory"] >= 1 and one["disk"] > 0, one


@shows("WARC_PREFIX", "WARC_MAX_SIZE", "WARC_OPERATOR", "WARC_DESCRIPTION", "USER_AGENT")
def test_warc_files_say_what_they_were_told(defaults, bounded) -> None:
    default_files, files = warcs(defaults["out"]), warcs(bounded["out"])
    assert len(default_files) == 1 and default_files[0].name.startswith("farm-")
    assert len(files) > 1 and all(f.name.startswith("bounded-") for f in files)
    assert all(f.stat().st_size < 20000 + 200_000 for f in files)  # rolled over between groups
    info, default_info = warcinfo(files[0]), warcinfo(default_files[0])
    assert info["operator"] == "the settings test" and info["description"] == "a bounded crawl"
    assert default_info["operator"] == "unknown operator"
    assert info["http-header-user-agent"] == AGENT
    assert {r["user_agent"] for r in bounded["asked"]} == {AGENT}
    assert default_info["http-header-user-agent"] != AGENT
    assert {r["user_agent"] for r in defaults["asked"]} == {default_info["http-header-user-agent"]}


@shows("RUN_COMMAND")
def test_the_history_keeps_the_command_it_is_given(farm, defaults, bounded) -> None:
    assert bounded["summary"]["report"]["run"]["command"] == "nightly farm job"
    command = defaults["summary"]["report"]["run"]["command"]  # by default, the process's
    assert f"autoblog-archive crawl {farm.url} -o {defaults['out']}" in command


def stat_of(log: str, stat: str) -> int:
    """A counter of the stats Scrapy dumps at the end of the crawl's log."""
    found = re.search(rf"'{re.escape(stat)}': (\d+)", log)
    assert found, stat
    return int(found.group(1))


@shows("CORPUS_WORKERS", "CORPUS_MAX_TASKS")
def test_the_crawl_extracts_with_its_workers_as_told(defaults, runs) -> None:
    """One worker replaced after each document: a process per document; by default two
    workers for every document (and one for the index-only texts once they are done)."""
    log, default_log = runs["first"]["log"], log_of(defaults["out"])
    queued = stat_of(log, "corpus/pages_queued")
    assert stat_of(log, "corpus/extraction_processes") >= queued > 40
    default_queued = stat_of(default_log, "corpus/pages_queued")
    assert stat_of(default_log, "corpus/extraction_processes") <= 3 < default_queued


@pytest.fixture(scope="module")
def switched(farm, tmp_path_factory) -> dict:
    """Components switched off and on, in a terminal: no live line asked for."""
    out = tmp_path_factory.mktemp("switched") / "out"
    sets = [
        "CORPUS_ENABLED=False",
        "HISTORY_ENABLED=False",
        "WACZ_ENABLED=True",
        "ROBOTSTXT_OBEY=False",
        "PROGRESS_INTERVAL=1000000",
        "PROGRESS_LIVE=False",
    ]
    argv = [str(BIN / "autoblog-archive"), "crawl", farm.url, "-o", str(out), "--name", "farm"]
    argv += ["--fast", *(x for s in sets for x in ("--set", s))]
    (code, shown), asked = requests_during(farm, lambda: in_pty(argv))
    assert code == EXIT_OK, shown[-3000:]
    return {"out": out, "shown": shown, "asked": asked}


@shows("CORPUS_ENABLED", "HISTORY_ENABLED", "WACZ_ENABLED", "ROBOTSTXT_OBEY")
def test_components_are_switched_off_and_on(defaults, switched) -> None:
    out = switched["out"]
    assert warcs(out) and not (out / "corpus").exists() and not (out / "history.sqlite").exists()
    assert (out / "farm.wacz").is_file()
    assert (defaults["out"] / "corpus").is_dir() and (defaults["out"] / "history.sqlite").is_file()
    assert not (defaults["out"] / "farm.wacz").exists()
    assert not [r for r in switched["asked"] if r["path"] == "/robots.txt"]
    assert [r for r in defaults["asked"] if r["path"] == "/robots.txt"]
    assert warcinfo(warcs(out)[0])["robots"] == "ignore"
    assert warcinfo(warcs(defaults["out"])[0])["robots"] == "obey"


@pytest.fixture(scope="module")
def unwritten(farm, tmp_path_factory) -> dict:
    """No WARC capture, in a terminal: the live line as by default."""
    out = tmp_path_factory.mktemp("unwritten") / "out"
    argv = [str(BIN / "autoblog-archive"), "crawl", farm.url, "-o", str(out), "--name", "farm"]
    code, shown = in_pty([*argv, "--fast", "--set", "WARC_ENABLED=False"])
    return {"out": out, "code": code, "shown": shown}


@shows("WARC_ENABLED")
def test_without_warc_capture_nothing_is_archived(unwritten) -> None:
    assert unwritten["code"] == EXIT_FAILED, unwritten["shown"][-3000:]
    assert "nothing was captured" in unwritten["shown"]
    assert not unwritten["out"].exists()  # left as it was: not there


@shows("PROGRESS_INTERVAL", "PROGRESS_LIVE")
def test_progress_is_shown_as_asked(bounded, switched, unwritten) -> None:
    """A live line on a terminal unless PROGRESS_LIVE is off; log lines every interval."""
    assert "\x1b[" in unwritten["shown"]  # rich's live line redraws itself
    assert "\x1b[" not in switched["shown"]
    assert "progress: pages" in log_of(bounded["out"])  # every 0.1 s: a crawl lasts longer
    assert not (switched["out"] / "logs").exists() or "progress: pages" not in log_of(
        switched["out"]
    )


@pytest.fixture(scope="module")
def hostile_seeds(tmp_path_factory) -> dict:
    """Three seeds, each failing on one bound: too many headers, too big, too slow."""
    out = tmp_path_factory.mktemp("seeds") / "out"
    release = threading.Event()
    with HostileServer(autoblogs=2, articles=3) as server:
        root, slow = server.url, server.base(1)

        def headers(s: HostileServer, target: str) -> Reply:
            reply = s.farm_reply(target)
            reply.headers += [(f"X-Pad-{i}", "1") for i in range(20)]
            return reply

        def hang(s: HostileServer, target: str) -> Reply:
            release.wait(120)
            return s.farm_reply(target)

        server.routes["/"] = headers
        server.routes[slow[len(root) - 1 :]] = hang
        sets = ["DOWNLOAD_MAXSIZE=500", "MAX_RESPONSE_HEADERS=15", "DOWNLOAD_TIMEOUT=2"]
        argv = ["crawl", root, server.base(0), slow, "-o", str(out), "--name", "farm", "--fast"]
        result = cli(*argv, *(x for s in [*sets, "RETRY_TIMES=0"] for x in ("--set", s)))
        release.set()
        return {"out": out, "result": result, "root": root, "big": server.base(0), "slow": slow}


@shows("DOWNLOAD_MAXSIZE", "MAX_RESPONSE_HEADERS", "DOWNLOAD_TIMEOUT")
def test_a_fetch_fails_past_its_bounds(hostile_seeds, defaults) -> None:
    """Each seed failed for its own bound (the farm's pages pass them all by default)."""
    result = hostile_seeds["result"]
    assert result.returncode == EXIT_FAILED, said(result)[-3000:]
    verdict = said(result)
    assert f"{hostile_seeds['root']} did not answer (response more than 15 header lines)" in verdict
    big = f"{hostile_seeds['big']} did not answer (body larger than DOWNLOAD_MAXSIZE (500 bytes))"
    assert big in verdict
    assert re.search(re.escape(hostile_seeds["slow"]) + r" did not answer \(\w*TimeoutError: .*"
                     r"took longer than 2\.0 seconds", verdict), verdict  # fmt: skip
    assert not hostile_seeds["out"].exists()
    assert not defaults["summary"]["error_reasons"]


# ---------------------------------------------------------------- offline commands


@shows("CORPUS_WORKERS", "CORPUS_MAX_TASKS")
def test_extract_takes_its_workers_and_their_recycling(defaults, tmp_path) -> None:
    archive = str(defaults["out"] / "collections" / "farm" / "archive")

    def extract(name: str, *sets: str) -> tuple[int, int]:
        result = cli("extract", archive, "-o", str(tmp_path / name),
                     *(x for s in sets for x in ("--set", s)))  # fmt: skip
        assert result.returncode == EXIT_OK, said(result)[-3000:]
        found = re.search(r"from (\d+) pages .*, (\d+) extraction processes", result.stdout)
        assert found, result.stdout
        return int(found.group(1)), int(found.group(2))

    # One worker: one process for the pages, and one for the text of the articles seen on
    # index pages only, once the pages are done; replaced after every document: as many
    # processes as documents; three workers: more than one took pages.
    pages, processes = extract("one", "CORPUS_WORKERS=1")
    assert processes <= 2 and pages > 20
    documents = extract("each", "CORPUS_WORKERS=1", "CORPUS_MAX_TASKS=1")[1]
    assert pages <= documents <= pages + 2
    assert extract("three", "CORPUS_WORKERS=3")[1] > 2


@shows("CORPUS_TIMEOUT")
def test_extraction_gives_up_on_a_document_after_its_timeout(defaults, tmp_path) -> None:
    """A worker gets CORPUS_TIMEOUT seconds a document: a millisecond is less than any
    real page takes (tens of milliseconds; the pool looks every tenth of a second, so it
    catches many of them, not each), the default 30 s more than any takes."""
    archive = str(defaults["out"] / "collections" / "farm" / "archive")
    argv = ["extract", archive, "--workers", "2", "-o"]
    cut = cli(*argv, str(tmp_path / "cut"), "--set", "CORPUS_TIMEOUT=0.001")
    whole = cli(*argv, str(tmp_path / "whole"))
    assert cut.returncode == EXIT_PARTIAL, said(cut)[-3000:]
    assert "extraction_timeout" in cut.stderr
    assert not re.search(r", 0 skipped,", cut.stdout), cut.stdout
    assert whole.returncode == EXIT_OK and ", 0 skipped," in whole.stdout, said(whole)[-3000:]


@pytest.fixture(scope="module")
def read_in_part(defaults, tmp_path_factory) -> dict:
    """Each command that reads the archive back, with a body bound below the pages' size."""
    work = tmp_path_factory.mktemp("read")
    archive = str(defaults["out"] / "collections" / "farm" / "archive")
    results = {}
    for bound in ("", "DOWNLOAD_MAXSIZE=2000"):
        sets = ["--set", bound] if bound else []
        tag = "small" if bound else "default"
        results[f"extract {tag}"] = cli("extract", archive, "-o", str(work / f"x-{tag}"), *sets)
        copy = work / f"copy-{tag}"
        shutil.copytree(defaults["out"], copy)
        results[f"reindex {tag}"] = cli("reindex", str(copy), *sets)
        results[f"history {tag}"] = articles_in(copy / "history.sqlite")
        merged = work / f"merged-{tag}"
        results[f"merge {tag}"] = cli("merge", str(defaults["out"]), "-o", str(merged), *sets)
        results[f"merged {tag}"] = articles_in(merged / "history.sqlite")
    return results


@shows()
def test_offline_readers_are_bounded_by_download_maxsize(read_in_part) -> None:
    """extract, reindex and merge read a stored page up to DOWNLOAD_MAXSIZE: past it, a page
    is not extracted (extract is partial) and its articles are not read into the history."""
    got = read_in_part
    assert got["extract default"].returncode == EXIT_OK, said(got["extract default"])
    assert got["extract small"].returncode == EXIT_PARTIAL, said(got["extract small"])
    assert "stored body larger than 2000 bytes" in said(got["extract small"])
    for command in ("reindex", "merge"):
        assert got[f"{command} default"].returncode == EXIT_OK, said(got[f"{command} default"])
        assert got[f"{command} small"].returncode == EXIT_OK, said(got[f"{command} small"])
    assert got["history default"] > 20 and got["history small"] == 0
    assert got["merged default"] == got["history default"] and got["merged small"] == 0


# ---------------------------------------------------------------- history, audit, corpus


@pytest.fixture(scope="module")
def capped(farm, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("capped") / "out"
    sets = ["MAX_PAGES_PER_RUN=15", "AUDIT_MAX_MISSING=2", "AUDIT_MAX_DECLARED=3"]
    result = crawl(farm.url, out, *sets)
    assert result.returncode == EXIT_PARTIAL, said(result)[-3000:]
    return {"out": out, "result": result, "summary": summary(out)}


@shows("MAX_PAGES_PER_RUN", "AUDIT_MAX_MISSING", "AUDIT_MAX_DECLARED")
def test_a_capped_run_and_its_audit(capped, defaults) -> None:
    found = capped["summary"]
    assert found["capped"] == "MAX_PAGES_PER_RUN=15"
    assert found["responses"] <= 15 + 1 < defaults["summary"]["responses"]  # + robots.txt
    audit = found["audit"]
    assert len(audit["missing"]) == 2 < audit["missing_total"]
    assert any("declares more than 3 items" in note for note in audit["notes"]), audit["notes"]
    assert defaults["summary"]["audit"]["complete"] and not defaults["summary"]["audit"]["notes"]
    # verify runs the same audit, with the settings it is given: the crawl's find the same
    same = cli("verify", str(capped["out"]), "--set", "AUDIT_MAX_DECLARED=3")
    deeper = cli("verify", str(capped["out"]))
    cut = cli("verify", str(capped["out"]), "--set", "AUDIT_MAX_MISSING=1")
    assert same.returncode == deeper.returncode == cut.returncode == EXIT_PARTIAL
    assert same.stdout.count("MISSING ") == audit["missing_total"]
    assert deeper.stdout.count("MISSING ") > audit["missing_total"]  # sources read deeper
    assert cut.stdout.count("MISSING ") == 2 and "more (AUDIT_MAX_MISSING)" in cut.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """One growing autoblog crawled again and again into one folder, settings changing."""
    out = tmp_path_factory.mktemp("runs") / "out"
    found: dict[str, Any] = {}
    with start_farm(autoblogs=1, articles=41, seed=5) as farm:

        def run(name: str, *sets: str) -> None:
            result, asked = requests_during(farm, lambda: crawl(farm.url, out, *sets))
            assert result.returncode == EXIT_OK, (name, said(result)[-3000:])
            told = summary(out)
            log = Path(told["log"]).read_text(encoding="utf-8", errors="replace")
            found[name] = {"summary": told, "asked": asked, "log": log}

        run("first", "CORPUS_WORKERS=1", "CORPUS_MAX_TASKS=1")
        run("full", "CRAWL_MODE=full", "AUDIT_ENABLED=False")
        run("due", "FULL_PASS_EVERY=1")
        farm.grow(n=1)
        run("no margin", "INCREMENTAL_MARGIN_PAGES=0")
        farm.grow(n=1)
        run("margin")
    return found


def index_pages(asked: list[dict]) -> list[str]:
    return sorted(r["path"] for r in asked if re.search(r"/\?\d+$", r["path"]))


@shows("CRAWL_MODE", "FULL_PASS_EVERY", "AUDIT_ENABLED", "INCREMENTAL_MARGIN_PAGES")
def test_the_kind_of_run_and_its_walk(runs) -> None:
    modes = {name: run["summary"]["run"]["mode"] for name, run in runs.items()}
    assert modes == {"first": "full", "full": "full", "due": "full", "no margin": "incremental",
                     "margin": "incremental"}  # fmt: skip
    assert runs["full"]["summary"]["audit"] is None
    assert runs["margin"]["summary"]["audit"]["complete"]
    # Each incremental run: the first page holds one new article; the walk goes on past
    # the first page holding only known ones for INCREMENTAL_MARGIN_PAGES pages.
    walked = index_pages(runs["margin"]["asked"])
    walked_less = index_pages(runs["no margin"]["asked"])
    assert len(walked) == len(walked_less) + 1, (walked, walked_less)


@pytest.fixture(scope="module")
def broken_pool(farm, tmp_path_factory) -> dict:
    """The extraction workers cannot start (a TMPDIR deeper than a Unix socket path may be):
    no corpus record at all, with CORPUS_MIN_RECORDS as it is and at 0."""
    work = tmp_path_factory.mktemp("pool")
    tmpdir = work / ("d" * 60) / ("d" * 60)
    tmpdir.mkdir(parents=True)
    env = dict(os.environ, TMPDIR=str(tmpdir))
    return {
        "default": crawl(farm.url, work / "default", env=env),
        "lenient": crawl(farm.url, work / "lenient", "CORPUS_MIN_RECORDS=0", env=env),
    }


@shows("CORPUS_MIN_RECORDS")
def test_how_short_a_corpus_may_be(broken_pool) -> None:
    default, lenient = broken_pool["default"], broken_pool["lenient"]
    assert default.returncode == EXIT_PARTIAL and "corpus short: 0 records" in default.stdout
    assert lenient.returncode == EXIT_OK, said(lenient)[-3000:]
    assert "corpus short" not in said(lenient)


# ---------------------------------------------------------------- the output folder


@shows("OUTPUT_DIR", "CRAWL_NAME")
def test_scrapy_crawl_writes_where_its_settings_say(farm, tmp_path) -> None:
    """``scrapy crawl`` from the repository (settings as -s strings, checked the same way)."""
    out = tmp_path / "elsewhere"
    argv = [str(BIN / "scrapy"), "crawl", "autoblog", "-a", f"url={farm.url}"]
    for setting in (f"OUTPUT_DIR={out}", "CRAWL_NAME=named", "DOWNLOAD_DELAY=0",
                    "AUTOTHROTTLE_ENABLED=False", "CONCURRENT_REQUESTS_PER_DOMAIN=16"):  # fmt: skip
        argv += ["-s", setting]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, said(result)[-3000:]
    assert list((out / "collections").iterdir()) == [out / "collections" / "named"]
    assert list((out / "collections" / "named" / "archive").glob("named-*.warc.gz"))
    assert (out / "history.sqlite").is_file()
    bad = subprocess.run([*argv, "-s", "MAX_PAGES_PER_RUN=-1"], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)  # fmt: skip
    assert bad.returncode != 0 and "MAX_PAGES_PER_RUN must be at least 0" in said(bad)


# ---------------------------------------------------------------- crawl --processes N


@shows("PROCESS_SHARE", "PROCESS_DEAL")
def test_a_share_crawls_the_autoblogs_its_deal_gives_it(farm, defaults, tmp_path) -> None:
    """A process of 2 crawls the autoblog the deal file gives it: one the fallback hash
    would give the other process, so only the file can have said so. (The farm's port is
    in every base URL, so which process the hash picks changes from run to run.)"""
    bases = sorted(defaults["summary"]["autoblogs"])
    mine, other = bases[0], bases[1]
    share = 1 - zlib.crc32(canonical_url(mine).encode()) % 2  # not the hash's choice
    deal = tmp_path / "deal.json"
    deal.write_text(json.dumps({"processes": 2, "autoblogs": {mine: share, other: 1 - share}}))
    out = tmp_path / "out"
    result = crawl(farm.url, out, f"PROCESS_SHARE={share}/2", f"PROCESS_DEAL={deal}")
    assert result.returncode == EXIT_OK, said(result)[-3000:]
    assert list(summary(out)["autoblogs"]) == [mine]
    assert summary(out)["skipped"]["autoblog of another process"] > 0


@shows("DOWNLOAD_DELAY")
def test_processes_share_the_delay_between_requests(farm, tmp_path) -> None:
    """N processes each wait N times DOWNLOAD_DELAY: the farm sees the promised rate."""
    out = tmp_path / "out"
    argv = ["crawl", farm.url, "-o", str(out), "--name", "farm", "--processes", "2"]
    result = cli(*argv, "--set", "DOWNLOAD_DELAY=0.01", "--set", "AUTOTHROTTLE_ENABLED=False")
    assert result.returncode == EXIT_OK, said(result)[-3000:]
    logs = sorted((out / "processes").glob("*/logs/crawl-*.log"))
    assert len(logs) == 2
    for log in logs:
        assert "'DOWNLOAD_DELAY': 0.02" in log.read_text(encoding="utf-8")


# ---------------------------------------------------------------- a shared Redis frontier


class Monitor:
    """Every command Redis runs, as (seconds, client address, arguments), from MONITOR
    (redis-py gives the arguments unquoted, joined by spaces)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.seen: list[tuple[float, str, list[str]]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        try:
            self._listen()
        except redis.ConnectionError:  # the server stopped: the test is over
            return

    def _listen(self) -> None:
        with self.client.monitor() as monitor:
            for command in monitor.listen():
                client = f"{command['client_address']}:{command.get('client_port')}"
                with self._lock:
                    self.seen.append((command["time"], client, command["command"].split()))

    def commands(self) -> list[tuple[float, str, list[str]]]:
        with self._lock:
            return list(self.seen)


@pytest.fixture(scope="module")
def cluster(farm, tmp_path_factory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("cluster")
    with redis_server(work) as port:
        url = f"redis://127.0.0.1:{port}/0"
        monitor = Monitor(url)
        keys, crawl_id = Keys("settings"), "settings"
        common = ["--redis", url, "--crawl-id", crawl_id]

        def seed() -> None:
            seeded = cli("seed", farm.url, *common, "--name", "farm")
            assert seeded.returncode == 0, said(seeded)

        def worker(name: str, *sets: str) -> list[str]:
            argv = [str(BIN / "autoblog-archive"), "worker", *common, "-o", str(work / name)]
            return [*argv, "--worker-id", name, "--fast", *(x for s in sets for x in ("--set", s))]

        found: dict[str, Any] = {"work": work, "keys": keys, "monitor": monitor}
        seed()  # run 1: a full pass, one worker with the defaults
        found["b"] = subprocess.run(worker("b"), capture_output=True, text=True, timeout=600)
        seed()  # run 2: incremental; two workers wait on a third that seems busy
        ghost = redis.Redis.from_url(url)
        ghost.set(keys.busy(2, "ghost"), 1, ex=600)
        fast = worker("a", "CLUSTER_BUSY_TTL=1000", "CLUSTER_POLL_INTERVAL=0.02")
        started: dict[str, subprocess.Popen] = {}
        try:
            started["a"] = popen(fast)
            busy = wait_for(monitor, started, lambda seen: clients_of(seen, keys, 2, "a"))
            started["d"] = popen(worker("d"))  # once a holds the work: d only waits
            found["polls"] = idle_polls(monitor, started, keys, 2, busy, 40)
        finally:
            ghost.delete(keys.busy(2, "ghost"))
            for name, proc in started.items():
                out, err = proc.communicate(timeout=600)
                found[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        seed()  # run 3: entries over a tiny bound
        found["c"] = subprocess.run(worker("c", "CLUSTER_MAX_ENTRY_SIZE=64"), capture_output=True,
                                    text=True, timeout=600)  # fmt: skip
        yield found


def popen(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(monitor: Monitor, running: dict[str, subprocess.Popen], found: Callable) -> Any:
    """What ``found`` makes of the commands Redis has run, once it is something; fails if
    a worker ends meanwhile (or after ten minutes: something is stuck)."""
    give_up = time.monotonic() + 600
    while not (result := found(monitor.commands())):
        ended = {name: p.returncode for name, p in running.items() if p.poll() is not None}
        assert not ended and time.monotonic() < give_up, (ended, monitor.commands()[-20:])
        threading.Event().wait(0.1)
    return result


def clients_of(seen: list, keys: Keys, run: int, worker: str) -> set[str]:
    """The connections that set the worker's busy key: its idle checks' connection."""
    busy = keys.busy(run, worker)
    return {client for _, client, args in seen if args[:2] == ["SET", busy]}


def polls_of(seen: list, keys: Keys, run: int) -> dict[str, list[float]]:
    """Every connection's looks at the busy workers of ``run`` (SCANs), by connection."""
    pattern, polls = keys.busy(run), {}
    for when, client, args in seen:
        if args[0] == "SCAN" and pattern in args:
            polls.setdefault(client, []).append(when)
    return polls


def idle_polls(
    monitor: Monitor,
    running: dict[str, subprocess.Popen],
    keys: Keys,
    run: int,
    mine: set[str],
    count: int,
) -> dict[str, list[float]]:
    """From the first look of another idle worker at the busy ones, the next ``count``
    looks of the worker on connection ``mine`` and every other connection's in the same
    span (``"mine"``: the worker's); waits for them."""

    def enough(seen: list) -> dict[str, list[float]] | None:
        polls = polls_of(seen, keys, run)
        others = [times[0] for client, times in polls.items() if client not in mine]
        if not others:
            return None
        start = min(others)
        own = [t for client in mine for t in polls.get(client, []) if t >= start]
        if len(own) < count:
            return None
        end = sorted(own)[count - 1]
        span = {c: [t for t in v if start <= t <= end] for c, v in polls.items() if c not in mine}
        return {"mine": sorted(own)[:count], **span}

    return wait_for(monitor, running, enough)


def busy_sets(monitor: Monitor, keys: Keys, run: int, worker: str) -> set[str]:
    """The expiry each SET of the worker's busy key gave it, in seconds."""
    busy = keys.busy(run, worker)
    return {args[4] for _, _, args in monitor.commands()
            if args[:2] == ["SET", busy] and args[3].upper() == "EX"}  # fmt: skip


def key_prefixes(monitor: Monitor) -> set[str]:
    """The crawl id of every key a command named (``autoblog-archive:<crawl id>:...``)."""
    return {args[1].split(":")[1] for _, _, args in monitor.commands()
            if len(args) > 1 and args[1].startswith("autoblog-archive:")}  # fmt: skip


@shows("CLUSTER_CRAWL_ID", "CLUSTER_RUN", "CLUSTER_MODE", "CLUSTER_WORKER", "REDIS_URL")
def test_a_worker_crawls_the_cluster_run_it_is_given(cluster) -> None:
    """What ``worker`` sets from its options and the run ``seed`` started: the Redis it
    talks to and the keys it uses, its run's number (in its WARCs) and kind."""
    work, keys, monitor = cluster["work"], cluster["keys"], cluster["monitor"]
    for name in ("b", "a", "d"):
        assert cluster[name].returncode == EXIT_OK, (name, said(cluster[name])[-3000:])
    assert key_prefixes(monitor) == {"settings"}  # this Redis saw them: REDIS_URL
    assert busy_sets(monitor, keys, 1, "b") and busy_sets(monitor, keys, 2, "a")
    first, second = summary(work / "b"), summary(work / "a")
    assert first["run"]["mode"] == "full" and second["run"]["mode"] == "incremental"
    assert second["run"]["id"] == 1  # the worker's own first run, of cluster run 2
    assert {warcinfo(w)["crawlRun"] for w in warcs(work / "a")} == {"2"}
    assert {warcinfo(w)["crawlRun"] for w in warcs(work / "b")} == {"1"}


@shows("CLUSTER_BUSY_TTL", "CLUSTER_POLL_INTERVAL")
def test_a_worker_says_it_is_busy_and_looks_again_as_told(cluster) -> None:
    """Its busy key expires as told (a killed worker is waited for that long); idle, it
    looks at the queue as often as told: 40 looks every 0.02 s, while a worker with the
    default 0.5 s looked at most half as often (the same span, the same machine)."""
    monitor, keys = cluster["monitor"], cluster["keys"]
    assert busy_sets(monitor, keys, 1, "b") == {"30"}
    assert busy_sets(monitor, keys, 2, "a") == {"1000"}
    polls = cluster["polls"]
    others = [times for name, times in polls.items() if name != "mine"]
    assert len(polls["mine"]) == 40 and len(others) == 1  # worker d's
    assert len(others[0]) <= 20, polls


@shows("CLUSTER_MAX_ENTRY_SIZE")
def test_frontier_entries_over_the_bound_are_dropped(cluster) -> None:
    dropped = cluster["c"]
    assert dropped.returncode == EXIT_PARTIAL, said(dropped)[-3000:]
    assert "dropped" in said(dropped) and "invalid frontier entry" in said(dropped)


# ---------------------------------------------------------------- qa in headless Chromium


@pytest.fixture(scope="module")
def replayed(defaults, tmp_path_factory) -> dict:
    """``qa`` on two pages of the crawl: with the defaults, with tight bounds, and with
    no time to load but no threshold either (each run on a copy: qa writes qa/)."""
    work = tmp_path_factory.mktemp("qa")
    runs = {
        "default": [],
        "bounded": ["QA_MAX_REQUESTS=1", "QA_TEXT_CHARS=30"],
        "rushed": ["QA_PAGE_TIMEOUT=0.001", "QA_MIN_SCORE=0"],
    }
    found = {}
    for name, sets in runs.items():
        copy = work / name
        shutil.copytree(defaults["out"], copy)
        argv = ["qa", str(copy), "--sample", "2", *(x for s in sets for x in ("--set", s))]
        result = cli(*argv)
        pages = [
            json.loads(line) for line in (copy / "qa" / "pages.jsonl").read_text().splitlines()
        ]
        found[name] = {"result": result, "pages": pages}
    return found


@needs_chromium
@needs_pywb
@shows("QA_PAGE_TIMEOUT", "QA_MAX_REQUESTS", "QA_TEXT_CHARS", "QA_MIN_SCORE")
def test_qa_opens_pages_within_its_bounds(replayed) -> None:
    default, bounded, rushed = replayed["default"], replayed["bounded"], replayed["rushed"]
    # The two pages drawn link an image of another site (not archived): below 0.9.
    assert default["result"].returncode == EXIT_PARTIAL, said(default["result"])[-3000:]
    assert "threshold 0.90" in default["result"].stdout
    assert [p["url"] for p in default["pages"]] == [p["url"] for p in bounded["pages"]]
    assert not any(p["requests_over_bound"] for p in default["pages"])
    assert any(p["requests_over_bound"] for p in bounded["pages"])  # its stylesheet, images
    for short, whole in zip(bounded["pages"], default["pages"], strict=True):
        for side in ("captured", "replay"):  # characters compared, each side
            assert short["text_chars"][side] <= 30 < whole["text_chars"][side]
    # No time to load: every page broken, scored 0, and still no page below a threshold of 0.
    assert rushed["result"].returncode == EXIT_OK, said(rushed["result"])[-3000:]
    for page in rushed["pages"]:
        assert page["score"] == 0 and any("did not load" in p for p in page["problems"])
    assert "threshold 0.00" in rushed["result"].stdout


# ---------------------------------------------------------------- back-off on 429


@pytest.fixture(scope="module")
def throttled(tmp_path_factory) -> dict:
    """A farm whose second autoblog answers every URL's first ask with 429 "retry after
    120 s": crawled with BACKOFF_MAX_DELAY=0.2, then the same with RETRY_ENABLED off (each
    crawl its own farm: the farm throttles a URL's first ask only)."""
    work = tmp_path_factory.mktemp("throttled")
    found = {}
    runs = {"retried": ["BACKOFF_MAX_DELAY=0.2"],
            "given up": ["BACKOFF_MAX_DELAY=0.2", "RETRY_ENABLED=False"]}  # fmt: skip
    for name, sets in runs.items():
        with start_farm(autoblogs=2, articles=3, seed=3, fault=["1:throttle=1:120"]) as farm:
            result = crawl(farm.url, work / name, *sets)
        found[name] = {"result": result, "summary": summary(work / name)}
    return found


@shows("BACKOFF_MAX_DELAY", "RETRY_ENABLED")
def test_a_throttling_farm_is_waited_for_as_long_as_allowed(throttled) -> None:
    """The farm asked for 120 s: the crawl waited BACKOFF_MAX_DELAY, slowed the host to
    it, and asked again (RETRY_ENABLED); without retries each page is given up at once,
    named, and the run is partial."""
    retried, given_up = throttled["retried"], throttled["given up"]
    assert retried["result"].returncode == EXIT_OK, said(retried["result"])[-3000:]
    slowed = retried["summary"]["throttled"]
    assert slowed["answers"] > 0 and slowed["delays"] == {"127.0.0.1": 0.2}
    assert slowed["pages_total"] == 0
    assert given_up["result"].returncode == EXIT_PARTIAL, said(given_up["result"])[-3000:]
    pages = given_up["summary"]["throttled"]["pages"]
    assert pages and {p["attempts"] for p in pages} == {1}
    assert "answered 429 on each of 1 attempts" in given_up["result"].stdout
