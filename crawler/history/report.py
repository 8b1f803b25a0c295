"""The change report of a run: what is new, changed, unchanged or gone, per autoblog.

Computed from the crawl history (this run against every earlier one), so it can be
redone for any run, also after ``reindex``. Definitions:

Pages (every URL fetched in the run, last fetch of the run counts, compared with the
newest earlier capture that answered: ``History.latest_capture``):
- new: never captured in an earlier run;
- gone: answered 404/410 now, 2xx before; or, in a full pass that finished, captured
  with 2xx before in an autoblog this run walked, and not fetched this time ("not
  listed"): an incremental run skips most URLs on purpose, so only 404s count there;
- changed / unchanged: the normalised digest (article blocks: titles, permalinks, dates,
  text, media; not the "Mise à jour" block nor the search form) differs / is the same as
  the previous capture's; pages without one (media, feeds, articles.db) compare payload
  digests. A revisit record is unchanged by definition;
- errors: answered 5xx (not compared: a failing server says nothing about the content);
- throttled: answered 429 Too Many Requests on every attempt (crawler.backoff): not
  compared either, and the page's previous capture stays the one later runs compare with.
``new_index_pages`` lists the new pages that are an autoblog's index pages (``./?N``,
``/<sha1>/N``): after growth, the tail pages an incremental run fetched because no run
had captured them yet.

Articles (permalinks listed on an index page or fetched in the run):
- new: first seen in this run; changed / unchanged: the article block's digest differs
  / is the same as the last one recorded before this run;
- gone: its permalink answered 404/410 this run; or, in a full pass that finished, it
  was seen before in an autoblog this run walked and was not listed this time.

Bytes written are the sizes of the run's response/revisit records; requests made are
the fetches captured (every redirect hop and retry is a fetch).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

import orjson

from crawler.escaping import terminal
from crawler.exitcodes import UsageError
from crawler.history.model import CATEGORIES, FINISHED, THROTTLED, Capture
from crawler.history.store import History
from crawler.layout import OutputLayout
from crawler.urls import autoblog_base, is_index_page

# Pages only: fetches that said nothing of the page (5xx; 429, the farm throttled the crawl).
PAGE_FAILURES = ("errors", "throttled")
GONE_STATUSES = (404, 410)


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def _page_state(now: Capture, before: Capture | None) -> str:
    if now.status == THROTTLED:
        return "throttled"
    if before is None:
        return "new"
    if now.status in GONE_STATUSES and _ok(before.status):
        return "gone"
    if now.status is not None and now.status >= 500:
        return "errors"
    if now.record_type == "revisit":
        return "unchanged"
    if now.normalized_digest is not None and before.normalized_digest is not None:
        same = now.normalized_digest == before.normalized_digest
    else:
        same = now.payload_digest == before.payload_digest and now.status == before.status
    return "unchanged" if same else "changed"


def _empty_autoblog() -> dict[str, Any]:
    return {
        "requests": 0,
        "bytes_written": 0,
        "responses": 0,
        "revisits": 0,
        "articles": {c: [] for c in CATEGORIES},
        "pages": {c: [] for c in (*CATEGORIES, *PAGE_FAILURES)},
        "new_index_pages": [],
    }


def build_report(history: History, run_id: int | None = None) -> dict[str, Any]:
    """The report of ``run_id`` (default: the latest run) as a JSON-ready dict."""
    run = history.get_run(run_id) if run_id is not None else history.latest_run()
    if run is None:
        raise LookupError("no such run" if run_id is not None else "no run in the history")
    full_pass = run.mode == "full" and run.status == FINISHED
    autoblogs: dict[str, dict[str, Any]] = defaultdict(_empty_autoblog)

    # Pages: the last capture of each URL in this run against the latest earlier one. The
    # captures are read as they go (a cursor), never all held: a run may hold millions.
    for url, autoblog, record_type, written in history.run_totals(run.id):
        entry = autoblogs[autoblog or autoblog_base(url)]
        entry["requests"] += 1
        entry["bytes_written"] += written
        entry["responses" if record_type == "response" else "revisits"] += 1
    walked = set(autoblogs)
    gone_now: list[Capture] = []  # last captured as 404/410 in this run
    for capture in history.last_captures_in_run(run.id):
        url = capture.url
        before = history.latest_capture(url, before_run=run.id)
        state = _page_state(capture, before)
        entry = autoblogs[capture.autoblog or autoblog_base(url)]
        entry["pages"][state].append(url)
        if state == "new" and is_index_page(url):
            entry["new_index_pages"].append(url)
        if capture.status in GONE_STATUSES:
            gone_now.append(capture)
    if full_pass and walked:
        for url, autoblog, status in history.gone_from_run(run.id):
            autoblog = autoblog or autoblog_base(url)
            if autoblog in walked and _ok(status):
                autoblogs[autoblog]["pages"]["gone"].append(url)

    # Articles: sightings of this run against the last digest recorded before it.
    sightings = history.sightings_in_run(run.id)
    for permalink, autoblog, first_seen, digest, previous, status_now in sightings:
        if status_now in GONE_STATUSES:
            state = "gone"
        elif first_seen >= run.id:
            state = "new"
        elif digest is not None and previous is not None and digest != previous:
            state = "changed"
        else:
            state = "unchanged"
        autoblogs[autoblog]["articles"][state].append(permalink)
    gone_404 = {
        c.url
        for c in gone_now
        if not history.sighted_in(c.url, run.id) and history.has_article(c.url)
    }
    for url in sorted(gone_404):
        article = history.article(url)
        assert article is not None  # gone_404 holds only known articles
        autoblog = article["autoblog"]
        autoblogs[autoblog]["articles"]["gone"].append(url)
    if full_pass and walked:
        for permalink, autoblog in history.articles_not_seen_in(run.id):
            if autoblog in walked and permalink not in gone_404:
                autoblogs[autoblog]["articles"]["gone"].append(permalink)

    totals = {
        "requests": sum(a["requests"] for a in autoblogs.values()),
        "bytes_written": sum(a["bytes_written"] for a in autoblogs.values()),
        "articles": {c: sum(len(a["articles"][c]) for a in autoblogs.values()) for c in CATEGORIES},
        "new_index_pages": sum(len(a["new_index_pages"]) for a in autoblogs.values()),
        "pages": {
            c: sum(len(a["pages"][c]) for a in autoblogs.values())
            for c in (*CATEGORIES, *PAGE_FAILURES)
        },
    }
    for entry in autoblogs.values():
        for group in ("articles", "pages"):
            for urls in entry[group].values():
                urls.sort()
    previous = history.previous_run_id(run.id)
    return {
        "run": {
            "id": run.id,
            "started": run.started,
            "finished": run.finished,
            "status": run.status,
            "mode": run.mode,
            "seeds": run.seeds,
            "command": run.command,
            "resumed": run.resumed,
        },
        "previous_run": previous,
        "gone_rule": "404/410, and not listed (full pass)" if full_pass else "404/410 only",
        "totals": totals,
        "crawl_stats": run.stats,
        "autoblogs": dict(sorted(autoblogs.items())),
    }


def format_report(report: dict[str, Any], limit: int = 20) -> str:
    """A readable summary for a terminal: counts per autoblog, then the URLs that matter
    (new, changed, gone)."""
    run = report["run"]
    totals = report["totals"]
    lines = [
        f"Run {run['id']} ({run['mode']}, {run['status']}) {run['started']} -> "
        f"{run['finished'] or '...'}: {totals['requests']} requests, "
        f"{totals['bytes_written'] / 1e6:.2f} MB written",
        "  articles: " + _counts(totals["articles"]),
        "  pages:    " + _counts(totals["pages"]),
    ]
    missing = (report.get("crawl_stats") or {}).get("missing")
    if missing:  # crawler.history.audit
        lines.append(f"  missing:  {missing} items the farm declares (named in summary.json)")
    for base, entry in report["autoblogs"].items():
        lines.append("")
        lines.append(
            f"{base}  ({entry['requests']} requests, {entry['bytes_written'] / 1e6:.2f} MB, "
            f"{entry['revisits']} revisits)"
        )
        lines.append("  articles: " + _counts(entry["articles"]))
        lines.append("  pages:    " + _counts(entry["pages"]))
        lines.extend("    " + line for line in entry_changes(entry, limit))
    # URLs come from the archive (a rebuilt history holds what the WARCs say): escaped.
    return "".join(terminal(line) + "\n" for line in lines)


def entry_changes(entry: dict[str, Any], limit: int) -> list[str]:
    """One autoblog's new, changed and gone URLs, at most ``limit`` of each kind (0: none,
    the counts say it all)."""
    lines: list[str] = []
    if limit <= 0:
        return lines
    kinds = [("article", state, entry["articles"][state]) for state in ("new", "changed", "gone")]
    kinds.append(("page", "new", entry.get("new_index_pages", [])))
    for state in ("changed", "gone"):
        urls = [u for u in entry["pages"][state] if u not in entry["articles"][state]]
        kinds.append(("page", state, urls))
    for kind, state, urls in kinds:
        lines.extend(f"{state} {kind}: {url}" for url in urls[:limit])
        if len(urls) > limit:
            lines.append(f"... and {len(urls) - limit} more {state} {kind}s")
    return lines


def list_changes(report: dict[str, Any], limit: int = 20) -> list[str]:
    """Every autoblog's changes (``entry_changes``), for the end-of-run summary."""
    entries = report.get("autoblogs", {}).values()
    return [line for entry in entries for line in entry_changes(entry, limit)]


