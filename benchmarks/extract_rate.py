"""Offline extraction throughput: articles/s on N cores over a generated sample farm.

Fetches every permalink and index page of a sample farm over HTTP into one WARC (warcio),
then times ``crawler.offline.extract_warcs`` (scan + worker processes + corpus writing).

    .venv/bin/python benchmarks/extract_rate.py --autoblogs 24 --articles 125 --workers 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from crawler.corpus import read_corpus
from crawler.offline import extract_warcs
from crawler.samplefarm import start_farm
from crawler.templates import parse_page
from crawler.urls import canonical_url

ENGINES = ["0.3.4", "0.3.0", "0.2", "0.1", "2025", "0.3.1"]


def fetch(url: str) -> tuple[str, int, str, list[tuple[str, str]], bytes]:
    safe = canonical_url(url)
    try:
        with urllib.request.urlopen(safe, timeout=60) as r:
            return safe, r.status, r.reason, list(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return safe, e.code, e.reason, list(e.headers.items()), e.read()


def build_warc(path: Path, autoblogs: int, articles: int, seed: int) -> int:
    with start_farm(autoblogs=autoblogs, articles=articles, engine=ENGINES, seed=seed) as farm:
        truth = farm.truth()
        urls: list[str] = []
        for ab in truth["autoblogs"].values():
            first = fetch(ab["base_url"])
            urls += [ab["base_url"], *parse_page(first[4], first[0]).page_links]
            urls += [a["permalink"] for a in ab["articles"]]
        urls = list(dict.fromkeys(urls))
        with ThreadPoolExecutor(8) as ex:
            fetched = list(ex.map(fetch, urls))
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True, warc_version="WARC/1.1")
        for safe, status, reason, headers, body in fetched:
            http = StatusAndHeaders(f"{status} {reason}", headers, protocol="HTTP/1.1")
            writer.write_record(
                writer.create_warc_record(
                    safe, "response", payload=BytesIO(body), http_headers=http
                )
            )
    return sum(len(ab["articles"]) for ab in truth["autoblogs"].values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--autoblogs", type=int, default=24)
    parser.add_argument("--articles", type=int, default=125, help="articles per autoblog")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--naive-pages", type=int, default=300, help="pages for the whole-page trafilatura baseline"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        warc = Path(tmp) / "bench-00000.warc.gz"
        t0 = time.monotonic()
        n_truth = build_warc(warc, args.autoblogs, args.articles, args.seed)
        print(
            f"farm fetched into {warc.stat().st_size / 1e6:.1f} MB WARC in "
            f"{time.monotonic() - t0:.1f}s ({n_truth} articles)"
        )
        rates = {}
        for workers in sorted({1, args.workers}):
            out = Path(tmp) / f"out-{workers}"
            result = extract_warcs([warc], out, workers=workers)
            records = read_corpus(out)
            secs = result["seconds"]
            rates[workers] = len(records) / secs
            print(
                f"{workers} worker(s): {result['pages']} pages -> {len(records)} records in "
                f"{secs:.2f}s (scan {result['scan_seconds']:.2f}s): "
                f"{rates[workers]:.0f} articles/s, {result['pages'] / secs:.0f} pages/s"
            )
            print(f"  pool: {result['pool']}")
        naive = naive_rate(warc, limit=args.naive_pages)
        print(f"baseline, trafilatura on whole pages, 1 process: {naive:.0f} pages/s")
        print(
            f"ratios: {args.workers} workers / 1 worker x{rates[args.workers] / rates[1]:.2f}; "
            f"template-aware 1 worker / whole-page trafilatura x{rates[1] / naive:.1f}"
        )


def naive_rate(warc: Path, limit: int) -> float:
    """What the guide warns against: trafilatura on every whole HTML page, in-process."""
    import trafilatura
    from warcio.archiveiterator import ArchiveIterator

    bodies = []
    with open(warc, "rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type == "response" and len(bodies) < limit:
                ctype = record.http_headers.get_header("Content-Type") or ""
                if "html" in ctype:
                    bodies.append(record.content_stream().read())
    started = time.monotonic()
    for body in bodies:
        trafilatura.extract(body, deduplicate=False)
    return len(bodies) / (time.monotonic() - started)


if __name__ == "__main__":
    main()
