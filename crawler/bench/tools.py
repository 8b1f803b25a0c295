"""The tools the bench compares, each run as its own process: ours, wget, a plain Scrapy
that fetches exactly our URL list, offline extract; and the farm's own serving rate."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import random
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from crawler.bench import (
    BIN,
    NAME,
)
from crawler.bench.measure import Run, measure
from crawler.children import python_command

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


def farm_rate(port: int, paths: list[str], seconds: float, clients: int = 2) -> float:
    """Requests/s the farm on ``port`` serves to ``clients`` fast client processes."""
    from concurrent.futures import ProcessPoolExecutor

    _fetch_for((port, paths[:50], 0.2))  # warm-up: the farm's first permalink builds an index
    with ProcessPoolExecutor(clients) as pool:
        counts = list(
            pool.map(_fetch_for, [(port, paths[k::clients], seconds) for k in range(clients)])
        )
    return round(sum(counts) / seconds, 1)


def count_requests(farm: Any) -> int:
    """Requests the sample farm has logged so far."""
    return len(farm.requests())


# ---------------------------------------------------------------- the tools


def run_ours(url: str, out: Path, extra: Sequence[str], log: Path, rss_every: float = 0.0) -> Run:
    """``autoblog-archive crawl --fast`` into ``out``; pages = responses it captured (and,
    with ``rss_every``, the process tree's memory over time: :func:`measure`)."""
    cmd = [str(BIN / "autoblog-archive"), "crawl", url, "-o", str(out), "--name", NAME]
    run = measure([*cmd, "--fast", "--quiet", *extra], log, rss_every)
    summary_path = out / "summary.json"
    if run.exit_code not in (0, 1) or not summary_path.exists():
        raise RuntimeError(f"our crawl failed ({run.exit_code}); see {log}")
    summary = orjson.loads(summary_path.read_bytes())
    run.pages = int(summary["responses"]) + int(summary["revisits"])
    run.extra.update(requests=summary["requests"], corpus_records=summary["corpus_records"])
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
    """The wget binary to measure against; RuntimeError when there is none."""
    found = shutil.which("wget") or ("/usr/bin/wget" if Path("/usr/bin/wget").exists() else None)
    if not found:
        raise RuntimeError("wget is not installed (apt-get install -y wget), or use --skip wget")
    return found


def count_responses(files: list[Path]) -> int:
    """Response records in ``files``: the pages a tool archived."""
    from crawler.warc.reader import walk_file

    count = 0
    for path in files:
        with walk_file(path) as walk:
            count += sum(record.rec_type == "response" for record in walk)
    return count


def run_plain(urls_file: Path, stats_file: Path, log: Path) -> Run:
    """:class:`PlainSpider` in its own process (``python -m crawler.bench plain``)."""
    cmd = python_command("-m", "crawler.bench", "plain", str(urls_file), str(stats_file))
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

        async def start(self):
            for url in urls:
                yield Request(url, callback=self.parse)

        def parse(self, response: Any, **kwargs: Any) -> None:
            return None

    from crawler.context import project_settings

    fast = project_settings().getdict("FAST_SETTINGS")  # our --fast concurrency
    settings = {
        "CONCURRENT_REQUESTS": fast["CONCURRENT_REQUESTS"],
        "CONCURRENT_REQUESTS_PER_DOMAIN": fast["CONCURRENT_REQUESTS_PER_DOMAIN"],
        "LOG_LEVEL": "WARNING",
    }
    process = CrawlerProcess(settings)
    crawler_ = process.create_crawler(PlainSpider)
    process.crawl(crawler_)
    process.start()
    stats = crawler_.stats.get_stats() if crawler_.stats else {}
    Path(stats_file).write_bytes(orjson.dumps(stats, default=str))
    return 0


def measure_extract(source: Path, out: Path, workers: int, log: Path) -> Run:
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

    from crawler.warc.reader import walk_file

    def html_body(record) -> int | None:
        http = record.http_headers
        if record.rec_type == "response" and http is not None:
            return -1 if "html" in (http.get_header("Content-Type") or "") else None
        return None

    bodies: list[bytes] = []
    for path in sorted(folder.rglob("*.warc.gz")):
        with walk_file(path, payload=html_body) as walk:
            for record in walk:
                if len(bodies) >= limit:
                    break
                if html_body(record) is not None:
                    bodies.append(record.payload)
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
