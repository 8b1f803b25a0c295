"""What WARC capture and the corpus cost on top of Scrapy's own crawl, in one run.

    .venv/bin/python benchmarks/capture_cost.py --autoblogs 5 --articles 400 --repeat 3

Crawls the same sample farm with the same spider three ways, alternating runs:
plain Scrapy (no WARC, no corpus), + WARC capture, + WARC + corpus. Prints the
median crawl time (Scrapy's own elapsed_time_seconds, process start-up excluded),
pages/s, and each mode's rate as a ratio of plain Scrapy's.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from crawler.samplefarm import start_farm

BIN = Path(sys.executable).parent
MODES = {
    "scrapy": ["--set", "WARC_ENABLED=False", "--set", "CORPUS_ENABLED=False"],
    "+warc": ["--set", "CORPUS_ENABLED=False"],
    "+warc+corpus": [],
}


def crawl(url: str, extra: list[str]) -> tuple[float, int]:
    out = Path(tempfile.mkdtemp(prefix="bench-capture-"))
    try:
        result = subprocess.run(
            [str(BIN / "autoblog-archive"), "crawl", url, "-o", str(out), "--fast", *extra],
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    elapsed = re.search(r"'elapsed_time_seconds': ([\d.]+)", result.stderr)
    count = re.search(r"'downloader/response_count': (\d+)", result.stderr)
    if not elapsed or not count:
        raise RuntimeError(result.stderr[-2000:])
    return float(elapsed.group(1)), int(count.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--autoblogs", type=int, default=5)
    parser.add_argument("--articles", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {m: [] for m in MODES}
    pages: dict[str, int] = {}
    with start_farm(autoblogs=args.autoblogs, articles=args.articles) as farm:
        for _ in range(args.repeat):
            for mode, extra in MODES.items():
                seconds, pages[mode] = crawl(farm.url, extra)
                times[mode].append(seconds)
    base = pages["scrapy"] / statistics.median(times["scrapy"])
    print(f"farm: {args.autoblogs} autoblogs x {args.articles} articles, {args.repeat} runs each")
    print(f"{'mode':14}{'median s':>9}{'pages':>7}{'pages/s':>9}{'vs scrapy':>10}")
    for mode in MODES:
        median = statistics.median(times[mode])
        rate = pages[mode] / median
        print(f"{mode:14}{median:9.2f}{pages[mode]:7}{rate:9.0f}{rate / base:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
