"""What travels between the crawl's components: typed items, one typed meta object, signals.

The flow (README, "Architecture")::

    spider --Request--> ScopeGuard, ResumeFromArchive, PageBounds --> download
    download --response_downloaded--> WarcCapture --record_capture()--> history service
        WarcCapture puts a Captured under request.meta[CAPTURE_KEY]: where the fetch landed
    spider --PageItem/ArticleItem--> CorpusPipeline --> corpus/run-NNNNN/
    item_scraped: PageItem --> CrawlState --> history service (digests, article sightings)
                  PageItem --> IndexOnClose (titles for pages.jsonl)
                  Page/ArticleItem --> RunSummary (per autoblog counts)
    warc_files_closed --> IndexOnClose (CDXJ, pages.jsonl, pywb config, WACZ)

Signals are Scrapy's own mechanism (``crawler.signals.send_catch_log``); the ones below
are the crawl's, each sent by one component, with the arguments written beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crawler.parsing import ParsedPage
from crawler.warc import WarcPointer

# The one key under which a request's capture travels to the spider and the pipelines.
CAPTURE_KEY = "autoblog_archive_capture"
# Why the spider asked for a URL (a str: "pagination", "permalink" ...), set on every
# request it makes; the capture writes it into the metadata record as hopsFromSeed.
REASON_KEY = "autoblog_archive_reason"


@dataclass(frozen=True)
class Captured:
    """Where one fetch was archived: set by the capture, or by the read-back of a resumed run."""

    pointer: WarcPointer
    payload_digest: str | None
    http_status: int | None
    warc_date: str
    record_type: str  # response | revisit


def captured_of(meta: dict[str, Any]) -> Captured | None:
    """The capture of a request (``response.meta`` or ``request.meta``), if it was archived."""
    return meta.get(CAPTURE_KEY)


@dataclass(frozen=True)
class CrawlPlan:
    """What the spider was asked to crawl: sent once, before its first request."""

    seeds: list[str]
    scope: Any  # crawler.scope.Scope
    named: list[str] = field(default_factory=list)  # autoblog bases named (--autoblogs)
    share: Any = None  # crawler.processes.Share: crawl --processes, this process's autoblogs


@dataclass
class PageItem:
    """One HTML page the spider read: for the corpus, the history and the indexes."""

    url: str
    kind: str  # farm | index | article | not_found | search | error | other
    http_status: int
    headers: Any  # scrapy.http.Headers
    body: bytes  # as Scrapy decoded it (Content-Encoding undone)
    captured: Captured | None
    autoblog: str | None = None
    engine: str | None = None
    title: str | None = None
    digest: str | None = None  # normalised digest of the article blocks (crawler.history)
    article_digests: list[tuple[str, str]] = field(default_factory=list)
    # The spider's parse of ``text`` (response.text): the corpus reuses it rather than
    # parsing the page again in a worker; dropped once the page is queued.
    parsed: ParsedPage | None = field(default=None, repr=False)
    text: str | None = field(default=None, repr=False)


@dataclass
class ArticleItem:
    """One article block seen on a page (an index page lists many, a permalink page one)."""

    autoblog: str
    engine: str | None
    permalink: str | None
    title: str
    date_text: str | None
    source_url: str | None
    seen_on: str
    seen_as: str
    http_status: int
    captured: Captured | None


@dataclass(frozen=True)
class BaseFound:
    """What answered at a seed or at an autoblog's base URL (listed by the farm, or named
    with ``--autoblogs``): the summary names every one that gave no autoblog page."""

    url: str  # as asked, before any redirect
    asked_as: str  # why it was asked for (REASON_KEY): seed, listed autoblog, farm list...
    kind: str  # farm | autoblog | not_autoblog (answered something else) | failed (no answer)
    why: str = ""  # what answered instead, for not_autoblog and failed

    @property
    def ok(self) -> bool:
        """Whether a farm or an autoblog answered."""
        return self.kind in ("farm", "autoblog")


@dataclass(frozen=True)
class RunInfo:
    """The run a crawl is part of, once the history knows it (``run_started``)."""

    id: int
    mode: str
    started: str
    resumed: bool
    # The run number the WARC files' warcinfo names (a cluster worker's is the cluster's).
    archive_id: int | None = None

    @property
    def warcinfo_id(self) -> int:
        """The run number the WARC files' warcinfo names."""
        return self.archive_id if self.archive_id is not None else self.id


# Sent by the spider before its first request: crawl_planned(plan=CrawlPlan).
crawl_planned = object()
# Sent by CrawlState once the history service started the run: run_started(run=RunInfo).
run_started = object()
# Sent by the spider for a fetch that failed: fetch_failed(request=Request, reason=str).
fetch_failed = object()
# Sent by the spider once it knows what answered at a seed or an autoblog's base URL:
# base_found(found=BaseFound).
base_found = object()
# Sent by WarcCapture once its files are closed: warc_files_closed(files=list[Path]).
warc_files_closed = object()
# Sent by the back-off when a host throttles the crawl (crawler.backoff):
# host_throttled(request=Request, delay=float), the least delay the host asked for.
host_throttled = object()
