"""Scheduled re-crawls: incremental runs, revisits, change report, kill and resume, lock."""

from __future__ import annotations

import html
import json
import signal
import subprocess
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pytest
from support import (
    corpus_records,
    crawl_process,
    needs_pywb,
    reachable_articles,
    records_by_run,
    run_cli,
    wait_for_requests,
    warcio_check,
)

from crawler.samplefarm import start_farm
from crawler.urls import canonical_url

pytestmark = pytest.mark.e2e


def corpus_of_run(out: Path, run: int) -> list[dict]:
    return corpus_records(out, f"corpus/run-{run:05d}/part-*.jsonl.gz")


@pytest.fixture(scope="module")
def recrawl(tmp_path_factory):
    out = tmp_path_factory.mktemp("recrawl")
    with start_farm(autoblogs=3, articles=40, engine=["0.3.4", "0.2", "0.3.0"]) as farm:
        truth = farm.truth()["autoblogs"]
        first = run_cli("crawl", farm.url, "-o", str(out), "--name", "r", "--fast")
        before = len(farm.requests())
        grown_folder = next(iter(truth))
        grown = farm.grow(autoblog=grown_folder, n=3)["articles"]
        second = run_cli("crawl", farm.url, "-o", str(out), "--name", "r", "--fast")
        yield {
            "farm": farm,
            "out": out,
            "first": first,
            "second": second,
            "first_requests": farm.requests()[:before],
            "second_requests": farm.requests()[before:],
            "grown": grown,
            "grown_base": truth[grown_folder]["base_url"],
            "truth": truth,
            "truth_after": farm.truth()["autoblogs"],
        }


def test_recrawl_fetches_only_new_articles_and_changed_pages(recrawl):
    assert recrawl["first"].returncode == 0, recrawl["first"].stderr[-2000:]
    assert recrawl["second"].returncode == 0, recrawl["second"].stderr[-2000:]
    assert "incremental" in recrawl["second"].stdout
    second = [unquote(r["path"]) for r in recrawl["second_requests"]]
    assert len(second) < len(recrawl["first_requests"]) / 4
    new_paths = {"/" + unquote(a["permalink"].split("/", 3)[3]) for a in recrawl["grown"]}
    assert new_paths <= set(second)
    permalinks = {
        "/" + unquote(a["permalink"].split("/", 3)[3])
        for blog in recrawl["truth"].values()
        for a in blog["articles"]
    }
    assert not permalinks & set(second), "an already archived article was fetched again"
    assert len(second) == len(set(second)), Counter(second).most_common(3)
    grown_base = "/" + recrawl["grown_base"].split("/", 3)[3]
    for blog in recrawl["truth"].values():
        base = "/" + blog["base_url"].split("/", 3)[3]
        pages = [p for p in second if p.startswith(base) and p not in new_paths]
        if base == grown_base:
            # 40 articles, 5 per page: 8 pages; 3 more make a 9th that no run captured.
            tail = [p for p in pages if p == base + "?9"]
            assert tail == [base + "?9"], pages
            pages = [p for p in pages if p not in tail]
            index_pages = [p for p in pages if p == base or p[len(base) :] in ("?2", "?3")]
            media = {p for p in pages if p.startswith(base + "media/")}
            grown = {a["permalink"] for a in recrawl["grown"]}
            new_media = {
                base + "media/" + m
                for a in recrawl["truth_after"][next(iter(recrawl["truth"]))]["articles"]
                if a["permalink"] in grown
                for m in a["media"]
            }
            files = set(pages) - set(index_pages) - media
            # Page 1, then newest first until a page of known articles, plus one margin.
            assert index_pages == [base, base + "?2", base + "?3"], pages
            assert media <= new_media
            assert files == {base + f for f in ("?feed", "?opml", "?media", "vvb.ini",
                                                "articles.db")}  # fmt: skip
            # Static files are asked for conditionally: unchanged vvb.ini costs a 304.
            statuses = {unquote(r["path"]): r["status"] for r in recrawl["second_requests"]}
            assert statuses[base + "vvb.ini"] == 304
            assert statuses[base + "articles.db"] == 200
        else:
            assert pages == [base], pages  # unchanged: only its first page


