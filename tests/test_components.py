"""Each crawl component is built alone, from plain values: no crawler, no lock, no SQLite.

What they do inside a real crawl is tested by the crawl tests (test_crawl.py,
test_recrawl.py, test_same_output.py ...); here, that each can be built and used on
its own, which is what lets a new extractor or a distributed frontier swap one of them.
"""

from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse
from support import default_context
from warcio.archiveiterator import ArchiveIterator

from crawler.extensions import IndexOnClose, RunSummary
from crawler.history.service import HistoryService
from crawler.items import REASON_KEY, ArticleItem, Captured, PageItem
from crawler.layout import OutputLayout
from crawler.middlewares import PageBounds, ResumeFromArchive
from crawler.scope import Refused
from crawler.services import Findings, RunResults
from crawler.warc.writer import RollingWarcWriter
from pipelines.research_corpus import CorpusPipeline
from pipelines.warc_capture import WarcCapture

BASE = "http://127.0.0.1:9/autoblogs/a/"
DEFAULTS = default_context()


def _response(url: str = BASE, body: bytes = b"<html><a href='?2'>2</a></html>"):
    request = Request(url, meta={REASON_KEY: "seed", "download_latency": 0.01})
    return HtmlResponse(url, status=200, body=body, request=request, headers={"X": "1"})


def test_warc_capture_writes_a_readable_group_without_a_crawl(tmp_path):
    layout = OutputLayout(tmp_path, "c")
    writer = RollingWarcWriter(layout.archive, "c", {"software": "test"}, 1 << 30)
    capture = WarcCapture(writer, max_outlinks=DEFAULTS.bounds.links_per_page)
    response = _response()
    captured = capture.capture(response, response.request)
    assert isinstance(captured, Captured) and captured.record_type == "response"
    capture.fetch_failed(Request(BASE + "?gone"), "connection refused")
    capture.writer.close()
    (path,) = layout.warcs()
    with open(path, "rb") as fh:
        records = [
            (r.rec_type, r.rec_headers.get_header("WARC-Target-URI")) for r in ArchiveIterator(fh)
        ]
    assert [t for t, _ in records] == ["warcinfo", "response", "request", "metadata", "metadata"]
    assert records[-1][1] == BASE + "?gone"
    assert captured.pointer.filename == path.name and capture.captured == 1


def test_capture_time_index_lines_equal_the_indexers_whatever_the_headers(tmp_path):
    """The capture-time index reads each line's fields from the record as built, not
    from its bytes: headers a parse would change (spaces at the ends, non-ASCII,
    percent-encoded by warcio) still give the line cdxj-indexer reads from the file."""
    from io import StringIO

    from cdxj_indexer.main import write_cdx_index

    from crawler.warc.cdxj import CLOSED_MARK, CaptureIndex

    layout = OutputLayout(tmp_path, "c")
    observer = CaptureIndex(layout.capture_index)
    writer = RollingWarcWriter(layout.archive, "c", {"software": "test"}, 1 << 30,
                               fsync=False, observer=observer)  # fmt: skip
    capture = WarcCapture(writer, max_outlinks=DEFAULTS.bounds.links_per_page)
    content_types = ["text/html; charset=utf-8", "  text/plain", "text/html\t", "t\xe9xt/html",
                     "text/html; name=\"\xe9t\xe9\"", ""]  # fmt: skip
    for n, content_type in enumerate(content_types):
        request = Request(f"{BASE}?{n}", meta={REASON_KEY: "seed"})
        headers = {"Content-Type": content_type.encode("latin-1"), "X-Odd": " v\xe9 "}
        capture.capture(HtmlResponse(request.url, body=b"<p>x</p>", headers=headers,
                                     request=request, status=200 + n), request)  # fmt: skip
    writer.close()
    observer.finish()
    made = [line for line in layout.capture_index.read_text().splitlines(keepends=True)
            if not line.startswith(CLOSED_MARK)]  # fmt: skip
    (path,) = layout.warcs()
    read = StringIO()
    write_cdx_index(read, [str(path)], {"sort": False, "dir_root": str(layout.archive)})
    assert len(made) == len(content_types) and made == read.getvalue().splitlines(keepends=True)


