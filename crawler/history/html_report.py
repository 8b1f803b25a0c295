"""``report.html``: the run's report as a page a person opens, with no network at all.

Written beside ``report.json`` after every run (and by ``report --html``): the run's
counts, what the archive holds per autoblog (articles, index pages, media, failures, the
items the audit found missing), and across the latest runs a plot per autoblog of its
articles and changes, and of each run's failures and bytes. Self-contained: inline SVG
drawn here, inline CSS, no script, and a Content-Security-Policy that forbids fetching
anything. Every value from the archive (URLs, seeds, the command) is HTML-escaped
(crawler.escaping.html): a page title or a URL cannot add markup.

Definitions: "articles" of a run is the number of permalinks first seen in that run or
before; "changes" are the articles new in the run plus those whose digest differs from
their previous sighting (the change report's definitions: crawler/history/report.py);
"failures" are the fetches that got no answer (the run's ``errors``) plus the items the
audit found missing.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.escaping import html
from crawler.history.model import CATEGORIES
from crawler.history.store import History
from crawler.layout import OutputLayout
from crawler.urls import autoblog_base, is_index_page

# The latest runs plotted: a daily crawl for years would draw thousands of points.
PLOTTED_RUNS = 200
# Autoblogs drawn one plot each; a larger farm's others are in the table only.
PLOTTED_AUTOBLOGS = 300

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}
td,th{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
.url{font-family:monospace;font-size:.9em;word-break:break-all}
.plots{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0}figcaption{font-size:.85em;max-width:30em;word-break:break-all}
.bad{color:#b00020}.muted{color:#777}
svg text{font:11px system-ui,sans-serif;fill:#444}
"""


@dataclass
class RunPoint:
    """One run on the plots."""

    id: int
    started: str
    status: str
    bytes: int = 0
    failures: int = 0
    articles: dict[str, int] = field(default_factory=dict)  # autoblog -> known articles
    changes: dict[str, int] = field(default_factory=dict)  # autoblog -> new + changed


@dataclass
class Coverage:
    """What the archive holds of one autoblog, all runs together."""

    articles: int = 0
    index_pages: int = 0
    media: int = 0
    failures: int = 0  # 4xx/5xx answers in the latest run
    missing: int = 0  # the latest audit's missing items


def is_media(url: str) -> bool:
    """An autoblog's stored file: ``<autoblog>/media/<name>`` (every engine)."""
    return "/media/" in urlsplit(url).path


def history_series(history: History, limit: int = PLOTTED_RUNS) -> list[RunPoint]:
    """The latest ``limit`` runs, with their bytes, failures, articles and changes."""
    conn = history.conn
    runs = history.runs()[-limit:]
    points = {
        run.id: RunPoint(
            run.id,
            run.started,
            run.status,
            failures=_int(run.stats.get("errors")) + _int(run.stats.get("missing")),
        )
        for run in runs
    }
    if not points:
        return []
    first = min(points)
    for run_id, written in conn.execute(
        "SELECT run_id, COALESCE(SUM(bytes_written), 0) FROM captures WHERE run_id >= ? "
        "GROUP BY run_id",
        (first,),
    ):
        if run_id in points:
            points[run_id].bytes = int(written)
    # Articles known at each run: those first seen in it or before (a running sum).
    new: dict[str, dict[int, int]] = defaultdict(dict)
    for autoblog, run_id, count in conn.execute(
        "SELECT autoblog, first_seen_run, COUNT(*) FROM articles GROUP BY 1, 2"
    ):
        new[autoblog][run_id] = count
    changed: dict[str, dict[int, int]] = defaultdict(dict)
    for autoblog, run_id, count in conn.execute(
        "SELECT a.autoblog, s.run_id, COUNT(*) FROM ("
        "  SELECT permalink, run_id, normalized_digest AS now, LAG(normalized_digest) "
        "  OVER (PARTITION BY permalink ORDER BY run_id) AS before FROM article_sightings"
        ") AS s JOIN articles AS a ON a.permalink = s.permalink "
        "WHERE s.run_id >= ? AND s.now IS NOT NULL AND s.before IS NOT NULL "
        "AND s.now != s.before GROUP BY 1, 2",
        (first,),
    ):
        changed[autoblog][run_id] = count
    for autoblog, by_run in new.items():
        total = sum(c for r, c in by_run.items() if r < first)
        for run_id in sorted(points):
            total += by_run.get(run_id, 0)
            points[run_id].articles[autoblog] = total
            points[run_id].changes[autoblog] = by_run.get(run_id, 0) + changed[autoblog].get(
                run_id, 0
            )
    return [points[r] for r in sorted(points)]


