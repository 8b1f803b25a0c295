"""Reading the VroumVroumBlog templates: one place that knows the engines' markup.

The spider uses it to find pages, permalinks and media; the extraction module uses it
to cut each article out of its page before trafilatura sees it. Both paths must agree
on what an article is, so neither parses autoblog HTML on its own.

Engines (see shared/autoblog-reference/README.md):
- ``0.3`` (0.3.1 - 0.3.4): ``body > article``, date as a bare text node, ``<nav>``;
- ``2025``: as 0.3 with ISO 8601 dates;
- ``0.3.0``: ``div.article`` inside the 0.3 header, ``div.pagination``;
- ``0.2``: ``div.article``, absolute path-style links, date in ``h4``;
- ``0.1``: ``div.article``, ``?pageN`` and ``?YYYYMMDD_HHMMSS_title`` URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import lxml.etree
import lxml.html
from lxml.html import HtmlElement

from crawler.escaped_code import CODE_REMOVED_MARK, strip_escaped_code
from crawler.urls import PAGE_QUERY, is_autoblog_root

# A page is read up to its first MAX_TAGS tags (each "<" counts): a tree costs 200-500 bytes
# a tag, so a page of a million links would take a crawl (and `reindex`) past 500 MB. Not
# a setting: the corpus rebuilt offline must read a page as the crawl read it. A real
# autoblog page holds a few thousand tags; the farm's list of autoblogs is read in full
# by a reader that keeps no tree (:func:`read_farm_page`).
MAX_TAGS = 50_000

XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
ERROR_TRAILER = "Error happened!"
# The engine's PHP error handler prints it with or without a (French) space before "!".
ERROR_TRAILER_RE = re.compile(r"Error happened\s*!")
NOT_ARTICLE_TITLES = {"Mise à jour", "Introuvable", "Recherche"}

# What each engine serves beside its pages, linked or not (0.1 links only its feed): the
# spider fetches them on an autoblog's first sight, the audit checks the archive holds them.
ENGINE_FILES = {
    "0.3": ("?feed", "?opml", "?media", "vvb.ini", "articles.db"),
    "2025": ("?feed", "?opml", "?media", "vvb.ini", "articles.db"),
    "0.3.0": ("?feed", "?opml", "?media", "vvb.ini", "articles.db"),
    "0.2": ("?feed", "vvb.ini", "articles.db"),
    "0.1": ("?feed", "vvb.ini", "articles.db"),
}

V01_PERMALINK = re.compile(r"^\d{8}_\d{6}_")


@dataclass
class ArticleBlock:
    """One article as the template shows it (index page or permalink page)."""

    title: str
    permalink: str | None
    date_text: str
    source_url: str | None
    content: HtmlElement | None = field(repr=False, default=None)
    media: list[str] = field(default_factory=list)


@dataclass
class ParsedPage:
    """What a page of a farm or an autoblog says, independent of the engine."""

    url: str
    kind: str  # farm | index | article | not_found | search | error | other
    engine: str | None
    articles: list[ArticleBlock]
    page_links: list[str]
    next_page: str | None
    site_title: str | None
    site_url: str | None
    script_removed: bool = False
    error_trailer: bool = False
    has_update_block: bool = False
    links: list[str] = field(default_factory=list)  # footer links
    requisites: list[str] = field(default_factory=list)
    tags_cut: bool = False  # read up to its first MAX_TAGS tags only
    links_cut: int = 0  # links left out of the lists above (``max_links``)


def parse_html(html: str | bytes, url: str) -> HtmlElement:
    """Parse a page with lxml, tolerating broken markup and empty documents; up to its
    first :data:`MAX_TAGS` tags."""
    if isinstance(html, bytes):
        html = html.decode("utf-8", errors="replace")
    # lxml refuses a str that carries an XML encoding declaration (XHTML prologue).
    html = XML_DECLARATION.sub("", html, count=1)
    html = _within_tags(html, MAX_TAGS)[0]
    if not html.strip():
        html = "<html></html>"
    try:
        doc = lxml.html.fromstring(html, base_url=url)
    except (lxml.etree.ParserError, ValueError):
        doc = lxml.html.fromstring("<html></html>", base_url=url)
    return doc


def _within_tags(html: str, limit: int) -> tuple[str, bool]:
    """``html`` up to (not including) its ``limit + 1``-th ``<``; whether it was cut."""
    if html.count("<") <= limit:
        return html, False
    at = -1
    for _ in range(limit + 1):
        at = html.find("<", at + 1)
    return html[:at], True


ASCII_SPACE = re.compile(r"[ \t\n\r\f\v]+")


def _text(el: HtmlElement | None) -> str:
    # Only ASCII whitespace is collapsed: a title's no-break spaces (French "\xa0:") stay.
    return ASCII_SPACE.sub(" ", el.text_content()).strip(" ") if el is not None else ""


def absolute_link(url: str, href: str | None) -> str | None:
    """The absolute URL of a link to follow, or None (empty, script, mail, fragment, data)."""
    if not href:
        return None
    href = href.strip()
    if href.startswith(("javascript:", "mailto:", "#", "data:")):
        return None
    return urljoin(url, href)


def _bare_date(header: HtmlElement, title_el: HtmlElement) -> str:
    """The 0.3 date is the text node after the title's ``h2``."""
    h4 = header.find(".//h4")
    if h4 is not None:
        return _text(h4)
    tail = (title_el.tail or "").strip()
    if tail:
        return " ".join(tail.split())
    for node in header.xpath("text()"):
        if node.strip():
            return " ".join(node.split())
    return ""


