"""Scrapy settings for archival crawls of autoblog farms: every default lives here, once,
with the bounds and choices each is checked against (``SETTING_RANGES``,
``SETTING_CHOICES``).

Polite by default (one request at a time per host, a delay, robots.txt obeyed);
``FAST_SETTINGS`` (``crawl --fast``) lifts the politeness for loopback benchmarks and tests.
The ``CLUSTER_*`` settings and ``REDIS_URL`` are set by ``autoblog-archive worker`` (the
``cluster`` extra) and empty in any other crawl. Scrapyd finds this module through the
``scrapy`` entry point of the project's egg.

Nothing imports a value from here: the settings the project reads are read and checked
in one place, ``crawler.context.RunContext``, and each component takes its part of that
context in ``from_crawler`` (the list is documented in docs/crawling.md).
"""

from scrapy.settings import default_settings

import crawler

BOT_NAME = "autoblog-archive"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

USER_AGENT = (
    f"autoblog-archive/{crawler.__version__} (+https://github.com/autoblog-archive; "
    "archival crawler for Projet Autoblog farms)"
)
ROBOTSTXT_OBEY = True
# robots.txt is read up to this many bytes, the rest ignored, as Google reads 500 KiB
# (crawler.download): a 50 MB robots.txt took 1.2 GB to parse whole.
ROBOTSTXT_MAX_SIZE = 500 * 1024
ROBOTSTXT_PARSER = "crawler.download.BoundedRobotParser"

# Politeness: one connection per host, a delay, and AutoThrottle backing off under load.
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 1
DOWNLOAD_DELAY = 1.0
DOWNLOAD_DELAY_JITTER = 0.5  # each delay varies by up to ±50%
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

# Replay tools decode gzip and deflate, not zstd (Scrapy >= 2.18 asks for zstd).
DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "fr,en;q=0.8",
    "Accept-Encoding": "gzip, deflate",
}

RETRY_ENABLED = True
RETRY_TIMES = 3
# 429 Too Many Requests, and a 503 that says Retry-After, are crawler.backoff's: retried
# after the wait they name, the host slowed for the rest of the run.
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]
# The longest wait a Retry-After gets (seconds): a longer one is cut to this, for the retry
# and for the host's delay from then on (0: retry at once, never slow down).
BACKOFF_MAX_DELAY = 60.0
DOWNLOAD_TIMEOUT = 60
# Body bound: a larger body is not downloaded (reported under errors, with its reason). It is
# also the most any command reads back of one stored payload (``extract``, ``verify``,
# ``reindex``, ``merge`` take --set too), so a compressed bomb captured in a WARC is never
# inflated whole.
DOWNLOAD_MAXSIZE = 64 * 1024 * 1024
# Response headers count towards DOWNLOAD_MAXSIZE too, and a response may carry at most this
# many header lines (Twisted keeps every one: a million took 923 MB). crawler.download.
MAX_RESPONSE_HEADERS = 500
DOWNLOAD_HANDLERS = {
    "http": "crawler.download.BoundedDownloadHandler",
    "https": "crawler.download.BoundedDownloadHandler",
}
# A body cut short is still delivered (flagged "dataloss"): the capture records it with
# WARC-Truncated, and the spider asks again for a complete copy.
DOWNLOAD_FAIL_ON_DATALOSS = False
DOWNLOAD_WARNSIZE = 16 * 1024 * 1024
HTTPERROR_ALLOW_ALL = True
COOKIES_ENABLED = False
# No way into a running crawl: Scrapy's telnet console and its remote-control HTTP endpoint
# (on by default in 2.19: arbitrary Python over HTTP, token left in a job file) are off.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
REDIRECT_ENABLED = True
# A <meta http-equiv="refresh"> inside an article is content, not navigation: never followed.
METAREFRESH_ENABLED = False