def _counts(groups: dict[str, Any]) -> str:
    return ", ".join(f"{len(v) if isinstance(v, list) else v} {k}" for k, v in groups.items())


def write_report(
    layout: OutputLayout, report: dict[str, Any], history: History | None = None
) -> Path:
    """``report.json`` (latest run) and ``reports/run-<id>.json`` (kept for every run);
    with the ``history``, ``report.html`` too (crawler/history/html_report.py)."""
    data = orjson.dumps(report, option=orjson.OPT_INDENT_2)
    keep = layout.run_report(report["run"]["id"])
    keep.parent.mkdir(parents=True, exist_ok=True)
    keep.write_bytes(data)
    latest = layout.report
    tmp = latest.with_suffix(".json.tmp")
    tmp.write_bytes(data)
    tmp.replace(latest)
    if history is not None:
        from crawler.history.html_report import write_html_report

        write_html_report(layout, history, report)
    return latest


def run_report(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``autoblog-archive report DIR``: the change report of the latest (or given) run."""
    out = out or sys.stdout
    root = Path(args.directory)
    path = OutputLayout(root).history
    if not root.is_dir():
        raise UsageError(f"{root}: no such folder")
    if not path.exists():
        if any(layout.warcs() for layout in OutputLayout.find(root)):
            raise UsageError(
                f"{root}: no crawl history",
                f"rebuild it from the WARCs: autoblog-archive reindex {root}",
            )
        raise UsageError(f"{root}: no crawl here yet (no history.sqlite, no WARC files)")
    with History.open(path) as history:
        try:
            report = build_report(history, args.run)
        except LookupError as exc:
            raise UsageError(f"{root}: {exc}") from None
        if getattr(args, "html", False):
            from crawler.history.html_report import write_html_report

            out.write(terminal(f"{write_html_report(OutputLayout(root), history, report)}") + "\n")
            return 0
    if args.json:
        out.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.write(format_report(report, limit=args.limit))
    return 0
