"""``autoblog-archive bench``: our crawl against wget and a plain Scrapy, in one run.

A user judges an archiving crawler by pages per second and per CPU-second, by how fast
a corpus rebuild runs and by whether a big crawl fits in memory; figures from separate
runs on a shared 2-core machine are noise, so every baseline runs in the same session,
alternating with ours, several times, and only medians and ratios are compared.

What runs (each tool as its own process, so its CPU time and peak RSS are its own):

- the farm's serving rate with a fast client, first (it must not be the bottleneck);
- ``wget --warc-file`` over the URL list our crawl fetched (the C baseline);
- plain Scrapy: :class:`PlainSpider`, fed the exact URL list our crawl fetched, stock
  settings at our ``--fast`` concurrency, no output (Scrapy's own ceiling);
- ours: WARC only, WARC + corpus, the full default pipeline (``crawl --fast``);
- offline ``extract`` over the WARCs with 1 and 2 workers;
- a re-crawl after 1% new articles (requests and time as fractions of the full crawl);
- scale runs: CPU per page and peak RSS at two farm sizes (~10,000 and ~50,000 pages).

It writes ``<output>/<version>.json`` (the result, machine included) and ``.md`` (the
table); the JSON of each released version is committed under ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

import crawler
from crawler.settings import FAST_SETTINGS

# Bench-specific defaults (the crawl's own live in crawler.settings).
DEFAULT_AUTOBLOGS = 10
DEFAULT_ARTICLES = 1000
DEFAULT_REPEAT = 3
DEFAULT_SEED = 1
DEFAULT_SCALE_ARTICLES = (400, 4000)  # articles per autoblog of the two scale runs
DEFAULT_SCALE_PAGES = (10_000, 50_000)  # pages each scale run aims at
DEFAULT_FARM_SECONDS = 5.0
DEFAULT_NEW_FRACTION = 0.01
NAIVE_PAGES = 300  # pages for the whole-page trafilatura yardstick
# --quick: the same measurements on a farm small enough for a few minutes.
QUICK = {
    "autoblogs": 4,
    "articles": 150,
    "scale_articles": (40, 400),
    "scale_pages": (1_000, 5_000),
    "farm_seconds": 3.0,
}
SECTIONS = ("farm", "wget", "plain", "ours", "extract", "recrawl", "scale")
NAME = "bench"
BIN = Path(sys.executable).parent
UNBOUNDED = ["--set", "MAX_PAGES_PER_RUN=0", "--set", "MAX_PAGES_PER_AUTOBLOG=0"]
OURS_MODES: dict[str, list[str]] = {
    "warc": ["--set", "CORPUS_ENABLED=False"],
    "warc+corpus": [],
}


# ---------------------------------------------------------------- measuring processes


@dataclass
class Run:
    """One process: wall time, CPU time (with its waited-for children), peak RSS, pages."""

    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    pages: int = 0
    exit_code: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# A spawned process inherits its parent's peak RSS (Linux records the old address space's
# high-water mark at exec), so the tools are started from this small launcher, not from
# the bench process: the floor of every figure is then ~10 MB, not the bench's own size.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write("%f %f %d %d" % (time.perf_counter() - started, usage.ru_utime + usage.ru_stime,
                              usage.ru_maxrss, os.waitstatus_to_exitcode(status)))
"""


