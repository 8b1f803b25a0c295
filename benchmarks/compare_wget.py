"""Our crawl against ``wget --warc-file`` on the same sample farm, in the same run.

    .venv/bin/python benchmarks/compare_wget.py --autoblogs 5 --articles 200

Prints pages/s, records, WARC bytes and the ``warcio check`` verdict for both, plus
ratios. wget gets the same scope (the farm's host, recursive, page requisites) and the
same forbidden-URL rejections, so neither tool touches side-effecting URLs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from crawler.samplefarm import start_farm

BIN = Path(sys.executable).parent
REJECT = r"[?&](update|updateall|reset_cache|check|q)(=|&|$)|xsaf[0-9]*\.php|/_farm/"


def warc_stats(files: list[Path]) -> dict:
    records = responses = 0
    for path in files:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                records += 1
                responses += record.rec_type == "response"
    check = subprocess.run([str(BIN / "warcio"), "check", *map(str, files)], capture_output=True)
    return {
        "files": len(files),
        "records": records,
        "responses": responses,
        "bytes": sum(p.stat().st_size for p in files),
        "warcio_check": "pass" if check.returncode == 0 else "FAIL",
    }


def run_ours(url: str, out: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "autoblog-archive"), "crawl", url, "-o", str(out), "--name", "b", "--fast"],
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - started
    return elapsed, warc_stats(sorted((out / "collections" / "b" / "archive").glob("*.warc.gz")))


def run_wget(url: str, out: Path) -> tuple[float, dict]:
    out.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run(
        [
            "wget",
            "--recursive",
            "--level=inf",
            "--page-requisites",
            "--no-parent",
            "--no-verbose",
            "-e",
            "robots=on",
            f"--reject-regex={REJECT}",
            "--warc-file=" + str(out / "wget"),
            "--no-warc-keep-log",
            "--directory-prefix",
            str(out / "files"),
            url,
        ],
        capture_output=True,
    )  # wget exits 8 on any 404 (robots.txt, the 404 pages): not a failure here
    elapsed = time.perf_counter() - started
    return elapsed, warc_stats(sorted(out.glob("*.warc.gz")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--autoblogs", type=int, default=5)
    parser.add_argument("--articles", type=int, default=200)
    args = parser.parse_args()
    if not shutil.which("wget"):
        print("wget is not installed (apt-get install wget)")
        return 1
    engines = ["0.3.4", "0.3.0", "0.2", "0.1", "2025"]
    work = Path(tempfile.mkdtemp(prefix="bench-wget-"))
    try:
        with start_farm(autoblogs=args.autoblogs, articles=args.articles, engine=engines) as farm:
            ours_t, ours = run_ours(farm.url, work / "ours")
            wget_t, wget = run_wget(farm.url, work / "wget")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"farm: {args.autoblogs} autoblogs x {args.articles} articles, engines {engines}")
    print(
        f"{'':12}{'seconds':>9}{'pages/s':>9}{'responses':>10}{'records':>9}{'MB':>8}  warcio check"
    )
    for name, t, s in (("ours", ours_t, ours), ("wget", wget_t, wget)):
        print(
            f"{name:12}{t:9.1f}{s['responses'] / t:9.0f}{s['responses']:10}{s['records']:9}"
            f"{s['bytes'] / 1e6:8.2f}  {s['warcio_check']}"
        )
    print(
        f"ratio ours/wget: speed x{(ours['responses'] / ours_t) / (wget['responses'] / wget_t):.2f}"
        f", responses x{ours['responses'] / wget['responses']:.2f}"
        f", bytes x{ours['bytes'] / wget['bytes']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
