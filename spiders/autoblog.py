"""The autoblog spider: walks a farm, or one autoblog, and everything a replay needs.

It follows only links the pages themselves show (farm list, ``?export``, pagination,
permalinks, media, feed/OPML/media exports, ``vvb.ini``, ``articles.db``, page
requisites), so it stops at the last page the engine lists instead of guessing.
What it may fetch is decided by :mod:`crawler.scope`; how pages are read, by
:mod:`crawler.parsing`. It writes nothing itself: it yields requests and typed items
(:mod:`crawler.items`), and asks the crawl history (:mod:`crawler.history.service`)
what earlier runs archived.

    scrapy crawl autoblog -a url=http://127.0.0.1:8080/
    scrapy crawl autoblog -a url=http://farm/autoblogs/<folder>/ -a autoblogs=hidden1,hidden2
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy import Request, Spider
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import CloseSpider, IgnoreRequest
from scrapy.http import Response, TextResponse

from crawler.bounds import LinksCut, bounded_links, read_in_part
from crawler.context import Bounds, RunContext
from crawler.counters import PAGES, Stat, error_reason, skipped
from crawler.failures import failure_reason
from crawler.farm_documents import (
    NestedTooDeeply,
    read_export,
    read_farm_page,
    read_media_list,
    read_sitemap,
)
from crawler.history.digests import page_digests
from crawler.history.service import HistoryService
from crawler.items import (
    REASON_KEY,
    CrawlPlan,
    captured_of,
    crawl_planned,
    fetch_failed,
)
from crawler.outcome import Finish
from crawler.parsing import ENGINE_FILES, MAX_TAGS, parse_page
from crawler.processes import Share
from crawler.scope import Refused, Scope, forbidden_reason
from crawler.services import history_of
from crawler.urls import autoblog_base, autoblog_files
from spiders.base_answers import base_answered, base_read
from spiders.incremental import IncrementalWalk
from spiders.page_items import article_item, page_item

logger = logging.getLogger(__name__)

# What the last run's audit found missing goes out before anything else of this run.
MISSING_PRIORITY = 10
FARM_EXPORTS = ("?export", "?exportopml", "?sitemap", "?rss")


def split_list(value: str | list[str] | None) -> list[str]:
    """A list option's values (a comma-separated string or a list)."""
    if not value:
        return []
    if isinstance(value, list):
        return [v for v in value if v]
    return [v.strip() for v in value.replace("\n", ",").split(",") if v.strip()]