def test_every_listed_page_is_archived_after_growth(recrawl):
    """The new tail page is fetched once; pages archived before are not fetched again."""
    records = records_by_run(recrawl["out"] / "collections" / "r" / "archive")
    held = {
        canonical_url(uri) for _run, kind, uri, _h in records if kind in ("response", "revisit")
    }
    second = Counter(unquote(r["path"]) for r in recrawl["second_requests"])
    for folder, blog in recrawl["truth_after"].items():
        base = blog["base_url"]
        pages = [base] + [page_url(blog, n) for n in range(2, blog["pages"] + 1)]
        missing = [p for p in pages if canonical_url(p) not in held]
        assert not missing, (blog["engine"], missing)
        if blog["pages"] > recrawl["truth"][folder]["pages"]:
            new_last = "/" + pages[-1].split("/", 3)[3]
            assert second[new_last] == 1
            untouched = ["/" + p.split("/", 3)[3] for p in pages[3:-1]]
            assert untouched and not any(second[p] for p in untouched), second
    report = json.loads((recrawl["out"] / "report.json").read_text())
    grown = report["autoblogs"][recrawl["grown_base"]]
    assert grown["new_index_pages"] == [recrawl["grown_base"] + "?9"]
    assert report["totals"]["new_index_pages"] == 1
    assert f"new page: {recrawl['grown_base']}?9" in recrawl["second"].stdout


def page_url(blog: dict, n: int) -> str:
    """Page ``n`` of an autoblog as its engine links it."""
    if blog["engine"] == "0.2":
        return f"{blog['base_url']}{n}"
    return f"{blog['base_url']}?{n}"


@needs_pywb
def test_pywb_replays_the_new_last_page(recrawl):
    from crawler.replay import Wayback

    base = recrawl["grown_base"]
    last = base + "?9"
    with Wayback(recrawl["out"]) as wayback:
        # The newest first page links to page 9, and the archive answers for it.
        first = urllib.request.urlopen(f"{wayback}r/2100id_/{base}").read()
        assert b'href="./?9"' in first
        replayed = urllib.request.urlopen(f"{wayback}r/2100id_/{last}").read()
        assert replayed == urllib.request.urlopen(last).read()
        titles = [
            a["title"] for a in recrawl["truth_after"][next(iter(recrawl["truth"]))]["articles"]
        ]
        assert html.escape(titles[-1], quote=False).encode() in replayed  # the oldest article


def test_report_lists_exactly_the_new_articles(recrawl):
    report = json.loads((recrawl["out"] / "report.json").read_text())
    new = {
        canonical_url(url)
        for blog in report["autoblogs"].values()
        for url in blog["articles"]["new"]
    }
    assert new == {canonical_url(a["permalink"]) for a in recrawl["grown"]}
    assert not any(blog["articles"]["gone"] for blog in report["autoblogs"].values())
    shown = run_cli("report", str(recrawl["out"]))
    assert shown.returncode == 0
    assert "3 new" in shown.stdout


def test_corpus_gains_exactly_the_new_records(recrawl):
    first = corpus_of_run(recrawl["out"], 1)
    second = corpus_of_run(recrawl["out"], 2)
    assert len(first) == sum(len(b["articles"]) for b in recrawl["truth"].values())
    assert {canonical_url(r["url"]) for r in second} == {
        canonical_url(a["permalink"]) for a in recrawl["grown"]
    }
    assert {r["title"] for r in second} == {a["title"] for a in recrawl["grown"]}


def test_unchanged_content_is_written_as_revisits(recrawl):
    records = records_by_run(recrawl["out"] / "collections" / "r" / "archive")
    revisits = [r for r in records if r[0] == "2" and r[1] == "revisit"]
    assert revisits
    originals = {h["WARC-Record-ID"]: (uri, h) for run, t, uri, h in records if t == "response"}
    for _run, _type, uri, headers in revisits:
        assert headers["WARC-Profile"].endswith("/revisit/identical-payload-digest")
        original_uri, original = originals[headers["WARC-Refers-To"]]
        assert headers["WARC-Refers-To-Target-URI"] == original_uri == uri
        assert headers["WARC-Refers-To-Date"] == original["WARC-Date"]
        assert headers["WARC-Payload-Digest"] == original["WARC-Payload-Digest"]
    assert run_cli("verify", str(recrawl["out"])).returncode == 0
    files = sorted((recrawl["out"] / "collections" / "r" / "archive").glob("*.warc.gz"))
    assert warcio_check(files).returncode == 0


@needs_pywb
def test_revisits_replay_in_pywb(recrawl):
    from crawler.replay import Wayback

    records = records_by_run(recrawl["out"] / "collections" / "r" / "archive")
    # An unchanged autoblog's first page, fetched again by run 2 and stored as a revisit.
    revisit = next(
        r
        for r in records
        if r[0] == "2" and r[1] == "revisit" and "/autoblogs/" in r[2] and r[2].endswith("/")
    )
    uri, headers = revisit[2], revisit[3]
    stamp = headers["WARC-Date"].replace("-", "").replace(":", "").replace("T", "")[:14]
    with Wayback(recrawl["out"]) as base:
        raw = urllib.request.urlopen(f"{base}r/{stamp}id_/{uri}").read()
        assert raw == urllib.request.urlopen(uri).read()
        memento = urllib.request.urlopen(f"{base}r/{stamp}/{uri}")
        assert memento.headers.get("Memento-Datetime")


