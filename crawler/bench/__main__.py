"""``python -m crawler.bench plain URLS_FILE STATS_FILE``: the plain Scrapy baseline, in a
process of its own (so its CPU time and peak RSS are its own)."""

import sys

from crawler.bench.tools import plain_scrapy_main

if len(sys.argv) == 4 and sys.argv[1] == "plain":
    sys.exit(plain_scrapy_main(sys.argv[2], sys.argv[3]))
sys.exit("usage: python -m crawler.bench plain URLS_FILE STATS_FILE")
