"""HTTP behaviour of the sample farm: routing, 404s, pagination, grow, log, truth, faults."""

from __future__ import annotations

import gzip
import http.client
import socket
import urllib.request
from urllib.parse import quote, urlsplit

import pytest
from lxml import html

from crawler.samplefarm import start_farm

pytestmark = pytest.mark.e2e


def get(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    u = urlsplit(quote(url, safe=":/?&=%#"))
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", u.path + ("?" + u.query if u.query else ""), headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body, {k.lower(): v for k, v in r.getheaders()}


def titles(body: bytes) -> list[str]:
    return html.fromstring(body).xpath("//article/header/h2/a/text()")


def test_404_and_pages(farm):
    ab = next(iter(farm.truth()["autoblogs"].values()))
    base = ab["base_url"]
    assert get(base + "?Nope-du-tout")[0] == 404
    assert get(ab["articles"][0]["permalink"])[0] == 200
    assert get(ab["articles"][0]["permalink"] + "&x=y")[0] == 404
    assert titles(get(base + "?0")[1]) == titles(get(base + "?1")[1]) == titles(get(base)[1])
    assert get(farm.url + "autoblogs/nope/")[0] == 404
    assert get(base + "vvb.ini")[1].startswith(b"[VroumVroumBlogConfig]")
    db = get(base + "articles.db")[1]
    assert db.startswith(b"SQLite format 3\x00")


def test_articles_db_schema(farm, tmp_path):
    import sqlite3

    ab = next(iter(farm.truth()["autoblogs"].values()))
    p = tmp_path / "a.db"
    p.write_bytes(get(ab["base_url"] + "articles.db")[1])
    con = sqlite3.connect(p)
    cols = [r[1] for r in con.execute("PRAGMA table_info(articles)")]
    assert cols == ["id", "feed_id", "title", "uri", "url", "date", "content"]
    assert con.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == len(ab["articles"])
    uris = {r[0] for r in con.execute("SELECT uri FROM articles")}
    assert uris == {a["slug"] for a in ab["articles"]}


def test_truth_and_request_log(farm):
    t = farm.truth()["autoblogs"]
    assert len(t) == 3 and all(len(v["articles"]) == 12 for v in t.values())
    lq = next(iter(t.values()))
    first = lq["articles"][0]
    assert first["date"] == "2023-01-23T15:04:00+01:00"
    assert "vidéosurveillance automatisée" in first["text"]
    art2 = lq["articles"][1]
    assert "References" in art2["text"] and "jQuery" not in art2["text"]
    page = get(art2["permalink"])[1].decode()
    assert '&lt;script type="text/javascript"> jQuery(\'#footnote_plugin_tooltip' in page
    get(lq["base_url"] + "?2", {"User-Agent": "test-agent/1"})
    log = farm.requests()
    assert log[-1]["path"].endswith("/?2") and log[-1]["status"] == 200
    assert log[-1]["user_agent"] == "test-agent/1" and log[-1]["bytes"] > 1000
    assert not any(r["path"].startswith("/_farm/") for r in log)


def test_grow_shifts_pagination():
    with start_farm(autoblogs=1, articles=12) as f:
        ab = next(iter(f.truth()["autoblogs"].values()))
        p1 = titles(get(ab["base_url"])[1])
        new = f.grow(n=2)
        assert len(new["articles"]) == 2
        p1b = titles(get(ab["base_url"])[1])
        assert p1b[2:] == p1[:3] and p1b[:2] == [a["title"] for a in new["articles"]]
        nav = html.fromstring(get(ab["base_url"])[1]).xpath("//body/nav/a[not(@rel)]/text()")
        assert nav[-1] == "3"  # 14 articles / 5 per page
        assert len(f.truth()["autoblogs"][ab_folder(f)]["articles"]) == 14
        assert get(new["articles"][0]["permalink"])[0] == 200


def ab_folder(f) -> str:
    return next(iter(f.truth()["autoblogs"]))


def test_faults():
    with start_farm(
        autoblogs=2, articles=12, error_rate=0.5, seed=5, fault=["1:latin1", "0:gzip", "0:chunked"]
    ) as f:
        t = list(f.truth()["autoblogs"].values())
        codes = [get(t[1]["base_url"])[0] for _ in range(40)]
        assert {500, 503} & set(codes) and 200 in codes
        for _ in range(20):
            st, body, h = get(t[0]["base_url"], {"Accept-Encoding": "gzip"})
            if st == 200:
                break
        assert h["content-encoding"] == "gzip" and h["transfer-encoding"] == "chunked"
        assert b"<nav>" in gzip.decompress(body)
        for _ in range(20):
            st, body, h = get(t[1]["base_url"])
            if st == 200:
                break
        assert h["content-type"] == "text/html; charset=ISO-8859-1"
        assert b"\xe9" in body and b"\xc3\xa9" not in body  # é as one byte
    with start_farm(autoblogs=1, articles=12, drop_rate=1.0) as f:
        try:
            urllib.request.urlopen(f.url, timeout=10).read()
            raise AssertionError("expected a truncated body")
        except (http.client.IncompleteRead, ConnectionError):
            pass
        assert f.requests()[-1]["dropped"]


def test_bad_request_and_head(farm):
    s = socket.create_connection(("127.0.0.1", farm.port))
    s.sendall(b"GARBAGE\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 400")
    s.close()
    s = socket.create_connection(("127.0.0.1", farm.port))
    s.sendall(b"GET /" + b"x" * 40000 + b" HTTP/1.1\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 400")
    s.close()
    conn = http.client.HTTPConnection("127.0.0.1", farm.port)
    conn.request("HEAD", "/")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b""
    conn.close()
    assert get(farm.url)[0] == 200  # still alive
