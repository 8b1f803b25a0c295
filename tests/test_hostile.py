"""Hostile web (issue 10): the crawler cannot be turned against its user, and nothing in an
archive can break the archive.

Each case is a real crawl (``autoblog-archive crawl`` in a subprocess) of small hostile
loopback servers (tests/hostile.py); what is asserted is what a user sees: the exit
code, the message, the WARCs and corpus afterwards, and the servers' own request logs.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import pytest
import support
from hostile import (
    HTML,
    HostileServer,
    Measured,
    Reply,
    gzip_bomb,
    injected,
    loopback_alias_available,
    raw_reply,
    redirect_to,
    run_measured,
)
from support import (
    BIN,
    corpus_records,
    crawl_argv,
    crawl_log,
    responses,
    run_cli,
    summary_of,
)
from warcio.archiveiterator import ArchiveIterator

from crawler.collection import PAGE_TEXT_CHARS
from crawler.scope import forbidden_reason

pytestmark = pytest.mark.e2e

NAME = "hostile"
FIRST_PARAGRAPH = "<p>La loi"  # inside the first article of the sample farm's first page
needs_alias = pytest.mark.skipif(
    not loopback_alias_available(), reason="127.0.0.2 not routable to this machine's loopback"
)


def crawl(url: str, out: Path, *extra: str, env: dict | None = None):
    return support.crawl(url, out, *extra, name=NAME, env=env)


def archive(out: Path) -> Path:
    return out / "collections" / NAME / "archive"


def captured(out: Path) -> list[str]:
    return [uri for uri, _, _ in responses(archive(out))]


def fetch_errors(out: Path) -> dict[str, list[str]]:
    """``fetchError`` lines of the metadata records: what the WARCs say went missing."""
    found: dict[str, list[str]] = {}
    for path in sorted(archive(out).glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == "metadata":
                    text = record.content_stream().read().decode("utf-8")
                    for line in text.splitlines():
                        if line.startswith("fetchError: "):
                            uri = record.rec_headers.get_header("WARC-Target-URI")
                            found.setdefault(uri, []).append(line[12:])
    return found


def assert_verified(result: subprocess.CompletedProcess | Measured, out: Path) -> None:
    """`verify` found no defect, and as missing exactly the items the last crawl's own
    audit named (crawler.history.audit): what a partial run left out."""
    named = {
        f"MISSING  {m['what']} {m['url']} ({m['why']}), autoblog {m['autoblog']}"
        for m in summary_of(out)["audit"]["missing"]
    }
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("DEFECT")], result.stdout[-2000:]
    missing = [line for line in lines if line.startswith("MISSING")]
    assert set(missing) == named and len(missing) == len(named), result.stdout[-2000:]
    assert result.returncode == (1 if named else 0), result.stdout[-2000:]


def assert_archive_sound(out: Path) -> None:
    """`verify` and `warcio check` both pass on what the crawl left (but for what a partial
    crawl named missing)."""
    assert_verified(run_cli("verify", str(out)), out)
    for path in sorted(archive(out).glob("*.warc.gz")):
        check = subprocess.run(
            [str(BIN / "warcio"), "check", str(path)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr


def path_of(server: HostileServer, url: str) -> str:
    return url[len(server.url) - 1 :]


# -- 1. redirects cannot leave the scope ------------------------------------------------


@needs_alias
def test_1_redirects_out_of_scope_are_refused_through_a_real_crawl(tmp_path):
    with (
        HostileServer("127.0.0.2") as alias,
        HostileServer() as other_port,
        HostileServer() as farm,
    ):
        base = path_of(farm, farm.base())
        farm.routes[base + "?feed"] = redirect_to(alias.url + "stolen")
        farm.routes[base + "?opml"] = redirect_to(other_port.url + "stolen")
        farm.routes[base + "?media"] = redirect_to(f"//127.0.0.2:{alias.port}/protocol-relative")
        result = crawl(farm.base(), tmp_path)
        assert alias.requests() == [] and other_port.requests() == []
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "skipped 3 x out of scope (redirect target)" in result.stdout
    assert summary_of(tmp_path)["skipped"] == {"out of scope (redirect target)": 3}
    uris = captured(tmp_path)
    assert all(u.startswith(farm.url) for u in uris), uris
    assert sum(1 for u in uris if u.endswith(("?feed", "?opml", "?media"))) == 3  # the 302s
    assert_archive_sound(tmp_path)


# -- 2. a meta refresh inside an article is content ------------------------------------


@needs_alias
def test_2_meta_refresh_in_an_article_replaces_nothing(tmp_path):
    with HostileServer("127.0.0.2") as alias, HostileServer(autoblogs=2) as farm:
        off = f'<meta http-equiv="refresh" content="0;url={alias.url}">'
        inside = '<meta http-equiv="refresh" content="0; url=./vvb.ini">'
        farm.routes[path_of(farm, farm.base(0))] = injected(FIRST_PARAGRAPH, off)
        first_1 = re.search(
            r"<p>[^<]{8}", farm.farm_reply(path_of(farm, farm.base(1))).body.decode()
        )
        farm.routes[path_of(farm, farm.base(1))] = injected(first_1.group(0), inside)
        result = crawl(farm.url, tmp_path)
        assert alias.requests() == []
        truth = farm.farm.truth(f"{farm.host}:{farm.port}")["autoblogs"]
    assert result.returncode == 0, result.stdout[-2000:]
    blogs = summary_of(tmp_path)["autoblogs"]
    for blog in truth.values():
        assert blogs[blog["base_url"]]["articles"] == len(blog["articles"])
    uris = set(captured(tmp_path))
    for blog in truth.values():
        assert {a["url"] for a in blog["articles"]} <= uris
    assert_archive_sound(tmp_path)


# -- 3. a compressed bomb is recorded, flagged, skipped, never fatal ---------------------

BOMB_BYTES = 1 << 30  # inflates to 1 GiB: any reader that inflates it whole passes 500 MB


@pytest.fixture(scope="module")
def bomb_route():
    return gzip_bomb(BOMB_BYTES)


def test_3_a_gzip_bomb_in_the_archive_breaks_no_command(tmp_path, bomb_route):
    out = tmp_path / "out"
    with HostileServer(articles=12) as farm:
        bomb_url = farm.base() + "?2"
        farm.routes[path_of(farm, bomb_url)] = bomb_route
        peaks = {}
        first = run_measured(crawl_argv(farm.base(), out, name=NAME))
        peaks["crawl"] = first
        # The next crawl's start re-reads every record the history lacks (here: all of them).
        # With --wacz: the WACZ's pages carry each page's text, read back from the archive.
        (out / "history.sqlite").unlink()
        peaks["crawl again"] = run_measured([*crawl_argv(farm.base(), out, name=NAME), "--wacz"])
    peaks["verify"] = run_measured([str(BIN / "autoblog-archive"), "verify", str(out)])
    peaks["reindex"] = run_measured([str(BIN / "autoblog-archive"), "reindex", str(out)])
    ex = run_measured(
        [str(BIN / "autoblog-archive"), "extract", str(archive(out)), "-o", str(tmp_path / "x")]
    )
    peaks["extract"] = ex
    report = {k: (round(m.peak_process_mb), round(m.peak_tree_mb)) for k, m in peaks.items()}
    print("peak MB (largest process, whole tree PSS):", report)
    for name, measured in peaks.items():
        assert measured.peak_process_mb < 500, (name, report)
        assert measured.peak_tree_mb < 500, (name, report)
    # The crawl: the bomb captured as sent, flagged in the summary, the run partial.
    assert first.returncode == 1, first.stdout[-2000:]
    assert "body larger than DOWNLOAD_MAXSIZE" in first.stdout  # the summary's reasons
    bomb_records = [r for r in responses(archive(out)) if r[0] == bomb_url]
    assert bomb_records and bomb_records[0][1].get_header("Content-Encoding") == "gzip"
    flags = fetch_errors(out)[bomb_url]  # flagged in the WARC too
    assert any(
        "larger than DOWNLOAD_MAXSIZE (67108864 bytes) once decompressed" in f for f in flags
    )
    with zipfile.ZipFile(out / f"{NAME}.wacz") as wacz:
        pages = [json.loads(line) for line in wacz.read("pages/pages.jsonl").splitlines()[1:]]
    texts = {p["url"]: p["text"] for p in pages}
    assert len(texts[bomb_url]) <= PAGE_TEXT_CHARS  # the bomb's start, bounded
    assert all(texts[u] for u in texts if u != bomb_url)  # every other page has its text
    assert_verified(peaks["verify"], out)  # the articles on the bomb's page: missing
    assert peaks["reindex"].returncode == 0, peaks["reindex"].stdout[-2000:]
    # extract: everything else extracted, the bomb skipped with its reason, exit partial.
    assert ex.returncode == 1
    assert f"skipped {bomb_url} (extraction_failed" in ex.stderr
    assert "stored body larger than" in ex.stderr
    # Nothing captured around the bomb is lost: the same articles as the crawl-time corpus
    # (those listed on the bomb's page were never seen; every other one was).
    offline = {r["url"] for r in corpus_records(tmp_path / "x")}
    at_crawl = {r["url"] for r in corpus_records(out)}
    assert offline == at_crawl and len(offline) == 12 - 5


# -- 4. every spelling of a forbidden URL is refused -----------------------------------

FORBIDDEN_LINKS = [
    "?update[]=1",
    "?update%5B%5D=1",
    "?%20update",
    "?check[x]=",
    "?reset_cache[]=1",
    "?reset.cache=1",
    "?q[]=",
    "../../xsaf3%2Ephp",
    "../../xsaf3.php/",
    "../../xsaf3.php/x",
    "../../XSAF2.PHP",
    "../../autoblogs/%2E%2E/xsaf3.php",
]


def _reaches_forbidden(target: str) -> bool:
    """The server's view: would PHP or Apache run a side-effecting script for this target?"""
    return forbidden_reason("http://farm" + target) is not None


