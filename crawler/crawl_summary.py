"""The end of a crawl as the operator sees it: the summary and the outcome it is judged by.

The summary is assembled once Scrapy has stopped, from the crawl's results (each
component's part, written by that component: :mod:`crawler.services`), the history
service's run, and Scrapy's statistics (counts only, by their declared names:
:mod:`crawler.counters`). The :class:`crawler.outcome.CrawlOutcome` built beside it, from
the same sources, gives the exit code and the verdict.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from scrapy.crawler import Crawler

from crawler.context import RunContext
from crawler.counters import (
    ERROR_REASON,
    SKIPPED,
    STATUS,
    Stat,
    bound_reached,
    captures_held,
    count,
    family,
)
from crawler.escaping import terminal
from crawler.history.report import list_changes
from crawler.outcome import Counts, CrawlOutcome, Finish, problem_lines
from crawler.processes import share_label
from crawler.services import history_of, results_of
from crawler.untrusted import read_json_object

REPORT_LIMIT = 1 << 28  # a report lists URLs: a big run's is tens of MB


def _read_report(path: str | None) -> dict | None:
    """The run's report.json, read back as any state file (not followed, bounded)."""
    if not path:
        return None
    return read_json_object(path, REPORT_LIMIT)


def share_of(context: RunContext) -> str | None:
    """Who this crawl is when it is one share of a bigger one (its verdict says so)."""
    if context.cluster.enabled:
        return f"worker {context.cluster.worker}"
    if context.processes.share:
        return share_label(context.processes.share)
    return None


def summarize(crawler: Crawler, seeds: list[str]) -> tuple[dict, CrawlOutcome]:
    """(summary, outcome) of a finished crawl of ``seeds``."""
    stats: dict[str, Any] = crawler.stats.get_stats() if crawler.stats else {}
    context = RunContext.of(crawler)
    results = results_of(crawler)
    found = results.found
    history = history_of(crawler)
    run = history.run if history is not None else None
    ended = history.outcome if history is not None else None
    skipped = family(stats, SKIPPED)
    if count(stats, Stat.ROBOTS_FORBIDDEN):
        skipped["robots.txt"] = count(stats, Stat.ROBOTS_FORBIDDEN)
    autoblogs = found.autoblogs
    identified = {b: e for b, e in sorted(autoblogs.items()) if e["engine"] or e["pages"]}
    not_archived = tuple(found.not_archived.values())
    shortfall = results.corpus_shortfall
    audit = ended.audit.as_dict() if ended is not None and ended.audit else None
    throttled = results.throttled
    counts = Counts.from_stats(stats)
    outcome = CrawlOutcome(
        finish=Finish.of(stats.get(Stat.FINISH_REASON)),
        reason=str(stats.get(Stat.FINISH_REASON, Finish.INTERRUPTED)),
        seeds=tuple(seeds),
        held=captures_held(stats, context.cluster.enabled),
        counts=counts,
        autoblogs=len(identified),
        capped=bound_reached(stats),
        problems=tuple(problem_lines(not_archived, shortfall, throttled)),
        missing=(audit or {}).get("missing_total") or 0,
        seeds_found=tuple(found.seeds.values()),
        not_archived=not_archived,
        first_failure=found.first_failure,
        history_error=ended.history_error if ended else None,
        warc_write_error=results.warc_write_error,
        index_error=results.index_error,
        share=share_of(context),
    )
    summary = {
        "finish_reason": outcome.reason,
        "run": {
            "id": run.id if run else None,
            "mode": run.mode if run else None,
            "resumed": run.resumed if run else None,
            "status": ended.status if ended else None,
            "report": ended.report if ended else None,
        },
        "report": _read_report(ended.report if ended else None),
        "requests": counts.requests,
        "responses": counts.responses,
        "revisits": counts.revisits,
        "from_archive": counts.from_archive,
        "statuses": family(stats, STATUS),
        "warc_records": counts.warc_records,
        "payload_bytes": counts.payload_bytes,
        "errors": counts.errors,
        "frontier_rejected": counts.frontier_rejected,
        "error_reasons": family(stats, ERROR_REASON),
        "capped": outcome.capped,
        "truncated": counts.truncated,
        "warc_files": [p.name for p in results.warc_files],
        "corpus_records": results.corpus_records,
        "corpus_shards": list(results.corpus_shards),
        "skipped": skipped,
        "autoblogs": identified,
        "first_failure": outcome.first_failure,
        "history_error": outcome.history_error,
        "seeds_found": {f.url: vars(f) for f in outcome.seeds_found},
        "not_archived": [vars(f) for f in not_archived],
        "corpus_shortfall": shortfall,
        "problems": list(outcome.problems),
        "warc_write_error": outcome.warc_write_error,
        "index_error": outcome.index_error,
        "written": results.written,
        # What the farm declares that the archive lacks (crawler.history.audit).
        "audit": audit,
        # Answers that asked the crawl to slow down, and the pages still throttled.
        "throttled": throttled,
    }
    return summary, outcome


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
    for reason, times in sorted(summary.get("error_reasons", {}).items()):
        say(f"  failed {times} x {reason}")
    # A discarded run's captures are gone, a stopped one's are completed by its resumption:
    # their verdict alone says what to do.
    if counted and Finish.of(summary["finish_reason"]) is Finish.FINISHED:
        problems = summary["problems"]
        for line in problems[:20]:  # a hostile farm may list thousands
            say(f"  {line}")
        if len(problems) > 20:
            say(f"  ... and {len(problems) - 20} more in summary.json")
    for reason, times in sorted(summary["skipped"].items()):
        say(f"  skipped {times} x {reason}")
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
