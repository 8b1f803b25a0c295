"""The end of a crawl as the operator sees it: the summary, the verdict, the exit code.

The summary is assembled from the crawl's components once Scrapy has stopped (each
asked for what it owns, through ``crawler.get_extension`` and friends) and from Scrapy's
statistics (counts only).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from scrapy.crawler import Crawler

from crawler.backoff import Backoff
from crawler.bounds import FRONTIER_REJECTED, error_count
from crawler.escaping import terminal
from crawler.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from crawler.extensions import CrawlState, IndexOnClose, RunSummary
from crawler.extensions.crawl_state import HISTORY_ERROR
from crawler.extensions.lookup import (
    captures_held,
    downloader_middleware,
    item_pipeline,
    page_bound_reached,
)
from crawler.history.report import list_changes
from crawler.untrusted import read_json_object
from pipelines.research_corpus import CorpusPipeline
from pipelines.warc_capture import WarcCapture

REPORT_LIMIT = 1 << 28  # a report lists URLs: a big run's is tens of MB


def _read_report(path: str | None) -> dict | None:
    """The run's report.json, read back as any state file (not followed, bounded)."""
    if not path:
        return None
    return read_json_object(path, REPORT_LIMIT)


def summarize(crawler: Crawler) -> tuple[dict, int]:
    """(summary, captures held) of a finished crawl."""
    stats: dict[str, Any] = crawler.stats.get_stats() if crawler.stats else {}
    state = crawler.get_extension(CrawlState)
    capture = crawler.get_extension(WarcCapture)
    indexes = crawler.get_extension(IndexOnClose)
    found = crawler.get_extension(RunSummary)
    corpus = item_pipeline(crawler, CorpusPipeline)
    backoff = downloader_middleware(crawler, Backoff)
    run = state.run if state is not None else None
    outcome = state.outcome if state is not None else None
    skipped = {k.split("/", 1)[1]: v for k, v in stats.items() if k.startswith("skipped/")}
    if stats.get("robotstxt/forbidden"):
        skipped["robots.txt"] = stats["robotstxt/forbidden"]
    statuses = {
        k.rsplit("/", 1)[1]: v
        for k, v in stats.items()
        if k.startswith("downloader/response_status_count/")
    }
    autoblogs = found.autoblogs if found is not None else {}
    summary = {
        "finish_reason": stats.get("finish_reason", "interrupted"),
        "run": {
            "id": run.id if run else None,
            "mode": run.mode if run else None,
            "resumed": run.resumed if run else None,
            "status": outcome.status if outcome else None,
            "report": outcome.report if outcome else None,
        },
        "report": _read_report(outcome.report if outcome else None),
        "requests": stats.get("downloader/request_count", 0),
        "responses": stats.get("warc/responses", 0),
        "revisits": stats.get("warc/revisits", 0),
        "from_archive": stats.get("resume/from_archive", 0),
        "statuses": statuses,
        "warc_records": stats.get("warc/records", 0),
        "payload_bytes": stats.get("warc/payload_bytes", 0),
        "errors": error_count(stats),
        "frontier_rejected": stats.get(FRONTIER_REJECTED, 0),
        "error_reasons": {
            k.split("/", 1)[1]: v
            for k, v in stats.items()
            if k.startswith("errors/") and k != "errors/fetch"
        },
        "capped": page_bound_reached(crawler),
        "truncated": stats.get("warc/truncated", 0),
        "warc_files": [p.name for p in capture.closed_files] if capture else [],
        "corpus_records": corpus.records if corpus else 0,
        "corpus_shards": corpus.shards if corpus else [],
        "skipped": skipped,
        "autoblogs": {b: e for b, e in sorted(autoblogs.items()) if e["engine"] or e["pages"]},
        "first_failure": found.first_failure if found is not None else None,
        "history_error": outcome.history_error if outcome else None,
        "seeds_found": {u: vars(f) for u, f in found.seeds.items()} if found is not None else {},
        "not_archived": [vars(f) for f in found.not_archived.values()] if found else [],
        "corpus_shortfall": corpus.shortfall if corpus else None,
        "warc_write_error": capture.write_error if capture else None,
        "index_error": indexes.error if indexes else None,
        "written": indexes.written if indexes else {},
        # What the farm declares that the archive lacks (crawler.history.audit).
        "audit": state.audit.as_dict() if state is not None and state.audit else None,
        # Answers that asked the crawl to slow down, and the pages still throttled.
        "throttled": backoff.summary() if backoff is not None else None,
    }
    return summary, captures_held(crawler)


