"""Proof that a change to extraction or the corpus builder leaves the corpus byte for byte.

A crawl's WARC dates and record ids differ from run to run, so the reference is a set of
kept crawls: ``make`` crawls fixed sample farms once (the real command line), keeps their
WARCs and the crawl-time corpus, and records the offline ``extract`` corpus made by the
code of that moment; ``check`` rebuilds the corpus from the same WARCs with the current
code (1 and 2 workers) and compares every corpus file, byte for byte, with the reference
and with the crawl-time corpus.

    .venv/bin/python benchmarks/corpus_identity.py make  /tmp/corpus-ref   # before a change
    .venv/bin/python benchmarks/corpus_identity.py check /tmp/corpus-ref   # after it

Farms: the broadened farm (every engine and content shape, seed 1), a farm with the
encoding and engine faults the corpus tests use, and a bench-sized farm (with media).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.samplefarm import start_farm  # noqa: E402
from crawler.samplefarm.shapes import BROAD_FARM  # noqa: E402

BIN = Path(sys.executable).parent
FARMS: dict[str, dict] = {
    "broad": {"seed": 1, **BROAD_FARM},
    "faults": {
        "autoblogs": 6,
        "articles": 40,
        "seed": 2,
        "engine": ["0.3.4", "0.3.0", "0.2", "0.1", "2025", "0.3.1"],
        "fault": ["*:gzip", "0:update", "0:trailer=footer", "1:latin1", "5:type=microblog"],
    },
    "bench": {"autoblogs": 10, "articles": 300, "seed": 1},
}
CORPUS_FILES = ("part-*.jsonl.gz", "skipped.jsonl", "summary.json")


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every corpus file of ``folder`` (shards as stored: gzip bytes)."""
    out = {}
    for pattern in CORPUS_FILES:
        for path in sorted(folder.glob(pattern)):
            out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def extract(warcs: Path, out: Path, workers: int) -> dict[str, str]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(BIN / "autoblog-archive"), "extract", str(warcs), "-o", str(out)]
    done = subprocess.run([*cmd, "--workers", str(workers)], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"extract failed ({done.returncode}): {done.stderr[-2000:]}")
    print("   ", done.stdout.strip().splitlines()[-1])
    return digests(out / "corpus")


def make(base: Path, names: list[str]) -> None:
    base.mkdir(parents=True, exist_ok=True)
    reference = {}
    for name in names:
        crawl = base / name
        shutil.rmtree(crawl, ignore_errors=True)
        print(f"{name}: crawling {FARMS[name]}")
        with start_farm(**FARMS[name]) as farm:
            cmd = [str(BIN / "autoblog-archive"), "crawl", farm.url, "-o", str(crawl)]
            done = subprocess.run([*cmd, "--name", "ref", "--fast", "--quiet"])
        if done.returncode not in (0, 1):
            raise SystemExit(f"{name}: crawl failed ({done.returncode})")
        runs = sorted((crawl / "corpus").glob("run-*"))
        reference[name] = {
            "crawl_time": digests(runs[-1]),
            "offline": extract(crawl / "collections", base / f"{name}-offline", 2),
        }
        shutil.rmtree(base / f"{name}-offline")
    (base / "reference.json").write_bytes(orjson.dumps(reference, option=orjson.OPT_INDENT_2))
    print(f"reference written to {base / 'reference.json'}")


def check(base: Path, workers: list[int]) -> int:
    reference = orjson.loads((base / "reference.json").read_bytes())
    bad = 0
    for name, ref in reference.items():
        shards = {k: v for k, v in ref["crawl_time"].items() if k.startswith("part-")}
        if shards != {k: v for k, v in ref["offline"].items() if k.startswith("part-")}:
            print(f"{name}: the reference's crawl-time and offline shards differ")
            bad += 1
        for n in workers:
            out = base / f"{name}-check-{n}"
            got = extract(base / name / "collections", out, n)
            same = got == ref["offline"]
            print(f"{name}, {n} worker(s): {'identical' if same else 'DIFFERENT'}")
            if not same:
                for key in sorted(set(got) | set(ref["offline"])):
                    if got.get(key) != ref["offline"].get(key):
                        print(f"    {key}: {ref['offline'].get(key)} -> {got.get(key)}")
                bad += 1
            else:
                shutil.rmtree(out)
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("make", "check"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--farms", default=",".join(FARMS), help="comma-separated farm names")
    parser.add_argument("--workers", default="1,2", help="worker counts checked")
    args = parser.parse_args()
    if args.action == "make":
        make(args.folder, args.farms.split(","))
        return 0
    return check(args.folder, [int(w) for w in args.workers.split(",")])


if __name__ == "__main__":
    raise SystemExit(main())
