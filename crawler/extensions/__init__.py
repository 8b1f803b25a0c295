"""The crawl's Scrapy extensions (``EXTENSIONS`` in ``crawler/settings.py``).

- :class:`CrawlState`: opens the crawl's history service and calls it on the crawl's signals;
- :class:`CrawlDelay`: robots.txt ``Crawl-delay``, which Scrapy parses but does not apply;
- :class:`Progress`: a live line on a terminal, log lines otherwise;
- :class:`IndexOnClose`: CDXJ, pages.jsonl, pywb config once the WARC files are closed;
- :class:`RunSummary`: per-autoblog counts and the first failure, for the summary.

The WARC capture is an extension too, but lives in ``pipelines/warc_capture.py``.
"""

from crawler.extensions.crawl_state import CrawlState
from crawler.extensions.index_on_close import IndexOnClose
from crawler.extensions.politeness import CrawlDelay
from crawler.extensions.progress import Progress
from crawler.extensions.run_summary import RunSummary
from crawler.items import RunInfo

__all__ = ["CrawlDelay", "CrawlState", "IndexOnClose", "Progress", "RunInfo", "RunSummary"]
