"""From measurements to ratios, targets and the markdown table."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

MODES = ("ours_warc", "ours_warc+corpus", "ours_full", "ours_processes_2")
RELEASED = re.compile(r"\d+(?:\.\d+)*")  # a released version's result: 0.2.0.json

# ---------------------------------------------------------------- ratios and targets


def _rate(result: dict[str, Any], name: str) -> float | None:
    return result.get("crawlers", {}).get(name, {}).get("pages_per_s")


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    """Each of our modes' pages/s against plain Scrapy's and wget's, same run."""
    out: dict[str, Any] = {}
    plain, wget = _rate(result, "plain_scrapy"), _rate(result, "wget")
    for mode in MODES:
        ours = _rate(result, mode)
        if ours is None:
            continue
        out[mode] = {
            "vs_plain_scrapy": round(ours / plain, 3) if plain else None,
            "vs_wget": round(ours / wget, 3) if wget else None,
        }
    crawlers = result.get("crawlers", {})
    if "ours_full" in crawlers and "ours_processes_2" in crawlers:
        # Same work (the processes' shared farm pages aside): the ratio of wall times.
        out["processes_2_vs_1"] = round(
            crawlers["ours_full"]["median_seconds"]
            / crawlers["ours_processes_2"]["median_seconds"],
            3,
        )
    fastest = max((c["pages_per_s"] for c in result.get("crawlers", {}).values()), default=0)
    served = result.get("farm", {}).get("requests_per_s")
    if served and fastest:
        out["farm_vs_fastest_crawler"] = round(served / fastest, 2)
    extract = result.get("extract")
    if extract:
        one = extract["workers_1"]["articles_per_s"]
        two = extract["workers_2"]["articles_per_s"]
        out["extract_2_vs_1_workers"] = round(two / one, 3) if one else None
    scale = result.get("scale")
    if scale and len(scale) >= 2:
        out["cpu_per_page_large_vs_small"] = round(
            scale[-1]["cpu_ms_per_page"] / scale[0]["cpu_ms_per_page"], 3
        )
        out["rss_large_vs_small"] = round(scale[-1]["peak_rss_mb"] / scale[0]["peak_rss_mb"], 3)
    return out


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it holds."""
    r = result.get("ratios", {})
    rows: list[tuple[str, Any, Callable[[Any], bool]]] = [
        ("farm serves >= 5x the fastest crawler", r.get("farm_vs_fastest_crawler"),
         lambda v: v >= 5),
        ("CPU/page at the large scale run <= 1.2x the small one",
         r.get("cpu_per_page_large_vs_small"), lambda v: v <= 1.2),
        ("WARC only >= 0.90x plain Scrapy", r.get("ours_warc", {}).get("vs_plain_scrapy"),
         lambda v: v >= 0.9),
        ("WARC + corpus >= 0.80x plain Scrapy",
         r.get("ours_warc+corpus", {}).get("vs_plain_scrapy"), lambda v: v >= 0.8),
        ("--processes 2 >= 1.6x single process", r.get("processes_2_vs_1"), lambda v: v >= 1.6),
        ("offline extraction >= 1,500 articles/s on 2 workers",
         result.get("extract", {}).get("workers_2", {}).get("articles_per_s"),
         lambda v: v >= 1500),
        ("offline corpus identical with 1 and 2 workers",
         result.get("extract", {}).get("same_corpus_1_and_2_workers"), lambda v: v is True),
        ("peak RSS at the large scale run < 300 MB",
         (result.get("scale") or [{}])[-1].get("peak_rss_mb"), lambda v: v < 300),
        ("peak RSS large <= 1.2x small", r.get("rss_large_vs_small"), lambda v: v <= 1.2),
        ("re-crawl after 1% new <= 3% of the full crawl's requests",
         result.get("recrawl", {}).get("requests_fraction"), lambda v: v <= 0.03),
        (f"opening a history of {result.get('startup', {}).get('captures', 0):,} captures "
         "<= 5 s", result.get("startup", {}).get("open_seconds"), lambda v: v <= 5),
    ]  # fmt: skip
    return [
        {"target": name, "value": value, "holds": None if value is None else bool(check(value))}
        for name, value, check in rows
    ]


# ---------------------------------------------------------------- against the last result


def last_result(folders: Sequence[Path]) -> dict[str, Any] | None:
    """The committed result of the newest released version in the first of ``folders``
    holding one (``<version>.json``, quick and hostile runs left out), read before this
    run writes its own."""
    for folder in folders:
        found = [
            (tuple(int(n) for n in path.stem.split(".")), path)
            for path in folder.glob("*.json")
            if RELEASED.fullmatch(path.stem)
        ]
        if found:
            try:
                return orjson.loads(max(found)[1].read_bytes())
            except (OSError, orjson.JSONDecodeError):
                return None
    return None


def versus(result: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    """Each mode's ratio to plain Scrapy and CPU per page, now and in ``last``."""
    rows = {}
    for mode in MODES:
        then = last.get("ratios", {}).get(mode, {}).get("vs_plain_scrapy")
        now = result.get("ratios", {}).get(mode, {}).get("vs_plain_scrapy")
        if then is None and now is None:
            continue
        cpu = [r.get("crawlers", {}).get(mode, {}).get("cpu_ms_per_page") for r in (last, result)]
        rows[mode] = {"ratio_then": then, "ratio_now": now, "cpu_then": cpu[0], "cpu_now": cpu[1]}
    farm = last.get("config", {})
    return {
        "version": last.get("version"),
        "farm": f"{farm.get('autoblogs', '?')} x {farm.get('articles', '?')}",
        "modes": rows,
    }


# ---------------------------------------------------------------- the table


