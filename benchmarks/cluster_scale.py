"""Pages/s of 1, 2 and 3 crawl workers on one shared Redis frontier, against one plain
``crawl`` process, on the same sample farm and machine; and Redis memory per 10,000 URLs.

    .venv/bin/python benchmarks/cluster_scale.py --autoblogs 10 --articles 400

Needs Debian's redis-server. Each run gets a fresh crawl id and fresh output folders.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from crawler.samplefarm import start_farm

BIN = Path(sys.executable).parent / "autoblog-archive"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def responses(summary: Path) -> int:
    return json.loads(summary.read_text())["responses"] if summary.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--autoblogs", type=int, default=10)
    parser.add_argument("--articles", type=int, default=400)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cluster-scale-"))
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(work)], stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    results: dict[str, dict] = {}
    try:
        with start_farm(autoblogs=args.autoblogs, articles=args.articles, seed=1) as farm:
            started = time.monotonic()
            subprocess.run([BIN, "crawl", farm.url, "-o", work / "single", "--fast", "-q"])
            seconds = time.monotonic() - started
            pages = responses(work / "single" / "summary.json")
            results["single process"] = {"pages": pages, "seconds": round(seconds, 1)}
            for n in args.workers:
                crawl = f"scale{n}"
                base = client.info("memory")["used_memory"]
                calls = sum(c["calls"] for c in client.info("commandstats").values())
                started = time.monotonic()
                subprocess.run([BIN, "seed", farm.url, "--redis", url, "--crawl-id", crawl],
                               check=True, capture_output=True)  # fmt: skip
                procs = [
                    subprocess.Popen(
                        [
                            BIN,
                            "worker",
                            "--redis",
                            url,
                            "--crawl-id",
                            crawl,
                            "-o",
                            work / f"{crawl}-w{i}",
                            "--fast",
                            "-q",
                        ],
                        stdout=subprocess.DEVNULL,
                    )  # fmt: skip
                    for i in range(n)
                ]
                for p in procs:
                    p.wait()
                seconds = time.monotonic() - started
                pages = sum(responses(work / f"{crawl}-w{i}" / "summary.json") for i in range(n))
                keys = {k.decode(): client.memory_usage(k) for k in client.scan_iter(f"*{crawl}*")}
                results[f"{n} worker(s)"] = {
                    "pages": pages,
                    "seconds": round(seconds, 1),
                    "redis_bytes_by_key": keys,
                    "redis_used_memory_delta": client.info("memory")["used_memory"] - base,
                    "redis_calls_per_page": round(
                        (sum(c["calls"] for c in client.info("commandstats").values()) - calls)
                        / max(pages, 1),
                        1,
                    ),
                }
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    for name, r in results.items():
        r["pages_per_s"] = round(r["pages"] / r["seconds"], 1)
        if "redis_bytes_by_key" in r:
            r["redis_bytes_per_10k_urls"] = round(
                sum(r["redis_bytes_by_key"].values()) / r["pages"] * 10_000
            )
        print(
            f"{name:16} {r['pages']:6} pages {r['seconds']:7.1f} s {r['pages_per_s']:7.1f} pages/s"
        )
    print(f"load average after: {os.getloadavg()}")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
