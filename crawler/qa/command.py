"""``autoblog-archive qa DIR [--sample N] [--seed S]``: the pages replayed, opened and
scored; ``qa/`` written in the folder; what the terminal shows; the exit code."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from crawler.escaping import terminal
from crawler.exitcodes import EXIT_OK, EXIT_PARTIAL, UsageError
from crawler.qa.browser import Browser, archived_status, check_prerequisites
from crawler.qa.captured import captured_page, choose, html_captures
from crawler.qa.score import Summary, page_record
from crawler.untrusted import Folder, Refused, shown

if TYPE_CHECKING:
    from crawler.context import RunContext

QA_FOLDER = "qa"
PAGES_NAME = "pages.jsonl"
SUMMARY_NAME = "summary.json"


@dataclass
class QaResult:
    """What ``qa`` found: the summary, the lines to print, the exit code."""

    summary: dict
    lines: list[str]
    exit_code: int


def run_qa_on(
    root: Path, context: RunContext, sample: int | None = None, seed: int = 0
) -> QaResult:
    """Replay ``root`` and open its pages in Chromium; write qa/ in it; the verdict. The
    bounds of a page and the threshold are the context's (``QA_*``)."""
    from crawler.replay import Wayback, check_replayable

    chromium = check_prerequisites()
    bounds, read_limit = context.qa, context.bounds.read_limit
    if sample is not None and sample < 1:
        raise UsageError(f"--sample {sample}: takes a number of pages, 1 or more")
    collections = check_replayable(root)
    try:
        with Folder.open(root) as folder:
            qa = folder.make_folder(QA_FOLDER)
            qa.close()
    except Refused as exc:
        raise UsageError(f"cannot write the qa results: {exc}") from None
    warcs = {c.name: {w.name: w for w in c.warcs} for c in collections}
    total = sum(1 for _ in html_captures(collections))
    pages = choose(html_captures(collections), sample, seed)
    summary = Summary(bounds.min_score)
    started = time.monotonic()
    records: list[bytes] = []
    with Wayback(root, collections=collections) as base, Browser(chromium, base, bounds) as browser:
        for ref in pages:
            path = warcs.get(ref.collection, {}).get(ref.filename)
            captured = captured_page(path, ref.offset, bounds.text_chars, read_limit)
            replayed = browser.open(ref)
            lacking = {
                r.url: archived_status(base, ref.collection, r.url, bounds.page_timeout)
                for r in replayed.resources.values()
                if r.status is None or r.status >= 400
            }
            record = page_record(ref, captured, replayed, lacking, bounds.min_score)
            summary.add(record)
            records.append(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
    seconds = time.monotonic() - started
    result = summary.as_json(total, seconds)
    with Folder.open(root) as folder, folder.make_folder(QA_FOLDER) as qa:
        qa.write_file(PAGES_NAME, records)
        qa.write_file(SUMMARY_NAME, [orjson.dumps(result, option=orjson.OPT_INDENT_2), b"\n"])
    lines = summary_lines(result, root)
    code = EXIT_OK if not summary.below else EXIT_PARTIAL
    return QaResult(result, lines, code)


def summary_lines(result: dict, root: Path) -> list[str]:
    """What the terminal shows: one line per autoblog, one per page below the threshold
    and per missing resource, the verdict; every value escaped (it comes from pages)."""
    lines = [
        f"qa: {result['pages']} of {result['pages_in_archive']} pages replayed in Chromium "
        f"(threshold {result['threshold']:.2f})"
    ]
    for base, entry in result["autoblogs"].items():
        lines.append(
            f"  {base}: {entry['pages']} pages, score {entry['score']:.2f} "
            f"(min {entry['min']:.2f}), {entry['below_threshold']} below"
        )
    for page in result["below"]:
        why = "; ".join(page["problems"]) or "text differs"
        lines.append(f"BELOW  {page['score']:.2f}  {page['url']} ({page['ts']}): {why}")
    for item in result["missing"]:
        lines.append(f"MISSING  {item['url']} (needed by {item['page']})")
    verdict = (
        "OK"
        if not result["below_threshold"]
        else f"FAILED ({result['below_threshold']} pages below)"
    )
    lines.append(
        f"QA: {verdict}: {result['pages']} pages, mean score {result['score']:.2f}, "
        f"{result['escapes']} escapes, {result['missing_resources']} missing resources, "
        f"{result['console_errors']} console errors; {shown(root / QA_FOLDER)}"
    )
    return [terminal(line) for line in lines]


def run_qa(args: argparse.Namespace) -> int:
    """``autoblog-archive qa DIR [--sample N] [--seed S] [--set NAME=VALUE]``."""
    from crawler.context import command_context

    context = command_context(args.set)
    result = run_qa_on(Path(args.directory), context, args.sample, args.seed)
    for line in result.lines:
        print(line)
    return result.exit_code
