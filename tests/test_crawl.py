"""End-to-end crawls of the sample farm with the real command line, Scrapy and warcio.

One crawl of a farm holding every engine variant is shared by most assertions; the
farm's own request log and ground truth are the oracle.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import statistics
import subprocess
import urllib.request
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from rapidfuzz import fuzz
from support import (
    BIN,
    crawl_log,
    default_context,
    needs_pywb,
    reachable_articles,
    responses,
    run_cli,
    warcio_check,
)
from warcio.archiveiterator import ArchiveIterator

from crawler.collection import PAGE_TEXT_CHARS
from crawler.corpus.shards import read_corpus
from crawler.samplefarm import start_farm
from crawler.scope import forbidden_reason
from crawler.urls import canonical_url
from crawler.warc.reader import read_record_at

pytestmark = pytest.mark.e2e

FORBIDDEN = re.compile(r"[?&](update|updateall|reset_cache|check=|q=)|xsaf\d*\.php", re.I)


def test_crawl_command_succeeds(crawled):
    result = crawled["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Run 1 (full): complete" in result.stdout
    assert (crawled["out"] / "summary.json").exists()


def test_every_article_page_media_and_export_captured_once(crawled):
    captured = Counter(unquote(uri) for uri, _, _ in crawled["responses"])
    duplicates = {u: n for u, n in captured.items() if n > 1}
    assert not duplicates, duplicates
    root = crawled["farm"].url
    for export in ("?export", "?exportopml", "?sitemap", "?rss"):
        assert root + export in captured
    for blog in crawled["truth"].values():
        if blog["disabled"]:
            continue
        base = blog["base_url"]
        for article in blog["articles"]:
            if article["reachable"]:
                assert unquote(article["url"]) in captured, (blog["engine"], article["url"])
            for media in article["media"]:
                assert base + "media/" + media in captured, media
        for extra in ("vvb.ini", "articles.db"):
            assert base + extra in captured, (blog["engine"], extra)
        if blog["engine"] not in ("0.2", "0.1"):
            for query in ("?feed", "?opml", "?media"):
                assert base + query in captured, (blog["engine"], query)
        pages = {u for u in captured if u.startswith(base) and _page_number(u, base) is not None}
        # A numeric-only title's permalink (?2024) is linked, fetched, and is a page.
        numeric_slugs = {int(a["slug"]) for a in blog["articles"] if a["slug"].isdigit()}
        numbers = {_page_number(u, base) for u in pages} - numeric_slugs
        assert set(range(2, blog["pages"] + 1)) <= numbers, (blog["engine"], sorted(numbers))
        # Stopped at the last page the engine lists, not beyond.
        assert max(numbers) <= blog["pages"], (blog["engine"], sorted(numbers))


def _page_number(url: str, base: str) -> int | None:
    rest = url[len(base) :]
    match = re.fullmatch(r"\?(?:page)?(\d+)|(\d+)", rest)
    if not match:
        return None
    return int(match.group(1) or match.group(2))


def test_hidden_autoblog_not_found_without_a_list(crawled):
    hidden = [b for b in crawled["truth"].values() if b["disabled"]]
    assert hidden
    captured = {uri for uri, _, _ in crawled["responses"]}
    assert not any(uri.startswith(hidden[0]["base_url"]) for uri in captured)


def test_never_requested_a_forbidden_url(crawled):
    paths = [r["path"] for r in crawled["requests"]]
    assert paths, "the farm saw no request"
    bad = [p for p in paths if FORBIDDEN.search(p) or forbidden_reason("http://x" + p)]
    assert not bad
    assert all(r["method"] in ("GET", "HEAD") for r in crawled["requests"])
    assert not any(p.startswith("/private/") for p in paths)
    assert paths[0] == "/robots.txt"


def test_identifies_itself_and_asks_only_for_replayable_encodings(crawled):
    for entry in crawled["requests"]:
        assert "autoblog-archive" in entry["user_agent"]
        if entry["path"] != "/robots.txt":
            codings = {c.strip() for c in entry["accept_encoding"].split(",")}
            assert codings <= {"gzip", "deflate", "br"}, entry


def test_warcio_check_passes_on_every_file(crawled):
    files = sorted((crawled["out"] / "collections" / "farm" / "archive").glob("*.warc.gz"))
    result = warcio_check(files)
    assert result.returncode == 0, result.stdout[-2000:]


def test_verify_command_passes(crawled):
    result = run_cli("verify", str(crawled["out"]))
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("OK")


def test_records_follow_the_warc_rules(crawled):
    archive = crawled["out"] / "collections" / "farm" / "archive"
    for path in archive.glob("*.warc.gz"):
        assert re.fullmatch(r"farm-\d{17}-\d{5}-[\w.-]+-\d+\.warc\.gz", path.name)
        with open(path, "rb") as fh:
            records = list(_records(fh))
        assert records[0]["type"] == "warcinfo"
        for i, rec in enumerate(records):
            if rec["type"] != "response":
                continue
            req = records[i + 1]
            assert req["type"] == "request"
            assert req["headers"]["WARC-Concurrent-To"] == rec["headers"]["WARC-Record-ID"]
            assert req["headers"]["WARC-Date"] == rec["headers"]["WARC-Date"]
            assert req["headers"]["WARC-Target-URI"] == rec["headers"]["WARC-Target-URI"]
            assert rec["headers"]["WARC-IP-Address"] == "127.0.0.1"
            assert rec["headers"]["WARC-Protocol"] == "http/1.1"
            assert rec["headers"]["WARC-Payload-Digest"].startswith("sha1:")
            target = urlsplit(rec["headers"]["WARC-Target-URI"])
            line = req["http"].split("\r\n", 1)[0]
            expected = target.path + (f"?{target.query}" if target.query else "")
            assert line == f"GET {expected} HTTP/1.1"
            assert f"Host: {target.netloc}" in req["http"]
            assert "transfer-encoding" not in rec["http"].lower()
            length = re.search(r"(?im)^content-length: (\d+)", rec["http"])
            assert length and int(length.group(1)) == len(rec["body"])


def _records(fh):
    for record in ArchiveIterator(fh):
        http = record.http_headers.to_str() if record.http_headers else ""
        yield {
            "type": record.rec_type,
            "headers": dict(record.rec_headers.headers),
            "http": http,
            "body": record.raw_stream.read(),
        }


def test_metadata_records_list_outlinks(crawled):
    archive = crawled["out"] / "collections" / "farm" / "archive"
    outlinks = 0
    for path in archive.glob("*.warc.gz"):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == "metadata":
                    assert record.rec_headers.get_header("Content-Type") == (
                        "application/warc-fields"
                    )
                    text = record.content_stream().read().decode()
                    assert "fetchTimeMs:" in text
                    outlinks += text.count("outlink: ")
    assert outlinks > 100


def test_gzip_response_stored_as_received_and_still_decodes(crawled):
    coded = [
        (u, h, b)
        for u, h, b in crawled["responses"]
        if (h.get_header("Content-Encoding") or "") == "gzip"
    ]
    assert coded, "the gzip autoblog produced no gzip-coded response"
    for _uri, _headers, body in coded:
        assert body[:2] == b"\x1f\x8b"
        assert gzip.decompress(body).strip()


def test_indexes_and_pywb_layout(crawled):
    out = crawled["out"]
    cdxj = out / "collections" / "farm" / "indexes" / "index.cdxj"
    lines = cdxj.read_text().splitlines()
    assert lines == sorted(lines)
    assert len(lines) >= len(crawled["responses"])
    pages = (out / "pages.jsonl").read_text().splitlines()
    assert '"format":"json-pages-1.0"' in pages[0]
    assert len(pages) > 20


@pytest.fixture(scope="module")
def rolled(tmp_path_factory):
    """Every engine but two, a gzip-coded autoblog, WARC files rolled over at 60 kB and a
    WACZ (read it, never write it: copy it first)."""
    out = tmp_path_factory.mktemp("rolled")
    with start_farm(autoblogs=4, articles=12, engine=["0.3.4", "0.2", "2025", "0.1"],
                    fault=["1:gzip"]) as farm:  # fmt: skip
        result = run_cli("crawl", farm.url, "-o", str(out), "--name", "k", "--fast",
                         "--warc-max-size", "60000", "--wacz")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return {"out": out, "result": result}


def test_rollover_keeps_pairs_together(rolled):
    out = rolled["out"]
    files = sorted((out / "collections" / "k" / "archive").glob("*.warc.gz"))
    assert len(files) >= 3
    serials = [int(f.name.split("-")[2]) for f in files]
    assert serials == sorted(serials) and len(set(serials)) == len(serials)
    verify = run_cli("verify", str(out))
    assert verify.returncode == 0, verify.stdout
    check = warcio_check(files)
    assert check.returncode == 0, check.stdout
    validate = subprocess.run(
        [str(BIN / "wacz"), "validate", "-f", str(out / "k.wacz")],
        capture_output=True,
        text=True,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_wacz_pages_carry_text_for_search(tmp_path):
    """ReplayWeb.page searches the text of a WACZ's pages.jsonl: every page has its text
    there, an article page its corpus text, and the package opens on the farm root."""
    with start_farm(autoblogs=2, articles=6, seed=1) as farm:
        truth = farm.truth()["autoblogs"]
        result = run_cli("crawl", farm.url, "-o", str(tmp_path), "--name", "w", "--fast", "--wacz")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    validate = subprocess.run(
        [str(BIN / "wacz"), "validate", "-f", str(tmp_path / "w.wacz")],
        capture_output=True,
        text=True,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    with zipfile.ZipFile(tmp_path / "w.wacz") as wacz:
        package = json.loads(wacz.read("datapackage.json"))
        header, *pages = [json.loads(line) for line in wacz.read("pages/pages.jsonl").splitlines()]
    assert package["mainPageURL"] == farm.url
    root_dates = [p["ts"] for p in pages if p["url"] == farm.url]
    assert package["mainPageDate"] == max(root_dates)
    # No "hasText": with it ReplayWeb.page would search only the file's first MiB.
    assert header == {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
    listed = [json.loads(line) for line in (tmp_path / "pages.jsonl").read_text().splitlines()]
    assert [(p["url"], p["ts"], p["title"]) for p in pages] == [
        (p["url"], p["ts"], p["title"]) for p in listed[1:]
    ]
    assert all(p["text"].strip() for p in pages), [p["url"] for p in pages if not p["text"]]
    by_url = {unquote(p["url"]): p for p in pages}
    corpus = read_corpus(tmp_path)
    for article in (a for blog in truth.values() for a in blog["articles"]):
        page = by_url[unquote(article["url"])]
        # The article's own words, as the farm wrote them, are in its page's text.
        words = article["text"].split()[:12]
        assert " ".join(words) in " ".join(page["text"].split()), article["url"]
        record = next(r for r in corpus if unquote(r["url"]) == unquote(article["url"]))
        assert page["text"] == record["text"][:PAGE_TEXT_CHARS]
    # A page that is not one article (the farm's index) has its visible text.
    for blog in truth.values():
        assert blog["title"] in by_url[farm.url]["text"]


def test_verify_detects_a_damaged_archive(rolled, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(rolled["out"], out)
    # Flip one byte in the middle of a response record's compressed data (past the
    # gzip header, whose mtime and OS bytes no reader checks).
    cdxj = (out / "collections" / "k" / "indexes" / "index.cdxj").read_text()
    fields = json.loads(cdxj.splitlines()[len(cdxj.splitlines()) // 2].split(" ", 2)[2])
    warc = out / "collections" / "k" / "archive" / fields["filename"]
    data = bytearray(warc.read_bytes())
    data[int(fields["offset"]) + int(fields["length"]) // 2] ^= 0xFF
    warc.write_bytes(bytes(data))
    result = run_cli("verify", str(out))
    assert result.returncode == 1
    assert "DEFECT" in result.stdout


@needs_pywb
def test_replay_in_pywb(crawled):
    from crawler.replay import Wayback

    with Wayback(crawled["out"]) as base:
        checked = 0
        for folder, blog in crawled["truth"].items():
            if blog["disabled"] or folder == list(crawled["truth"])[1]:
                continue  # the gzip autoblog's raw bytes are content-coded
            for article in [a for a in blog["articles"] if a["reachable"]][:3]:
                url = article["url"]
                raw = urllib.request.urlopen(f"{base}farm/2000id_/{url}").read()
                served = urllib.request.urlopen(url).read()
                assert raw == served
                page = urllib.request.urlopen(f"{base}farm/{url}").read().decode("utf-8", "replace")
                assert _html_escape(article["title"]) in page
                checked += 1
        assert checked >= 10


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_scrapy_crawl_command_gives_the_same_output(tmp_path):
    with start_farm(autoblogs=1, articles=8, engine=["0.3.0"]) as farm:
        result = subprocess.run(
            [
                str(BIN / "scrapy"),
                "crawl",
                "autoblog",
                "-a",
                f"url={farm.url}",
                "-s",
                f"OUTPUT_DIR={tmp_path}",
                "-s",
                "CRAWL_NAME=sc",
                "-s",
                "DOWNLOAD_DELAY=0",
                "-s",
                "AUTOTHROTTLE_ENABLED=False",
                "-s",
                "CONCURRENT_REQUESTS_PER_DOMAIN=8",
            ],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
            timeout=300,
        )
        truth = farm.truth()["autoblogs"]
    assert result.returncode == 0, result.stderr[-2000:]
    captured = {unquote(u) for u, _, _ in responses(tmp_path / "collections" / "sc" / "archive")}
    assert reachable_articles(truth) <= captured
    assert run_cli("verify", str(tmp_path)).returncode == 0


def test_an_autoblog_of_one_article_has_its_permalink_archived(tmp_path):
    """A new autoblog's root shows its one article and no pagination: still an index page,
    so the crawl follows the permalink and the audit finds it (was exit 1, missing)."""
    with start_farm(autoblogs=3, articles=1, engine=["0.3.4", "0.2", "0.1"]) as farm:
        result = run_cli("crawl", farm.url, "-o", str(tmp_path), "--name", "one", "--fast")
        truth = farm.truth()["autoblogs"]
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    permalinks = {canonical_url(a["permalink"]) for b in truth.values() for a in b["articles"]}
    assert len(permalinks) == 3
    archive = tmp_path / "collections" / "one" / "archive"
    assert permalinks <= {canonical_url(uri) for uri, _h, _b in responses(archive)}


def test_robots_crawl_delay_is_applied(tmp_path):
    """--fast lifts our own delays but never the farm's Crawl-delay."""
    delay = 0.25
    robots = f"User-agent: *\nCrawl-delay: {delay}\n"
    with start_farm(autoblogs=1, articles=2, robots=robots) as farm:
        result = run_cli("crawl", farm.url, "-o", str(tmp_path), "--name", "cd", "--fast")
        log = [r for r in farm.requests() if r["path"] != "/robots.txt"]
    assert result.returncode == 0, result.stderr[-2000:]
    times = sorted(r["time"] for r in log)
    assert len(times) >= 8
    # The farm stamps a request when it reads it: on a busy machine one stamp can come
    # late and shorten the next gap, so the gaps are judged together, not one by one
    # (without the delay every gap is a few milliseconds).
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert statistics.median(gaps) >= 0.95 * delay, gaps
    assert times[-1] - times[0] >= delay * (len(times) - 1) - 0.2, gaps


