"""What a scheduled re-crawl costs against the full crawl, on the same farm, in one run.

    .venv/bin/python benchmarks/recrawl_cost.py --autoblogs 10 --articles 500 --new 0.01

Full crawl into an empty folder, then the farm grows by ``--new`` of its articles
(spread over half of its autoblogs), then the same command again (incremental).
Prints requests (from the farm's own log) and wall time of both, and the ratios.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crawler.samplefarm import start_farm

BIN = Path(sys.executable).parent


def crawl(url: str, out: Path) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "autoblog-archive"), "crawl", url, "-o", str(out), "--name", "b", "--fast"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return time.perf_counter() - started, result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--autoblogs", type=int, default=10)
    parser.add_argument("--articles", type=int, default=500)
    parser.add_argument("--new", type=float, default=0.01, help="fraction of new articles")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-recrawl-"))
    engines = ["0.3.4", "0.3.0", "0.2", "2025", "0.1"]
    try:
        with start_farm(autoblogs=args.autoblogs, articles=args.articles, engine=engines) as farm:
            full_t, _ = crawl(farm.url, out)
            full_n = len(farm.requests())
            folders = list(farm.truth()["autoblogs"])
            total_new = max(1, round(args.autoblogs * args.articles * args.new))
            grown = folders[: max(1, len(folders) // 2)]
            for i, folder in enumerate(grown):
                share = total_new // len(grown) + (1 if i < total_new % len(grown) else 0)
                if share:
                    farm.grow(autoblog=folder, n=share)
            re_t, report = crawl(farm.url, out)
            re_n = len(farm.requests()) - full_n
    finally:
        shutil.rmtree(out, ignore_errors=True)
    articles = args.autoblogs * args.articles
    print(
        f"farm: {args.autoblogs} autoblogs x {args.articles} articles ({articles}), "
        f"{total_new} new ({total_new / articles:.1%}) in {len(grown)} autoblogs"
    )
    print(f"{'':12}{'requests':>10}{'seconds':>9}")
    print(f"{'full':12}{full_n:10}{full_t:9.1f}")
    print(f"{'re-crawl':12}{re_n:10}{re_t:9.1f}")
    print(f"ratio re-crawl/full: requests {re_n / full_n:.3f}, time {re_t / full_t:.3f}")
    summary = [line for line in report.splitlines() if line.startswith("Run ")]
    print(summary[-1] if summary else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
