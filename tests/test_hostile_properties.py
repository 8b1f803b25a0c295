"""Property tests (Hypothesis) of the hostile-web defences (issue 10).

Generated URLs against the scope guard and the forbidden list: every spelling a server
reads as a side-effecting URL is refused, and nothing outside the scope passes, as judged
by an independent URL parser (yarl, which resolves dot segments itself). Generated HTML
against the extraction: it never raises, and no script or style text comes out.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.corpus.extraction import extract_page
from crawler.samplefarm.farm import Farm
from crawler.samplefarm.options import FarmConfig
from crawler.scope import FORBIDDEN_QUERY_KEYS, Scope, forbidden_reason

yarl = pytest.importorskip("yarl")  # installed with Scrapy's aiohttp

FARM = "http://127.0.0.1:8080/"
SEED = FARM + "autoblogs/x/"
FEW = settings(max_examples=150, deadline=None)
SOME = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- spellings of one character, as a server decodes them -------------------------------


def _char(c: str) -> st.SearchStrategy[str]:
    """``c`` as is, in either case, or percent-encoded (upper or lower hex, once or twice)."""
    code = f"{ord(c):02X}"
    options = [c, f"%{code}", f"%{code.lower()}", f"%25{code}"]
    if c.isalpha():
        options += [c.upper(), c.lower()]
    return st.sampled_from(options)


def _spelled(text: str) -> st.SearchStrategy[str]:
    return st.tuples(*[_char(c) for c in text]).map("".join)


def _php_underscore() -> st.SearchStrategy[str]:
    """PHP files ``.`` and space in a query key under ``_``."""
    return st.sampled_from(["_", ".", " ", "+", "%2E", "%20", "%5F", "%5f"])


@st.composite
def forbidden_query(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from(sorted(FORBIDDEN_QUERY_KEYS)))
    spelled = "".join(draw(_php_underscore()) if c == "_" else draw(_char(c)) for c in key)
    lead = draw(st.sampled_from(["", " ", "%20", "+", "%20%20"]))
    array = draw(st.sampled_from(["", "[]", "%5B%5D", "[x]", "[0][1]", "%5b1%5d"]))
    value = draw(st.sampled_from(["", "=", "=1", "=abc", "=%26"]))
    before = draw(st.sampled_from(["", "2&", "Un-titre&", "a=b&", "a=b;"]))
    after = draw(st.sampled_from(["", "&x=1", "&", "&2"]))
    return "?" + before + lead + spelled + array + value + after


@st.composite
def xsaf_path(draw: st.DrawFn) -> str:
    name = "xsaf" + draw(st.sampled_from(["", "2", "3", "10"]))
    ext = draw(st.sampled_from([".php", ".PHP", "", ".php.", ".php%00.jpg"]))
    spelled = draw(_spelled(name)) + (draw(_spelled(ext)) if ext and "%" not in ext else ext)
    detour = draw(
        st.sampled_from(["", "autoblogs/x/../../", "a/%2E%2E/", "./", "/", "a/./b/../../"])
    )
    path_info = draw(st.sampled_from(["", "/", "/x", "/a/b?2"]))
    return "/" + detour + spelled + path_info


@FEW
@given(forbidden_query())
def test_every_spelling_of_a_forbidden_query_is_refused(query):
    assert forbidden_reason(SEED + query) is not None, query


@FEW
@given(xsaf_path())
def test_every_spelling_of_xsaf_is_refused(path):
    assert forbidden_reason(FARM.rstrip("/") + path) is not None, path


# -- nothing off-scope passes ------------------------------------------------------------

NETLOCS = [
    "127.0.0.1:8080",
    "127.0.0.1:8081",
    "127.0.0.2:8080",
    "localhost:8080",
    "127.0.0.1:8080@127.0.0.2",
    "127.0.0.1:8080:80",
    "127.0.0.1",
    "127.0.0.1.:8080",
    "[::1]:8080",
    "127.0.0.1%3A8080",
]
PATH_PIECES = ["autoblogs", "x", "y", "/", "..", ".", "%2E", "%2e%2E", "%2F", "?2", "a", "//"]


@st.composite
def any_url(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "ftp", "javascript"]))
    netloc = draw(st.sampled_from(NETLOCS))
    pieces = draw(st.lists(st.sampled_from(PATH_PIECES), max_size=10))
    return f"{scheme}://{netloc}/" + "".join(pieces)


def _oracle_in_scope(url: str) -> bool:
    """yarl's reading: same origin as the seed, and the resolved path under its folder."""
    try:
        parsed = yarl.URL(url)
        origin = (parsed.scheme, parsed.host, parsed.port, parsed.user)
    except (ValueError, TypeError):
        return False
    path = parsed.path
    return origin == ("http", "127.0.0.1", 8080, None) and path.startswith("/autoblogs/x/")