class AutoblogSpider(Spider):
    """Crawls a farm or autoblogs, following what the pages show."""

    name = "autoblog"
    # The methods a request may name as its callback or errback: all that an entry of a
    # shared frontier (crawler.cluster.frontier.FrontierQueue) may ask a worker to call.
    request_callbacks = frozenset({"parse", "failed"})

    def __init__(
        self,
        url: str | None = None,
        urls: str | list[str] | None = None,
        autoblogs: str | list[str] | None = None,
        allow_hosts: str | list[str] | None = None,
        *,
        bounds: Bounds,
        share: Share | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bounds = bounds  # links per page, URL length, body size (crawler.context)
        self.share = share  # crawl --processes: the autoblogs this one crawls
        self.seeds = split_list(url) + split_list(urls)
        if not self.seeds:
            raise ValueError("give the farm or autoblog URL: -a url=http://farm.example/")
        self.seeds = [s if urlsplit(s).path else s + "/" for s in self.seeds]
        self.extra_autoblogs = split_list(autoblogs)
        self.scope = Scope([autoblog_base(s) for s in self.seeds], split_list(allow_hosts))
        self.state: HistoryService | None = None  # the crawl history, once the crawl starts
        self._engines: dict[str, str] = {}  # autoblog base -> engine, as first seen
        # URLs of links every page repeats, once requested: see _follow_new.
        self._requested: set[str] = set()
        self.walk: IncrementalWalk | None = None  # an incremental run's rules

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> AutoblogSpider:
        """The options come from the crawl's context, never from ``-a`` arguments."""
        context = RunContext.of(crawler)
        kwargs.update(bounds=context.bounds, share=Share.of(context.processes))
        return super().from_crawler(crawler, *args, **kwargs)

    async def start(self) -> AsyncIterator[Request]:
        """The crawl plan, then what the last run missed, then the seeds."""
        self.send_plan()
        for request in self.missing_requests():
            yield request
        for seed in self.seeds:
            yield self._request(seed, "seed")
            for base in self.named_on(seed):
                if self.share is None or self.share.keeps(base, "listed autoblog"):
                    yield self._request(base, "listed autoblog")

    def named_on(self, seed: str) -> list[str]:
        """The base URLs of the autoblogs named with ``autoblogs`` (hidden ones) on a seed."""
        return [
            urljoin(seed, folder if "://" in folder else f"autoblogs/{folder.strip('/')}/")
            for folder in self.extra_autoblogs
        ]

    def missing_requests(self) -> Iterator[Request]:
        """What the last run's audit found missing (crawler.history.audit), first, whatever
        this run's mode: nothing else would fetch it again."""
        if self.state is None:
            return
        for item in self.state.missing_before():
            for request in self._follow(item.url, f"missing {item.what}", refresh=True):
                yield request.replace(priority=MISSING_PRIORITY)

    def send_plan(self) -> None:
        """Before any request: the plan starts the run (the history service) and arms the
        scope guard. A spider used outside a crawl (``seed``, ``reconcile``) has no history."""
        crawler = self.crawler
        self.state = history_of(crawler)
        named = [base for seed in self.seeds for base in self.named_on(seed)]
        plan = CrawlPlan(seeds=list(self.seeds), scope=self.scope, named=named, share=self.share)
        crawler.signals.send_catch_log(crawl_planned, plan=plan)
        if self.state is not None and self.state.run is None:
            # The history could not start a run (the error is in the log): nothing may be
            # fetched outside it, or later runs would not know what this one archived.
            raise CloseSpider(Finish.HISTORY_ERROR)
        if self.state is not None and self.state.incremental:
            self.walk = IncrementalWalk(self.state, crawler.stats)

    # -- requests ---------------------------------------------------------------

    def _request(self, url: str, reason: str, **kwargs: Any) -> Request:
        return Request(
            url, callback=self.parse, errback=self.failed, meta={REASON_KEY: reason}, **kwargs
        )

    def _follow(
        self, url: str | None, reason: str, refresh: bool = False, meta: dict | None = None
    ) -> Iterator[Request]:
        """Yield a request if the URL is in scope and harmless; skip silently otherwise.

        In an incremental run, what an earlier run archived is not fetched again unless
        ``refresh`` says it changes over time (pages, feeds, exports).
        """
        if not url:
            return
        url = url.split("#", 1)[0]
        limit = self.bounds.url_length
        reason_not = forbidden_reason(url)
        if reason_not is None and limit and len(url) > limit:
            reason_not = f"URL longer than {limit} characters"
        if reason_not is not None:
            self.crawler.stats.inc_value(skipped(reason_not))
            return
        if not self.scope.allows(url):
            self.crawler.stats.inc_value(skipped("out of scope (not followed)"))
            return
        state = self.state
        headers: dict[str, str] = {}
        if state is not None and state.incremental:
            if not refresh and state.archived_before(url) is not None:
                self.crawler.stats.inc_value(Stat.ALREADY_ARCHIVED)
                return
            if refresh:
                headers = state.validators(url)
        request = self._request(url, reason, headers=headers)
        request.meta.update(meta or {})
        yield request

    def _follow_new(self, url: str, reason: str, refresh: bool = False) -> Iterator[Request]:
        """``_follow`` for links most pages repeat (every page number, the stylesheet, the
        feed): once a request for the URL was yielded, later sightings are skipped here.

        The dupe filter would drop them anyway; skipping them first saves building and
        fingerprinting a request per sighting, which made an autoblog of P pages cost P²
        (every index page links every page number, as the real engine's ``<nav>`` does).
        Only yielded URLs are remembered, so a link skipped once (out of scope, archived
        before) is still judged again where it shows up with ``refresh``.
        """
        if url in self._requested:
            return
        for request in self._follow(url, reason, refresh=refresh):
            self._requested.add(url)
            yield request

    def failed(self, failure: Any) -> None:
        """Count a failed fetch and say why."""
        request = getattr(failure, "request", None)
        robots = failure.check(IgnoreRequest) and "robots.txt" in str(failure.value)
        if failure.check(Refused) or robots:
            # Refused on purpose (scope, bound, robots.txt): counted under skipped. A seed
            # robots.txt forbids, a seed or an autoblog redirecting off scope is still
            # named (a bound is reported as such; autoblogs robots.txt forbids, skipped).
            if request is None:
                return
            if robots and request.meta.get(REASON_KEY) == "seed":
                why = "refused by the farm's robots.txt"
                base_answered(self.crawler, request, "failed", why, count=True)
            elif not robots and request.meta.get("redirect_times"):
                why = f"redirects to {request.url[:300]}, out of scope (give that URL instead)"
                base_answered(self.crawler, request, "not_autoblog", why, count=True)
            return
        reason = failure_reason(failure, self.bounds.read_limit)
        detail = str(failure.value).strip()[:300]
        if reason == type(failure.value).__name__ and detail:
            reason_text = f"{reason}: {detail}"
        else:
            reason_text = reason
        url = request.url if request else "?"
        logger.warning("failed: %s (%s)", url, reason_text)
        self.crawler.stats.inc_value(Stat.FETCH_ERRORS)
        self.crawler.stats.inc_value(error_reason(reason))
        if request is not None:
            self.crawler.signals.send_catch_log(fetch_failed, request=request, reason=reason_text)
            base_answered(self.crawler, request, "failed", f"did not answer ({reason_text})")

    # -- parsing ----------------------------------------------------------------

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        """Every page's output (the callback of every request), with at most
        ``MAX_LINKS_PER_PAGE`` requests."""
        output = self.read_page(response)
        if self.share is not None and self.share.owner_of(response.url) is None:
            output = self._my_share(output)
        return bounded_links(output, self.bounds.links_per_page, self.crawler.stats, response.url)

    def _my_share(self, output: Iterator[Any]) -> Iterator[Any]:
        """``crawl --processes``: of a farm-level page's links (farm list, exports,
        sitemap), those into another process's autoblogs are left to that process. Links
        found on autoblog pages are all followed, as in a one-process crawl: a link from
        one autoblog into another is then fetched at worst twice, never missed."""
        assert self.share is not None
        for item in output:
            if isinstance(item, Request) and not self.share.keeps(
                item.url, item.meta.get(REASON_KEY)
            ):
                self.crawler.stats.inc_value(skipped("autoblog of another process"))
                continue
            yield item

    def read_page(self, response: Response) -> Iterator[Any]:
        """What a page gives, by what it is (JSON export, sitemap, HTML page)."""
        if "dataloss" in response.flags:
            # Captured as WARC-Truncated; fetch again rather than read half a page.
            request = response.request
            assert request is not None  # a callback's response carries its request
            retry = get_retry_request(request, spider=self, reason="dataloss")
            if retry is not None:
                yield retry
            else:
                logger.warning("gave up on %s: body truncated on every attempt", response.url)
                self.crawler.stats.inc_value(Stat.FETCH_ERRORS)
                base_answered(self.crawler, request, "failed", "body cut short on every attempt")
            return
        ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        query = urlsplit(response.url).query
        if "json" in ctype or query in ("export", "media"):
            yield from self.parse_json(response)
        elif "xml" in ctype and query == "sitemap":
            yield from self.parse_sitemap(response)
        elif isinstance(response, TextResponse) and "html" in ctype:
            yield from self.parse_html(response)
            return
        base_read(self.crawler, response, None)

    def parse_json(self, response: Response) -> Iterator[Request | LinksCut]:
        """Follow the autoblogs or media of a farm's ``?export`` or ``?media``."""
        query = urlsplit(response.url).query
        if query not in ("export", "media"):
            return
        limit = self.bounds.links_per_page
        try:
            if query == "export":
                bases, cut = read_export(response.body, response.urljoin("./"), limit)
            else:
                folder, names, cut = read_media_list(response.body, limit)
        except NestedTooDeeply:
            logger.error("JSON nested too deeply to read: %s", response.url)
            self.crawler.stats.inc_value(Stat.FETCH_ERRORS)
            self.crawler.stats.inc_value(error_reason("JSON nested too deeply"))
            return
        except ValueError:
            logger.warning("not JSON: %s", response.url)
            return
        if cut:
            yield LinksCut(cut)
        if query == "export":
            for base in bases:
                yield from self._follow(base, "farm export", refresh=True)
            return
        if not isinstance(folder, str) or not self.scope.allows(folder):
            # The listed folder is the farm's own idea of its host name; keep ours.
            folder = urljoin(autoblog_base(response.url), "media/")
        for name in names:
            yield from self._follow(urljoin(folder, name), "media list")

    def parse_sitemap(self, response: Response) -> Iterator[Request | LinksCut]:
        """Follow the sitemap's locations."""
        locs, cut = read_sitemap(response.body, self.bounds.links_per_page)
        if cut:
            yield LinksCut(cut)
        for loc in locs:
            yield from self._follow(loc, "sitemap", refresh=True)

    def parse_html(self, response: TextResponse) -> Iterator[Any]:
        """Read an HTML page: its items and the links it shows."""
        page = parse_page(response.text, response.url, max_links=self.bounds.links_per_page)
        self.crawler.stats.inc_value(PAGES + page.kind)
        base_read(self.crawler, response, page)
        if page.kind == "farm":  # its list is read whole, apart from this parse
            yield from self.parse_farm(response)
            return
        if page.tags_cut:
            read_in_part(self.crawler.stats, response.url, f"page of more than {MAX_TAGS} tags")
        if page.links_cut:
            yield LinksCut(page.links_cut)
        # Digests only of archived pages: the history keeps them per capture.
        captured = captured_of(response.meta) is not None
        digest, article_digests = page_digests(page) if captured else (None, [])
        base = autoblog_base(response.url)
        yield page_item(response, page, base, digest, article_digests)
        first_sight = bool(page.engine) and base not in self._engines
        if page.engine:
            self._engines.setdefault(base, page.engine)
        walk = self.walk
        if walk is not None:
            for link in walk.unarchived_pages(response.url, page, base):
                yield from self._follow(link, "unarchived page", meta={"tail_page": True})
            if walk.unchanged(response.url, base, digest):
                return
            last = walk.old_last_page(response.url, page, base)
            yield from self._follow(last, "last archived page", refresh=True)
        if first_sight:
            for name in ENGINE_FILES.get(page.engine or "", ()):
                yield from self._follow(base + name, "engine file", refresh=True)
        if response.meta.get("tail_page"):
            links = []
        else:
            links = walk.pages_to_walk(page, base) if walk is not None else page.page_links
        for link in links:
            yield from self._follow_new(link, "pagination", refresh=True)
        for article in page.articles:
            if page.kind == "index":
                yield from self._follow(article.permalink, "permalink")
            for media in article.media:
                yield from self._follow(media, "article media")
            yield article_item(response, page.kind, page.engine, article)
        for link in page.requisites:
            yield from self._follow_new(link, "page requisite")
        if page.kind in ("index", "article", "not_found", "search", "error", "other"):
            for extra in autoblog_files(page.links, base):
                yield from self._follow_new(extra, "autoblog file", refresh=True)

    def parse_farm(self, response: TextResponse) -> Iterator[Request | LinksCut]:
        """Follow the farm's autoblogs."""
        root = response.urljoin("./")
        farm = read_farm_page(response.text, response.url, self.bounds.links_per_page, FARM_EXPORTS)
        if farm.cut:
            yield LinksCut(farm.cut)
        for base in farm.autoblogs:
            yield from self._follow(base, "farm list", refresh=True)
        for export in FARM_EXPORTS:
            if export in farm.linked or export == "?export":
                yield from self._follow(root + export, "farm export", refresh=True)
        for src in farm.requisites:
            yield from self._follow_new(src, "page requisite")
