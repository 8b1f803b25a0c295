"""The scope guard: what the crawler refuses to request, whoever asks for it."""

from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.test import get_crawler

from crawler.scope import Scope, ScopeGuardMiddleware, forbidden_reason
from spiders.autoblog import AutoblogSpider

FARM = "http://127.0.0.1:8080/"


@pytest.mark.parametrize(
    "url",
    [
        FARM + "autoblogs/x/?update",
        FARM + "autoblogs/x/?update=1",
        FARM + "?updateall",
        FARM + "?reset_cache=autoblogs",
        FARM + "?check=305a559f",
        FARM + "autoblogs/x/?q=titre",
        FARM + "xsaf3.php",
        FARM + "XSAF2.php?x",
    ],
)
def test_side_effecting_urls_are_forbidden(url):
    assert forbidden_reason(url) is not None


@pytest.mark.parametrize(
    "url",
    [FARM, FARM + "autoblogs/x/?2", FARM + "autoblogs/x/?Un-titre", FARM + "?export"],
)
def test_content_urls_are_allowed(url):
    assert forbidden_reason(url) is None


def test_forms_are_never_submitted():
    assert forbidden_reason(FARM, "POST") == "method POST"


def test_scope_keeps_host_port_and_prefix():
    scope = Scope([FARM + "autoblogs/x/"])
    assert scope.allows(FARM + "autoblogs/x/?2")
    assert not scope.allows(FARM + "autoblogs/y/")
    assert not scope.allows("http://127.0.0.1:8081/autoblogs/x/")
    assert not scope.allows("https://www.laquadrature.net/")
    assert Scope([FARM], ["source.test"]).allows("http://source.test/img.png")


def test_guard_refuses_redirect_targets_out_of_scope():
    """RedirectMiddleware reschedules the target, so the guard sees it like any request."""
    crawler = get_crawler(AutoblogSpider)
    spider = AutoblogSpider(url=FARM + "autoblogs/x/")
    crawler.spider = spider
    guard = ScopeGuardMiddleware(crawler)
    crawler.stats.open_spider()
    redirected = Request("https://elsewhere.example/", meta={"redirect_times": 1})
    with pytest.raises(IgnoreRequest):
        guard.process_request(redirected, spider)
    with pytest.raises(IgnoreRequest):
        guard.process_request(Request(FARM + "autoblogs/x/?update"), spider)
    assert guard.process_request(Request(FARM + "autoblogs/x/?3"), spider) is None