def test_listed_hidden_autoblog_and_faults_are_survived(tmp_path):
    """Dropped connections, 500/503 answers and a hidden autoblog named on the command line."""
    with start_farm(
        autoblogs=3,
        articles=12,
        engine=["0.3.4", "0.2"],
        fault=["2:disabled", "0:drop=0.3", "1:error=0.3"],
    ) as farm:
        truth = farm.truth()["autoblogs"]
        hidden = [folder for folder, blog in truth.items() if blog["disabled"]]
        hidden_base = truth[hidden[0]]["base_url"]
        folder = hidden_base.rstrip("/").rsplit("/", 1)[-1]
        # Enough retries that a URL failing every attempt (0.3 ** 11) does not happen.
        result = run_cli(
            "crawl",
            farm.url,
            "-o",
            str(tmp_path),
            "--name",
            "f",
            "--fast",
            "--autoblogs",
            folder,
            "--set",
            "RETRY_TIMES=10",
        )
        statuses = Counter(r["status"] for r in farm.requests())
    assert result.returncode in (0, 1), result.stderr[-2000:]
    assert statuses[500] + statuses[503] > 0
    archive = tmp_path / "collections" / "f" / "archive"
    captured = {unquote(u) for u, h, _ in responses(archive) if h.get_statuscode() == "200"}
    truncated = 0
    for path in archive.glob("*.warc.gz"):
        with open(path, "rb") as fh:
            truncated += sum(
                1 for r in ArchiveIterator(fh) if r.rec_headers.get_header("WARC-Truncated")
            )
    assert truncated > 0, "the drop fault produced no truncated record"
    assert reachable_articles(truth) - captured == set()
    assert run_cli("verify", str(tmp_path)).returncode == 0


