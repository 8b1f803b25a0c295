"""The scope guard: what the crawler refuses to request, whoever asks for it."""

from __future__ import annotations

import pytest
from scrapy import Request

from crawler.items import CrawlPlan
from crawler.middlewares import ScopeGuardMiddleware
from crawler.scope import Scope, forbidden_reason

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


def test_scope_judges_the_path_the_server_resolves():
    scope = Scope([FARM + "autoblogs/x/"])
    assert not scope.allows(FARM + "autoblogs/x/../y/")
    assert not scope.allows(FARM + "autoblogs/x/%2E%2E/y/")
    assert not scope.allows("http://127.0.0.1:8080@127.0.0.2/autoblogs/x/")
    assert not scope.allows("https://127.0.0.1:8080/autoblogs/x/")
    assert scope.allows("http://127.0.0.1:8080/autoblogs/x/./?2")
    assert Scope(["http://farm.test/"]).allows("http://FARM.test:80/")


@pytest.mark.parametrize(
    "tail",
    [
        "?update[]=1",
        "?update%5B%5D=1",
        "?%20update",
        "?+update",
        "?check[x]=",
        "?reset_cache[]=1",
        "?reset.cache=1",
        "?reset%20cache=1",
        "?reset[cache=1",
        "?q[]=",
        "?2&Update",
        "?update%00x",
        "?%2575pdate",
        "../../xsaf3%2Ephp",
        "../../xsaf3.php/",
        "../../xsaf3.php/x",
        "../../XSAF3.PHP",
        "../../xsaf3",
        "../..//xsaf2.php",
        "../../%78saf3.php",
    ],
)
def test_every_spelling_the_server_reads_as_forbidden_is_forbidden(tail):
    assert forbidden_reason(FARM + "autoblogs/x/" + tail) is not None


def test_guard_fails_closed_without_a_scope():
    """Until the spider's plan gives it the scope, the guard lets nothing out; built alone."""
    guard = ScopeGuardMiddleware(max_url_length=2083, stats=None)
    assert guard.reason(Request(FARM + "autoblogs/x/")) == "no scope known"
    guard.crawl_planned(CrawlPlan(seeds=[FARM], scope=Scope([FARM])))
    assert guard.reason(Request(FARM + "autoblogs/x/")) is None
    assert guard.reason(Request("http://elsewhere.example/")) == "out of scope"
