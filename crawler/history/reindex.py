"""``autoblog-archive reindex DIR``: rewrite the CDXJ and rebuild history.sqlite from the WARCs."""

from __future__ import annotations

import argparse
from pathlib import Path

from crawler.escaping import terminal
from crawler.history.rebuild import rebuild_from_indexes
from crawler.layout import OutputLayout
from crawler.untrusted import shown
from crawler.warc.cdxj import write_cdxj
from crawler.warc.names import warc_name_problem
from crawler.warc.reader import warc_defects


def run_reindex(args: argparse.Namespace) -> int:
    """``autoblog-archive reindex DIR``: repair ``.open`` files, rewrite the CDXJ, then
    rebuild history.sqlite; refused (exit 3) while a crawl holds the folder."""
    from crawler.context import command_context
    from crawler.exitcodes import EXIT_FAILED, EXIT_LOCKED
    from crawler.runlock import RunLock, RunLockedError

    context = command_context(args.set)
    root = Path(args.directory)
    layouts = OutputLayout.find(root)
    if not layouts:
        print(f"{root}: no collections/ folder, nothing to reindex")
        return EXIT_FAILED
    try:
        lock = RunLock(root).acquire()  # the history file is replaced: no crawl may run
    except RunLockedError as exc:
        print(exc)
        return EXIT_LOCKED
    try:
        return _reindex(root, layouts, context.bounds.read_limit)
    finally:
        lock.release()


def _reindex(root: Path, layouts: list[OutputLayout], read_limit: int) -> int:
    """Rebuild from the WARCs, reading at most ``read_limit`` bytes of a page."""
    from crawler.warc.recovery import repair_directory

    problems: list[str] = []
    for layout in layouts:
        # Under the run lock, an .open file is a killed crawl's: repair it, then index it.
        for repair in repair_directory(layout.archive):
            print(terminal(f"repaired {repair.describe()}"))
        for path in layout.warcs():
            problem = warc_name_problem(path.name)
            if problem is not None:  # write_cdxj and the rebuild leave it out: say so
                problems.append(f"{shown(path.name)}: {problem}, left out of the indexes")
                continue
            problems.extend(warc_defects(path))  # damage the index alone would pass over
        write_cdxj(layout, rebuild=True, problems=problems)
    report = rebuild_from_indexes(root, read_limit)
    report.problems[:0] = problems
    for problem in report.problems:
        print(terminal(f"PROBLEM  {problem}"))
    print(
        f"Rebuilt {OutputLayout(root).history}: {report.runs} runs, {report.captures} captures, "
        f"{report.articles} articles from {report.files} WARC files "
        f"({report.cdxj_lines} CDXJ lines)"
    )
    return 0 if not report.problems else 1