# Bounds of one run, so a hostile or endless farm cannot make it run forever. Raise any of
# them with `crawl -s NAME=VALUE` (0 = no bound). A run stopped by a page bound ends as
# partial (exit 1) and the next run continues where it stopped: pages it already captured
# are read back from the WARCs, not fetched again, and do not count towards the bound.
MAX_PAGES_PER_RUN = 20_000  # network fetches in one run, whole farm
MAX_PAGES_PER_AUTOBLOG = 5_000  # network fetches of one autoblog in one run
# Links followed from one page (a sitemap, an export and the farm's list included); the rest
# are reported, not fetched. Also the most outlinks a page's WARC metadata record lists.
MAX_LINKS_PER_PAGE = 5_000
URLLENGTH_LIMIT = 2083  # longer URLs are skipped (and reported)
REACTOR_THREADPOOL_MAXSIZE = 4
DNSCACHE_ENABLED = True
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.ScopeGuardMiddleware": 50,
    "crawler.middlewares.ResumeFromArchive": 60,
    # After the read-back: pages answered from the archive do not count towards the bounds.
    "crawler.middlewares.PageBounds": 70,
    # Sees a response before Scrapy's RetryMiddleware (550) does.
    "crawler.backoff.Backoff": 555,
}
# What each needs of another comes through signals (crawler/items.py) and what the crawl
# hands each (crawler/services.py), not through this order; CrawlState first only so that
# the history service locks and repairs the folder before any other component is built.
EXTENSIONS = {
    "crawler.extensions.CrawlState": 50,
    "crawler.download.FetchBounds": 60,
    "pipelines.warc_capture.WarcCapture": 100,
    "crawler.extensions.CrawlDelay": 200,
    "crawler.extensions.RunSummary": 300,
    "crawler.extensions.Progress": 500,
    "crawler.extensions.IndexOnClose": 900,
}
# Scrapy's own extensions but the telnet console and the remote control, both off above:
# Scrapy imports every extension it lists, enabled or not, and the remote control's
# module loads aiohttp (0.2 s of every crawl's start).
EXTENSIONS_BASE = {
    path: order
    for path, order in default_settings.EXTENSIONS_BASE.items()
    if path.rsplit(".", 1)[-1] not in ("TelnetConsole", "RemoteControl")
}
ITEM_PIPELINES = {
    "pipelines.research_corpus.CorpusPipeline": 300,
}
# Pending requests wait in memory up to SCHEDULER_MEMORY_REQUESTS (~2 KB each), the rest in
# pickled queues on disk (a private temporary folder): a farm queues one request per index
# page it has not fetched yet. Writing every request to disk cost ~5% of a crawl's CPU.
SCHEDULER = "crawler.scheduler.SpillingScheduler"
SCHEDULER_MEMORY_REQUESTS = 2_000  # 0: every pending request on disk
# Our pipelines never wait, yet Scrapy starts this many asyncio tasks per response to
# process a callback's output (100 by default): ~20% of the crawl's CPU (crawler.bench).
CONCURRENT_ITEMS = 8

# Research corpus (pipelines.research_corpus): extraction in worker processes.
CORPUS_ENABLED = True
CORPUS_WORKERS = 2
CORPUS_TIMEOUT = 30.0  # seconds per document before its worker is killed
CORPUS_MAX_TASKS = 500  # documents before a worker is recycled (trafilatura grows in memory)
# A run whose corpus holds records for fewer than this share of the article pages it
# captured is partial (exit 1): extraction failed far more than a hostile page now and then.
CORPUS_MIN_RECORDS = 0.9

# Output: OUTPUT_DIR is a pywb root; WARCs go to collections/<CRAWL_NAME>/archive/.
OUTPUT_DIR = "output/crawl"
CRAWL_NAME = "autoblog"
WACZ_ENABLED = False

# Crawl history (crawler.history.service): history.sqlite in OUTPUT_DIR, one run at a time.
HISTORY_ENABLED = True
CRAWL_MODE = "auto"  # auto: full the first time, then incremental; or full / incremental
FULL_PASS_EVERY = 0  # with auto: a full pass after this many incremental runs (0: never)
INCREMENTAL_MARGIN_PAGES = 1  # pages walked past the first page holding only known articles

# The audit that closes every run (crawler.history.audit): what the farm declares (farm
# index, pagination, feed, articles.db) against what the archive holds. Declared facts come
# from farm pages, so each source is read at most AUDIT_MAX_DECLARED items deep, and at
# most AUDIT_MAX_MISSING missing items are named (the rest counted) and fetched next run.
AUDIT_ENABLED = True
AUDIT_MAX_DECLARED = 200_000
AUDIT_MAX_MISSING = 10_000

# WARC capture (pipelines.warc_capture): into the collection's archive/ folder (crawler.layout)
WARC_ENABLED = True
WARC_PREFIX = ""  # file name prefix; empty: the collection's name
WARC_MAX_SIZE = 1_000_000_000
WARC_OPERATOR = "unknown operator"
WARC_DESCRIPTION = "Projet Autoblog farm crawl"

# Live progress (crawler.extensions.Progress): a rich line on a terminal, log lines otherwise.
PROGRESS_INTERVAL = 10.0
PROGRESS_LIVE = True