def _article_from(block: HtmlElement, url: str, with_media: bool = True) -> ArticleBlock | None:
    header = block.find("header")
    if header is None:
        found = block.find_class("title")
        header = found[0] if found else block
    title_el = header.find(".//h2")
    if title_el is None:
        title_el = header.find(".//h3")
    if title_el is None:
        return None
    link = title_el.find(".//a")
    title = _text(title_el)
    if link is None or title in NOT_ARTICLE_TITLES:
        return None
    content = next(iter(block.find_class("content")), None)
    source = block.xpath(
        ".//footer[contains(@class,'source')]//a/@href | .//p[contains(@class,'source')]//a/@href"
    )
    media: list[str] = []
    if content is not None and with_media:
        for el in content.xpath(".//*[@data-original-source]"):
            target = absolute_link(url, el.get("src") or el.get("href"))
            if target:
                media.append(target)
    return ArticleBlock(
        title=title,
        permalink=absolute_link(url, link.get("href")),
        date_text=_bare_date(header, title_el),
        source_url=source[0].strip() if source else None,
        content=content,
        media=media,
    )


def detect_engine(doc: HtmlElement) -> str | None:
    """Name the engine family from markup alone (URLs are not trusted for this)."""
    body = doc.find("body")
    if body is None:
        return None
    if body.find("section[@id='autoblogs']") is not None:
        return "farm-0.3"
    if doc.xpath("//div[@class='vignette']") and not doc.xpath("//div[@class='article']"):
        return "farm-0.2"
    autoblog_header = body.xpath("header/h1/a[@href='../../']")
    if body.find("article") is not None or body.find("nav") is not None or autoblog_header:
        dates = [
            _bare_date(a.find("header"), a.find("header/h2"))
            for a in body.findall("article")
            if a.find("header/h2/a") is not None
        ]
        if any(ISO_DATE.match(d) for d in dates):
            return "2025"
        return "0.3"
    if doc.xpath("//div[contains(@class,'article')]") or doc.xpath("//div[@class='header']"):
        # 0.1 first: its pages may carry the same "../../" header link as 0.3.0, but only
        # 0.1 permalinks start with a YYYYMMDD_HHMMSS_ timestamp.
        if any(
            V01_PERMALINK.match(urlsplit(h).query)
            for h in doc.xpath("//div[contains(@class,'article')]//h2/a/@href")
        ):
            return "0.1"
        header_links = doc.xpath("//div[@class='header']//h1/a/@href")
        if any(h.startswith(("../../", "./")) for h in header_links):
            return "0.3.0"
        if doc.xpath("//div[@class='article']//h4"):
            return "0.2"
        if doc.xpath("//a[starts-with(@href,'?page') or starts-with(@href,'./?page')]") or any(
            V01_PERMALINK.match(urlsplit(h).query)
            for h in doc.xpath("//div[contains(@class,'article')]//a/@href")
        ):
            return "0.1"
        return "0.2"
    return None