def test_reindex_rebuilds_the_history(recrawl, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(recrawl["out"], copy)
    (copy / "history.sqlite").unlink()
    result = run_cli("reindex", str(copy))
    assert result.returncode == 0, result.stdout + result.stderr
    again = run_cli("report", str(copy))
    assert again.returncode == 0
    assert "3 new" in again.stdout


def _crawl_process(url: str, out: Path) -> subprocess.Popen:
    return crawl_process(url, out, "--set", "CONCURRENT_REQUESTS_PER_DOMAIN=2",
                         "--warc-max-size", "40000", name="k")  # fmt: skip


def test_killed_crawl_resumes_without_loss_or_duplicates(tmp_path):
    # About 200 requests in all: every stop below lands well before the end.
    with start_farm(autoblogs=2, articles=60, engine=["0.3.4", "0.2"], latency=40) as farm:
        truth = farm.truth()["autoblogs"]
        for kill_at in (15, 50, 90):
            proc = _crawl_process(farm.url, tmp_path)
            wait_for_requests(farm, kill_at, proc)
            assert proc.poll() is None, "the crawl ended before it could be killed"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        interrupted = _crawl_process(farm.url, tmp_path)
        wait_for_requests(farm, len(farm.requests()) + 10, interrupted)
        assert interrupted.poll() is None, "the crawl ended before Ctrl-C"
        interrupted.send_signal(signal.SIGINT)  # Ctrl-C: graceful stop, resumable
        interrupted.communicate(timeout=120)
        final = _crawl_process(farm.url, tmp_path)
        stdout, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, (final.returncode, stdout[:1500], stderr[-1500:])
    assert "resumed" in stdout
    verify = run_cli("verify", str(tmp_path))
    assert verify.returncode == 0, verify.stdout
    archive = tmp_path / "collections" / "k" / "archive"
    assert not list(archive.glob("*.open"))
    assert warcio_check(sorted(archive.glob("*.warc.gz"))).returncode == 0
    records = records_by_run(archive)
    assert {run for run, *_ in records} == {"1"}, "the resumed crawl must stay run 1"
    full = Counter(uri for _run, kind, uri, _h in records if kind == "response")
    twice = {uri: n for uri, n in full.items() if n > 1}
    assert not twice, twice
    assert reachable_articles(truth) <= {unquote(uri) for uri in full}
    corpus = corpus_of_run(tmp_path, 1)
    urls = Counter(canonical_url(r["url"]) for r in corpus)
    assert max(urls.values()) == 1
    assert len(corpus) == sum(len(b["articles"]) for b in truth.values())


def test_second_run_on_the_same_folder_is_refused(tmp_path):
    with start_farm(autoblogs=1, articles=60, latency=200) as farm:
        first = _crawl_process(farm.url, tmp_path)
        wait_for_requests(farm, 3, first)
        # From now on the autoblog answers after ten minutes: the first run holds the
        # folder until it is killed, however fast the machine (a timing margin was flaky).
        farm.fault(next(iter(farm.truth()["autoblogs"])), "latency=600000")
        second = run_cli("crawl", farm.url, "-o", str(tmp_path), "--name", "k", "--fast")
        assert first.poll() is None, "the first run ended before the second one started"
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert second.returncode == 3
    assert "pid" in second.stderr


def test_config_file_and_exit_codes(tmp_path):
    with start_farm(autoblogs=1, articles=6) as farm:
        config = tmp_path / "farm.toml"
        config.write_text(
            f'name = "cfg"\noutput = "{tmp_path / "out"}"\n'
            f'[[farms]]\nurl = "{farm.url}"\n'
            "[politeness]\ndelay = 0\nconcurrency = 4\n"
            'operator = "Test archive"\n'
        )
        result = run_cli("crawl", "--config", str(config))
        assert result.returncode == 0, result.stderr[-2000:]
        assert list((tmp_path / "out" / "collections" / "cfg" / "archive").glob("*.warc.gz"))
        bad = tmp_path / "bad.toml"
        bad.write_text('output = "x"\n[[farms]]\nurl = "ftp://nope"\n[politness]\n')
        refused = run_cli("crawl", "--config", str(bad))
        assert refused.returncode == 4
        assert "configuration error" in refused.stderr
