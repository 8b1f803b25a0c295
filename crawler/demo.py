"""``autoblog-archive demo``: the whole job on the bundled sample farm, in one command."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from crawler.run import print_summary, run_crawl
from crawler.verify import verify


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", default="output/demo", help="output folder")
    parser.add_argument("--autoblogs", type=int, default=5)
    parser.add_argument("--articles", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep an earlier demo output")


def run_demo(args: argparse.Namespace) -> int:
    from crawler.samplefarm import start_farm

    output = Path(args.output)
    if output.exists() and not args.keep:
        shutil.rmtree(output)
    engines = ["0.3.4", "0.3.0", "0.2", "0.1", "2025"]
    with start_farm(autoblogs=args.autoblogs, articles=args.articles, engine=engines) as farm:
        print(f"sample farm on {farm.url}")
        code, summary = run_crawl([farm.url], output, name="demo", fast=True, wacz=True)
    print_summary(summary)
    report = verify(output)
    print(
        f"verify: {'OK' if report.ok else 'FAILED'} ({report.files} files, "
        f"{report.records} records)"
    )
    for problem in report.problems[:20]:
        print(f"  DEFECT {problem}")
    root = output.resolve()
    print(f"""
WARC files:  {root}/collections/demo/archive/
CDXJ index:  {root}/collections/demo/indexes/index.cdxj
Pages:       {root}/pages.jsonl
WACZ:        {root}/demo.wacz

Replay in pywb (in its own virtual environment):
  python3 -m venv .venv-pywb && .venv-pywb/bin/pip install pywb==2.10.0
  cd {root} && {Path(".venv-pywb/bin/wayback").resolve()} -p 8090
  then open http://localhost:8090/demo/  (the sample farm's URLs are listed there)""")
    return code if report.ok else 2
