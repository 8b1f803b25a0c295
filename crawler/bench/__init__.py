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
- ours: WARC only, WARC + corpus, the full default pipeline (``crawl --fast``), and
  the full pipeline in two processes (``--processes 2``, merge included);
- offline ``extract`` over the WARCs with 1 and 2 workers;
- a re-crawl after 1% new articles (requests and time as fractions of the full crawl);
- scale runs: CPU per page and peak RSS at two farm sizes (~10,000 and ~50,000 pages).

It writes ``<output>/<version>.json`` (the result, machine included) and ``.md`` (the
table); the JSON of each released version is committed under ``benchmarks/results/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Bench-specific defaults (the crawl's own live in crawler.settings); light to import:
# the command line reads them for its help.
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
DEFAULT_STARTUP_CAPTURES = 1_000_000  # captures in the history the startup section opens
QUICK = {
    "autoblogs": 4,
    "articles": 150,
    "scale_articles": (40, 400),
    "scale_pages": (1_000, 5_000),
    "farm_seconds": 3.0,
    "startup_captures": 100_000,
}
SECTIONS = ("farm", "wget", "plain", "ours", "extract", "recrawl", "startup", "scale")
NAME = "bench"
BIN = Path(sys.executable).parent
UNBOUNDED = ["--set", "MAX_PAGES_PER_RUN=0", "--set", "MAX_PAGES_PER_AUTOBLOG=0"]
OURS_MODES: dict[str, list[str]] = {
    "warc": ["--set", "CORPUS_ENABLED=False"],
    "warc+corpus": [],
    "processes_2": ["--processes", "2"],  # the full pipeline, two crawl processes
}