def test_history_service_touches_nothing_until_opened(tmp_path):
    options = DEFAULTS.history
    state = HistoryService(OutputLayout(tmp_path / "out", "c"), "full", options.full_every,
                           options.margin_pages, "", DEFAULTS.bounds.read_limit)  # fmt: skip
    assert not (tmp_path / "out").exists()
    assert state.find_original(BASE, "sha1:X") is None and not state.incremental
    # A page captured elsewhere, with its digests: no run opened, so nothing is noted.
    writer = RollingWarcWriter(tmp_path / "warcs", "c", {"software": "test"}, 1 << 30)
    capture = WarcCapture(writer, max_outlinks=DEFAULTS.bounds.links_per_page)
    response = _response()
    captured = capture.capture(response, response.request)
    capture.writer.close()
    page = PageItem(BASE, "index", 200, {}, b"", captured, autoblog=BASE, digest="sha1:D",
                    article_digests=[(BASE + "?a", "sha1:A")])  # fmt: skip
    state.note_page(page)
    assert not (tmp_path / "out").exists() and state.history is None


def test_page_bounds_refuse_past_the_bound():
    bounds = PageBounds(per_run=2, per_autoblog=0)
    for n in range(2):
        bounds.process_request(Request(f"{BASE}?{n}"))
    with pytest.raises(Refused):
        bounds.process_request(Request(BASE + "?3"))
    assert bounds.bound_reached == "MAX_PAGES_PER_RUN=2"
    # robots.txt is never counted, nor refused past the bound.
    assert bounds.process_request(Request("http://127.0.0.1:9/robots.txt")) is None
    assert bounds.fetched == 2


def test_resume_without_history_lets_everything_through():
    resume = ResumeFromArchive(None, DEFAULTS.bounds.read_limit)
    assert resume.process_request(Request(BASE)) is None


def test_items_feed_the_summary_and_the_page_titles(tmp_path):
    summary = RunSummary(Findings())
    indexes = IndexOnClose(OutputLayout(tmp_path, "c"), wacz=False, results=RunResults())
    page = PageItem(BASE, "index", 200, {}, b"", None, autoblog=BASE, engine="0.3", title="T")
    article = ArticleItem(BASE, "0.3", BASE + "?a", "A", None, None, BASE, "index", 200, None)
    for item in (page, article, article):
        summary.item_scraped(item)
        indexes.item_scraped(item)
    assert summary.found.autoblogs == {BASE: {"engine": "0.3", "pages": 1, "articles": 1}}
    assert indexes.titles.get(BASE) == "T" and len(indexes.titles) == 1


def test_corpus_pipeline_starts_no_worker_before_a_page(tmp_path):
    one = default_context(workers=1)
    pipeline = CorpusPipeline(OutputLayout(tmp_path, "c"), one.corpus, one.bounds.read_limit)
    assert pipeline.process_item(PageItem(BASE, "index", 200, {}, b"", None)) is not None
    assert pipeline.builder is None and not (tmp_path / "corpus").exists()


def test_a_request_naming_no_callback_is_read_within_the_link_bound():
    """Scrapy hands a response whose request names no callback (a shared frontier's entry
    may name none) to the spider's default callback: the page's links are bounded there
    too, as for every request the spider makes itself."""
    from crawler.cluster.frontier import spider_outside_crawl
    from crawler.context import project_settings
    from crawler.samplefarm.farm import Farm
    from crawler.samplefarm.options import FarmConfig

    farm = Farm(FarmConfig(host="127.0.0.1", port=9, autoblogs=6, articles=2))
    page = farm.handle("GET", "/", "127.0.0.1:9")  # the farm's index: its autoblogs, exports
    url = "http://127.0.0.1:9/"
    settings = project_settings().copy()
    settings.set("MAX_LINKS_PER_PAGE", 2, priority="cmdline")
    spider = spider_outside_crawl([url], [], settings)
    request = Request(url)
    response = HtmlResponse(url, body=page.body, headers=list(page.headers), request=request)
    assert request.callback is None  # Scrapy then calls the spider's _parse
    followed = [r for r in spider._parse(response) if isinstance(r, Request)]
    assert len(followed) == 2
    assert spider.crawler.stats.get_value("skipped/bound: MAX_LINKS_PER_PAGE=2") > 0