def test_4_forbidden_urls_never_reach_the_server(tmp_path):
    with HostileServer() as farm:
        links = "".join(f'<img src="{u}"> ' for u in FORBIDDEN_LINKS)
        farm.routes[path_of(farm, farm.base())] = injected(FIRST_PARAGRAPH, links)
        result = crawl(farm.url, tmp_path)
        seen = farm.requests()
    assert result.returncode == 0, result.stdout[-2000:]
    assert [t for t in seen if _reaches_forbidden(t)] == []
    assert not [t for t in seen if re.search(r"update|check|reset|xsaf|q%5B|q\[", t, re.I)]
    skipped = summary_of(tmp_path)["skipped"]
    assert skipped["xsaf"] == 5 and skipped["?update"] == 3 and skipped["?reset_cache"] == 2
    assert skipped["?check"] == 1 and skipped["?q"] == 1
    assert_archive_sound(tmp_path)


# -- 5. bounds: every run ends, and the next one continues ------------------------------


def _endless_pages(server: HostileServer, target: str) -> Reply:
    """``?N`` for every N: the farm's page 2 with a "next" link to N + 1, forever."""
    query = target.rsplit("?", 1)[1]
    if not query.isdigit():
        return server.farm_reply(target)
    page = server.farm_reply(target.rsplit("?", 1)[0] + "?2")
    nxt = int(query) + 1
    nav = f'<nav><a href="./?{nxt}">{nxt}</a> <a rel="next" href="./?{nxt}">next</a></nav>'
    body = re.sub(r"<nav>.*?</nav>", nav, page.body.decode(), flags=re.S)
    return Reply(200, page.headers, body.encode())


