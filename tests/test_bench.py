"""`autoblog-archive bench` on a tiny farm: it runs every section and writes its outputs.

Checks the benchmark works, never its figures (timings on a shared machine are noise).
``bench --hostile --quick`` is in test_bench_hostile.py: each of the two runs takes
minutes, and pytest-xdist's ``--dist loadfile`` gives each file to one worker.
"""

from __future__ import annotations

import orjson
import pytest
from support import run_cli

import crawler

pytestmark = pytest.mark.e2e


def test_bench_tiny_configuration(tmp_path):
    result = run_cli(
        "bench",
        "--autoblogs", "2",
        "--articles", "8",
        "--repeat", "1",
        "--scale-articles", "8,16",
        "--scale-pages", "20,40",
        "--farm-seconds", "0.5",
        "--startup-captures", "3000",
        "--output", str(tmp_path),
        timeout=900,  # a stall guard: a busy machine only makes it slower
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    data = orjson.loads((tmp_path / f"{crawler.__version__}.json").read_bytes())
    crawlers = data["crawlers"]
    assert set(crawlers) == {
        "wget", "plain_scrapy", "ours_warc", "ours_warc+corpus", "ours_full", "ours_processes_2"
    }  # fmt: skip
    # Plain Scrapy and wget fetch exactly the URL list our crawl fetched.
    urls = data["farm"]["crawl_requests"]
    assert crawlers["plain_scrapy"]["pages"] == urls
    assert crawlers["wget"]["pages"] == urls
    assert crawlers["ours_warc"]["pages"] == crawlers["ours_full"]["pages"]
    # Two processes: the same pages, plus the farm-level ones both fetched.
    assert crawlers["ours_processes_2"]["pages"] >= crawlers["ours_full"]["pages"]
    assert data["ratios"]["processes_2_vs_1"] > 0
    for c in crawlers.values():
        assert c["pages_per_s"] > 0 and c["peak_rss_mb"] > 0 and len(c["runs"]) == 1
    assert data["ratios"]["ours_warc"]["vs_plain_scrapy"] > 0
    assert data["ratios"]["ours_full"]["vs_wget"] > 0
    assert data["extract"]["same_corpus_1_and_2_workers"] is True
    assert data["extract"]["same_records_as_crawl"] is True
    assert data["recrawl"]["requests"] > 0
    # The history the discovery crawl wrote, grown to 3,000 captures, opened and checked.
    assert data["startup"]["captures"] == 3000 and data["startup"]["history_mb"] > 0
    assert data["startup"]["budget_s"] == 5
    assert [s["articles_per_autoblog"] for s in data["scale"]] == [8, 16]
    # Each scale run's process-tree memory at each tenth of the run, not only its peak.
    assert all(len(s["rss_mb_by_tenth"]) == 10 for s in data["scale"])
    assert all(max(s["rss_mb_by_tenth"]) > 30 for s in data["scale"])
    assert data["machine"]["cpus"] and len(data["machine"]["loadavg_before"]) == 3
    assert {t["target"] for t in data["targets"]} and data["farm"]["requests_per_s"] > 0
    # The crawlers fetched from nginx serving the frozen farm (.ci/run installs it): every
    # URL the discovery crawl fetched with a 200 is served, and our crawl found them all.
    assert data["farm"]["server"].startswith("nginx/")
    assert data["farm"]["python_requests_per_s"] > 0
    frozen = data["farm"]["frozen"]
    assert frozen["stored"] > 0 and frozen["stored"] + frozen["skipped"] == urls
    assert crawlers["ours_full"]["runs"][0]["extra"]["requests"] == urls
    table = (tmp_path / f"{crawler.__version__}.md").read_text()
    assert "| ours_warc |" in table and "vs plain Scrapy" in table
    assert table in result.stdout


def test_bench_compares_with_the_last_committed_result(tmp_path):
    """The table ends with each mode's ratio to plain Scrapy now and in the newest
    committed result (quick and hostile runs are not one), read from the committed files."""
    from crawler.bench.results import last_result, markdown, versus
    from crawler.bench.session import COMMITTED

    for name in ("0.1.0.json", "0.2.0.json", "0.2.0-hostile.json"):
        (tmp_path / name).write_bytes((COMMITTED / name).read_bytes())
    (tmp_path / "9.0.0-quick.json").write_bytes(b"{}")
    last = last_result([tmp_path / "empty", tmp_path])
    assert last is not None and last["version"] == "0.2.0"
    now = orjson.loads((COMMITTED / "0.2.0.json").read_bytes())
    now["versus_last"] = versus(now, orjson.loads((COMMITTED / "0.1.0.json").read_bytes()))
    table = markdown(now)
    assert "Against 0.1.0 (its committed result, farm 10 x 300;" in table
    assert "| ours_warc | 0.677 | 0.467 | 3.8 | 6.2 |" in table
    assert "| ours_processes_2 | - | 0.55 | - | 7.18 |" in table