def measure(cmd: Sequence[str], log: Path) -> Run:
    """Run ``cmd`` to completion: its wall time, CPU time and peak RSS (from ``wait4``)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    figures = log.with_suffix(".rusage")
    with open(log, "wb") as out:
        subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, str(figures), *cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    seconds, cpu, rss_kib, code = figures.read_text().split()
    return Run(
        seconds=round(float(seconds), 3),
        cpu_seconds=round(float(cpu), 3),
        peak_rss_mb=round(int(rss_kib) / 1024, 1),  # KiB on Linux
        exit_code=int(code),
    )


def summarize_runs(runs: list[Run]) -> dict[str, Any]:
    """Median and spread (min, max) of repeated runs; rates use the median time."""
    seconds = [r.seconds for r in runs]
    pages = runs[0].pages
    median = statistics.median(seconds)
    return {
        "runs": [asdict(r) for r in runs],
        "pages": pages,
        "median_seconds": round(median, 3),
        "min_seconds": min(seconds),
        "max_seconds": max(seconds),
        "pages_per_s": round(pages / median, 1) if median else None,
        "cpu_ms_per_page": round(1000 * statistics.median(r.cpu_seconds for r in runs) / pages, 2)
        if pages
        else None,
        "peak_rss_mb": max(r.peak_rss_mb for r in runs),
    }


# ---------------------------------------------------------------- the farm


def farm_paths(truth: dict, n: int, seed: int = 0) -> list[str]:
    """A realistic mix: 60% index pages, 30% permalinks, 10% media files."""
    rng = random.Random(seed)
    blogs = list(truth["autoblogs"].values())
    out: list[str] = []
    for _ in range(n):
        blog = rng.choice(blogs)
        base = urlsplit(blog["base_url"]).path
        r = rng.random()
        if r < 0.6:
            out.append(base + (f"?{rng.randint(2, blog['pages'])}" if blog["pages"] > 1 else ""))
        elif r < 0.9:
            link = urlsplit(quote(rng.choice(blog["articles"])["permalink"], safe=":/?&=%"))
            out.append(link.path + (f"?{link.query}" if link.query else ""))
        else:
            media = [m for a in blog["articles"][:200] for m in a["media"]]
            out.append(base + "media/" + rng.choice(media) if media else base)
    return out


def _fetch_for(args: tuple[int, list[str], float]) -> int:
    """A fast client: one connection per request (the farm closes them), as many as it can."""
    port, paths, seconds = args
    done = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", paths[done % len(paths)])
        conn.getresponse().read()
        conn.close()
        done += 1
    return done


def farm_rate(port: int, truth: dict, seconds: float, clients: int = 2) -> float:
    """Requests/s the farm serves to ``clients`` fast client processes."""
    from concurrent.futures import ProcessPoolExecutor

    paths = farm_paths(truth, 5000)
    _fetch_for((port, paths[:50], 0.2))  # warm-up: the farm's first permalink builds an index
    with ProcessPoolExecutor(clients) as pool:
        counts = list(
            pool.map(_fetch_for, [(port, paths[k::clients], seconds) for k in range(clients)])
        )
    return round(sum(counts) / seconds, 1)


def count_requests(farm: Any) -> int:
    return len(farm.requests())


# ---------------------------------------------------------------- the tools


def run_ours(url: str, out: Path, extra: Sequence[str], log: Path) -> Run:
    """``autoblog-archive crawl --fast`` into ``out``; pages = responses it captured."""
    cmd = [str(BIN / "autoblog-archive"), "crawl", url, "-o", str(out), "--name", NAME]
    run = measure([*cmd, "--fast", "--quiet", *extra], log)
    summary_path = out / "summary.json"
    if run.exit_code not in (0, 1) or not summary_path.exists():
        raise RuntimeError(f"our crawl failed ({run.exit_code}); see {log}")
    summary = orjson.loads(summary_path.read_bytes())
    run.pages = int(summary["responses"]) + int(summary["revisits"])
    run.extra = {"requests": summary["requests"], "corpus_records": summary["corpus_records"]}
    return run


def run_wget(urls_file: Path, out: Path, log: Path) -> Run:
    """Debian's wget over the same URL list as plain Scrapy, into one WARC.

    A list, not ``--recursive``: wget would follow every "newer" link of a numeric
    permalink (thousands of empty pages our crawl rightly skips), so its rate would be
    measured over another URL set.
    """
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        wget_binary(),
        f"--input-file={urls_file}",
        "--no-verbose",
        "--warc-file=" + str(out / "wget"),
        "--no-warc-keep-log",
        "--directory-prefix",
        str(out / "files"),
    ]
    run = measure(cmd, log)  # wget exits 8 on any 404 (the farm's 404 pages): not a failure
    run.pages = count_responses(sorted(out.glob("*.warc.gz")))
    return run


def wget_binary() -> str:
    found = shutil.which("wget") or ("/usr/bin/wget" if Path("/usr/bin/wget").exists() else None)
    if not found:
        raise RuntimeError("wget is not installed (apt-get install -y wget), or use --skip wget")
    return found


def count_responses(files: list[Path]) -> int:
    from warcio.archiveiterator import ArchiveIterator

    count = 0
    for path in files:
        with open(path, "rb") as fh:
            count += sum(record.rec_type == "response" for record in ArchiveIterator(fh))
    return count


def run_plain(urls_file: Path, stats_file: Path, log: Path) -> Run:
    """:class:`PlainSpider` in its own process (``python -m crawler.bench plain``)."""
    cmd = [sys.executable, "-m", "crawler.bench", "plain", str(urls_file), str(stats_file)]
    run = measure(cmd, log)
    if run.exit_code != 0 or not stats_file.exists():
        raise RuntimeError(f"plain Scrapy failed ({run.exit_code}); see {log}")
    run.pages = int(orjson.loads(stats_file.read_bytes()).get("downloader/response_count", 0))
    return run


def plain_scrapy_main(urls_file: str, stats_file: str) -> int:
    """Crawl a URL list with Scrapy's stock settings at our concurrency, keeping nothing."""
    from scrapy import Request, Spider
    from scrapy.crawler import CrawlerProcess

    urls = Path(urls_file).read_text().split()

    class PlainSpider(Spider):
        """Fetches the given URLs and does nothing with them: Scrapy's own cost."""

        name = "plain"

        async def start(self):  # type: ignore[override]
            for url in urls:
                yield Request(url, callback=self.parse)

        def parse(self, response: Any, **kwargs: Any) -> None:
            return None

    settings = {
        "CONCURRENT_REQUESTS": FAST_SETTINGS["CONCURRENT_REQUESTS"],
        "CONCURRENT_REQUESTS_PER_DOMAIN": FAST_SETTINGS["CONCURRENT_REQUESTS_PER_DOMAIN"],
        "LOG_LEVEL": "WARNING",
    }
    process = CrawlerProcess(settings)
    crawler_ = process.create_crawler(PlainSpider)
    process.crawl(crawler_)
    process.start()
    stats = crawler_.stats.get_stats() if crawler_.stats else {}
    Path(stats_file).write_bytes(orjson.dumps(stats, default=str))
    return 0