def _article_blocks(doc: HtmlElement, engine: str | None) -> list[HtmlElement]:
    if engine in ("0.3", "2025"):
        return [a for a in doc.xpath("/html/body/article") if a.get("id") != "results"]
    return doc.xpath("//div[@class='article' or starts-with(@class,'article ')]")


def _pagination(doc: HtmlElement, url: str, engine: str | None) -> tuple[list[str], str | None]:
    """Numbered page links and the "older" link; never "newer" (``rel=prev``).

    A page past the end still prints ``rel=prev`` to the page before it, so following
    "newer" links from a numeric permalink like ``?2024`` walks 2,000 empty pages.
    Numbered links always list the real pages, so nothing is lost by ignoring "newer".

    The engine's ``<nav>`` links every page number, so an autoblog of P pages shows P
    links on each of its P pages: per link, only a cached lookup and a dict insert.
    """
    nav = doc.xpath("/html/body/nav | //div[@class='pagination']")
    links: dict[str, None] = {}
    nxt: str | None = None
    containers = nav or doc.xpath("//body")
    # Resolving a link that is neither empty nor a fragment ignores the page's query.
    page_path = url.split("#", 1)[0].split("?", 1)[0]
    for box in containers:
        for a in box.xpath(".//a[@href]"):
            raw = a.get("href")
            if not raw:
                continue
            # The label first: most anchors of a page are not page numbers, and resolving
            # them all cost seconds on a page of many links.
            label = _label(a)
            is_next = a.get("rel") == "next" or "anciens" in label or "older" in label
            if not is_next and not label.isdigit():
                continue
            if raw.strip():
                href = _page_link(page_path, raw, engine)
            else:  # blank: resolves to the page itself, query included
                href = url if _looks_like_page(url, engine) else None
            if href is None:
                continue
            if is_next:
                nxt = href
            links[href] = None
    return list(links), nxt


@lru_cache(maxsize=16384)
def _page_link(page_path: str, href: str, engine: str | None) -> str | None:
    """``href`` resolved if it is a page of the autoblog, else None (remembered per page)."""
    target = absolute_link(page_path, href)
    return target if target and _looks_like_page(target, engine) else None


def _looks_like_page(href: str, engine: str | None) -> bool:
    parts = urlsplit(href)
    if parts.query:
        return bool(PAGE_QUERY.match(parts.query))
    if engine == "0.2":
        last = parts.path.rstrip("/").rsplit("/", 1)[-1]
        return last.isdigit()
    return False


def _label(a: HtmlElement) -> str:
    """A link's text, lower case; a bare ``<a>`` (every page number) skips the XPath."""
    if len(a) == 0:
        return ASCII_SPACE.sub(" ", a.text or "").strip(" ").lower()
    return _text(a).lower()


def _resources(doc: HtmlElement, url: str, limit: int) -> tuple[list[str], list[str], int]:
    """A page's footer links and its requisites (images, stylesheets, scripts), absolute,
    at most ``limit`` of each (0: all); and how many were left out."""
    # Footer links only (feed, OPML, media list, vvb.ini, articles.db): resolving every
    # anchor of a page costs more than the rest of the parse.
    # Plain strings: lxml's "smart" ones each keep their element alive.
    footer = doc.xpath(
        "/html/body/footer//a/@href | //div[@class='footer']//a/@href", smart_strings=False
    )
    links, cut = _resolved(url, footer, limit)
    found = doc.xpath(
        "//img/@src | //link[@rel='stylesheet']/@href | //script/@src", smart_strings=False
    )
    requisites, more = _resolved(url, found, limit)
    return links, requisites, cut + more