def test_5_endless_pagination_and_a_page_of_links_end_as_partial(tmp_path):
    with HostileServer() as farm:
        base = path_of(farm, farm.base())
        farm.prefix_routes[base + "?"] = _endless_pages
        links = "".join(f'<img src="media/n{i}.png">' for i in range(3000))
        farm.routes[base] = injected(FIRST_PARAGRAPH, links)
        result = crawl(
            farm.base(),
            tmp_path,
            "-s",
            "MAX_PAGES_PER_AUTOBLOG=30",
            "-s",
            "MAX_LINKS_PER_PAGE=100",
        )
        seen = farm.requests()
    assert result.returncode == 1, result.stdout[-2000:]
    pages = [t for t in seen if re.search(r"\?\d+$", t)]
    assert 0 < len(pages) < 30
    assert len([t for t in seen if "/media/n" in t]) <= 100
    skipped = summary_of(tmp_path)["skipped"]
    assert skipped["bound: MAX_PAGES_PER_AUTOBLOG=30"] >= 1
    assert skipped["bound: MAX_LINKS_PER_PAGE=100"] >= 2900
    assert "bound: MAX_PAGES_PER_AUTOBLOG=30" in result.stdout
    assert_archive_sound(tmp_path)


def test_5_a_capped_farm_is_finished_by_the_next_runs(tmp_path):
    with HostileServer(articles=30) as farm:
        truth = farm.farm.truth(f"{farm.host}:{farm.port}")["autoblogs"]
        permalinks = {a["url"] for blog in truth.values() for a in blog["articles"]}
        codes, run_lines = [], []
        for _ in range(8):
            result = crawl(farm.base(), tmp_path, "-s", "MAX_PAGES_PER_RUN=15")
            codes.append(result.returncode)
            run_lines.append(next(x for x in result.stdout.splitlines() if x.startswith("Run ")))
            if result.returncode != 1:
                break
        seen = farm.requests()
    assert codes[-1] == 0 and set(codes[:-1]) == {1} and len(codes) >= 3, (codes, run_lines)
    assert all(line.startswith("Run 1 ") for line in run_lines), run_lines  # one run, resumed
    assert permalinks <= set(captured(tmp_path))
    fetched = [t for t in seen if t != "/robots.txt"]
    assert len(fetched) == len(set(fetched)), "a page was fetched again by a later run"
    assert_archive_sound(tmp_path)


