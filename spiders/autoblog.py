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

import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy import Request, Selector, Spider
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse

from crawler.bounds import bounded_links
from crawler.extensions.crawl_state import CrawlState
from crawler.failures import failure_reason
from crawler.history.digests import page_digests
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
from crawler.parsing import ParsedPage, export_autoblog_links, farm_autoblog_links, parse_page
from crawler.processes import Share
from crawler.scope import Refused, Scope, forbidden_reason
from crawler.urls import autoblog_base

logger = logging.getLogger(__name__)

FARM_EXPORTS = ("?export", "?exportopml", "?sitemap", "?rss")
# Why a seed or an autoblog's base URL is asked for: what answers there is reported
# (``base_found``), so an autoblog that gives no page is named, never silently missing.
BASE_REASONS = ("seed", "listed autoblog", "farm list", "farm export")
# Re-rooted on the autoblog base: 0.2 pages link "?feed" relative to every page.
AUTOBLOG_QUERY_RESOURCES = {"feed", "opml", "media"}
# What each engine serves beside its pages, linked or not (0.1 links only its feed).
ENGINE_FILES = {
    "0.3": ("?feed", "?opml", "?media", "vvb.ini", "articles.db"),
    "2025": ("?feed", "?opml", "?media", "vvb.ini", "articles.db"),
    "0.3.0": ("?feed", "?opml", "?media", "vvb.ini", "articles.db"),
    "0.2": ("?feed", "vvb.ini", "articles.db"),
    "0.1": ("?feed", "vvb.ini", "articles.db"),
}


def split_list(value: str | list[str] | None) -> list[str]:
    if not value:
        return []
    if isinstance(value, list):
        return [v for v in value if v]
    return [v.strip() for v in value.replace("\n", ",").split(",") if v.strip()]


