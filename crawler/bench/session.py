"""One bench session: the farm, every section alternating with its baselines, the result."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

import crawler
from crawler.bench import (
    DEFAULT_ARTICLES,
    DEFAULT_AUTOBLOGS,
    DEFAULT_FARM_SECONDS,
    DEFAULT_NEW_FRACTION,
    DEFAULT_REPEAT,
    DEFAULT_SCALE_ARTICLES,
    DEFAULT_SCALE_PAGES,
    DEFAULT_SEED,
    DEFAULT_STARTUP_CAPTURES,
    NAIVE_PAGES,
    OURS_MODES,
    QUICK,
    UNBOUNDED,
)
from crawler.bench.hostile import QUICK_MAX_PAGES, QUICK_SCALE, hostile_markdown, run_hostile
from crawler.bench.measure import Run, machine, summarize_runs
from crawler.bench.results import last_result, markdown, ratios, targets, versus
from crawler.bench.startup import startup_section
from crawler.bench.static_farm import freeze, nginx_path, nginx_version, start_static
from crawler.bench.tools import (
    count_requests,
    farm_paths,
    farm_rate,
    measure_extract,
    naive_rate,
    run_ours,
    run_plain,
    run_wget,
)

# The results committed with the project (benchmarks/results beside the package).
COMMITTED = Path(__file__).resolve().parents[2] / "benchmarks" / "results"

# ---------------------------------------------------------------- the session


@dataclass
class BenchConfig:
    """What one ``bench`` measures: the farm's size, the repeats, the sections skipped."""

    autoblogs: int = DEFAULT_AUTOBLOGS
    articles: int = DEFAULT_ARTICLES
    repeat: int = DEFAULT_REPEAT
    seed: int = DEFAULT_SEED
    scale_articles: tuple[int, ...] = DEFAULT_SCALE_ARTICLES
    scale_pages: tuple[int, ...] = DEFAULT_SCALE_PAGES
    farm_seconds: float = DEFAULT_FARM_SECONDS
    new_fraction: float = DEFAULT_NEW_FRACTION
    skip: tuple[str, ...] = ()
    quick: bool = False
    startup_captures: int = DEFAULT_STARTUP_CAPTURES
    static: bool = True  # the crawlers fetch from nginx serving the frozen farm, if installed


