"""The items a read page gives: the page itself and each article block it shows.

Built from the response and its :class:`~crawler.parsing.ParsedPage` alone, so the
spider's parse stays about what to follow.
"""

from __future__ import annotations

from scrapy.http import Response, TextResponse

from crawler.items import ArticleItem, PageItem, captured_of
from crawler.parsing import ArticleBlock, ParsedPage
from crawler.urls import autoblog_base


def page_item(
    response: TextResponse,
    page: ParsedPage,
    base: str,
    digest: str | None,
    article_digests: list[tuple[str, str]],
) -> PageItem:
    """The captured page itself (body as Scrapy decoded it), with what the history keeps."""
    title: str | None = page.site_title or None
    if page.kind == "article" and page.articles:
        title = page.articles[0].title
    return PageItem(
        url=response.url,
        kind=page.kind,
        http_status=response.status,
        headers=response.headers,
        body=response.body,
        captured=captured_of(response.meta),
        autoblog=base,
        engine=page.engine,
        title=title,
        digest=digest,
        article_digests=article_digests,
        parsed=page,
        text=response.text,
    )


def article_item(
    response: Response, kind: str, engine: str | None, article: ArticleBlock
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
