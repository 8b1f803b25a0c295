"""The autoblog spider: walks a farm, or one autoblog, and everything a replay needs.

It follows only links the pages themselves show (farm list, ``?export``, pagination,
permalinks, media, feed/OPML/media exports, ``vvb.ini``, ``articles.db``, page
requisites), so it stops at the last page the engine lists instead of guessing.
What it may fetch is decided by :mod:`crawler.scope`; how pages are read, by
:mod:`crawler.parsing`. It writes nothing itself: it yields requests and typed items
(:mod:`crawler.items`), and asks the crawl history (:class:`crawler.extensions.CrawlState`)
what earlier runs archived.

    scrapy crawl autoblog -a url=http://127.0.0.1:8080/
    scrapy crawl autoblog -a url=http://farm/autoblogs/<folder>/ -a autoblogs=hidden1,hidden2
"""

from __future__ import annotations

import logging
from collections import Counter
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
from crawler.extensions.crawl_state import CrawlState
from crawler.failures import failure_reason
from crawler.farm_documents import (
    NestedTooDeeply,
    read_export,
    read_farm_page,
    read_media_list,
    read_sitemap,
)
from crawler.history.digests import page_digests
from crawler.history.model import NOT_NOW
from crawler.items import (
    REASON_KEY,
    ArticleItem,
    BaseFound,
    CrawlPlan,
    PageItem,
    base_found,
    captured_of,
    crawl_planned,
    fetch_failed,
)
from crawler.outcome import Finish
from crawler.parsing import ENGINE_FILES, MAX_TAGS, ParsedPage, parse_page
from crawler.processes import Share
from crawler.scope import Refused, Scope, forbidden_reason
from crawler.urls import autoblog_base, canonical_url

logger = logging.getLogger(__name__)

# What the last run's audit found missing goes out before anything else of this run.
MISSING_PRIORITY = 10
FARM_EXPORTS = ("?export", "?exportopml", "?sitemap", "?rss")
# Why a seed or an autoblog's base URL is asked for: what answers there is reported
# (``base_found``), so an autoblog that gives no page is named, never silently missing.
BASE_REASONS = ("seed", "listed autoblog", "farm list", "farm export")
# Re-rooted on the autoblog base: 0.2 pages link "?feed" relative to every page.
AUTOBLOG_QUERY_RESOURCES = {"feed", "opml", "media"}


def split_list(value: str | list[str] | None) -> list[str]:
    if not value:
        return []
    if isinstance(value, list):
        return [v for v in value if v]
    return [v.strip() for v in value.replace("\n", ",").split(",") if v.strip()]