# What a setting accepts, from `--set NAME=VALUE`, the config file or `scrapy crawl -s`
# alike (crawler.context), read from here alone: a value of the default's type; a number
# within its range below (inclusive, None: no bound), and a number not listed here may
# not be negative (bounds, counts, delays, sizes: 0 is "none" where the setting says so);
# a word among its choices below.
SETTING_RANGES = {
    "CONCURRENT_REQUESTS": (1, None),
    "CONCURRENT_REQUESTS_PER_DOMAIN": (1, None),
    "CONCURRENT_ITEMS": (1, None),
    "REACTOR_THREADPOOL_MAXSIZE": (1, None),
    "CORPUS_WORKERS": (1, None),
    "CORPUS_MAX_TASKS": (1, None),
    "CORPUS_TIMEOUT": (0.001, None),
    "CORPUS_MIN_RECORDS": (0, 1),
    # every read of the archive is bounded: no "0 = none" for the body bound
    "DOWNLOAD_MAXSIZE": (1, None),
    "DOWNLOAD_DELAY_JITTER": (0, 1),
    "BACKOFF_MAX_DELAY": (0, 3600),
    "AUTOTHROTTLE_TARGET_CONCURRENCY": (0.001, None),
    "WARC_MAX_SIZE": (1, None),
    "PROGRESS_INTERVAL": (0.1, None),
    "CLUSTER_BUSY_TTL": (1, None),
    "CLUSTER_POLL_INTERVAL": (0.01, None),
    # Playwright reads a timeout of 0 as none: a replayed page always has one
    "QA_PAGE_TIMEOUT": (0.001, None),
    "QA_MAX_REQUESTS": (1, None),  # the page itself is one
    "QA_TEXT_CHARS": (1, None),
    "QA_MIN_SCORE": (0, 1),
    "MAIL_PORT": (1, 65535),
    # Scrapy's request priorities: either sign
    "DEPTH_PRIORITY": (None, None),
    "REDIRECT_PRIORITY_ADJUST": (None, None),
    "RETRY_PRIORITY_ADJUST": (None, None),
}
SETTING_CHOICES = {
    "CRAWL_MODE": ("auto", "full", "incremental"),
    "CLUSTER_MODE": ("full", "incremental"),
    "LOG_LEVEL": ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"),
}

FAST_SETTINGS = {
    "DOWNLOAD_DELAY": 0,
    "DOWNLOAD_DELAY_JITTER": 0,
    "AUTOTHROTTLE_ENABLED": False,
    "CONCURRENT_REQUESTS": 32,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
}

LOG_LEVEL = "INFO"

# What the history and the run lock keep as the run's command line (crawler.redact hides
# the passwords of URLs in it); empty: this process's own command line.
RUN_COMMAND = ""

# `crawl --processes N` (crawler.processes): set for each process; empty in a one-process crawl.
PROCESS_SHARE = ""  # "i/N": this process crawls the autoblogs dealt to process i
PROCESS_DEAL = ""  # the deal: processes/deal.json in the output folder

# Scale-out (crawler/cluster): set by `autoblog-archive worker`; empty in a single-process crawl.
CLUSTER_CRAWL_ID = ""
CLUSTER_RUN = 0
CLUSTER_MODE = "full"
CLUSTER_WORKER = ""
REDIS_URL = ""  # the shared frontier's Redis (scrapy-redis reads it too)
CLUSTER_BUSY_TTL = 30  # seconds a killed worker is still waited for
CLUSTER_POLL_INTERVAL = 0.5  # seconds between an idle worker's looks at the shared queue
# Bytes of one entry of the shared queue: a larger one is dropped unread (crawler.cluster.frontier).
# The spider's largest request (20 redirects of URLs at URLLENGTH_LIMIT) is about 45 KB.
CLUSTER_MAX_ENTRY_SIZE = 64 * 1024

# `autoblog-archive qa` (crawler/qa/): each replayed page opened in headless Chromium.
# A replayed page is content from outside: it gets QA_PAGE_TIMEOUT seconds to load, at
# most QA_MAX_REQUESTS requests (the rest are aborted and counted) and QA_TEXT_CHARS
# characters of text on each side of the comparison.
QA_PAGE_TIMEOUT = 30.0
QA_MAX_REQUESTS = 500
QA_TEXT_CHARS = 50_000
# A page scoring below this fails the qa (exit 1): see docs/qa.md for the score.
QA_MIN_SCORE = 0.9
