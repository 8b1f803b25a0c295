"""The change report, on real WARCs of the in-process sample farm (see test_history.py):
full crawl, growth by K articles, an edited article, a deleted one, then the report."""

from __future__ import annotations

import argparse
import io
import json

import pytest
from test_history import HOST, SimulatedCrawl, make_farm  # the reference wiring

from crawler.exitcodes import UsageError
from crawler.history.model import FINISHED
from crawler.history.report import build_report, format_report, run_report, write_report
from crawler.history.store import History
from crawler.layout import OutputLayout
from crawler.urls import canonical_url

K = 3


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    farm = make_farm()
    crawl = SimulatedCrawl(farm, out)
    history = History.open(out)
    ab0, ab1 = (crawl.base(0), crawl.base(1))
    run1 = crawl.run(history, crawl.walk(0) + crawl.walk(1) + [ab0 + "articles.db"])
    # Growth by K articles, and an edit of the oldest article of autoblog 1.
    grown = farm.grow(farm.autoblogs[0].folder, K, HOST)["articles"]
    edited_ab = farm.autoblogs[1]
    edited_ab.article(0).content += "<p>Correction : ajout d’un paragraphe.</p>"
    edited = canonical_url(farm.permalink(edited_ab, edited_ab.article(0), HOST))
    incremental = crawl.walk(0, pages=2) + [ab0 + "articles.db"]
    run2 = crawl.run(history, incremental, mode="incremental")
    # The newest article of autoblog 0 is deleted; a full pass follows.
    deleted = canonical_url(grown[0]["permalink"])
    ab = farm.autoblogs[0]
    ab.count -= 1
    ab._slug_index = None
    run3 = crawl.run(history, crawl.walk(0) + crawl.walk(1) + [deleted])
    yield {
        "out": out,
        "history": history,
        "runs": (run1, run2, run3),
        "grown": [canonical_url(a["permalink"]) for a in grown],
        "edited": edited,
        "deleted": deleted,
        "bases": (ab0, ab1),
        "incremental": incremental,
    }
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
    assert entry["articles"]["new"] == sorted(crawled["grown"])
    assert report["totals"]["articles"]["new"] == K
    assert entry["articles"]["changed"] == [] and entry["articles"]["gone"] == []
    # Pages 1 and 2 shifted by K articles: changed. Old permalinks: unchanged (revisits).
    assert ab0 in entry["pages"]["changed"] and ab0 + "?2" in entry["pages"]["changed"]
    assert set(crawled["grown"]) <= set(entry["pages"]["new"])
    assert ab0 + "articles.db" in entry["pages"]["changed"]  # the database grew
    old = [u for u in crawled["incremental"] if u not in crawled["grown"] and "?" in u]
    old = [u for u in old if u not in (ab0 + "?2",)]
    assert set(old) <= set(entry["pages"]["unchanged"])
    assert entry["revisits"] == len(entry["pages"]["unchanged"])
    # An incremental run says nothing is gone just because it did not look.
    assert report["totals"]["pages"]["gone"] == 0 and ab1 not in report["autoblogs"]
    assert report["gone_rule"] == "404/410 only"
    assert entry["requests"] == len(crawled["incremental"])
    assert entry["bytes_written"] > 0
    assert report["crawl_stats"] == {"requests": len(crawled["incremental"])}


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


def test_text_summary_and_files(crawled):
    report = build_report(crawled["history"], crawled["runs"][1])
    text = format_report(report)
    assert f"{K} new" in text
    for url in crawled["grown"]:
        assert f"new article: {url}" in text
    path = write_report(OutputLayout(crawled["out"]), report)
    assert json.loads(path.read_text())["run"]["id"] == crawled["runs"][1]
    assert (crawled["out"] / "reports" / f"run-{crawled['runs'][1]:05d}.json").exists()
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
    from crawler.layout import OutputLayout
    from crawler.warc.indexes import write_cdxj

    copy = tmp_path / "copy"
    shutil.copytree(crawled["out"] / "collections", copy / "collections")
    write_cdxj(OutputLayout(copy, "farm"))
    rebuild_from_indexes(copy)
    with History.open(copy) as rebuilt:
        for run in crawled["runs"]:
            a = build_report(crawled["history"], run)
            b = build_report(rebuilt, run)
            assert a["autoblogs"].keys() == b["autoblogs"].keys()
            for base in a["autoblogs"]:
                assert a["autoblogs"][base]["articles"] == b["autoblogs"][base]["articles"]
                assert a["autoblogs"][base]["pages"] == b["autoblogs"][base]["pages"]
