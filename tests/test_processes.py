"""``crawl --processes N``: one farm dealt out between crawl processes on one machine,
through the real command line, merged into one folder that ``verify``, ``report``, the
corpus readers and pywb read as if one process had crawled it."""

from __future__ import annotations

import signal
import subprocess
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import orjson
import pytest
from support import (
    BIN,
    free_port,
    needs_pywb,
    replayed,
    responses,
    run_cli,
    wait_for_requests,
)

from crawler.corpus.shards import read_corpus
from crawler.processes import merged_summary
from crawler.runlock import RunLock
from crawler.samplefarm import start_farm

pytestmark = pytest.mark.e2e


def by_url_and_text(folder: Path) -> Counter:
    return Counter((r["url"], r["text"]) for r in read_corpus(folder))


@pytest.fixture(scope="module")
def crawls(tmp_path_factory):
    """One farm crawled by one process (the reference) and by 2 processes; then grown by
    3 articles and crawled again by the 2 processes."""
    base = tmp_path_factory.mktemp("processes")
    with start_farm(autoblogs=5, articles=14, seed=5, engine=["0.3.4", "0.2", "2025"]) as farm:
        single = run_cli("crawl", farm.url, "-o", str(base / "single"), "--name", "c", "--fast")
        assert single.returncode == 0, single.stderr[-2000:]
        crawl = ["crawl", farm.url, "-o", str(base / "two"), "--name", "c", "--fast", "-p", "2"]
        first = run_cli(*crawl)
        state = {
            "base": base,
            "farm": farm,
            "truth": farm.truth()["autoblogs"],
            "first": first,
            "corpus_first": by_url_and_text(base / "two"),
            "verify_first": run_cli("verify", str(base / "two")),
            "summary_first": orjson.loads((base / "two" / "summary.json").read_bytes()),
            "captured_first": Counter(
                unquote(u) for u, _, _ in responses(base / "two/collections/c/archive")
            ),
        }
        grown_folder = next(iter(state["truth"]))
        state["grown"] = farm.grow(autoblog=grown_folder, n=3)["articles"]
        seen = len(farm.requests())
        state["second"] = run_cli(*crawl)
        state["second_requests"] = [r["path"] for r in farm.requests()[seen:]]
        yield state


def test_two_processes_capture_what_one_process_captures(crawls):
    first = crawls["first"]
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "process 1/2: complete" in first.stdout and "process 2/2: complete" in first.stdout
    assert crawls["verify_first"].returncode == 0, crawls["verify_first"].stdout[-2000:]
    single = {unquote(u) for u, _, _ in responses(crawls["base"] / "single/collections/c/archive")}
    captured = crawls["captured_first"]
    assert set(captured) == single
    # Only farm-level pages (the index, its exports) are fetched by both processes.
    twice = {u for u, n in captured.items() if n > 1}
    assert all("/autoblogs/" not in u for u in twice), sorted(twice)[:5]
    assert crawls["corpus_first"] == by_url_and_text(crawls["base"] / "single")
    # Each process audits only the autoblogs dealt to it: together, every one, none missing.
    audit = crawls["summary_first"]["audit"]
    assert audit["complete"] and audit["autoblogs"] == len(crawls["truth"]), audit


def test_each_autoblog_is_crawled_by_exactly_one_process(crawls):
    root = crawls["base"] / "two" / "processes"
    shares = [set(orjson.loads((root / str(i) / "summary.json").read_bytes())["autoblogs"])
              for i in range(2)]  # fmt: skip
    bases = {blog["base_url"] for blog in crawls["truth"].values()}
    assert not shares[0] & shares[1]
    assert shares[0] | shares[1] == bases
    assert {len(s) for s in shares} == {2, 3}  # dealt out evenly, not by chance
    deal = orjson.loads((root / "deal.json").read_bytes())
    assert deal["processes"] == 2 and set(deal["autoblogs"]) == bases