def coverage(history: History, run_id: int) -> dict[str, Coverage]:
    """Per autoblog: articles known, index pages and media held (2xx), failures of the run
    and the items its audit found missing. URLs are read as a cursor, never all held."""
    conn = history.conn
    out: dict[str, Coverage] = defaultdict(Coverage)
    for autoblog, count in conn.execute("SELECT autoblog, COUNT(*) FROM articles GROUP BY 1"):
        out[autoblog].articles = count
    known = set(out)
    for url, autoblog in conn.execute(
        "SELECT DISTINCT url, autoblog FROM captures WHERE status BETWEEN 200 AND 299"
    ):
        base = owner(url, autoblog, known)
        if is_media(url):
            out[base].media += 1
        elif is_index_page(url):
            out[base].index_pages += 1
    for url, autoblog in conn.execute(
        "SELECT DISTINCT url, autoblog FROM captures WHERE run_id = ? AND status >= 400",
        (run_id,),
    ):
        out[owner(url, autoblog, known)].failures += 1
    try:
        for autoblog, count in conn.execute(
            "SELECT autoblog, COUNT(*) FROM audit_missing WHERE run_id = ? GROUP BY 1", (run_id,)
        ):
            out[autoblog].missing = count
    except sqlite3.OperationalError:
        pass  # a history from before the audit has no such table
    return dict(sorted(out.items()))


def owner(url: str, autoblog: str | None, known: set[str]) -> str:
    """The autoblog a capture belongs to: the one it was recorded under, else the nearest
    known autoblog above its URL (``B/media/x.png`` is ``B``'s), else the farm's root."""
    if autoblog in known:
        return autoblog
    base = autoblog_base(url)
    while base not in known:
        parent = autoblog_base(base.rstrip("/"))
        if parent == base:
            return base if urlsplit(base).path in ("", "/") else autoblog_base(url)
        base = parent
    return base


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- SVG, drawn by hand -------------------------------------------------------------------