def markdown(result: dict[str, Any]) -> str:
    """The result as the tables a reader compares: medians, spread, ratios, machine."""
    cfg, m = result["config"], result["machine"]
    lines = [
        f"# autoblog-archive {result['version']} bench ({result['date']})",
        "",
        f"Farm: {cfg['autoblogs']} autoblogs x {cfg['articles']} articles (with media), "
        f"seed {cfg['seed']}, loopback; {cfg['repeat']} alternating runs each, medians.",
        f"Machine: {m['cpu_model'] or m['platform']}, {m['cpus']} CPUs, Python {m['python']}, "
        f"load average {_load(m['loadavg_before'])} before, "
        f"{_load(m.get('loadavg_after', []))} after.",
    ]
    farm = result.get("farm", {})
    if farm.get("requests_per_s"):
        python = farm.get("python_requests_per_s")
        lines.append(
            f"Farm served by {farm.get('server', 'python')}: {farm['requests_per_s']:.0f} "
            f"requests/s with a fast client, "
            f"{result['ratios'].get('farm_vs_fastest_crawler', '?')}x the fastest crawler"
            + (f" (the Python farm itself: {python:.0f} requests/s)." if python else ".")
        )
    crawlers = result.get("crawlers", {})
    plain, wget = _rate(result, "plain_scrapy"), _rate(result, "wget")
    lines += _table(
        ["run", "pages", "median s", "spread s", "pages/s", "CPU ms/page", "peak RSS MB",
         "vs plain Scrapy", "vs wget"],
        [
            [name, c["pages"], f"{c['median_seconds']:.1f}",
             f"{c['min_seconds']:.1f}-{c['max_seconds']:.1f}", f"{c['pages_per_s']:.0f}",
             c["cpu_ms_per_page"], f"{c['peak_rss_mb']:.0f}",
             f"{c['pages_per_s'] / plain:.2f}" if plain else "-",
             f"{c['pages_per_s'] / wget:.2f}" if wget else "-"]
            for name in ("wget", "plain_scrapy", "ours_warc", "ours_warc+corpus", "ours_full",
                         "ours_processes_2")
            if (c := crawlers.get(name))
        ],
    )  # fmt: skip
    extract = result.get("extract")
    if extract:
        lines += _table(
            ["offline extract", "records", "median s", "articles/s", "peak RSS MB"],
            [
                [f"{w} worker(s)", e["pages"], f"{e['extract_seconds_median']:.2f}",
                 f"{e['articles_per_s']:.0f}", f"{e['peak_rss_mb']:.0f}"]
                for w in (1, 2)
                if (e := extract[f"workers_{w}"])
            ],
        )  # fmt: skip
        lines.append(
            f"\nTrafilatura on whole pages, one process (yardstick): "
            f"{extract['naive_whole_page_pages_per_s']:.0f} pages/s."
        )
        lines.append(
            f"Same corpus with 1 and 2 workers: {extract['same_corpus_1_and_2_workers']}; "
            f"same record count as the crawl: {extract['same_records_as_crawl']}."
        )
    recrawl = result.get("recrawl")
    if recrawl:
        lines.append(
            f"\nRe-crawl after {recrawl['new_articles']} new articles "
            f"({recrawl['new_fraction']:.1%}): {recrawl['requests']} requests "
            f"({recrawl['requests_fraction']:.2%} of {recrawl['full_requests']}), "
            f"{recrawl['run']['seconds']:.1f} s"
            + (
                f" ({recrawl['time_fraction']:.1%} of the full crawl)."
                if recrawl["time_fraction"] is not None
                else "."
            )
        )
    startup = result.get("startup")
    if startup:
        lines.append(
            f"\nOpening a history of {startup['captures']:,} captures "
            f"({startup['history_mb']} MB; every row checked, then quick_check): "
            f"{startup['open_seconds']} s (budget {startup['budget_s']:g} s)."
        )
    scale = result.get("scale")
    if scale:
        lines += _table(
            ["scale run", "pages", "s", "pages/s", "CPU ms/page", "peak RSS MB",
             "tree MB at 10%, 20% ... 100% of the run"],
            [
                [f"{s['autoblogs']} x {s['articles_per_autoblog']}", s["pages"],
                 f"{s['seconds']:.1f}", f"{s['pages_per_s']:.0f}", s["cpu_ms_per_page"],
                 f"{s['peak_rss_mb']:.0f}",
                 " ".join(f"{mb:.0f}" for mb in s.get("rss_mb_by_tenth", [])) or "-"]
                for s in scale
            ],
        )  # fmt: skip
    last = result.get("versus_last")
    if last and last["modes"]:
        lines.append(
            f"\nAgainst {last['version']} (its committed result, farm {last['farm']}; "
            "ratios to plain Scrapy in the same run):"
        )
        lines += _table(
            ["run", f"vs plain Scrapy {last['version']}", "now",
             f"CPU ms/page {last['version']}", "now"],
            [
                [mode, _or_dash(v["ratio_then"]), _or_dash(v["ratio_now"]),
                 _or_dash(v["cpu_then"]), _or_dash(v["cpu_now"])]
                for mode, v in last["modes"].items()
            ],
        )  # fmt: skip
    lines += ["", "| target | value | holds |", "|---|---:|---|"]
    for t in result.get("targets", []):
        holds = {True: "yes", False: "NO", None: "not measured"}[t["holds"]]
        lines.append(
            f"| {t['target']} | {t['value'] if t['value'] is not None else '-'} | {holds} |"
        )
    return "\n".join(lines) + "\n"


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A markdown table after a blank line: first column left-aligned, figures right."""
    lines = ["", "| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    return lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values) or "?"
