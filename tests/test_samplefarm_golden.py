"""Golden tests: pages the sample farm renders have the structure of the real engine's pages
(../shared/autoblog-reference/pages), compared as parsed trees, not strings."""

from __future__ import annotations

import json
import re
import urllib.request
from urllib.parse import quote

import pytest
from lxml import etree, html
from support import REFERENCE_PAGES

from crawler.samplefarm import start_farm

pytestmark = pytest.mark.e2e

REF = REFERENCE_PAGES

FR_DATE = re.compile(
    r"^(lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche) ( \d|\d\d) (janvier|février|mars|"
    r"avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre) \d{4} à \d\d:\d\d$"
)
ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def fetch(url: str) -> tuple[int, bytes, dict]:
    url = quote(url, safe=":/?&=%#")
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def ref(name: str) -> bytes:
    return (REF / name).read_bytes()


def skeleton(doc: bytes) -> set[tuple[str, tuple[str, ...]]]:
    """Element paths (tag.class#id chain) and attribute names, article bodies excluded."""
    tree = html.fromstring(doc)
    out = set()
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        anc = list(el.iterancestors())
        if any(a.get("class", "").startswith("content") for a in anc):
            continue
        res = [a for a in anc if a.tag == "article" and a.get("class") == "result"]
        if res:  # search results print raw article HTML: only their frame is structure
            rel = [e.tag for e in reversed(anc[: anc.index(res[0])])] + [el.tag]
            if "/".join(rel) not in ("header", "header/h3", "header/h3/a", "p"):
                continue
        chain = []
        for e in [*reversed(list(el.iterancestors())), el]:
            chain.append(
                e.tag
                + "".join("." + c for c in sorted(e.get("class", "").split()))
                + (f"#{e.get('id')}" if e.get("id") else "")
            )
        out.add(("/".join(chain), tuple(sorted(el.attrib.keys()))))
    return out


def nav_shape(doc: bytes, xpath: str = "//body/nav") -> list[tuple[str, str]]:
    tree = html.fromstring(doc)
    navs = tree.xpath(xpath)
    if not navs:
        return []
    shape = []
    for e in navs[0]:
        kind = "num" if (e.text or "").strip().isdigit() else (e.text or "").strip()[:6]
        shape.append((e.tag, e.get("rel", "") + ":" + kind))
    return shape


def dates(doc: bytes, xp: str = "//article/header") -> list[str]:
    tree = html.fromstring(doc)
    return [h.xpath("h2")[0].tail.strip() for h in tree.xpath(xp) if h.xpath("h2/a")]


@pytest.fixture(scope="module")
def mixed():
    with start_farm(
        autoblogs=6,
        articles=24,
        engine=["0.3.4", "0.3.0", "2025", "0.1", "0.3.1"],
        seed=2,
        fault=["0:update", "1:type=generic"],
    ) as f:
        yield f, f.truth()["autoblogs"]


@pytest.fixture(scope="module")
def lq(farm):
    t = farm.truth()["autoblogs"]
    folder = next(iter(t))
    return farm, t[folder]


def test_index_pages_match_reference(lq):
    farm, ab = lq
    base = ab["base_url"]
    for page, name in [
        ("", "v034-fr_index-p1.html"),
        ("?2", "v034-fr_index-p2.html"),
        ("?3", "v034-fr_index-p3.html"),
        ("?9", "v034-fr_index-p9_beyond-last.html"),
    ]:
        st, body, hdr = fetch(base + page)
        assert st == 200
        assert skeleton(body) == skeleton(ref(name)), name
        assert nav_shape(body) == nav_shape(ref(name)), name
        assert all(FR_DATE.match(d) for d in dates(body))
        assert "ETag" not in hdr and "Last-Modified" not in hdr
        assert hdr["Connection"] == "close" and hdr["X-Powered-By"] == "PHP/8.2.36"
        assert hdr["Content-type"] == "text/html; charset=UTF-8"
    assert dates(fetch(base)[1])[0] == "lundi 23 janvier 2023 à 15:04"


