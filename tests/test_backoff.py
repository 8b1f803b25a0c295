"""Polite back-off (issue 23, item 6): a farm that answers 429 Too Many Requests, or 503 with
a Retry-After, is asked again after the wait it names and more slowly for the rest of the
run; a page it keeps throttling is named, makes the run partial, never replaces the page's
last good capture (history, report, corpus), and the next run fetches it first.

Three real crawls of one sample farm in throttling mode (``--fault N:throttle=...``: a
seeded share of the URLs answers "too many requests"), through the real command line. The
back-off is read off the farm's own request log (when each answer left, when the retry
came), never off a clock of the test.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from email.utils import formatdate
from pathlib import Path

import pytest
from support import responses, run_cli

from crawler.backoff import retry_after
from crawler.history.archive_view import ArchiveView
from crawler.history.audit import (
    THROTTLED_WHY,
    AuditBounds,
    AuditScope,
    audit_archive,
    missing_before,
    save_audit,
)
from crawler.history.store import History
from crawler.layout import OutputLayout
from crawler.samplefarm import start_farm
from crawler.scope import Scope
from crawler.urls import canonical_url

NAME = "farm"
WAIT = 1.0  # the Retry-After of the farm's 429s, in seconds
THROTTLED = (429, 503)


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def snapshot(history: Path, into: Path) -> Path:
    """A copy of the history as it is now (SQLite's backup: the WAL included)."""
    src, dst = sqlite3.connect(history), sqlite3.connect(into)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return into


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run 1: autoblog 0 answers 429 (Retry-After: 1) the first time a third of its URLs
    are asked, autoblog 1 answers 503 with an HTTP-date Retry-After likewise: every page
    is archived after a retry. Run 2 (``--full``, one retry): autoblog 0 throttles the
    same URLs on every request. Run 3, the throttling lifted: the same command as run 1.
    """
    out = tmp_path_factory.mktemp("backoff")
    snapshots = tmp_path_factory.mktemp("backoff-snapshots")
    throttle = "throttle=0.3:1"
    with start_farm(
        autoblogs=2, articles=6, seed=1, fault=[f"0:{throttle}:1", "1:throttle=0.3:@1:1:503"]
    ) as farm:
        folders = list(farm.truth()["autoblogs"])
        crawl = ["crawl", farm.url, "-o", str(out), "--name", NAME, "--fast"]
        results, logs, summaries = [], [], []

        def run(*extra: str) -> None:
            seen = len(farm.requests())
            results.append(run_cli(*crawl, *extra))
            logs.append(farm.requests()[seen:])
            summaries.append(summary(out))

        run()
        farm.fault(folders[0], f"{throttle}:0")  # the same URLs, every time
        farm.fault(folders[1], "throttle=0")
        run("--full", "--set", "RETRY_TIMES=1")
        history_2 = snapshot(out / "history.sqlite", snapshots / "history-2.sqlite")
        verify_2 = run_cli("verify", str(out))
        farm.fault(folders[0], "throttle=0")
        run()
        yield {
            "farm_url": farm.url,
            "out": out,
            "results": results,
            "logs": logs,
            "summaries": summaries,
            "history_2": history_2,
            "verify_2": verify_2,
        }


def url_of(farm_url: str, entry: dict) -> str:
    return canonical_url(farm_url.rstrip("/") + entry["path"])


def throttled_urls(runs: dict, run: int) -> set[str]:
    """URLs a run's log shows throttled on every attempt (never served in that run)."""
    log = runs["logs"][run - 1]
    asked = {url_of(runs["farm_url"], e) for e in log if e["status"] in THROTTLED}
    served = {url_of(runs["farm_url"], e) for e in log if e["status"] not in THROTTLED}
    return asked - served


@pytest.mark.e2e
def test_a_throttled_page_is_asked_again_after_its_retry_after(runs):
    result, log = runs["results"][0], runs["logs"][0]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "complete" in result.stdout
    throttled = [i for i, e in enumerate(log) if e["status"] in THROTTLED]
    assert {log[i]["status"] for i in throttled} == {429, 503}
    for i in throttled:
        answer = log[i]
        retry = next(e for e in log[i + 1 :] if e["path"] == answer["path"])
        assert retry["status"] == 200, answer["path"]
        if answer["status"] == 429:
            # Logged once the 429 was sent, the retry once answered: the crawl waited
            # the Retry-After in between, at least.
            assert retry["time"] - answer["time"] >= WAIT, answer["path"]
    said = runs["summaries"][0]["throttled"]
    assert said["answers"] == len(throttled)
    assert said["pages_total"] == 0 and said["pages"] == []
    assert said["delays"] == {"127.0.0.1": WAIT}
    assert f"throttled {len(throttled)} x" in result.stdout
    assert f"slowed 127.0.0.1 to one request every {WAIT:.1f} s" in result.stdout


@pytest.mark.e2e
def test_the_host_stays_slowed_for_the_rest_of_the_run(runs):
    """--fast asks for no delay at all; after the first throttled answer every request to
    the farm is at least the Retry-After apart (the requests already under way when it
    came are left out: the first half-second)."""
    log = runs["logs"][0]
    first = next(e["time"] for e in log if e["status"] == 429)
    after = [e["time"] for e in log if e["time"] >= first + WAIT / 2]
    assert len(after) >= 20
    assert after[-1] - after[0] >= (len(after) - 1) * WAIT - 0.5
    before = [e["time"] for e in log if e["time"] < first]
    assert before[-1] - before[0] < (len(before) - 1) * WAIT  # not slowed before it


@pytest.mark.e2e
def test_pages_still_throttled_are_named_and_the_run_is_partial(runs):
    result, said = runs["results"][1], runs["summaries"][1]
    throttled = throttled_urls(runs, 2)
    assert len(throttled) >= 3
    assert result.returncode == 1, result.stdout[-3000:]
    assert "partial: throttled: " in result.stdout
    named = {canonical_url(p["url"]) for p in said["throttled"]["pages"]}
    assert named == throttled and said["throttled"]["pages_total"] == len(throttled)
    assert all(p["status"] == 429 and p["attempts"] == 2 for p in said["throttled"]["pages"])
    for page in said["throttled"]["pages"]:
        assert f"throttled: {page['url']} answered 429 on each of 2 attempts" in result.stdout
    # The audit names each (declared or not): what the next run fetches first.
    missing = {m["url"] for m in said["audit"]["missing"]}
    assert throttled <= missing
    # verify runs the same audit offline.
    verify = runs["verify_2"]
    assert verify.returncode == 1
    for url in throttled:
        assert url in verify.stdout


@pytest.mark.e2e
def test_a_throttled_answer_never_replaces_the_last_good_capture(runs):
    out, throttled = runs["out"], throttled_urls(runs, 2)
    # The WARC keeps what happened: the 429 exchanges of run 2.
    archive = OutputLayout(out, NAME).archive
    kept = {canonical_url(u) for u, h, _ in responses(archive) if h.get_statuscode() == "429"}
    assert throttled <= kept
    # The history, as run 2 left it: each page's capture is still run 1's good one.
    with History.open(runs["history_2"]) as history:
        for url in throttled:
            capture = history.latest_capture(url)
            assert capture is not None and capture.run_id == 1 and capture.status == 200, url
        rows = history.conn.execute("SELECT url FROM captures WHERE run_id = 2 AND status = 429")
        assert {r[0] for r in rows} == throttled  # recorded, as the WARC holds them
    # The change report of run 2: throttled, neither changed nor gone.
    report = json.loads((out / "reports" / "run-00002.json").read_text())
    pages = {state: set() for state in report["totals"]["pages"]}
    articles = {state: set() for state in report["totals"]["articles"]}
    for entry in report["autoblogs"].values():
        for state, urls in entry["pages"].items():
            pages[state].update(urls)
        for state, urls in entry["articles"].items():
            articles[state].update(urls)
    assert pages["throttled"] == throttled
    assert report["totals"]["pages"]["throttled"] == len(throttled)
    assert not throttled & (pages["changed"] | pages["gone"] | pages["new"])
    assert not articles["gone"]
    # The corpus: run 2's has no text of a throttled answer, run 1's keeps the articles.
    records = {run: corpus_records(out, run) for run in (1, 2)}
    answered_429 = {r["warc"]["record_id"] for r in records[2] if r["warc"]["http_status"] != 200}
    assert not answered_429
    throttled_articles = throttled & {r["url"] for r in records[1]}
    assert throttled_articles, "no article permalink among the throttled pages"
    assert not throttled_articles & {r["url"] for r in records[2]}


def corpus_records(out: Path, run: int) -> list[dict]:
    folder = out / "corpus" / f"run-{run:05d}"
    return [
        json.loads(line)
        for part in sorted(folder.glob("part-*.jsonl.gz"))
        for line in gzip.open(part, "rt", encoding="utf-8")
    ]


@pytest.mark.e2e
def test_the_next_run_fetches_the_throttled_pages_first_and_completes(runs):
    result, log = runs["results"][2], runs["logs"][2]
    throttled = throttled_urls(runs, 2)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "complete" in result.stdout
    requested = [url_of(runs["farm_url"], e) for e in log if e["path"] != "/robots.txt"]
    assert requested[0] in throttled and throttled <= set(requested)  # fetched first
    statuses = {e["status"] for e in log if url_of(runs["farm_url"], e) in throttled}
    assert statuses <= {200, 304}  # a static file the farm has not changed: 304
    with History.open(runs["out"] / "history.sqlite") as history:
        for url in throttled:
            capture = history.latest_capture(url)
            assert capture is not None and capture.run_id == 3, url
    assert run_cli("verify", str(runs["out"])).returncode == 0


# -- the audit: a page last throttled is missing, declared or not ------------------------


@pytest.mark.e2e
def test_the_audit_names_every_page_last_throttled_until_it_answers(tmp_path):
    """Media files no page of the farm declares to the audit: a throttled one is missing
    all the same, and stays what the next run fetches first until it answers."""
    base = "http://f/autoblogs/a/media/"
    answers = [("x.png", 429), ("y.png", 200), ("z.png", 503), ("w.png", 429), ("w.png", 200)]
    with History.open(tmp_path) as history:
        run = history.start_run(["http://f/"])

        def capture(i: int, url: str, status: int) -> None:
            history.record_capture(
                url=url, run_id=run, warc_date=f"2026-01-01T00:00:{i:02d}Z", status=status,
                payload_digest=None, record_type="response", filename="f.warc.gz",
                offset=i, length=1, record_id=f"<urn:uuid:{i}>",
            )  # fmt: skip

        for i, (name, status) in enumerate(answers):
            capture(i, base + name, status)
        history.commit()
        view = ArchiveView(history.conn, [tmp_path], 1 << 20)
        bounds = AuditBounds(max_declared=100, max_missing=100, max_url_length=2083, read_limit=1)
        audit = audit_archive(view, AuditScope([], Scope(["http://f/"])), bounds)
        assert [(m.url, m.what, m.why) for m in audit.missing] == [
            (base + "x.png", "page", THROTTLED_WHY)
        ]
        save_audit(history.conn, run, audit)
        assert [m.url for m in missing_before(history.conn)] == [base + "x.png"]
        capture(len(answers), base + "x.png", 200)
        assert missing_before(history.conn) == []


# -- what a Retry-After says --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"120", 120.0),
        (b" 0 ", 0.0),
        (formatdate(1_000_030, usegmt=True).encode(), 30.0),
        (formatdate(999_000, usegmt=True).encode(), 0.0),  # a date past: now
        (b"", None),
        (b"soon", None),
        (b"-5", None),
        (b"1.5", None),
        (b"\xb2", None),  # latin-1 "²": a digit to str.isdigit, no delay-seconds
        (b"9" * 65, None),  # longer than any number or date
        (b"Mon, 32 Foo 2026 99:00:00 GMT", None),
        (b"Sun, 06 Nov 1994 08:49:37", None),  # no zone: not an HTTP date
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value, expected):
    assert retry_after(value, now=1_000_000.0) == expected


@pytest.mark.e2e
def test_backoff_max_delay_is_checked_like_every_setting(tmp_path):
    for value in ("-1", "3601", "soon"):
        result = run_cli(
            "crawl", "http://127.0.0.1:9/", "-o", str(tmp_path / "o"),
            "--set", f"BACKOFF_MAX_DELAY={value}",
        )  # fmt: skip
        assert result.returncode == 4, result.stderr
        assert "BACKOFF_MAX_DELAY" in result.stderr and len(result.stderr.splitlines()) == 1
        assert not (tmp_path / "o").exists()