def _resolved(url: str, hrefs: list[str], limit: int) -> tuple[list[str], int]:
    """Up to ``limit`` (0: all) of ``hrefs`` made absolute; how many were left unread."""
    out: list[str] = []
    for i, href in enumerate(hrefs):
        if limit and len(out) >= limit:
            return out, len(hrefs) - i
        target = absolute_link(url, href)
        if target:
            out.append(target)
    return out, 0


def parse_page(
    body: str | bytes,
    url: str,
    mark_removed: bool = False,
    with_resources: bool = True,
    max_links: int = 0,
) -> ParsedPage:
    """Read any farm or autoblog HTML page into a :class:`ParsedPage`.

    ``mark_removed`` leaves a :data:`CODE_REMOVED_MARK` comment where escaped code was cut.
    ``with_resources=False`` leaves ``links``, ``requisites`` and the blocks' ``media``
    empty: what only a crawler follows, and a tenth of an extraction's time (every URL of
    the page resolved); a farm's index leaves them empty too (:func:`read_farm_page`).
    ``max_links`` (0: all) bounds ``page_links``, ``links`` and ``requisites`` each;
    ``links_cut`` counts what they left out.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    # Cut first: a page of many megabytes is not copied whole by what follows.
    markup, tags_cut = _within_tags(text, MAX_TAGS)
    cleaned, removed = strip_escaped_code(markup, CODE_REMOVED_MARK if mark_removed else "")
    doc = parse_html(cleaned, url)
    links_cut = 0
    engine = detect_engine(doc)
    kind = "other"
    articles: list[ArticleBlock] = []
    page_links: list[str] = []
    nxt: str | None = None
    site_title = site_url = None
    if engine and engine.startswith("farm"):
        kind = "farm"
    elif engine:
        blocks = _article_blocks(doc, engine)
        found = (_article_from(b, url, with_resources) for b in blocks)
        articles = [a for a in found if a is not None]
        page_links, nxt = _pagination(doc, url, engine)
        if max_links and len(page_links) > max_links:
            links_cut += len(page_links) - max_links
            del page_links[max_links:]
        titles = [_text(h) for h in doc.xpath("//body//h2 | //body//h3")]
        if doc.xpath("//article[@id='results']"):
            kind = "search"
        elif "Introuvable" in titles and not articles:
            kind = "not_found"
        elif bool(ERROR_TRAILER_RE.search(text)) and not articles and not page_links:
            kind = "error"
        elif page_links or is_autoblog_root(url) or (not articles and not urlsplit(url).query):
            kind = "index"
        elif len(articles) == 1:
            kind = "article"
        else:
            kind = "index"
        h1_links = doc.xpath("//body//h1/a")
        if h1_links:
            site_title = _text(h1_links[-1])
        src = doc.xpath("//body/header/p/a/@href | //div[@class='header']/p/a/@href")
        site_url = src[0] if src else None
    links: list[str] = []
    requisites: list[str] = []
    if with_resources and kind != "farm":  # a farm's own: read_farm_page
        links, requisites, cut = _resources(doc, url, max_links)
        links_cut += cut
    return ParsedPage(
        url=url,
        kind=kind,
        engine=engine,
        articles=articles,
        page_links=page_links,
        next_page=nxt,
        site_title=site_title,
        site_url=site_url,
        script_removed=removed,
        error_trailer=bool(ERROR_TRAILER_RE.search(text)),
        has_update_block=bool(doc.xpath("//*[@id='update']")),
        links=links,
        requisites=requisites,
        tags_cut=tags_cut,
        links_cut=links_cut,
    )
