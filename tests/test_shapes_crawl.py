"""End to end on the broadened sample farm: real-world content shapes on every engine and
site type, crawled with the real command line; every article's text against the farm's
hand-written truth, and the offline pass over the same WARCs giving the same corpus."""

from __future__ import annotations

import statistics
from collections import defaultdict

import pytest
from rapidfuzz import fuzz
from support import run_cli

from crawler.corpus.shards import read_corpus
from crawler.samplefarm import start_farm
from crawler.samplefarm.shapes import BROAD_FARM, repeated_line_runs
from crawler.urls import canonical_url

pytestmark = pytest.mark.e2e

MIN_RATIO = 95.0
MIN_MEAN = 99.0
# Script or style source, escaped or not, in any form it could leak.
CODE_MARKERS = (
    "<script", "&lt;script", "</script", "<style", "&lt;style", "jQuery", "function(",
    "function footnote_", "document.write", "tooltip({", "color:red",
)  # fmt: skip


@pytest.fixture(scope="module")
def broad(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    with start_farm(seed=1, **BROAD_FARM) as farm:
        result = run_cli("crawl", farm.url, "--output", str(out), "--name", "shapes", "--fast")
        yield {"out": out, "result": result, "truth": farm.truth()["autoblogs"]}


def test_every_article_matches_its_truth(broad):
    assert broad["result"].returncode == 0, broad["result"].stderr[-2000:]
    by_url = {canonical_url(r["url"]): r for r in read_corpus(broad["out"])}
    ratios: dict[str, list[float]] = defaultdict(list)
    repaired: dict[str, int] = defaultdict(int)
    failures = []
    for blog in broad["truth"].values():
        for art in blog["articles"]:
            record = by_url.get(canonical_url(art["permalink"]))
            assert record is not None, (blog["engine"], art["permalink"])
            text, truth = record["text"], art["text"]
            ratio = fuzz.ratio(text, truth)
            ratios[art["kind"]].append(ratio)
            repaired[art["kind"]] += "text_check_failed" in record["quality_flags"]
            if ratio < MIN_RATIO:
                failures.append((ratio, art["kind"], blog["engine"], text[:300], truth[:300]))
            runs = repeated_line_runs(text, truth)
            assert not runs, (art["kind"], blog["engine"], runs[:2])
            for field in ("text", "title"):
                assert not any(m in record[field] for m in CODE_MARKERS), (record["url"], text)
            assert "code_residue" not in record["quality_flags"]
    every = [r for rs in ratios.values() for r in rs]
    print("\ntext similarity to the farm's truth per shape (rapidfuzz ratio):")
    print(f"  {'shape':14} {'n':>3} {'min':>7} {'mean':>7} {'repaired':>8}")
    for kind in sorted(ratios):
        rs = ratios[kind]
        print(
            f"  {kind:14} {len(rs):3d} {min(rs):7.2f} {statistics.mean(rs):7.2f} "
            f"{repaired[kind]:8d}"
        )
    print(f"  {'all':14} {len(every):3d} {min(every):7.2f} {statistics.mean(every):7.2f}")
    assert not failures, failures[:3]
    assert statistics.mean(every) >= MIN_MEAN
    shapes = {"link_post", "link_only", "wp_footnotes", "table", "nested_list", "pre_code"}
    shapes |= {"figure", "video", "micro", "empty", "image_only", "entities", "scripts"}
    assert shapes <= set(ratios), shapes - set(ratios)
    assert repaired["link_post"] == len(ratios["link_post"])  # every doubled post repaired
    assert repaired["wp_footnotes"] == len(ratios["wp_footnotes"])


def test_self_check_is_recorded_and_the_offline_pass_agrees(broad, tmp_path):
    records = read_corpus(broad["out"])
    checked = [r for r in records if "text_check_failed" in r["quality_flags"]]
    assert checked
    for record in checked:
        info = record["extraction"]["self_check"]
        assert info["actions"] and set(info["actions"]) <= set(record["quality_flags"])
        assert info["after"]["coverage"] >= 0.95 and info["after"]["excess"] <= 1.1
    assert all("self_check" not in r["extraction"] for r in records if r not in checked)
    archive = broad["out"] / "collections" / "shapes" / "archive"
    offline = run_cli("extract", str(archive), "--output", str(tmp_path))
    assert offline.returncode == 0, offline.stderr[-2000:]
    assert read_corpus(tmp_path) == records
