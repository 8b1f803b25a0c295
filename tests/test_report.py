"""The change report, on real crawls of the sample farm (``history_crawls`` in
conftest.py): a full crawl, growth by K articles and an edited article, an incremental
crawl, a deleted article, a full pass; then the report of each run.
"""

from __future__ import annotations

import argparse
import io
import json

import pytest
from conftest import default_context, requested_urls

from crawler.exitcodes import UsageError
from crawler.history.model import FINISHED
from crawler.history.report import build_report, format_report, run_report, write_report
from crawler.history.store import History
from crawler.layout import OutputLayout
from crawler.urls import canonical_url

K = 3


@pytest.fixture(scope="module")
def crawled(history_crawls):
    history = History.open(history_crawls["out"])
    yield {**history_crawls, "history": history}
    history.close()


def test_first_run_is_all_new(crawled):
    report = build_report(crawled["history"], crawled["runs"][0])
    ab0, ab1 = crawled["bases"]
    for base in (ab0, ab1):
        entry = report["autoblogs"][base]
        assert len(entry["articles"]["new"]) == 12
        assert not entry["articles"]["changed"] and not entry["articles"]["gone"]
        assert not entry["pages"]["unchanged"] and not entry["pages"]["changed"]
    assert report["previous_run"] is None
    captures = crawled["history"].captures_in_run(crawled["runs"][0])
    assert report["totals"]["requests"] == len(captures)
    assert report["totals"]["bytes_written"] == sum(c.bytes_written for c in captures)
    assert all(c.record_type == "response" for c in captures)


def test_incremental_run_lists_exactly_the_k_new_articles(crawled):
    history = crawled["history"]
    run2 = crawled["runs"][1]
    report = build_report(history, run2)
    ab0, ab1 = crawled["bases"]
    entry = report["autoblogs"][ab0]
    assert len(crawled["grown"]) == K
    assert entry["articles"]["new"] == sorted(crawled["grown"])
    assert report["totals"]["articles"]["new"] == K
    assert entry["articles"]["changed"] == [] and entry["articles"]["gone"] == []
    # Pages 1 and 2 shifted by K articles: changed.
    assert ab0 in entry["pages"]["changed"] and ab0 + "?2" in entry["pages"]["changed"]
    assert set(crawled["grown"]) <= set(entry["pages"]["new"])
    assert ab0 + "articles.db" in entry["pages"]["changed"]  # the database grew
    # The run fetched no article it already held; what it found unchanged is a revisit.
    fetched = {url for urls in entry["pages"].values() for url in urls}
    old = {
        canonical_url(a["permalink"])
        for blog in crawled["truth"].values()
        for a in blog["articles"]
    }
    assert len(old) == 24 and not fetched & old
    assert entry["revisits"] == len(entry["pages"]["unchanged"]) > 0
    # An incremental run says nothing is gone just because it did not look. Autoblog 1's
    # first page did not change: the run went no further (the edit on page 3 waits for
    # a full pass).
    assert report["totals"]["pages"]["gone"] == 0
    assert report["autoblogs"][ab1]["pages"] == {
        "new": [], "changed": [], "unchanged": [ab1], "gone": [], "errors": [],
    }  # fmt: skip
    assert all(not report["autoblogs"][ab1]["articles"][c] for c in ("new", "changed", "gone"))
    assert report["gone_rule"] == "404/410 only"
    # Requests made are the fetches captured: the farm's own log of the run.
    urls = requested_urls(crawled["farm_url"], crawled["requests"][1])
    assert report["totals"]["requests"] == len(urls)
    assert entry["requests"] == len([u for u in urls if u.startswith(ab0)])
    assert entry["bytes_written"] > 0
    assert report["crawl_stats"]["reason"] == "finished"
    assert report["crawl_stats"]["errors"] == 0


def test_full_pass_finds_edits_and_deletions(crawled):
    report = build_report(crawled["history"])  # default: the latest run
    assert report["run"]["id"] == crawled["runs"][2]
    ab0, ab1 = crawled["bases"]
    assert report["autoblogs"][ab1]["articles"]["changed"] == [crawled["edited"]]
    assert crawled["edited"] in report["autoblogs"][ab1]["pages"]["changed"]
    assert report["autoblogs"][ab0]["articles"]["gone"] == [crawled["deleted"]]
    assert crawled["deleted"] in report["autoblogs"][ab0]["pages"]["gone"]
    assert report["totals"]["articles"]["new"] == 0
    assert report["gone_rule"].startswith("404/410, and not listed")
    # 12 + 3 - 1 articles listed in autoblog 0, all unchanged.
    assert len(report["autoblogs"][ab0]["articles"]["unchanged"]) == 12 + K - 1
    # What the farm says it did (/_farm/edit, /_farm/delete).
    after = {
        canonical_url(a["permalink"]): a
        for blog in crawled["truth_after"].values()
        for a in blog["articles"]
    }
    assert after[crawled["edited"]]["text"].endswith("\nCorrection : ajout d’un paragraphe.")
    assert crawled["deleted"] not in after and len(after) == 24 + K - 1


def test_text_summary_and_files(crawled, tmp_path):
    report = build_report(crawled["history"], crawled["runs"][1])
    text = format_report(report)
    assert f"{K} new" in text
    for url in crawled["grown"]:
        assert f"new article: {url}" in text
    path = write_report(OutputLayout(tmp_path), report)
    assert json.loads(path.read_text())["run"]["id"] == crawled["runs"][1]
    kept = tmp_path / "reports" / f"run-{crawled['runs'][1]:05d}.json"
    assert kept.read_bytes() == path.read_bytes()
    # The crawl wrote the same report at the end of its run.
    assert (crawled["out"] / "reports" / kept.name).read_bytes() == kept.read_bytes()
    short = format_report(report, limit=1)
    assert f"and {K - 1} more new articles" in short


def test_report_command(crawled, tmp_path):
    crawled["history"].commit()
    out = io.StringIO()
    args = argparse.Namespace(directory=str(crawled["out"]), run=None, json=False, limit=20)
    assert run_report(args, out=out) == 0
    assert f"Run {crawled['runs'][2]} (full, {FINISHED})" in out.getvalue()
    out = io.StringIO()
    args.json, args.run = True, crawled["runs"][1]
    assert run_report(args, out=out) == 0
    assert json.loads(out.getvalue())["totals"]["articles"]["new"] == K
    missing = argparse.Namespace(directory=str(tmp_path), run=None, json=False, limit=20)
    with pytest.raises(UsageError, match="no crawl here yet"):
        run_report(missing, out=io.StringIO())
    args.run = 999
    with pytest.raises(UsageError):
        run_report(args, out=io.StringIO())


def test_report_survives_a_rebuild(crawled, tmp_path):
    """Reports computed from a history rebuilt from the WARCs alone are the same."""
    import shutil

    from crawler.history.rebuild import rebuild_from_indexes
    from crawler.warc.cdxj import write_cdxj

    copy = tmp_path / "copy"
    shutil.copytree(crawled["out"] / "collections", copy / "collections")
    write_cdxj(OutputLayout(copy, "farm"))
    rebuild_from_indexes(copy, default_context().bounds.read_limit)
    with History.open(copy) as rebuilt:
        for run in crawled["runs"]:
            a = build_report(crawled["history"], run)
            b = build_report(rebuilt, run)
            assert a["autoblogs"].keys() == b["autoblogs"].keys()
            for base in a["autoblogs"]:
                assert a["autoblogs"][base]["articles"] == b["autoblogs"][base]["articles"]
                assert a["autoblogs"][base]["pages"] == b["autoblogs"][base]["pages"]
