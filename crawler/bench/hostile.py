"""``bench --hostile``: each shape of issue 19 at full size, against its budget.

Two measurements per shape:

- parse: the CPU time of what the crawl does with the page in one process (the spider's
  parse and the corpus extraction of a page; the spider's parse of a farm index), in this
  process, on the body the farm serves. Budgets: 1 s for a page of 1 MB, 5 s for a farm
  index of 100,000 entries; the escaped-script page is parsed at 240 KB and 480 KB too,
  and the ratio of their CPU times says whether the parse is linear (2) or not (4).
- crawl: ``autoblog-archive crawl --fast`` of a sample farm serving the shape (one
  autoblog of 6 articles, and the shape), its wall time and the peak memory of its whole
  process tree (crawl and extraction workers: the sum of their PSS). Budget: 500 MB. What
  the crawl cut is taken from its summary. The page of links is then reindexed, measured
  the same way.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from crawler.bench import BIN, NAME
from crawler.bench.measure import run_measured

PARSE_BUDGET_S = 1.0  # a page of 1 MB
FARM_INDEX_BUDGET_S = 5.0  # a farm index of 100,000 entries
TREE_BUDGET_MB = 500.0

KIB = 1024
MIB = 1024 * KIB
# (kind, size): the sizes of the review (issue 19)
PARSE_SHAPES = [
    ("escaped-script", 240 * KIB),
    ("escaped-script", 480 * KIB),
    ("escaped-script", 1 * MIB),
    ("links", 1 * MIB // 24),  # a page of 1 MB of image links
    ("farm-index", 100_000),
]
CRAWL_SHAPES = [
    ("escaped-script", 1 * MIB),
    ("farm-index", 100_000),
    ("sitemap", 900_000),
    ("links", 1_000_000),
    ("robots", 50 * MIB),
    ("headers", 1_000_000),
    ("export", 1_000_000),
]
FARM_LEVEL = ("farm-index", "sitemap", "export", "robots")  # crawled from the farm's root


QUICK_SCALE = 0.01  # bench --hostile --quick: every shape at a hundredth of its size
# ... and each crawl stops after this many pages: a farm-level listing at a hundredth still
# names thousands of autoblogs, each a request, which made the quick run a quarter of an
# hour. The shape's own page is still fetched, parsed and bounded whole.
QUICK_MAX_PAGES = 200


def run_hostile(
    scratch: Path, say: Callable[[str], None], scale: float = 1.0, max_pages: int = 0
) -> dict[str, Any]:
    """Every shape (its size times ``scale``): its parse, then its crawl (at most
    ``max_pages`` pages when not 0); the figures against the budgets."""
    result: dict[str, Any] = {
        "budgets": budgets(),
        "scale": scale,
        "max_pages": max_pages,
        "parse": [],
        "crawl": [],
    }
    parse_shape("links", 1)  # warm: the first extraction loads trafilatura's and langid's data
    for kind, size in PARSE_SHAPES:
        size = max(1, round(size * scale))
        say(f"hostile: parse of {kind}={size}")
        result["parse"].append(parse_shape(kind, size))
    pair = [p for p in result["parse"] if p["kind"] == "escaped-script"][:2]
    result["escaped_script_480_vs_240_cpu"] = round(
        pair[1]["cpu_s"] / max(pair[0]["cpu_s"], 1e-6), 2
    )
    for kind, size in CRAWL_SHAPES:
        size = max(1, round(size * scale))
        say(f"hostile: crawl of {kind}={size}")
        result["crawl"].extend(crawl_shape(kind, size, scratch / f"{kind}-{size}", max_pages))
    return result


def budgets() -> dict[str, float]:
    """The time and memory budgets ``bench --hostile`` holds each shape to."""
    return {
        "page_parse_s": PARSE_BUDGET_S,
        "farm_index_parse_s": FARM_INDEX_BUDGET_S,
        "tree_mb": TREE_BUDGET_MB,
    }


def _served(kind: str, size: int) -> tuple[str, bytes]:
    """(URL, body) of the shape's page as the sample farm serves it."""
    from crawler.samplefarm.farm import Farm
    from crawler.samplefarm.options import FarmConfig

    host = "farm.test"
    farm = Farm(FarmConfig(host=host, autoblogs=1, articles=6, hostile={kind: size}))
    url = f"http://{host}/" if kind in FARM_LEVEL else farm.base_url(farm.autoblogs[0], host)
    return url, farm.handle("GET", url.split(host, 1)[1], host).body