class Bench:
    """One benchmark session: a scratch folder, the results, progress on stderr."""

    def __init__(self, config: BenchConfig, scratch: Path, say: Callable[[str], None]) -> None:
        self.config = config
        self.scratch = scratch
        self.say = say
        self.result: dict[str, Any] = {}
        self._n = 0

    def _dir(self, label: str) -> Path:
        self._n += 1
        return self.scratch / f"{self._n:03d}-{label}"

    def wants(self, section: str) -> bool:
        """Whether the section ``section`` runs (not in ``--skip``)."""
        return section not in self.config.skip

    def run(self) -> dict[str, Any]:
        """Serve the sample farm, measure every section asked for, return the result."""
        from crawler.samplefarm import start_farm

        cfg = self.config
        self.result = {
            "version": crawler.__version__,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": asdict(cfg),
            "machine": machine(),
        }
        farm_options = {"autoblogs": cfg.autoblogs, "articles": cfg.articles, "seed": cfg.seed}
        self.result["farm"] = {"autoblogs": cfg.autoblogs, "articles": cfg.articles}
        farm = start_farm(**farm_options)
        try:
            if self.wants("farm"):
                self.say("farm: the Python farm's serving rate with a fast client")
                self.result["farm"]["python_requests_per_s"] = farm_rate(
                    farm.port, farm_paths(farm.truth(), 5000), cfg.farm_seconds
                )
            urls = self.discover(farm)
            if nginx_path() is None or not self.config.static:
                why = "--python-farm" if nginx_path() else "nginx is not installed"
                self.say(f"farm: the Python farm serves the crawlers ({why})")
                self.result["farm"]["server"] = f"python ({why})"
                self._measure_crawlers(farm.port, urls)
            else:
                frozen = freeze(farm.port, urls, self.scratch / "static" / "root")
                self.result["farm"]["frozen"] = {"stored": frozen.stored, "skipped": frozen.skipped}
                farm.stop()  # nginx takes its port: the pages' links name it
                with start_static(self.scratch / "static", farm.port, frozen.types):
                    self.result["farm"]["server"] = nginx_version()
                    self._measure_crawlers(farm.port, urls)
                farm = start_farm(port=farm.port, **farm_options)  # the same seed, same farm
            if self.wants("extract"):
                self.extract()
            if self.wants("recrawl"):
                self.recrawl(farm)
        finally:
            farm.stop()
        if self.wants("startup"):
            self.say(f"startup: opening a history of {cfg.startup_captures:,} captures")
            self.result["startup"] = startup_section(
                self._kept, cfg.startup_captures, self._dir("startup"), self.scratch
            )
        if self.wants("scale"):
            self.scale()
        self.result["machine"]["loadavg_after"] = list(os.getloadavg())
        self.result["ratios"] = ratios(self.result)
        self.result["targets"] = targets(self.result)
        return self.result

    def discover(self, farm: Any) -> list[str]:
        """One untimed full crawl of the Python farm: the URL list the baselines fetch, the
        targets nginx serves, and the folder that extract and the re-crawl start from."""
        out = self._dir("kept")
        self.say("discovery: our full pipeline over the Python farm (not timed)")
        before = count_requests(farm)  # the serving-rate check's requests come first
        run_ours(farm.url, out, [], out.with_suffix(".log"))
        log = farm.requests()[before:]
        targets = [r["path"] for r in log if r["method"] == "GET"]
        (self.scratch / "urls.txt").write_text(
            "".join(farm.url.rstrip("/") + t + "\n" for t in targets)
        )
        self.result["farm"]["crawl_requests"] = len(log)
        self._kept, self._kept_requests = out, len(log)
        return targets

    def _measure_crawlers(self, port: int, targets: list[str]) -> None:
        if self.wants("farm"):
            self.say("farm: serving rate with a fast client")
            self.result["farm"]["requests_per_s"] = farm_rate(
                port, targets, self.config.farm_seconds
            )
        self.crawlers(f"http://127.0.0.1:{port}/")

    def crawlers(self, url: str) -> None:
        """All crawlers over the same farm, alternating, ``repeat`` times each."""
        cfg = self.config
        runs: dict[str, list[Run]] = {}
        urls_file = self.scratch / "urls.txt"
        for rep in range(cfg.repeat):
            for mode, extra in ({"full": [], **OURS_MODES} if self.wants("ours") else {}).items():
                out = self._dir(mode.replace("+", "-"))
                self.say(f"round {rep + 1}/{cfg.repeat}: ours, {mode}")
                name = "ours_full" if mode == "full" else f"ours_{mode}"
                runs.setdefault(name, []).append(run_ours(url, out, extra, out.with_suffix(".log")))
                shutil.rmtree(out, ignore_errors=True)
            if self.wants("plain"):
                out = self._dir("plain")
                self.say(f"round {rep + 1}/{cfg.repeat}: plain Scrapy")
                out.mkdir()
                runs.setdefault("plain_scrapy", []).append(
                    run_plain(urls_file, out / "stats.json", out.with_suffix(".log"))
                )
            if self.wants("wget"):
                out = self._dir("wget")
                self.say(f"round {rep + 1}/{cfg.repeat}: wget")
                runs.setdefault("wget", []).append(
                    run_wget(urls_file, out, out.with_suffix(".log"))
                )
                shutil.rmtree(out, ignore_errors=True)
        self.result["crawlers"] = {name: summarize_runs(r) for name, r in runs.items()}

    def extract(self) -> None:
        """Offline extraction over the kept full crawl, 1 and 2 workers, alternating."""
        assert self._kept is not None
        runs: dict[int, list[Run]] = {1: [], 2: []}
        for rep in range(self.config.repeat):
            for workers in (1, 2):
                out = self._dir(f"extract-{workers}")
                self.say(f"round {rep + 1}/{self.config.repeat}: extract, {workers} worker(s)")
                runs[workers].append(
                    measure_extract(self._kept, out, workers, out.with_suffix(".log"))
                )
                shutil.rmtree(out, ignore_errors=True)
        section: dict[str, Any] = {}
        for workers, got in runs.items():
            inner = statistics.median(r.extra["extract_seconds"] for r in got)
            summary = summarize_runs(got)
            summary["articles_per_s"] = round(got[0].pages / inner, 1) if inner else None
            summary["extract_seconds_median"] = inner
            summary["corpus_identical"] = all(
                r.extra["corpus_sha256"] == got[0].extra["corpus_sha256"] for r in got
            )
            section[f"workers_{workers}"] = summary
        section["same_corpus_1_and_2_workers"] = (
            runs[1][0].extra["corpus_sha256"] == runs[2][0].extra["corpus_sha256"]
        )
        section["same_records_as_crawl"] = runs[1][0].pages == self._crawl_records()
        section["naive_whole_page_pages_per_s"] = naive_rate(self._kept, NAIVE_PAGES)
        self.result["extract"] = section

    def _crawl_records(self) -> int:
        assert self._kept is not None
        return int(orjson.loads((self._kept / "summary.json").read_bytes())["corpus_records"])

    def recrawl(self, farm: Any) -> None:
        """1% new articles over half the autoblogs, then the same crawl command again."""
        assert self._kept is not None
        cfg = self.config
        full = self.result.get("crawlers", {}).get("ours_full")
        folders = list(farm.truth()["autoblogs"])
        total_new = max(1, round(cfg.autoblogs * cfg.articles * cfg.new_fraction))
        grown = folders[: max(1, len(folders) // 2)]
        for i, folder in enumerate(grown):
            share = total_new // len(grown) + (1 if i < total_new % len(grown) else 0)
            if share:
                farm.grow(autoblog=folder, n=share)
        before = count_requests(farm)
        self.say("re-crawl after new articles")
        run = run_ours(farm.url, self._kept, [], self._dir("recrawl").with_suffix(".log"))
        requests = count_requests(farm) - before
        self.result["recrawl"] = {
            "new_articles": total_new,
            "new_fraction": round(total_new / (cfg.autoblogs * cfg.articles), 4),
            "run": asdict(run),
            "requests": requests,
            "full_requests": self._kept_requests,
            "requests_fraction": round(requests / self._kept_requests, 4),
            "time_fraction": round(run.seconds / full["median_seconds"], 4) if full else None,
        }

    def scale(self) -> None:
        """Our full crawl at two farm sizes: CPU per page, peak RSS and the process tree's
        memory over the run, once each."""
        from crawler.samplefarm import start_farm

        cfg = self.config
        per_article = self._pages_per_article()
        section = []
        for articles, target in zip(cfg.scale_articles, cfg.scale_pages, strict=True):
            autoblogs = max(1, round(target / (articles * per_article)))
            self.say(f"scale: {autoblogs} autoblogs x {articles} articles (~{target} pages)")
            with start_farm(autoblogs=autoblogs, articles=articles, seed=cfg.seed) as farm:
                out = self._dir(f"scale-{articles}")
                # The default bounds (20,000 pages a run, 5,000 an autoblog) would cut the runs.
                run = run_ours(farm.url, out, UNBOUNDED, out.with_suffix(".log"), RSS_EVERY_S)
                shutil.rmtree(out, ignore_errors=True)
            section.append(
                {
                    "autoblogs": autoblogs,
                    "articles_per_autoblog": articles,
                    "target_pages": target,
                    "pages": run.pages,
                    "seconds": run.seconds,
                    "pages_per_s": round(run.pages / run.seconds, 1),
                    "cpu_ms_per_page": round(1000 * run.cpu_seconds / run.pages, 2),
                    "peak_rss_mb": run.peak_rss_mb,
                    "rss_mb_by_tenth": by_tenth(run.extra["rss_mb_over_time"], run.seconds),
                }
            )
        self.result["scale"] = section

    def _pages_per_article(self) -> float:
        full = self.result.get("crawlers", {}).get("ours_full")
        if not full:
            return 1.2
        return full["pages"] / (self.config.autoblogs * self.config.articles)


RSS_EVERY_S = 1.0  # how often a scale run's process tree memory is sampled


def by_tenth(series: list[tuple[float, float]], seconds: float) -> list[float]:
    """The memory sampled nearest each tenth of a run (10%, 20%, ... 100%), in MB."""
    if not series:
        return []
    out = []
    for tenth in range(1, 11):
        at = seconds * tenth / 10
        out.append(min(series, key=lambda point: abs(point[0] - at))[1])
    return out


def hostile_session(scratch: Path, say: Callable[[str], None], quick: bool) -> dict[str, Any]:
    """``bench --hostile``: the shapes of issue 19 alone (crawler/bench/hostile.py)."""
    result: dict[str, Any] = {
        "version": crawler.__version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": "hostile",
        "machine": machine(),
    }
    if quick:
        result.update(run_hostile(scratch, say, QUICK_SCALE, QUICK_MAX_PAGES))
    else:
        result.update(run_hostile(scratch, say))
    result["machine"]["loadavg_after"] = list(os.getloadavg())
    return result


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """The bench's configuration from its command line (``--quick`` first, then options)."""
    from crawler.exitcodes import UsageError

    base: dict[str, Any] = dict(QUICK) if args.quick else {}
    for name in (
        "autoblogs",
        "articles",
        "scale_articles",
        "scale_pages",
        "farm_seconds",
        "startup_captures",
    ):
        if getattr(args, name) is not None:
            base[name] = getattr(args, name)
    config = BenchConfig(
        repeat=args.repeat,
        seed=args.seed,
        skip=args.skip,
        quick=args.quick,
        static=not args.python_farm,
    )
    for key, value in base.items():
        setattr(config, key, value)
    if args.scale_pages is not None and args.scale_articles is None:
        # `--scale-pages 100000` alone: a memory run on big autoblogs (4,000 articles each
        # past 10,000 pages, as the default large run), however many pages it aims at.
        config.scale_articles = tuple(400 if p <= 10_000 else 4000 for p in args.scale_pages)
    if len(config.scale_articles) != len(config.scale_pages):
        raise UsageError("--scale-articles and --scale-pages need as many values each")
    if min(config.autoblogs, config.articles, config.repeat, config.startup_captures) < 1:
        raise UsageError(
            "--autoblogs, --articles, --repeat and --startup-captures must be at least 1"
        )
    return config


def run_bench(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive bench``."""
    config = config_from_args(args)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="autoblog-bench-"))

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    # Read before this run writes its own: the last committed result, to compare with.
    last = None if args.hostile else last_result([output, COMMITTED])
    try:
        if args.hostile:
            result = hostile_session(scratch, say, args.quick)
        else:
            result = Bench(config, scratch, say).run()
            if last is not None:
                result["versus_last"] = versus(result, last)
    finally:
        if args.keep:
            say(f"scratch folder kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    stem = (
        result["version"] + ("-hostile" if args.hostile else "") + ("-quick" if args.quick else "")
    )
    (output / f"{stem}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    table = hostile_markdown(result) if args.hostile else markdown(result)
    (output / f"{stem}.md").write_text(table)
    print(table)
    say(f"written {output / stem}.json and .md")
    return 0
