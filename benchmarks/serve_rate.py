"""Measure the sample farm's serving rate (requests/s) on loopback for a realistic mix of
index pages, permalinks and media, so later benchmarks know the farm is not the bottleneck.

Usage: python benchmarks/serve_rate.py [--autoblogs 10] [--articles 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import random
import time
from concurrent.futures import ProcessPoolExecutor
from urllib.parse import quote, urlsplit

from crawler.samplefarm import start_farm


def url_mix(truth: dict, n: int, seed: int = 0) -> list[str]:
    """60% index pages, 30% permalinks, 10% media files, as path+query strings."""
    rng = random.Random(seed)
    abs_ = list(truth["autoblogs"].values())
    out = []
    for _ in range(n):
        ab = rng.choice(abs_)
        base = urlsplit(ab["base_url"]).path
        r = rng.random()
        if r < 0.6:
            out.append(base + (f"?{rng.randint(2, ab['pages'])}" if rng.random() < 0.8 else ""))
        elif r < 0.9:
            out.append(
                urlsplit(quote(rng.choice(ab["articles"])["permalink"], safe=":/?&=%")).path
                + "?"
                + quote(rng.choice(ab["articles"])["slug"])
            )
        else:
            media = [m for a in ab["articles"][:200] for m in a["media"]]
            out.append(base + "media/" + rng.choice(media) if media else base)
    return out


def worker(args: tuple[int, list[str], float]) -> tuple[int, int, int]:
    port, paths, seconds = args
    done = errors = nbytes = 0
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", paths[i % len(paths)])
        r = conn.getresponse()
        nbytes += len(r.read())
        errors += r.status >= 400
        conn.close()
        done += 1
        i += 1
    return done, errors, nbytes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--autoblogs", type=int, default=10)
    p.add_argument("--articles", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=2)
    a = p.parse_args()
    t0 = time.monotonic()
    with start_farm(autoblogs=a.autoblogs, articles=a.articles) as farm:
        print(
            f"farm of {a.autoblogs * a.articles} articles started in {time.monotonic() - t0:.2f}s"
        )
        truth = farm.truth()
        paths = url_mix(truth, 5000)
        for p_ in paths[:50]:  # warm the slug index so the first permalink is not measured
            worker((farm.port, [p_], 0.0001))
        with ProcessPoolExecutor(a.clients) as ex:
            res = list(
                ex.map(
                    worker,
                    [(farm.port, paths[k :: a.clients], a.seconds) for k in range(a.clients)],
                )
            )
        n = sum(r[0] for r in res)
        print(
            f"{n} requests in {a.seconds:.0f}s with {a.clients} clients: {n / a.seconds:.0f} req/s,"
            f" {sum(r[1] for r in res)} errors, {sum(r[2] for r in res) / n / 1024:.1f} KiB avg"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
