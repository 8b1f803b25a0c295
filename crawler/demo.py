"""``autoblog-archive demo``: the whole job on the bundled sample farm, in one command."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from crawler.context import command_context
from crawler.crawl_summary import print_summary
from crawler.escaping import terminal
from crawler.exitcodes import EXIT_FAILED, UsageError
from crawler.folder import check_log_file, check_output_folder
from crawler.layout import OutputLayout
from crawler.run import run_crawl
from crawler.verify import verify


def prepare_output(output: Path, keep: bool) -> None:
    """Start afresh in a folder the demo made before; never touch anyone else's."""
    check_output_folder(output)  # a file, a read-only folder: bad usage, before anything
    # The demo marks the folders it creates: the only folders it will ever delete.
    mark = OutputLayout(output).demo_mark
    ours = mark.exists()
    if output.is_dir() and any(output.iterdir()) and not ours:
        raise UsageError(
            f"{output} already holds files the demo did not write; it is left untouched",
            "choose another --output (an empty or new folder)",
        )
    if ours and not keep:
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)
    mark.write_text("written by autoblog-archive demo; safe to delete\n")


def run_demo(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive demo``: serve, crawl, verify, say where it all is."""
    from crawler.replay import find_wayback
    from crawler.samplefarm import start_farm

    output = Path(args.output)
    if args.autoblogs < 1 or args.articles < 0:
        raise UsageError("--autoblogs must be 1 or more and --articles 0 or more")
    check_log_file(args.log_file)
    prepare_output(output, args.keep)
    engines = ["0.3.4", "0.3.0", "0.2", "0.1", "2025"]
    with start_farm(autoblogs=args.autoblogs, articles=args.articles, engine=engines) as farm:
        print(f"Sample farm serving on {farm.url} ({args.autoblogs} autoblogs)")
        code, summary = run_crawl(
            [farm.url],
            output,
            name="demo",
            fast=True,
            wacz=True,
            verbose=args.verbose,
            log_file=args.log_file,
        )
    print_summary(summary)
    report = verify(output, command_context([]))
    print(f"Verify: {report.verdict} ({report.files} WARC files, {report.records} records)")
    for problem in report.problems[:10]:
        print(terminal(f"  DEFECT {problem}"))
    for item in report.missing[:10]:
        print(terminal(f"  MISSING {item}"))
    root = output.resolve()
    # The command as the user ran it (.venv/bin/autoblog-archive in the quick start).
    program = sys.argv[0] if sys.argv[0].endswith("autoblog-archive") else "autoblog-archive"
    replay = f"{program} replay {root} --port 8090"
    if find_wayback() is None:
        replay = (
            "python3 -m venv .venv-pywb && .venv-pywb/bin/pip install pywb==2.10.0\n  " + replay
        )
    print(f"""
Output: {root}/
  WARCs in collections/demo/archive/, CDXJ in collections/demo/indexes/, pages.jsonl,
  demo.wacz, the corpus in corpus/, the change report in report.json, the log in logs/
Replay in pywb:
  {replay}
  then open http://localhost:8090/demo/{farm.url} (the farm as archived)""")
    return code if report.ok else EXIT_FAILED