def test_article_404_search_match_reference(lq):
    farm, ab = lq
    a = ab["articles"][0]
    st, body, _ = fetch(a["permalink"])
    assert st == 200 and skeleton(body) == skeleton(ref("v034-fr_article.html"))
    st, body, _ = fetch(ab["base_url"] + "?Nope")
    assert st == 404 and skeleton(body) == skeleton(ref("v034-fr_article-404.html"))
    st, body, _ = fetch(ab["base_url"] + "?q=titre")
    assert st == 200 and skeleton(body) == skeleton(ref("v034-fr_search-q-titre.html"))


def test_permalink_shapes(lq):
    _farm, ab = lq
    slugs = [a["slug"] for a in ab["articles"]]
    assert "Même-titre" in slugs and any(
        re.match(r"^\d{4}-\d\d-\d\d-Même-titre$", s) for s in slugs
    )
    long = [a for a in ab["articles"] if len(a["title"].encode()) > 70]
    assert long and all(len(a["slug"].encode()) <= 70 for a in long)
    other = list(_farm.truth()["autoblogs"].values())[1]["articles"]
    numeric = [a for a in other if a["slug"].isdigit()]  # "?2024" is a page number, as in PHP
    assert numeric and not numeric[0]["reachable"]
    assert (
        "Loi" not in slugs
        and slugs[0] == "Nos-arguments-pour-faire-interdire-la-vidéosurveillance-automatisée"
    )


def test_update_block_and_first_visit(mixed):
    farm, t = mixed
    ab = next(iter(t.values()))
    body = fetch(ab["base_url"])[1]
    assert skeleton(body) == skeleton(ref("v034-fr_index-p1_with-update-block.html"))
    with start_farm(autoblogs=1, articles=0, fault=["0:update"]) as f:
        b = f.truth()["autoblogs"]
        body = fetch(next(iter(b.values()))["base_url"])[1]
        assert skeleton(body) == skeleton(ref("v034-fr_first-visit_update-block_no-articles.html"))


def test_archived_shaarli():
    with start_farm(autoblogs=2, articles=5, fault=["1:type=shaarli", "1:archived"]) as f:
        ab = list(f.truth()["autoblogs"].values())[1]
        body = fetch(ab["base_url"])[1]
        assert skeleton(body) == skeleton(ref("v034_archived-shaarli-empty.html"))
        assert b"Archiv\xc3\xa9" in body


def test_farm_index_and_exports(farm):
    body = fetch(farm.url)[1]
    assert skeleton(body) == skeleton(ref("v034_farm-index.html"))
    tree = html.fromstring(body)
    links = tree.xpath("//section[@id='autoblogs']/ul/li/header/a/@href")
    assert len(links) == 3 and all(
        re.match(r"^\./autoblogs/[a-z0-9]+_[0-9a-f]{40}/$", h) for h in links
    )
    assert tree.xpath("//section[@id='autoblogs']/p[last()]/text()")[0] == "3 autoblogs hébergés"
    st, body, hdr = fetch(farm.url + "?export")
    got, want = json.loads(body), json.loads(ref("v034_farm-export.json"))
    assert got.keys() == want.keys() and got["meta"] == want["meta"]
    assert {k for v in got["autoblogs"].values() for k in v} == {
        k for v in want["autoblogs"].values() for k in v
    }
    assert b"\\/" in body and hdr["Content-Type"] == "application/json"
    for q, name in [
        ("?exportopml", "v034_farm-exportopml.xml"),
        ("?rss", "v034_farm-rss.xml"),
        ("?sitemap", "v034_farm-sitemap.xml"),
    ]:
        assert xml_skeleton(fetch(farm.url + q)[1]) == xml_skeleton(ref(name)), name
    for res in tree.xpath("//img/@src | //link[@rel='stylesheet']/@href"):
        if res.startswith("./resources/"):
            st, data, _ = fetch(farm.url + res[2:])
            assert st == 200 and data
    assert fetch(farm.url + "resources/icon-logo.png")[1].startswith(b"\x89PNG")


def xml_skeleton(doc: bytes) -> set[tuple[str, tuple[str, ...]]]:
    root = etree.fromstring(doc)
    out = set()
    for el in root.iter():
        path = "/".join(etree.QName(e).localname for e in [*reversed(list(el.iterancestors())), el])
        out.add((path, tuple(sorted(el.attrib.keys()))))
    return out