def verdict(summary: dict, held: int) -> tuple[int, str]:
    """The exit code and the one sentence an operator reads first (``held``: captures the
    run holds, written or read back)."""
    reason = summary["finish_reason"]
    seeds = ", ".join(summary["seeds"])
    first_failure = summary.get("first_failure")
    if reason == HISTORY_ERROR:
        why = summary.get("history_error") or "see the log"
        return EXIT_FAILED, f"the crawl history could not start a run ({why}): nothing was fetched"
    if not held:
        if reason in ("shutdown", "interrupted"):
            return EXIT_FAILED, "interrupted before anything was captured; the folder is unchanged"
        return _nothing_captured(summary, first_failure or f"{seeds} did not answer")
    if reason in ("shutdown", "interrupted"):
        return EXIT_FAILED, "interrupted: run the same command again to resume"
    if reason == "warc_write_error":
        return EXIT_FAILED, (
            f"stopped: writing the WARC failed ({summary['warc_write_error'] or 'disk full?'}); "
            "everything written before is kept; free space and run the same command again"
        )
    if summary["index_error"]:
        return EXIT_FAILED, (
            f"writing the indexes failed ({summary['index_error']}); the WARCs are "
            "kept; run the same command again"
        )
    if reason != "finished":
        return EXIT_FAILED, f"stopped early ({reason}): run the same command again to resume"
    if not summary["autoblogs"]:
        return EXIT_FAILED, (
            f"no autoblog found at {seeds}: is it a Projet Autoblog farm root or an "
            "autoblog's base URL (ending in /)?"
        )
    if summary["capped"]:
        return EXIT_PARTIAL, (
            f"partial: the bound {summary['capped']} was reached; run the same command "
            "again to continue where this run stopped"
        )
    if summary["frontier_rejected"]:
        return EXIT_PARTIAL, (
            f"partial: {summary['frontier_rejected']} entries of the shared frontier were no "
            "request of this crawl and were dropped (named in the log): who else writes to "
            "this Redis?"
        )
    problems = problem_lines(summary)
    if problems:
        more = f" (and {len(problems) - 1} more, below)" if len(problems) > 1 else ""
        return EXIT_PARTIAL, f"partial: {problems[0]}{more}"
    if summary["errors"]:
        return EXIT_PARTIAL, (
            f"partial: {summary['errors']} fetches failed, everything fetched is archived; "
            "the next run fetches them again"
        )
    missing = (summary.get("audit") or {}).get("missing_total")
    if missing:
        return EXIT_PARTIAL, (
            f"partial: {missing} items the farm declares are not in the archive (listed "
            "below and in summary.json); the next run fetches them first"
        )
    return EXIT_OK, "complete"


def _nothing_captured(summary: dict, fallback: str) -> tuple[int, str]:
    """No autoblog page: a seed that answered with something else is a wrong URL (exit 4,
    fix the command); one that did not answer, or a farm none of whose autoblogs gave a
    page, is a failure (exit 2, try again)."""
    left = "the output folder was left as it was"
    seeds = summary.get("seeds_found", {})
    wrong = [f"{u} {f['why']}" for u, f in seeds.items() if f["kind"] == "not_autoblog"]
    if wrong:
        return EXIT_USAGE, f"{'; '.join(wrong)}; nothing was captured, {left}"
    why = [f"{u} {f['why']}" for u, f in seeds.items() if f["kind"] == "failed"]
    farm = next((u for u, f in seeds.items() if f["kind"] == "farm"), None)
    if not why and farm is not None:
        bases = summary.get("not_archived") or []
        first = f" (first: {bases[0]['url']} {bases[0]['why']})" if bases else ""
        why = [f"{farm} is an autoblog farm, but no autoblog of it gave a page{first}"]
        if not bases:
            why = [f"{farm} is an autoblog farm listing no autoblog (name hidden ones with "
                   "--autoblogs)"]  # fmt: skip
    return EXIT_FAILED, f"nothing was captured ({'; '.join(why) or fallback}); {left}"


def problem_lines(summary: dict) -> list[str]:
    """What a run that holds pages failed to archive, each named (each makes it partial):
    seeds and autoblog bases that gave no autoblog page, pages the farm still throttled
    after their last retry, a corpus far short of the pages."""
    lines = [
        f"not archived: {p['url']} ({p['asked_as']}) {p['why']}"
        for p in summary.get("not_archived", [])
    ]
    throttled = summary.get("throttled") or {}
    lines += [
        f"throttled: {p['url']} answered {p['status']} on each of {p['attempts']} attempts; "
        "the next run fetches it first"
        for p in throttled.get("pages", [])
    ]
    unnamed = throttled.get("pages_total", 0) - len(throttled.get("pages", []))
    if unnamed > 0:
        lines.append(f"throttled: {unnamed} more pages (AUDIT_MAX_MISSING)")
    short = summary.get("corpus_shortfall")
    if short:
        lines.append(
            f"corpus short: {short['records']} records for the {short['article_pages']} "
            f"article pages captured ({short['why']}); the WARCs hold every page: rebuild "
            "it with `autoblog-archive extract`"
        )
    return lines


