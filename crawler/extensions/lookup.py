"""Asking other components of the same crawl, the way Scrapy provides (``get_extension``,
``get_downloader_middleware``), for the few answers that span them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from scrapy.crawler import Crawler

from crawler.context import RunContext

T = TypeVar("T")


def downloader_middleware(crawler: Crawler, cls: type[T]) -> T | None:
    """The crawl's instance of a downloader middleware, or None (also before the engine)."""
    return _engine_component(crawler.get_downloader_middleware, cls)


def item_pipeline(crawler: Crawler, cls: type[T]) -> T | None:
    """The crawl's instance of an item pipeline, or None (also before the engine)."""
    return _engine_component(crawler.get_item_pipeline, cls)


def _engine_component(get: Callable[[type[T]], T | None], cls: type[T]) -> T | None:
    try:
        return get(cls)
    except RuntimeError:  # Scrapy's answer before the engine exists
        return None


def captures_held(crawler: Crawler) -> int:
    """What makes this crawl a run: the autoblog pages it holds (captured now, or read back
    in a resumed run).

    Zero means the run found nothing worth keeping (a dead URL, a plain web site, a farm
    whose autoblogs all failed): nothing it did may stay behind, or the next crawl into
    the folder would run as incremental on top of it. A cluster worker keeps every
    capture: the shared queue gave that request to no other worker.
    """
    from crawler.extensions.run_summary import RunSummary
    from crawler.middlewares import ResumeFromArchive
    from pipelines.warc_capture import WarcCapture

    found = crawler.get_extension(RunSummary)
    if found is not None and not RunContext.of(crawler).cluster.enabled:
        return found.autoblog_pages
    capture = crawler.get_extension(WarcCapture)
    resume = downloader_middleware(crawler, ResumeFromArchive)
    return (capture.captured if capture else 0) + (resume.read_back if resume else 0)


def page_bound_reached(crawler: Crawler) -> str | None:
    """The page bound that refused requests in this crawl (``MAX_PAGES_PER_RUN=20000``)."""
    from crawler.middlewares import PageBounds

    bounds = downloader_middleware(crawler, PageBounds)
    return bounds.bound_reached if bounds is not None else None