def test_feed_opml_media(lq):
    _farm, ab = lq
    base = ab["base_url"]
    st, body, hdr = fetch(base + "?feed")
    assert hdr["Content-Type"] == "application/atom+xml; charset=UTF-8"
    assert xml_skeleton(body) == xml_skeleton(ref("v034_feed-atom.xml"))
    root = etree.fromstring(body)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert len(root.findall("a:entry", ns)) == 10  # 2 x 5 per page
    for upd in root.findall("a:entry/a:updated", ns):
        assert ISO_DATE.match(upd.text)
    st, body, hdr = fetch(base + "?opml")
    assert xml_skeleton(body) == xml_skeleton(ref("v034_opml.xml"))
    assert hdr["Content-Disposition"].startswith("attachment; filename=")
    media = json.loads(fetch(base + "?media")[1])
    assert media.keys() == json.loads(ref("v034_media.json")).keys()
    assert media["files"]["2"] == ".htaccess" and len(media["files"]) >= 2
    for name in list(media["files"].values())[1:]:
        assert re.match(r"^[0-9a-f]{8}\.", name)
        st, data, _ = fetch(media["url"] + name)
        assert st == 200 and (data.startswith(b"\x89PNG") or b"<svg" in data)


def test_030_index(mixed):
    _farm, t = mixed
    ab = [v for v in t.values() if v["engine"] == "0.3.0"][0]
    body = fetch(ab["base_url"] + "?2")[1]
    assert skeleton(body) == skeleton(ref("v030_index-p2_div-layout.html"))
    tree = html.fromstring(body)
    pag = tree.xpath("//div[@class='pagination']")[0]
    assert pag.xpath("a/b/text()") == ["2"]
    assert all(
        FR_DATE.match(h.xpath("h2")[0].tail.strip()) for h in tree.xpath("//div[@class='title']")
    )


def test_2025_article_iso_date(mixed):
    _farm, t = mixed
    ab = [v for v in t.values() if v["engine"] == "2025"][0]
    body = fetch(ab["articles"][0]["permalink"])[1]
    assert skeleton(body) == skeleton(ref("head2025_article_iso-date.html"))
    assert ISO_DATE.match(dates(body)[0])


def test_01_pages(mixed):
    _farm, t = mixed
    ab = [v for v in t.values() if v["engine"] == "0.1"][0]
    st, body, _ = fetch(ab["base_url"])
    tree = html.fromstring(body)
    assert [a.text for a in tree.xpath("//div[@class='pagination']/a")] == ["Older →"]
    assert tree.xpath("//div[@class='pagination']/a/@href") == ["?page2"]
    perma = tree.xpath("//div[@class='title']/h2/a/@href")[0]
    assert re.match(r"^\?\d{8}_\d{6}_", perma)
    assert re.match(
        r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$",
        tree.xpath("//div[@class='title']/h4/text()")[0],
    )
    assert fetch(ab["base_url"] + perma)[0] == 200


def test_02_farm():
    with start_farm(autoblogs=1, articles=12, engine=["0.2"]) as f:
        body = fetch(f.url)[1]
        assert skeleton(body) == skeleton(ref("v02_farm-index.html"))
        ab = next(iter(f.truth()["autoblogs"].values()))
        base = ab["base_url"]
        assert re.match(r"^http://[^/]+/[0-9a-f]{40}/$", base)
        for page, name in [
            ("", "v02_index-p1_farm-rewrite.html"),
            ("2", "v02_index-p2_farm-rewrite.html"),
        ]:
            body = fetch(base + page)[1]
            assert skeleton(body) == skeleton(ref(name)), name
            tree = html.fromstring(body)
            assert all(h.startswith(base) for h in tree.xpath("//div[@class='pagination']/a/@href"))
            assert all(FR_DATE.match(d) for d in tree.xpath("//div[@class='title']/h4/text()"))
        st, body, _ = fetch(ab["articles"][6]["permalink"])
        assert st == 200 and skeleton(body) == skeleton(ref("v02_article_farm-rewrite.html"))