def chart(
    runs: list[int],
    bars: list[float],
    line: list[float] | None = None,
    title: str = "",
    bar_label: str = "",
    line_label: str = "",
    width: int = 420,
    height: int = 150,
) -> str:
    """Bars (and a line on its own scale) over runs, as inline SVG with a <title> per
    point; every label escaped."""
    left, right, top, bottom = 44, 44 if line is not None else 10, 10, 22
    inner_w, inner_h = width - left - right, height - top - bottom
    n = max(len(runs), 1)
    step = inner_w / n
    bar_top = max(bars, default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{html(title)}">',
        f"<title>{html(title)}</title>",
        f'<line x1="{left}" y1="{top + inner_h}" x2="{left + inner_w}" y2="{top + inner_h}" '
        'stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{_short(bar_top)}</text>',
        f'<text x="{left - 4}" y="{top + inner_h}" text-anchor="end">0</text>',
    ]
    for i, (run, value) in enumerate(zip(runs, bars, strict=True)):
        h = inner_h * value / bar_top
        x = left + i * step + step * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{top + inner_h - h:.1f}" width="{max(step * 0.7, 0.5):.1f}" '
            f'height="{h:.1f}" fill="#7aa6d8"><title>run {run}: {_short(value)} '
            f"{html(bar_label)}</title></rect>"
        )
    if line is not None and line:
        line_top = max(line) or 1
        points = " ".join(
            f"{left + (i + 0.5) * step:.1f},{top + inner_h - inner_h * v / line_top:.1f}"
            for i, v in enumerate(line)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="#c0392b" stroke-width="2"/>')
        for i, (run, v) in enumerate(zip(runs, line, strict=True)):
            cx, cy = left + (i + 0.5) * step, top + inner_h - inner_h * v / line_top
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="#c0392b">'
                f"<title>run {run}: {_short(v)} {html(line_label)}</title></circle>"
            )
        parts.append(
            f'<text x="{width - right + 4}" y="{top + 8}" fill="#c0392b">{_short(line_top)}</text>'
        )
    if runs:
        parts.append(f'<text x="{left}" y="{height - 6}">run {runs[0]}</text>')
        parts.append(
            f'<text x="{left + inner_w}" y="{height - 6}" text-anchor="end">run {runs[-1]}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _short(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:g}"


# -- the page -----------------------------------------------------------------------------


def render(report: dict[str, Any], series: list[RunPoint], cover: dict[str, Coverage]) -> str:
    """The whole page, from the run's report, the runs' series and the coverage."""
    run = report["run"]
    totals = report["totals"]
    stats = report.get("crawl_stats") or {}
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>autoblog-archive: run {html(run['id'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Run {html(run['id'])}: {html(run['mode'])}, {html(run['status'])}</h1>",
        f"<p>{html(run['started'])} &rarr; {html(run['finished'] or '…')}; seeds: ",
        ", ".join(f'<span class="url">{html(s)}</span>' for s in run.get("seeds") or []),
        "</p>",
        "<h2>This run</h2><table>",
        _row("requests", totals["requests"]),
        _row("bytes written", f"{totals['bytes_written'] / 1e6:.2f} MB"),
        _row("fetch failures", _int(stats.get("errors"))),
        _row("items missing (audit)", _int(stats.get("missing"))),
        *(_row(f"articles {c}", totals["articles"][c]) for c in CATEGORIES),
        *(_row(f"pages {c}", n) for c, n in totals["pages"].items()),
        "</table>",
        "<h2>Coverage per autoblog (every run)</h2>",
        "<table><tr><th>autoblog</th><th>articles</th><th>index pages</th><th>media</th>"
        "<th>failures (this run)</th><th>missing (audit)</th><th>new articles (this run)</th>"
        "</tr>",
    ]
    for base, entry in cover.items():
        this_run = report["autoblogs"].get(base, {}).get("articles", {})
        out.append(
            f'<tr><td class="url">{html(base)}</td><td>{entry.articles}</td>'
            f"<td>{entry.index_pages}</td><td>{entry.media}</td>"
            f"{_count(entry.failures)}{_count(entry.missing)}"
            f"<td>{len(this_run.get('new', []))}</td></tr>"
        )
    out.append("</table>")
    runs = [p.id for p in series]
    out.append(f"<h2>Across runs ({len(series)} latest)</h2><div class=plots>")
    out.append(
        "<figure>"
        + chart(runs, [p.failures for p in series], title="failures per run", bar_label="failures")
        + "<figcaption>failures per run (no answer, or missing after the audit)</figcaption>"
        "</figure>"
    )
    out.append(
        "<figure>"
        + chart(runs, [p.bytes for p in series], title="bytes per run", bar_label="bytes")
        + "<figcaption>bytes written per run</figcaption></figure>"
    )
    out.append("</div><h2>Articles and changes per autoblog</h2>")
    out.append(
        '<p class="muted">line: articles known after the run; bars: new and changed '
        "articles in the run.</p><div class=plots>"
    )
    autoblogs = sorted({a for p in series for a in p.articles})
    for base in autoblogs[:PLOTTED_AUTOBLOGS]:
        svg = chart(
            runs,
            [p.changes.get(base, 0) for p in series],
            [p.articles.get(base, 0) for p in series],
            title=f"{base}: articles and changes",
            bar_label="new or changed articles",
            line_label="articles",
        )
        out.append(f'<figure>{svg}<figcaption class="url">{html(base)}</figcaption></figure>')
    if len(autoblogs) > PLOTTED_AUTOBLOGS:
        out.append(f"<p>and {len(autoblogs) - PLOTTED_AUTOBLOGS} more autoblogs (in the table)</p>")
    out.append("</div></body></html>\n")
    return "\n".join(out)


def _count(value: int) -> str:
    """A table cell, red when it counts something wrong."""
    return f'<td class="bad">{value}</td>' if value else f"<td>{value}</td>"


def _row(name: str, value: object) -> str:
    return f"<tr><td>{html(name)}</td><td>{html(value)}</td></tr>"


def write_html_report(layout: OutputLayout, history: History, report: dict[str, Any]) -> Path:
    """``report.html`` beside ``report.json``, written whole (a temporary file renamed)."""
    page = render(report, history_series(history), coverage(history, report["run"]["id"]))
    path = layout.report_html
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