def run_extract(source: Path, out: Path, workers: int, log: Path) -> Run:
    """``autoblog-archive extract`` over a crawl's WARCs; pages = corpus records written."""
    cmd = [str(BIN / "autoblog-archive"), "extract", str(source), "-o", str(out)]
    run = measure([*cmd, "--workers", str(workers)], log)
    text = log.read_text(errors="replace")
    found = re.search(r"^(\d+) records .*?([\d.]+)s ->", text, re.M)
    if run.exit_code != 0 or not found:
        raise RuntimeError(f"extract failed ({run.exit_code}); see {log}")
    run.pages = int(found.group(1))
    run.extra = {"extract_seconds": float(found.group(2)), "corpus_sha256": corpus_digest(out)}
    return run


def naive_rate(folder: Path, limit: int) -> float:
    """The guide's anti-pattern as a yardstick: trafilatura on whole pages, in-process."""
    import trafilatura
    from warcio.archiveiterator import ArchiveIterator

    bodies: list[bytes] = []
    for path in sorted(folder.rglob("*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if len(bodies) >= limit:
                    break
                if record.rec_type == "response" and record.http_headers is not None:
                    if "html" in (record.http_headers.get_header("Content-Type") or ""):
                        bodies.append(record.content_stream().read())
    started = time.perf_counter()
    for body in bodies:
        trafilatura.extract(body, deduplicate=False)
    elapsed = time.perf_counter() - started
    return round(len(bodies) / elapsed, 1) if elapsed else 0.0


def corpus_digest(folder: Path) -> str:
    """Digest of the corpus content (decompressed, so gzip header times do not count)."""
    digest = hashlib.sha256()
    for shard in sorted((folder / "corpus").rglob("*.jsonl.gz")):
        digest.update(shard.name.encode())
        digest.update(gzip.decompress(shard.read_bytes()))
    return digest.hexdigest()


# ---------------------------------------------------------------- the session


@dataclass
class BenchConfig:
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
        return section not in self.config.skip

    def run(self) -> dict[str, Any]:
        from crawler.samplefarm import start_farm

        cfg = self.config
        self.result = {
            "version": crawler.__version__,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": asdict(cfg),
            "machine": machine(),
        }
        with start_farm(autoblogs=cfg.autoblogs, articles=cfg.articles, seed=cfg.seed) as farm:
            self.result["farm"] = {"autoblogs": cfg.autoblogs, "articles": cfg.articles}
            if self.wants("farm"):
                self.say("farm: serving rate with a fast client")
                self.result["farm"]["requests_per_s"] = farm_rate(
                    farm.port, farm.truth(), cfg.farm_seconds
                )
            self.crawlers(farm)
            if self.wants("extract"):
                self.extract()
            if self.wants("recrawl"):
                self.recrawl(farm)
        if self.wants("scale"):
            self.scale()
        self.result["machine"]["loadavg_after"] = list(os.getloadavg())
        self.result["ratios"] = ratios(self.result)
        self.result["targets"] = targets(self.result)
        return self.result

    def crawlers(self, farm: Any) -> None:
        """All crawlers over the same farm, alternating, ``repeat`` times each."""
        cfg = self.config
        runs: dict[str, list[Run]] = {}
        urls_file = self.scratch / "urls.txt"
        self._kept: Path | None = None
        for rep in range(cfg.repeat):
            # Ours first: the first full crawl's URL list feeds the plain Scrapy baseline.
            before = count_requests(farm)
            out = self._dir("full")
            self.say(f"round {rep + 1}/{cfg.repeat}: ours, full pipeline")
            runs.setdefault("ours_full", []).append(
                run_ours(farm.url, out, [], out.with_suffix(".log"))
            )
            if rep == 0:
                log = farm.requests()[before:]
                urls = [farm.url.rstrip("/") + r["path"] for r in log if r["method"] == "GET"]
                urls_file.write_text("\n".join(urls) + "\n")
                self.result["farm"]["crawl_requests"] = len(log)
                self._kept, self._kept_requests = out, len(log)
            else:
                shutil.rmtree(out, ignore_errors=True)
            for mode, extra in OURS_MODES.items():
                out = self._dir(mode.replace("+", "-"))
                self.say(f"round {rep + 1}/{cfg.repeat}: ours, {mode}")
                runs.setdefault(f"ours_{mode}", []).append(
                    run_ours(farm.url, out, extra, out.with_suffix(".log"))
                )
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
                runs[workers].append(run_extract(self._kept, out, workers, out.with_suffix(".log")))
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
        full = self.result["crawlers"]["ours_full"]
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
            "time_fraction": round(run.seconds / full["median_seconds"], 4),
        }

    def scale(self) -> None:
        """Our full crawl at two farm sizes: CPU per page and peak RSS, once each."""
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
                run = run_ours(farm.url, out, UNBOUNDED, out.with_suffix(".log"))
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
                }
            )
        self.result["scale"] = section

    def _pages_per_article(self) -> float:
        full = self.result.get("crawlers", {}).get("ours_full")
        if not full:
            return 1.2
        return full["pages"] / (self.config.autoblogs * self.config.articles)