class AutoblogSpider(Spider):
    name = "autoblog"

    def __init__(
        self,
        url: str | None = None,
        urls: str | list[str] | None = None,
        autoblogs: str | list[str] | None = None,
        allow_hosts: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
        self.share: Share | None = None  # crawl --processes: the autoblogs this one crawls

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> AutoblogSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.max_url_length = crawler.settings.getint("URLLENGTH_LIMIT")
        spider.max_links = crawler.settings.getint("MAX_LINKS_PER_PAGE")
        spider.share = Share.from_settings(crawler.settings)
        return spider

    async def start(self) -> AsyncIterator[Request]:
        self.send_plan()
        for seed in self.seeds:
            yield self._request(seed, "seed")
            if self.extra_autoblogs:
                for folder in self.extra_autoblogs:
                    target = folder if "://" in folder else f"autoblogs/{folder.strip('/')}/"
                    base = urljoin(seed, target)
                    if self.share is None or self.share.keeps(base, "listed autoblog"):
                        yield self._request(base, "listed autoblog")

    def send_plan(self) -> None:
        """Before any request: the plan starts the run (CrawlState) and arms the scope
        guard. A spider used outside a crawl (``seed``, ``reconcile``) has no one to tell."""
        crawler = getattr(self, "crawler", None)
        if crawler is None:
            return
        try:
            self.state = crawler.get_extension(CrawlState)
        except RuntimeError:  # built by get_crawler, no extensions: nobody listens
            return
        plan = CrawlPlan(seeds=list(self.seeds), scope=self.scope)
        crawler.signals.send_catch_log(crawl_planned, plan=plan)

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
        limit = getattr(self, "max_url_length", 0)
        reason_not = forbidden_reason(url)
        if reason_not is None and limit and len(url) > limit:
            reason_not = f"URL longer than {limit} characters"
        if reason_not is not None:
            self.crawler.stats.inc_value(f"skipped/{reason_not}")
            return
        if not self.scope.allows(url):
            self.crawler.stats.inc_value("skipped/out of scope (not followed)")
            return
        state = self.state
        headers: dict[str, str] = {}
        if state is not None and state.incremental:
            if not refresh and state.archived_before(url) is not None:
                self.crawler.stats.inc_value("incremental/already_archived")
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
        reason = failure_reason(failure, self.crawler.settings.getint("DOWNLOAD_MAXSIZE"))
        detail = str(failure.value).strip()[:300]
        if reason == type(failure.value).__name__ and detail:
            reason_text = f"{reason}: {detail}"
        else:
            reason_text = reason
        url = request.url if request else "?"
        logger.warning("failed: %s (%s)", url, reason_text)
        self.crawler.stats.inc_value("errors/fetch")
        self.crawler.stats.inc_value(f"errors/{reason}")
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
            self.crawler.stats.inc_value("autoblogs/not_archived")
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
        if page is None:
            why = f"answered {status} {ctype}, not an HTML page"
        elif found == "farm":
            why = f"answered {status} {ctype}: the farm's index, not an autoblog"
        elif found is None:
            what = "an autoblog farm or autoblog" if asked[1] == "seed" else "an autoblog"
            why = f"answered {status} {ctype} but is not {what} (no VroumVroumBlog markup)"
        else:
            why = f"answered {status} {ctype}"
        # A server error or "too many requests / too slow" is no answer yet (2: try again);
        # anything else says the address is wrong (4: fix the command).
        kind = "failed" if status >= 500 or status in (408, 429) else "not_autoblog"
        self._base_answered(response.request, kind, why, count=True)

    # -- parsing ----------------------------------------------------------------

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        """Every page's output, with at most ``MAX_LINKS_PER_PAGE`` requests."""
        limit = getattr(self, "max_links", 0)
        output = self._parse(response)
        if self.share is not None and self.share.owner_of(response.url) is None:
            output = self._my_share(output)
        return bounded_links(output, limit, self.crawler.stats, response.url)

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
                self.crawler.stats.inc_value("skipped/autoblog of another process")
                continue
            yield item

    def _parse(self, response: Response) -> Iterator[Any]:
        if "dataloss" in response.flags:
            # Captured as WARC-Truncated; fetch again rather than read half a page.
            retry = get_retry_request(response.request, spider=self, reason="dataloss")
            if retry is not None:
                yield retry
            else:
                logger.warning("gave up on %s: body truncated on every attempt", response.url)
                self.crawler.stats.inc_value("errors/fetch")
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

    def parse_json(self, response: Response) -> Iterator[Request]:
        try:
            data = json.loads(response.body)
        except ValueError:
            logger.warning("not JSON: %s", response.url)
            return
        except RecursionError:
            logger.error("JSON nested too deeply to read: %s", response.url)
            self.crawler.stats.inc_value("errors/fetch")
            self.crawler.stats.inc_value("errors/JSON nested too deeply")
            return
        query = urlsplit(response.url).query
        if query == "export":
            for base in export_autoblog_links(data, response.urljoin("./")):
                yield from self._follow(base, "farm export", refresh=True)
        elif query == "media" and isinstance(data, dict):
            files = data.get("files") or {}
            names = files.values() if isinstance(files, dict) else files
            folder = data.get("url")
            if not isinstance(folder, str) or not self.scope.allows(folder):
                # The listed folder is the farm's own idea of its host name; keep ours.
                folder = urljoin(autoblog_base(response.url), "media/")
            for name in names:
                if isinstance(name, str) and name and not name.startswith("."):
                    yield from self._follow(urljoin(folder, name), "media list")

    def parse_sitemap(self, response: Response) -> Iterator[Request]:
        selector = Selector(text=response.body.decode("utf-8", "replace"), type="xml")
        for loc in selector.xpath("//*[local-name()='loc']/text()").getall():
            yield from self._follow(loc.strip(), "sitemap", refresh=True)

    def parse_html(self, response: TextResponse) -> Iterator[Any]:
        page = parse_page(response.text, response.url)
        self.crawler.stats.inc_value(f"pages/{page.kind}")
        self._base_read(response, page)
        # Digests only of archived pages: the history keeps them per capture.
        captured = captured_of(response.meta) is not None
        digest, article_digests = page_digests(page) if captured else (None, [])
        if page.kind == "farm":
            yield from self.parse_farm(response)
            return
        base = autoblog_base(response.url)
        yield self.page_item(response, page, base, digest, article_digests)
        first_sight = bool(page.engine) and base not in self._engines
        if page.engine:
            self._engines.setdefault(base, page.engine)
        yield from self.unarchived_pages(response, page, base)
        if self.unchanged_since_last_run(response, base, digest):
            return
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
        self.crawler.stats.inc_value("incremental/unchanged_autoblogs")
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
        for link in page.page_links:
            if link != base and state.archived_before(link) is None:
                self.crawler.stats.inc_value("incremental/unarchived_pages")
                yield from self._follow(link, "unarchived page", meta={"tail_page": True})

    def pages_to_walk(self, page: ParsedPage, base: str) -> list[str]:
        """All listed pages in a full pass; newest first, until known articles, otherwise.

        An incremental run follows "older" only while pages still show articles no
        earlier run archived, plus ``INCREMENTAL_MARGIN_PAGES`` pages of margin.
        """
        state = self.state
        if state is None or not state.incremental:
            return page.page_links
        if page.kind != "index" or page.next_page is None:
            return []
        if any(a.permalink and not state.article_known_before(a.permalink) for a in page.articles):
            self._known_pages[base] = 0
        else:
            self._known_pages[base] += 1
        if self._known_pages[base] > state.margin_pages:
            self.crawler.stats.inc_value("incremental/walks_stopped")
            return []
        return [page.next_page]

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

    def parse_farm(self, response: TextResponse) -> Iterator[Request]:
        root = response.urljoin("./")
        for base in farm_autoblog_links(response.text, response.url):
            yield from self._follow(base, "farm list", refresh=True)
        linked = set(response.xpath("//a/@href").getall())
        for export in FARM_EXPORTS:
            if export in linked or export == "?export":
                yield from self._follow(root + export, "farm export", refresh=True)
        for src in response.xpath("//img/@src | //link[@rel='stylesheet']/@href").getall():
            yield from self._follow(response.urljoin(src), "page requisite")

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