def parse_shape(kind: str, size: int) -> dict[str, Any]:
    """CPU time of the crawl's own work on the shape's page, in this process."""
    from crawler.corpus.extraction import extract_page
    from crawler.farm_documents import read_farm_page
    from crawler.parsing import parse_page
    from spiders.autoblog import FARM_EXPORTS

    url, body = _served(kind, size)
    text = body.decode("utf-8")
    started = time.process_time()
    page = parse_page(text, url, max_links=5000)
    if kind == "farm-index":
        read_farm_page(text, url, 5000, FARM_EXPORTS)
        budget = FARM_INDEX_BUDGET_S
    else:
        extract_page(body, url)
        budget = PARSE_BUDGET_S * len(body) / MIB
    cpu = time.process_time() - started
    return {
        "kind": kind,
        "size": size,
        "bytes": len(body),
        "page_kind": page.kind,
        "cpu_s": round(cpu, 3),
        "budget_s": round(budget, 3),
        "within": cpu <= budget,
    }


def crawl_shape(kind: str, size: int, out: Path, max_pages: int = 0) -> list[dict[str, Any]]:
    """The crawl of a farm serving the shape (and, for the page of links, its reindex)."""
    from crawler.samplefarm import start_farm

    rows = []
    with start_farm(autoblogs=1, articles=6, hostile=[f"{kind}={size}"]) as farm:
        truth = farm.truth()["autoblogs"]
        base = next(iter(truth.values()))["base_url"]
        url = farm.url if kind in FARM_LEVEL else base
        argv = [str(BIN / "autoblog-archive"), "crawl", url, "-o", str(out), "--name", NAME]
        if max_pages:
            argv += ["--set", f"MAX_PAGES_PER_RUN={max_pages}"]
        measured = run_measured([*argv, "--fast", "--quiet"], timeout=3600)
    rows.append(_row(kind, size, "crawl", measured, out))
    if kind == "links":
        reindex = run_measured([str(BIN / "autoblog-archive"), "reindex", str(out)], 3600)
        rows.append(_row(kind, size, "reindex", reindex, out))
    shutil.rmtree(out, ignore_errors=True)
    return rows


def _row(kind: str, size: int, command: str, measured: Any, out: Path) -> dict[str, Any]:
    summary_path = out / "summary.json"
    summary = orjson.loads(summary_path.read_bytes()) if summary_path.exists() else {}
    return {
        "kind": kind,
        "size": size,
        "command": command,
        "exit_code": measured.returncode,
        "seconds": measured.seconds,
        "peak_tree_mb": round(measured.peak_tree_mb, 1),
        "peak_process_mb": round(measured.peak_process_mb, 1),
        "within": measured.peak_tree_mb < TREE_BUDGET_MB,
        "cut": {
            **{k: v for k, v in summary.get("skipped", {}).items() if k.startswith("bound: ")},
            **summary.get("error_reasons", {}),
        }
        if command == "crawl"
        else {},
        "articles": sum(b.get("articles", 0) for b in summary.get("autoblogs", {}).values())
        if command == "crawl"
        else None,
    }


def hostile_markdown(result: dict[str, Any]) -> str:
    """The hostile section as tables, each figure beside its budget."""
    lines = [
        f"# bench --hostile, autoblog-archive {result['version']} ({result['date']})",
        "",
        f"Machine: {result['machine']['cpus']} cores, load before "
        f"{result['machine']['loadavg_before']}, after {result['machine'].get('loadavg_after')}",
        "",
        "## Parse (CPU time in one process: the spider's parse and the page's extraction)",
        "",
        "| shape | bytes | CPU s | budget s | within |",
        "|---|---|---|---|---|",
    ]
    for p in result["parse"]:
        lines.append(
            f"| {p['kind']}={p['size']} | {p['bytes']:,} | {p['cpu_s']} | {p['budget_s']} "
            f"| {'yes' if p['within'] else 'NO'} |"
        )
    lines += [
        "",
        f"escaped-script 480 KB vs 240 KB CPU time: x{result['escaped_script_480_vs_240_cpu']}"
        " (linear: 2, quadratic: 4)",
        "",
        "## Crawl (whole process tree: crawl and extraction workers)",
        "",
        "| shape | command | exit | seconds | peak tree MB | peak process MB | within 500 MB "
        "| articles | cut |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in result["crawl"]:
        cut = "; ".join(f"{k}: {v}" for k, v in c["cut"].items()) or "-"
        articles = "-" if c["articles"] is None else c["articles"]
        lines.append(
            f"| {c['kind']}={c['size']} | {c['command']} | {c['exit_code']} | {c['seconds']} "
            f"| {c['peak_tree_mb']} | {c['peak_process_mb']} | "
            f"{'yes' if c['within'] else 'NO'} | {articles} | {cut} |"
        )
    return "\n".join(lines) + "\n"