@FEW
@given(any_url())
def test_nothing_off_scope_passes(url):
    if Scope([SEED]).allows(url):
        assert _oracle_in_scope(url), url


@FEW
@given(st.text(alphabet="ax/.%2EF?#@:", max_size=30))
def test_a_link_that_leaves_the_folder_is_out_of_scope(tail):
    url = SEED + tail
    if Scope([SEED]).allows(url):
        assert _oracle_in_scope(url.split("#", 1)[0]), url
        assert urlsplit(url).hostname == "127.0.0.1"


# -- generated HTML through the extraction -----------------------------------------------

MARK = "SCRIPTMARK"


def _article_page() -> tuple[str, str]:
    """A real article page of the sample farm (its permalink URL and HTML)."""
    farm = Farm(FarmConfig(autoblogs=1, articles=3))
    host = "127.0.0.1:8080"
    article = next(iter(farm.truth(host)["autoblogs"].values()))["articles"][0]
    target = article["url"].split(host, 1)[1]
    return article["url"], farm.handle("GET", target, host).body.decode("utf-8")


PAGE_URL, PAGE = _article_page()
CONTENT = re.compile(r'(<div class="content">)(.*?)(</div>\s*<footer)', re.S)
assert CONTENT.search(PAGE), "the sample farm's article template changed"

TAGS = ["p", "div", "span", "a", "b", "table", "tr", "td", "ul", "li", "blockquote", "pre", "h2"]
SCRIPTS = [
    f"<script>{MARK}()</script>",
    f'<script type="text/javascript">var a="{MARK}";</script>',
    f"<SCRIPT>{MARK}</SCRIPT>",
    f"<script >{MARK}</script >",
    f'<script src="x.js">{MARK}</script>',
    f"<style>.{MARK} {{color: red}}</style>",
    f"<!-- <script>{MARK}</script> -->",
    f"<script><!-- {MARK} --></script>",
    f"<script>{MARK}",  # never closed: the rest of the document is script
    f'<p onclick="{MARK}()">x</p>',
]
texts = st.text(alphabet=st.characters(blacklist_characters="<>&", codec="utf-8"), max_size=40)
fragments = st.recursive(
    st.one_of(texts, st.sampled_from(SCRIPTS)),
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(TAGS), st.lists(inner, max_size=4)).map(
            lambda t: f"<{t[0]}>" + "".join(t[1]) + f"</{t[0]}>"
        ),
        st.tuples(st.sampled_from(TAGS), st.lists(inner, max_size=3)).map(
            lambda t: f"<{t[0]}>" + "".join(t[1])  # unclosed
        ),
    ),
    max_leaves=12,
)


@SOME
@given(st.lists(fragments, min_size=1, max_size=5).map("".join))
def test_generated_article_html_extracts_without_script_text(content):
    page = CONTENT.sub(lambda m: m.group(1) + content + m.group(3), PAGE, count=1)
    result = extract_page(page.encode("utf-8"), PAGE_URL, "utf-8")
    assert MARK not in json.dumps(result, ensure_ascii=False)


@SOME
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_the_extraction(body):
    result = extract_page(body, PAGE_URL, None)
    assert result["url"] == PAGE_URL