def test_capture_time_index_equals_the_indexers_reading_of_the_files(rolled, tmp_path):
    """The CDXJ made while writing (crawler.warc.cdxj.CaptureIndex) is byte for byte
    what cdxj-indexer gives reading the closed files back, over rolled-over files, a
    gzip-coded autoblog and every engine; and no pending line file is left behind."""
    from crawler.layout import OutputLayout
    from crawler.warc.cdxj import write_cdxj

    assert "capture-time index off" not in crawl_log(rolled["result"])
    shutil.copytree(rolled["out"], tmp_path / "out")
    layout = OutputLayout(tmp_path / "out", "k")
    assert len(layout.warcs()) > 3
    assert not layout.capture_index.exists()
    made = layout.cdxj.read_bytes()
    write_cdxj(layout, rebuild=True)
    assert made and layout.cdxj.read_bytes() == made


# ---------------------------------------------------------------- the crawl's corpus

CORPUS_CODE_MARKERS = ("<script", "&lt;script", "document.write", "<style", "function(")


def test_crawl_time_corpus_matches_the_farm(crawled):
    records = read_corpus(crawled["out"])
    assert records, crawled["result"].stderr[-2000:]
    by_url = {canonical_url(r["url"]): r for r in records}
    checked = 0
    for blog in crawled["truth"].values():
        if blog["disabled"]:
            continue
        for article in blog["articles"]:
            record = by_url.get(canonical_url(article["permalink"]))
            assert record is not None, (blog["engine"], article["permalink"])
            assert record["title"] == article["title"]
            assert record["source_url"] == article["source_url"]
            # 0.2-0.3.x print minutes only; the farm's real date has seconds.
            assert record["date"][:16] == article["date"][:16]
            assert record["date"][19:] == article["date"][19:]  # the same UTC offset
            assert fuzz.ratio(record["text"], article["text"]) >= 95, record["url"]
            for field in ("text", "title"):
                assert not any(m in record[field] for m in CORPUS_CODE_MARKERS), record["url"]
            checked += 1
    assert checked >= 100
    hidden = sum(len(b["articles"]) for b in crawled["truth"].values() if b["disabled"])
    assert len(records) == sum(len(b["articles"]) for b in crawled["truth"].values()) - hidden