def share_verdict(code: int, summary: dict, who: str) -> int:
    """The exit code of one share of a crawl (a cluster worker, a ``--processes`` process):
    a share that found no autoblog of its own is not a failure, the others had them."""
    if code == EXIT_FAILED and not summary["responses"] and not summary["errors"]:
        summary["verdict"] = f"{who}: the others took every request, nothing left for this one"
        return EXIT_OK
    if code == EXIT_FAILED and summary["finish_reason"] == "finished" and not summary["autoblogs"]:
        code = EXIT_PARTIAL if summary["errors"] else EXIT_OK
        summary["verdict"] = "partial" if summary["errors"] else "complete"
        summary["verdict"] += f": {who}'s share held no autoblog page"
    return code


def audit_lines(audit: dict | None, limit: int = 20) -> list[str]:
    """The audit's missing items (the first ``limit``) and the caps it reached."""
    if not audit:
        return []
    lines = [f"missing {m['what']} {m['url']} ({m['why']})" for m in audit["missing"][:limit]]
    more = audit["missing_total"] - min(limit, len(audit["missing"]))
    if more > 0:
        lines.append(f"... and {more} more missing items (summary.json)")
    return lines + [f"audit: {note}" for note in audit["notes"][:limit]]


def print_summary(summary: dict, out: TextIO | None = None) -> None:
    """The end of a run on the terminal: one line per autoblog, the report's URLs, totals."""
    out = out or sys.stdout

    def say(line: str) -> None:  # URLs and reasons may come from the farm: escaped
        print(terminal(line), file=out)

    run = summary["run"]
    resumed = ", resumed" if run.get("resumed") else ""
    counted = run.get("id") is not None and run.get("status") != "discarded"
    head = f"Run {run['id']} ({run['mode']}{resumed})" if counted else "Crawl"
    say(f"{head}: {summary['verdict']}")
    report = summary.get("report") or {}
    changes = report.get("autoblogs", {})
    for base, info in summary["autoblogs"].items():
        counts = changes.get(base, {}).get("articles", {})
        change = ", ".join(
            f"{len(counts[k])} {k}" for k in ("new", "changed", "gone") if counts.get(k)
        )
        say(
            f"  {base}  engine {info['engine'] or 'not identified'}: {info['pages']} pages, "
            f"{info['articles']} articles" + (f" ({change})" if change else "")
        )
    if report.get("run", {}).get("id", 1) > 1:  # a first crawl's URLs are all new: noise
        for line in list_changes(report, limit=20):
            say(f"  {line}")
    for reason, count in sorted(summary.get("error_reasons", {}).items()):
        say(f"  failed {count} x {reason}")
    # A discarded run's captures are gone, a stopped one's are completed by its resumption:
    # their verdict alone says what to do.
    if counted and summary["finish_reason"] == "finished":
        problems = problem_lines(summary)
        for line in problems[:20]:  # a hostile farm may list thousands
            say(f"  {line}")
        if len(problems) > 20:
            say(f"  ... and {len(problems) - 20} more in summary.json")
    for reason, count in sorted(summary["skipped"].items()):
        say(f"  skipped {count} x {reason}")
    throttled = summary.get("throttled") or {}
    if throttled.get("answers"):
        slowed = ", ".join(
            f"{h} to one request every {d:.1f} s" for h, d in throttled["delays"].items()
        )
        say(
            f"  throttled {throttled['answers']} x (429, or 503 with Retry-After), retried "
            f"after the wait asked" + (f"; slowed {slowed}" if slowed else "")
        )
    if summary["frontier_rejected"]:
        say(f"  dropped {summary['frontier_rejected']} x invalid frontier entry")
    for line in audit_lines(summary.get("audit")):
        say(f"  {line}")
    if summary["from_archive"]:
        say(
            f"  {summary['from_archive']} pages captured before the interruption were read "
            "back from the WARCs, not fetched again"
        )
    if summary["warc_records"] and counted:
        say(
            f"WARC: {summary['responses']} responses, {summary['revisits']} revisits, "
            f"{summary['warc_records']} records in {len(summary['warc_files'])} files, "
            f"{summary['warc_bytes'] / 1e6:.2f} MB written "
            f"({summary['payload_bytes'] / 1e6:.2f} MB of HTTP payload)"
        )
    if summary["corpus_shards"] and counted:
        folder = Path(summary["corpus_shards"][0]).parent
        say(f"Corpus: {summary['corpus_records']} article records in {folder}/")
    if summary.get("log"):
        say(f"Log: {summary['log']}")
