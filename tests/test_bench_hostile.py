"""`autoblog-archive bench --hostile --quick`: every hostile shape, parsed and crawled.

Checks the benchmark works, never its figures (timings on a shared machine are noise).
A file of its own, apart from test_bench.py: each run takes minutes, and with
``--dist loadfile`` the two files can run in two workers at once.
"""

from __future__ import annotations

import orjson
import pytest
from support import run_cli

import crawler

pytestmark = pytest.mark.e2e


def test_bench_hostile_quick(tmp_path):
    """``bench --hostile --quick``: every shape of issue 19 (at a hundredth of its size)
    parsed and crawled, each figure beside its budget."""
    # A stall guard only: each quick crawl stops at QUICK_MAX_PAGES pages.
    result = run_cli("bench", "--hostile", "--quick", "--output", str(tmp_path), timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    data = orjson.loads((tmp_path / f"{crawler.__version__}-hostile-quick.json").read_bytes())
    assert {p["kind"] for p in data["parse"]} == {"escaped-script", "links", "farm-index"}
    crawls = {(c["kind"], c["command"]) for c in data["crawl"]}
    kinds = ("escaped-script", "farm-index", "sitemap", "links", "robots", "headers", "export")
    assert crawls == {(k, "crawl") for k in kinds} | {("links", "reindex")}
    for c in data["crawl"]:
        assert c["exit_code"] in (0, 1) and c["seconds"] > 0 and c["peak_tree_mb"] > 0, c
    assert data["budgets"]["tree_mb"] == 500 and data["max_pages"] == 200
    # A farm-level listing names more autoblogs than the quick bound lets the crawl fetch.
    index = next(c for c in data["crawl"] if c["kind"] == "farm-index")
    assert index["cut"]["bound: MAX_PAGES_PER_RUN=200"] > 0
    table = (tmp_path / f"{crawler.__version__}-hostile-quick.md").read_text()
    assert "| sitemap=9000 | crawl |" in table and table in result.stdout