def test_every_warc_pointer_opens_its_response(crawled):
    archive = crawled["out"] / "collections" / "farm" / "archive"
    for record in read_corpus(crawled["out"]):
        pointer = record["warc"]
        path = archive / pointer["filename"]
        stored = read_record_at(path, pointer["offset"], default_context().bounds.read_limit)
        assert stored.rec_type == "response"
        assert stored.header("WARC-Record-ID") == pointer["record_id"]
        assert stored.header("WARC-Payload-Digest") == pointer["payload_digest"]
        if "from_index_only" not in record["quality_flags"]:
            assert stored.header("WARC-Target-URI") == record["url"]
        # offset + length delimit exactly one gzip member: the record and nothing else.
        with open(path, "rb") as fh:
            fh.seek(pointer["offset"])
            member = fh.read(pointer["length"])
        inflater = zlib.decompressobj(31)
        assert inflater.decompress(member).startswith(b"WARC/1.1\r\n")
        assert inflater.eof and not inflater.unused_data


def test_offline_extract_rebuilds_the_same_corpus(crawled, tmp_path):
    archive = crawled["out"] / "collections" / "farm" / "archive"
    result = run_cli("extract", str(archive), "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    crawl_shards = sorted((crawled["out"] / "corpus" / "run-00001").glob("part-*.jsonl.gz"))
    offline_shards = sorted((tmp_path / "corpus").glob("part-*.jsonl.gz"))
    assert [p.name for p in crawl_shards] == [p.name for p in offline_shards]
    crawl_records = read_corpus(crawled["out"])
    offline_records = read_corpus(tmp_path)
    differences = [
        (a["url"], key, a[key], b[key])
        for a, b in zip(crawl_records, offline_records, strict=True)
        for key in a
        if a[key] != b[key]
    ]
    assert not differences, differences[:3]
    for a, b in zip(crawl_shards, offline_shards, strict=True):
        assert gzip.decompress(a.read_bytes()) == gzip.decompress(b.read_bytes())


def test_package_the_crawl_corpus(crawled, tmp_path):
    import shutil

    shutil.copytree(crawled["out"] / "corpus", tmp_path / "corpus")
    result = run_cli("package", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert (tmp_path / "MANIFEST.sha256").exists()
    assert list((tmp_path / "parquet").glob("*.parquet"))