def test_second_run_is_incremental_and_fetches_only_the_new_articles(crawls):
    second = crawls["second"]
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    new = {unquote(a["permalink"]) for a in crawls["grown"]}
    fetched = {unquote(crawls["farm"].url.rstrip("/") + p) for p in crawls["second_requests"]}
    old = {unquote(a["url"]) for blog in crawls["truth"].values() for a in blog["articles"]}
    assert new <= fetched
    assert not old & fetched, "an archived article was fetched again"
    two = crawls["base"] / "two"
    assert run_cli("verify", str(two)).returncode == 0
    report = run_cli("report", str(two))
    assert "Run 2 (incremental" in report.stdout, report.stdout[:500]
    assert f"articles: {len(new)} new, 0 changed" in report.stdout, report.stdout[:500]
    corpus_urls = {unquote(r["url"]) for r in read_corpus(two)}
    assert new <= corpus_urls


@needs_pywb
def test_merged_folder_replays_in_pywb(crawls):
    blog = next(iter(crawls["truth"].values()))
    uri = blog["articles"][0]["url"]
    assert replayed(crawls["base"] / "two", f"c/2id_/{uri}") == urllib.request.urlopen(uri).read()


def test_dead_farm_leaves_no_folder(tmp_path):
    out = tmp_path / "dead"
    dead = f"http://127.0.0.1:{free_port()}/"
    result = run_cli("crawl", dead, "-o", str(out), "-p", "2", "--fast")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not out.exists()


def test_locked_folder_is_refused_untouched(tmp_path):
    out = tmp_path / "locked"
    lock = RunLock(out, "another crawl").acquire()
    try:
        result = run_cli("crawl", "http://127.0.0.1:9/", "-o", str(out), "-p", "2")
    finally:
        lock.release()
    assert result.returncode == 3, result.stdout + result.stderr
    assert not (out / "processes").exists()


def test_ctrl_c_stops_every_process_and_the_next_run_completes(tmp_path):
    out = tmp_path / "interrupted"
    crawl = [str(BIN / "autoblog-archive"), "crawl", "-o", str(out), "--name", "k", "--fast",
             "-p", "2"]  # fmt: skip
    with start_farm(autoblogs=4, articles=30, engine=["0.3.4", "0.2"], latency=40) as farm:
        truth = farm.truth()["autoblogs"]
        proc = subprocess.Popen([*crawl, farm.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
        wait_for_requests(farm, 40, proc)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, (stdout, stderr[-2000:])
        assert "Traceback" not in stdout + stderr
        assert "interrupted" in stdout
        # Sound, but short of what the farm declares until the same command resumes it.
        halfway = run_cli("verify", str(out))
        assert halfway.returncode == 1 and "MISSING  " in halfway.stdout, halfway.stdout[-2000:]
        assert "DEFECT" not in halfway.stdout, halfway.stdout[-2000:]
        final = run_cli(*crawl[1:], farm.url)
    assert final.returncode == 0, final.stdout + final.stderr[-2000:]
    assert run_cli("verify", str(out)).returncode == 0
    urls = Counter(unquote(r["url"]) for r in read_corpus(out))
    assert max(urls.values()) == 1
    expected = {unquote(a["url"]) for blog in truth.values() for a in blog["articles"]}
    assert set(urls) == expected


def test_merged_summary_tells_what_each_process_was_throttled():
    """``--processes``: the merged summary.json says what the farm throttled, as a
    one-process crawl's does; a process summary of the wrong shape adds nothing."""
    one = {"answers": 3, "pages_total": 1, "delays": {"a": 2.0, "b": 1.0},
           "pages": [{"url": "http://a/x", "status": 429, "attempts": 3, "wait": 2.0}]}  # fmt: skip
    two = {"answers": 2, "pages_total": 0, "delays": {"a": 4.0}, "pages": []}
    hostile = {"answers": "9", "pages_total": True, "delays": ["a"], "pages": "x"}
    summaries = [{"throttled": one}, {"throttled": two}, {"throttled": hostile}, {}]
    merged = merged_summary(summaries, 0)["throttled"]
    assert merged == {"answers": 5, "pages_total": 1, "pages": one["pages"],
                      "delays": {"a": 4.0, "b": 1.0}}  # fmt: skip
    assert merged_summary([{}], 0)["throttled"] is None