def machine() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was (2 shared cores here)."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("scrapy", "twisted", "warcio", "trafilatura", "lxml"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:  # noqa: BLE001 - a missing package is just not reported
            versions[package] = None
    wget = shutil.which("wget")
    wget_version = None
    if wget:
        first = subprocess.run([wget, "--version"], capture_output=True, text=True).stdout
        wget_version = first.splitlines()[0] if first else None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "loadavg_before": list(os.getloadavg()),
        "packages": versions,
        "wget": wget_version,
        "commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
        )
    except OSError:
        return None
    return done.stdout.strip() or None


# ---------------------------------------------------------------- ratios and targets


def _rate(result: dict[str, Any], name: str) -> float | None:
    return result.get("crawlers", {}).get(name, {}).get("pages_per_s")


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    """Each of our modes' pages/s against plain Scrapy's and wget's, same run."""
    out: dict[str, Any] = {}
    plain, wget = _rate(result, "plain_scrapy"), _rate(result, "wget")
    for mode in ("ours_warc", "ours_warc+corpus", "ours_full"):
        ours = _rate(result, mode)
        if ours is None:
            continue
        out[mode] = {
            "vs_plain_scrapy": round(ours / plain, 3) if plain else None,
            "vs_wget": round(ours / wget, 3) if wget else None,
        }
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
        ("farm serves >= 3x the fastest crawler", r.get("farm_vs_fastest_crawler"),
         lambda v: v >= 3),
        ("CPU/page at the large scale run <= 1.2x the small one",
         r.get("cpu_per_page_large_vs_small"), lambda v: v <= 1.2),
        ("WARC only >= 0.90x plain Scrapy", r.get("ours_warc", {}).get("vs_plain_scrapy"),
         lambda v: v >= 0.9),
        ("WARC + corpus >= 0.80x plain Scrapy",
         r.get("ours_warc+corpus", {}).get("vs_plain_scrapy"), lambda v: v >= 0.8),
        ("--processes 2 >= 1.6x single process", None, lambda v: v >= 1.6),
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
    ]  # fmt: skip
    return [
        {"target": name, "value": value, "holds": None if value is None else bool(check(value))}
        for name, value, check in rows
    ]


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
        lines.append(
            f"Farm serving rate (fast client): {farm['requests_per_s']:.0f} requests/s, "
            f"{result['ratios'].get('farm_vs_fastest_crawler', '?')}x the fastest crawler."
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
            for name in ("wget", "plain_scrapy", "ours_warc", "ours_warc+corpus", "ours_full")
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
            f"{recrawl['run']['seconds']:.1f} s ({recrawl['time_fraction']:.1%} of the full crawl)."
        )
    scale = result.get("scale")
    if scale:
        lines += _table(
            ["scale run", "pages", "s", "pages/s", "CPU ms/page", "peak RSS MB"],
            [
                [f"{s['autoblogs']} x {s['articles_per_autoblog']}", s["pages"],
                 f"{s['seconds']:.1f}", f"{s['pages_per_s']:.0f}", s["cpu_ms_per_page"],
                 f"{s['peak_rss_mb']:.0f}"]
                for s in scale
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


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values) or "?"


# ---------------------------------------------------------------- command line


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers") from None


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section {unknown[0]!r}; one of {SECTIONS}")
    return names


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``autoblog-archive bench``."""
    parser.add_argument("--quick", action="store_true", help="a small farm: a few minutes")
    parser.add_argument(
        "--autoblogs",
        type=int,
        default=None,
        help=f"autoblogs in the farm (default {DEFAULT_AUTOBLOGS})",
    )
    parser.add_argument(
        "--articles",
        type=int,
        default=None,
        help=f"articles per autoblog (default {DEFAULT_ARTICLES})",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=DEFAULT_REPEAT,
        help=f"alternating runs of each tool (default {DEFAULT_REPEAT})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the farm's seed")
    parser.add_argument(
        "--scale-articles",
        type=_ints,
        default=None,
        help="articles per autoblog of the scale runs (default 400,4000)",
    )
    parser.add_argument(
        "--scale-pages",
        type=_ints,
        default=None,
        help="pages the scale runs aim at (default 10000,50000)",
    )
    parser.add_argument(
        "--farm-seconds",
        type=float,
        default=None,
        help=f"length of the farm's serving-rate check (default {DEFAULT_FARM_SECONDS:g})",
    )
    parser.add_argument(
        "--skip",
        type=_sections,
        default=(),
        help=f"comma-separated sections to leave out: {','.join(SECTIONS)}",
    )
    parser.add_argument(
        "--output",
        "-o",
        default="benchmarks/results",
        help="folder for <version>.json and .md (default benchmarks/results)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    # fmt: skip


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    from crawler.exitcodes import UsageError

    base: dict[str, Any] = dict(QUICK) if args.quick else {}
    for name in ("autoblogs", "articles", "scale_articles", "scale_pages", "farm_seconds"):
        if getattr(args, name) is not None:
            base[name] = getattr(args, name)
    config = BenchConfig(repeat=args.repeat, seed=args.seed, skip=args.skip, quick=args.quick)
    for key, value in base.items():
        setattr(config, key, value)
    if len(config.scale_articles) != len(config.scale_pages):
        raise UsageError("--scale-articles and --scale-pages need as many values each")
    if min(config.autoblogs, config.articles, config.repeat) < 1:
        raise UsageError("--autoblogs, --articles and --repeat must be at least 1")
    return config


def run_bench(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive bench``."""
    config = config_from_args(args)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="autoblog-bench-"))

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    try:
        result = Bench(config, scratch, say).run()
    finally:
        if args.keep:
            say(f"scratch folder kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    stem = result["version"] + ("-quick" if config.quick else "")
    (output / f"{stem}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    table = markdown(result)
    (output / f"{stem}.md").write_text(table)
    print(table)
    say(f"written {output / stem}.json and .md")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "plain":
        sys.exit(plain_scrapy_main(sys.argv[2], sys.argv[3]))
    sys.exit("usage: python -m crawler.bench plain URLS_FILE STATS_FILE")
