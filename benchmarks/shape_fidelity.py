"""Text fidelity per content shape: extraction against the sample farm's hand-written truth.

Starts the broadened sample farm (every engine, every site type, ``*:shapes``), fetches
every permalink page, runs the one extraction function on it and prints, per shape, the
rapidfuzz ratio to the truth (min, mean), how many texts repeat a line run the truth does
not, and the self-check's measures (word coverage, word excess) with what it did. Run it
before and after an extraction change on the same seed to compare.

    .venv/bin/python benchmarks/shape_fidelity.py --seed 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

import lxml.html
from rapidfuzz import fuzz

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trafilatura  # noqa: E402

from crawler.corpus.extraction import TRAFILATURA_OPTIONS, extract_page  # noqa: E402
from crawler.corpus.selfcheck import measures, parse_block, visible_text  # noqa: E402
from crawler.corpus.text import clean_text  # noqa: E402
from crawler.parsing import parse_page  # noqa: E402
from crawler.samplefarm import start_farm  # noqa: E402
from crawler.samplefarm.shapes import BROAD_FARM, repeated_line_runs  # noqa: E402
from crawler.urls import canonical_url  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    ratios: dict[str, list[float]] = defaultdict(list)
    repeats: dict[str, int] = defaultdict(int)
    checks: list[tuple[str, float]] = []
    with start_farm(seed=args.seed, **BROAD_FARM) as farm:
        truth = farm.truth()["autoblogs"]
        for blog in truth.values():
            for art in blog["articles"]:
                if not art["reachable"] and blog["engine"] != "0.1":
                    continue
                url = canonical_url(art["permalink"])
                try:
                    with urllib.request.urlopen(url, timeout=60) as r:
                        body, status = r.read(), r.status
                except urllib.error.HTTPError as e:
                    body, status = e.read(), e.code
                result = extract_page(body, url, "utf-8", status)
                (rec,) = result["articles"]
                kind = art["kind"]
                ratio = fuzz.ratio(rec["text"], art["text"])
                ratios[kind].append(ratio)
                repeats[kind] += bool(repeated_line_runs(rec["text"], art["text"]))
                checks.append((kind, raw_measures(body, url), rec.get("check")))
                if ratio < 95:
                    print(f"  low {ratio:6.2f} {kind:12} {blog['engine']:5} {url}")
    print(f"\n{'shape':14} {'n':>3} {'min':>7} {'mean':>7} {'repeats':>7}")
    for kind in sorted(ratios):
        rs = ratios[kind]
        print(
            f"{kind:14} {len(rs):3d} {min(rs):7.2f} {statistics.mean(rs):7.2f} {repeats[kind]:7d}"
        )
    every = [r for rs in ratios.values() for r in rs]
    print(f"{'all':14} {len(every):3d} {min(every):7.2f} {statistics.mean(every):7.2f}")
    print("\nraw extractor output against the block's visible text, and the self-check:")
    print(f"  {'shape':14} {'coverage':>13} {'excess':>13}  actions")
    by_kind: dict[str, list[tuple[dict, dict | None]]] = defaultdict(list)
    for kind, raw, check in checks:
        by_kind[kind].append((raw, check))
    for kind in sorted(by_kind):
        cov = [raw["coverage"] for raw, _ in by_kind[kind]]
        exc = [raw["excess"] for raw, _ in by_kind[kind]]
        done = Counter(a for _, c in by_kind[kind] if c for a in c["actions"])
        print(
            f"  {kind:14} {min(cov):6.3f}-{max(cov):6.3f} {min(exc):6.3f}-{max(exc):6.3f}  "
            + (", ".join(f"{a} x{n}" for a, n in sorted(done.items())) or "-")
        )
    return 0


def raw_measures(body: bytes, url: str) -> dict[str, float]:
    """The self-check's measures of trafilatura's own output, before any repair."""
    (block,) = parse_page(body, url, mark_removed=True).articles
    html = lxml.html.tostring(block.content, encoding="unicode", with_tail=False)
    raw = trafilatura.extract(f"<html><body>{html}</body></html>", **TRAFILATURA_OPTIONS)
    return measures(clean_text(raw or ""), visible_text(parse_block(html)))


if __name__ == "__main__":
    raise SystemExit(main())