class AutoblogSpider(Spider):
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
        self.state: CrawlState | None = None  # the crawl history, once the crawl starts
        self._engines: dict[str, str] = {}  # autoblog base -> engine, as first seen
        self._known_pages: Counter[str] = Counter()
        # URLs of links every page repeats, once requested: see _follow_new.
        self._requested: set[str] = set()
        # Autoblog base -> whether this incremental run walks it in full (see first_walk).
        self._first_walk: dict[str, bool] = {}

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> AutoblogSpider:
        """The options come from the crawl's context, never from ``-a`` arguments."""
        context = RunContext.of(crawler)
        kwargs.update(bounds=context.bounds, share=Share.of(context.processes))
        return super().from_crawler(crawler, *args, **kwargs)

    async def start(self) -> AsyncIterator[Request]:
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
        """Before any request: the plan starts the run (CrawlState) and arms the scope
        guard. A spider used outside a crawl (``seed``, ``reconcile``) has no one to tell."""
        crawler = self.crawler
        try:
            self.state = crawler.get_extension(CrawlState)
        except RuntimeError:  # no extensions yet: nobody listens
            return
        named = [base for seed in self.seeds for base in self.named_on(seed)]
        plan = CrawlPlan(seeds=list(self.seeds), scope=self.scope, named=named, share=self.share)
        crawler.signals.send_catch_log(crawl_planned, plan=plan)
        if self.state is not None and self.state.run is None:
            # The history could not start a run (the error is in the log): nothing may be
            # fetched outside it, or later runs would not know what this one archived.
            raise CloseSpider(Finish.HISTORY_ERROR)

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
                self._base_answered(request, "failed", why, count=True)
            elif not robots and request.meta.get("redirect_times"):
                why = f"redirects to {request.url[:300]}, out of scope (give that URL instead)"
                self._base_answered(request, "not_autoblog", why, count=True)
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
            self._base_answered(request, "failed", f"did not answer ({reason_text})")

    # -- what answered at a seed or an autoblog's base URL ---------------------------

    @staticmethod
    def _asked_base(request: Request) -> tuple[str, str] | None:
        """(URL as asked, why) when ``request`` asks for a seed or an autoblog's base."""
        reason = request.meta.get(REASON_KEY)
        if reason not in BASE_REASONS:
            return None
        url = (request.meta.get("redirect_urls") or [request.url])[0]
        return None if "?" in url else (url, reason)  # the farm's ?export is no autoblog

    def _base_answered(
        self, request: Request, kind: str, why: str = "", count: bool = False
    ) -> None:
        """Report what answered; ``count`` a failure not counted yet (an answer, not a
        failed fetch) under ``autoblogs/not_archived``, which makes the run partial."""
        asked = self._asked_base(request)
        if asked is None:
            return
        found = BaseFound(asked[0], asked[1], kind, why)
        if count and not found.ok:
            self.crawler.stats.inc_value(Stat.NOT_ARCHIVED)
        self.crawler.signals.send_catch_log(base_found, found=found)

    def _base_read(self, response: Response, page: ParsedPage | None) -> None:
        """A seed must hold a farm or an autoblog, an autoblog's base an autoblog page;
        anything else (a 404, a server error, a PNG, another site) is named and makes the
        run partial (``autoblogs/not_archived``)."""
        asked = self._asked_base(response.request) if response.request is not None else None
        if asked is None:
            return
        status = response.status
        ctype = response.headers.get(b"Content-Type", b"").decode("latin-1").split(";")[0]
        # The server's words go into the summary and the terminal: short and printable.
        ctype = "".join(c for c in ctype.strip().lower()[:80] if c.isprintable())
        ctype = ctype or "with no Content-Type"
        found = page.kind if page is not None and page.kind == "farm" else None
        if page is not None and page.engine and found is None:
            found = "autoblog"
        if status < 400 and (found == "autoblog" or (found == "farm" and asked[1] == "seed")):
            self._base_answered(response.request, found)
            return
        if status == 404 and asked[1] == "farm export":
            # ?export names folders, not addresses: a 0.2 autoblog is at /<sha1>/, its
            # export key autoblogs/<sha1>; the farm's index lists it where it is.
            return
        # A server error or "too many requests / too slow" is no answer yet (2: try again);
        # anything else says the address is wrong (4: fix the command).
        failed = status >= 500 or status in NOT_NOW
        if failed:
            why = f"answered {status} {ctype}"  # what it serves otherwise is unknown
        elif page is None:
            why = f"answered {status} {ctype}, not an HTML page"
        elif found == "farm":
            why = f"answered {status} {ctype}: the farm's index, not an autoblog"
        elif found is None:
            what = "an autoblog farm or autoblog" if asked[1] == "seed" else "an autoblog"
            why = f"answered {status} {ctype} but is not {what} (no VroumVroumBlog markup)"
        else:
            why = f"answered {status} {ctype}"
        kind = "failed" if failed else "not_autoblog"
        self._base_answered(response.request, kind, why, count=True)

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
            retry = get_retry_request(response.request, spider=self, reason="dataloss")
            if retry is not None:
                yield retry
            else:
                logger.warning("gave up on %s: body truncated on every attempt", response.url)
                self.crawler.stats.inc_value(Stat.FETCH_ERRORS)
                self._base_answered(response.request, "failed", "body cut short on every attempt")
            return
        ctype = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
        query = urlsplit(response.url).query
        if "json" in ctype or query in ("export", "media"):
            yield from self.parse_json(response)
        elif "xml" in ctype and query == "sitemap":
            yield from self.parse_sitemap(response)
        elif isinstance(response, TextResponse) and "html" in ctype:
            yield from self.parse_html(response)
            return
        self._base_read(response, None)

    def parse_json(self, response: Response) -> Iterator[Request | LinksCut]:
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
        locs, cut = read_sitemap(response.body, self.bounds.links_per_page)
        if cut:
            yield LinksCut(cut)
        for loc in locs:
            yield from self._follow(loc, "sitemap", refresh=True)

    def parse_html(self, response: TextResponse) -> Iterator[Any]:
        page = parse_page(response.text, response.url, max_links=self.bounds.links_per_page)
        self.crawler.stats.inc_value(PAGES + page.kind)
        self._base_read(response, page)
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
        yield self.page_item(response, page, base, digest, article_digests)
        first_sight = bool(page.engine) and base not in self._engines
        if page.engine:
            self._engines.setdefault(base, page.engine)
        yield from self.unarchived_pages(response, page, base)
        if self.unchanged_since_last_run(response, base, digest):
            return
        yield from self.old_last_page(response, page, base)
        if first_sight:
            for name in ENGINE_FILES.get(page.engine, ()):
                yield from self._follow(base + name, "engine file", refresh=True)
        walk = [] if response.meta.get("tail_page") else self.pages_to_walk(page, base)
        for link in walk:
            yield from self._follow_new(link, "pagination", refresh=True)
        for article in page.articles:
            if page.kind == "index":
                yield from self._follow(article.permalink, "permalink")
            for media in article.media:
                yield from self._follow(media, "article media")
            yield self.article_item(response, page.kind, page.engine, article)
        for link in page.requisites:
            yield from self._follow_new(link, "page requisite")
        if page.kind in ("index", "article", "not_found", "search", "error", "other"):
            for extra in self.autoblog_files(page.links, base):
                yield from self._follow_new(extra, "autoblog file", refresh=True)

    # -- crawl history ------------------------------------------------------------

    def unchanged_since_last_run(self, response: Response, base: str, digest: str | None) -> bool:
        """Incremental runs skip an autoblog whose first page lists the same articles."""
        state = self.state
        if state is None or not state.incremental or response.url != base or digest is None:
            return False
        previous = state.archived_before(response.url)
        if previous is None or previous.normalized_digest != digest:
            return False
        self.crawler.stats.inc_value(Stat.UNCHANGED_AUTOBLOGS)
        return True

    def unarchived_pages(
        self, response: Response, page: ParsedPage, base: str
    ) -> Iterator[Request]:
        """Incremental runs: the pages an autoblog's first page lists that no run captured.

        When an autoblog gains articles its pagination shifts and new last pages appear
        past where the newest-first walk stops; without them the archive's newest pages
        link to pages it does not hold. Each is fetched once (``_follow`` skips what an
        earlier run archived) and does not continue the walk (``tail_page``).
        """
        state = self.state
        if state is None or not state.incremental or response.url != base:
            return
        if self.first_walk(base):
            return  # walked in full: its pages are not tail pages
        for link in page.page_links:
            if link != base and state.archived_before(link) is None:
                self.crawler.stats.inc_value(Stat.UNARCHIVED_PAGES)
                yield from self._follow(link, "unarchived page", meta={"tail_page": True})

    def pages_to_walk(self, page: ParsedPage, base: str) -> list[str]:
        """All listed pages in a full pass; newest first, until known articles, otherwise.

        An incremental run follows "older" only while pages still show articles no
        earlier run archived, plus ``INCREMENTAL_MARGIN_PAGES`` pages of margin, and
        always into a page no run captured. An autoblog no earlier run archived is
        walked in full (:meth:`first_walk`).
        """
        state = self.state
        if state is None or not state.incremental or self.first_walk(base):
            return page.page_links
        if page.kind != "index" or page.next_page is None:
            return []
        if state.archived_before(page.next_page) is None:
            # Past where earlier walks ended: a 0.1 engine's new tail is only reached so.
            return [page.next_page]
        if any(a.permalink and not state.article_known_before(a.permalink) for a in page.articles):
            self._known_pages[base] = 0
        else:
            self._known_pages[base] += 1
        if self._known_pages[base] > state.margin_pages:
            self.crawler.stats.inc_value(Stat.WALKS_STOPPED)
            return []
        return [page.next_page]

    def first_walk(self, base: str) -> bool:
        """Whether this incremental run walks an autoblog in full: no earlier run archived
        its first page, so there is nothing known to stop at. (A 0.1 engine links only the
        next page: cut where the incremental rule stops, it stayed cut for good.)"""
        state = self.state
        if state is None or not state.incremental:
            return False
        if base not in self._first_walk:
            self._first_walk[base] = state.archived_before(base) is None
        return self._first_walk[base]

    def old_last_page(self, response: Response, page: ParsedPage, base: str) -> Iterator[Request]:
        """Incremental runs, an engine that links only the next page (0.1), first page
        changed: the last page an earlier run archived is fetched again. Growth pushed
        articles past it onto pages page 1 does not name; from it the walk goes on into
        the pages no run captured (:meth:`pages_to_walk`)."""
        state = self.state
        following = page.next_page
        if state is None or not state.incremental or response.url != base or following is None:
            return
        if set(page.page_links) != {following} or self.first_walk(base):
            return
        last = state.last_numbered_page(following)
        if last is not None and last != canonical_url(following):
            self.crawler.stats.inc_value(Stat.OLD_LAST_PAGES)
            yield from self._follow(last, "last archived page", refresh=True)

    @staticmethod
    def autoblog_files(links: list[str], base: str) -> list[str]:
        """Feed, OPML, media list, vvb.ini and articles.db, re-rooted on the autoblog base."""
        found: list[str] = []
        for link in links:
            parts = urlsplit(link)
            if parts.query in AUTOBLOG_QUERY_RESOURCES:
                found.append(base + "?" + parts.query)
            elif parts.path.endswith(("/vvb.ini", "/articles.db")) and not parts.query:
                found.append(link)
        return found

    def parse_farm(self, response: TextResponse) -> Iterator[Request | LinksCut]:
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

    def page_item(
        self,
        response: TextResponse,
        page: ParsedPage,
        base: str,
        digest: str | None,
        article_digests: list[tuple[str, str]],
    ) -> PageItem:
        """The captured page itself (body as Scrapy decoded it), with what the history keeps."""
        if page.kind == "article" and page.articles:
            title = page.articles[0].title
        else:
            title = page.site_title or None
        captured = captured_of(response.meta)
        return PageItem(
            url=response.url,
            kind=page.kind,
            http_status=response.status,
            headers=response.headers,
            body=response.body,
            captured=captured,
            autoblog=base,
            engine=page.engine,
            title=title,
            digest=digest,
            article_digests=article_digests,
            parsed=page,
            text=response.text,
        )

    def article_item(
        self, response: Response, kind: str, engine: str | None, article
    ) -> ArticleItem:
        """One item per article block seen (the summary counts distinct permalinks)."""
        return ArticleItem(
            autoblog=autoblog_base(response.url),
            engine=engine,
            permalink=article.permalink,
            title=article.title,
            date_text=article.date_text,
            source_url=article.source_url,
            seen_on=response.url,
            seen_as=kind,
            http_status=response.status,
            captured=captured_of(response.meta),
        )