# -- 6. no remote control, no telnet --------------------------------------------------


def test_6_no_remote_control_endpoint_or_job_file(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with HostileServer() as farm:
        # HOME (and Scrapy's state folder) pointed at an empty folder of its own.
        env = dict(os.environ, HOME=str(home), XDG_STATE_HOME=str(home / "state"))
        result = crawl(farm.base(), tmp_path / "out", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    log = crawl_log(result)
    assert "Spider opened" in log  # the log is there, and without
    assert "RemoteControl" not in log and "Remote control" not in log
    assert "TelnetConsole" not in log and "Telnet console listening" not in log
    # Scrapy's job_files folder (token files) included. The one thing a crawl keeps in
    # HOME is the language model's cache (docs/security.md).
    cache = Path(".cache", "autoblog-archive")
    leftovers = [
        path
        for path in (p.relative_to(home) for p in home.rglob("*"))
        if path not in (cache.parent, cache)
        and not (path.parent == cache and path.match("langid-*.bin"))
    ]
    assert leftovers == [], leftovers


# -- 7. a collection name is a name -----------------------------------------------------


@pytest.mark.parametrize("name", ["../../escaped", "ABSOLUTE", "a/b", ".."])
def test_7_a_collection_name_cannot_be_a_path(tmp_path, name):
    out = tmp_path / "a" / "b" / "out"
    name = str(tmp_path / "escaped") if name == "ABSOLUTE" else name
    result = run_cli("crawl", "http://127.0.0.1:9/", "--output", str(out), "--name", name)
    assert result.returncode == 4
    assert "is not a plain name" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() and not (tmp_path / "escaped").exists()
    assert list(tmp_path.iterdir()) == []


# -- 8. offline tools do not trust the archive --------------------------------------------


@pytest.fixture(scope="module")
def plain_crawl(tmp_path_factory):
    """One clean crawl (12 articles, 2 WARC files) that the damage tests copy."""
    out = tmp_path_factory.mktemp("plain")
    with HostileServer(articles=12) as farm:
        result = crawl(farm.base(), out, "--warc-max-size", "150000")
    assert result.returncode == 0, result.stdout[-2000:]
    assert len(list(archive(out).glob("*.warc.gz"))) >= 2
    clean = run_cli("extract", str(archive(out)), "-o", str(out / "clean"))
    assert clean.returncode == 0, clean.stdout + clean.stderr[-2000:]
    return out


def _copy(plain: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(plain, out, ignore=shutil.ignore_patterns("clean"))
    return out


def _members(path: Path) -> list[tuple[int, int]]:
    """(offset, end) of each gzip member of a WARC the crawler wrote."""
    data, spans, start = path.read_bytes(), [], 0
    while start < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[start:])
        end = len(data) - len(d.unused_data)
        spans.append((start, end))
        start = end
    return spans


def _lengthen_a_response(path: Path) -> None:
    """Rewrite one real response record so its Content-Length claims 100 bytes more."""
    data = path.read_bytes()
    for start, end in _members(path):
        record = gzip.decompress(data[start:end])
        if b"WARC-Type: response" in record:
            length = int(re.search(rb"Content-Length: (\d+)", record).group(1))
            record = record.replace(
                f"Content-Length: {length}".encode(), f"Content-Length: {length + 100}".encode(), 1
            )
            path.write_bytes(data[:start] + gzip.compress(record) + data[end:])
            return
    raise AssertionError("no response record")


def test_8_verify_catches_a_content_length_longer_than_the_block(plain_crawl, tmp_path):
    out = _copy(plain_crawl, tmp_path)
    _lengthen_a_response(sorted(archive(out).glob("*.warc.gz"))[0])
    result = run_cli("verify", str(out))
    assert result.returncode == 1
    assert "bytes shorter than its Content-Length" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_8_verify_reports_malformed_cdxj_lines(plain_crawl, tmp_path):
    out = _copy(plain_crawl, tmp_path)
    cdxj = out / "collections" / NAME / "indexes" / "index.cdxj"
    with open(cdxj, "a", encoding="utf-8") as fh:
        fh.write("garbage\n")
        fh.write('zz,x)/ 20260101000000 {"filename": "../../etc/passwd", "offset": 0}\n')
        fh.write('zz,y)/ 20260101000000 {"filename": 3, "offset": "x", "url": 1}\n')
    result = run_cli("verify", str(out))
    assert result.returncode == 1
    assert result.stdout.count("malformed line") == 3, result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def _origin(record: dict) -> tuple[str, str]:
    """A corpus record's article and the WARC record it was read from."""
    return record["url"], record["warc"]["record_id"]


def _damage(out: Path, how: str, name: str) -> Path:
    """Damage one WARC of a copy in one hostile way; returns the damaged file."""
    path = archive(out) / name
    data = path.read_bytes()
    spans = _members(path)
    cut = spans[len(spans) // 2][0]
    if how == "garbage between records":
        data = data[:cut] + b"this is not gzip at all\r\n" * 10 + data[cut:]
    elif how == "not a WARC":
        data = b"<html>not a warc</html>" * 100
    elif how == "bit flip":
        start, end = spans[len(spans) // 2]
        middle = start + (end - start) // 2  # inside the compressed data, not the header
        data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    elif how == "truncated":
        start, end = spans[len(spans) // 2]
        data = data[: start + (end - start) // 2]
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("how", ["garbage between records", "not a WARC", "bit flip", "truncated"])
def test_8_extract_and_reindex_skip_damage_and_keep_the_rest(plain_crawl, tmp_path, how):
    out = _copy(plain_crawl, tmp_path)
    clean = corpus_records(plain_crawl / "clean")
    # Damage the file holding most articles, so that the damage costs something.
    names = Counter(r["warc"]["filename"] for r in clean)
    damaged = _damage(out, how, names.most_common(1)[0][0])
    result = run_cli("extract", str(archive(out)), "-o", str(tmp_path / "x"))
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert damaged.name in result.stdout + result.stderr
    got = {_origin(r) for r in corpus_records(tmp_path / "x")}
    # Every article of the other files is there; the damaged file gave what it still could.
    assert {_origin(r) for r in clean if r["warc"]["filename"] != damaged.name} <= got
    assert not got >= {_origin(r) for r in clean}, "the damage cost nothing: not tested"
    reindex = run_cli("reindex", str(out))
    assert reindex.returncode == 1, reindex.stdout + reindex.stderr[-2000:]
    assert "Traceback" not in reindex.stdout + reindex.stderr
    assert "PROBLEM" in reindex.stdout and "Rebuilt" in reindex.stdout


# -- 9. small ones: every failure says why ------------------------------------------------


def _deep_json(server: HostileServer, target: str) -> Reply:
    return Reply(200, [("Content-Type", "application/json")], b"[" * 50_000 + b"]" * 50_000)


def test_9_cut_bodies_huge_headers_long_urls_and_deep_json_are_reported(tmp_path):
    with HostileServer() as farm:
        base = path_of(farm, farm.base())
        big = b"x" * 300_000
        farm.routes[base + "vvb.ini"] = lambda s, t: Reply(200, [("Content-Type", HTML)], big)
        farm.routes[base + "articles.db"] = raw_reply(
            b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + big
        )
        farm.routes[base + "?opml"] = raw_reply(
            b"HTTP/1.0 200 OK\r\nX-Huge: " + b"h" * (1 << 20) + b"\r\n\r\nbody"
        )
        farm.routes[base + "?media"] = _deep_json
        long_link = "media/" + "a" * 10_000 + ".png"
        farm.routes[base] = injected(FIRST_PARAGRAPH, f'<img src="{long_link}">')
        result = crawl(farm.base(), tmp_path, "-s", "DOWNLOAD_MAXSIZE=200000")
        seen = farm.requests()
    assert result.returncode == 1, result.stdout[-2000:]
    assert not [t for t in seen if len(t) > 2083]
    found = summary_of(tmp_path)
    assert found["skipped"]["URL longer than 2083 characters"] == 1
    reasons = found["error_reasons"]
    assert reasons["body larger than DOWNLOAD_MAXSIZE (200000 bytes)"] == 2, reasons
    assert reasons["JSON nested too deeply"] == 1, reasons
    assert any("header line over 16 kB" in r for r in reasons), reasons
    log = crawl_log(result)
    assert "failed: " + farm.base() + "vvb.ini (body larger than DOWNLOAD_MAXSIZE" in log
    assert "()" not in re.findall(r"failed: \S+ (\(.*?\))", log)
    assert f"failed: {farm.base()}?opml (connection closed before a complete" in log
    assert "failed 2 x body larger than DOWNLOAD_MAXSIZE (200000 bytes)" in result.stdout
    # No response record for a cut body, but the WARC says what is missing and why.
    errors = fetch_errors(tmp_path)
    for name in ("vvb.ini", "articles.db"):
        assert errors[farm.base() + name] == ["body larger than DOWNLOAD_MAXSIZE (200000 bytes)"]
    assert farm.base() + "vvb.ini" not in captured(tmp_path)
    assert_archive_sound(tmp_path)
