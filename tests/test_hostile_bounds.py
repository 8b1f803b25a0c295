"""Issue 19, item 4: memory is bounded for every shape a farm may send.

Each test is a real crawl (``autoblog-archive crawl`` in a subprocess, its whole process
tree measured: crawl and extraction workers) of a loopback farm serving one hostile shape
(``crawler.samplefarm.hostile``), at a size where the crawl before the bounds went past
500 MB or read what it had to leave out. Asserted is what a user sees: the crawl ends,
partial where something was cut, the summary names the cut, the farm's real autoblog is
archived, and the tree stays under 500 MB.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import HostileServer, Reply, run_measured
from support import BIN, summary_of
from warcio.archiveiterator import ArchiveIterator

pytestmark = pytest.mark.e2e

BUDGET_MB = 500
NAME = "hostile"
LINKS = 100  # MAX_LINKS_PER_PAGE of these crawls: the shapes link to pages that do not exist


def crawl(url: str, out: Path, *extra: str):
    argv = [str(BIN / "autoblog-archive"), "crawl", url, "-o", str(out), "--name", NAME]
    measured = run_measured([*argv, "--fast", "-s", f"MAX_LINKS_PER_PAGE={LINKS}", *extra])
    print(f"peak MB: process {measured.peak_process_mb:.0f}, tree {measured.peak_tree_mb:.0f}")
    return measured


def archived(out: Path) -> dict[str, object]:
    """WARC-Target-URI -> WARC headers of every response record."""
    found = {}
    for path in sorted((out / "collections" / NAME / "archive").glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == "response":
                    found[record.rec_headers.get_header("WARC-Target-URI")] = record.rec_headers
    return found


def assert_within_budget(measured) -> None:
    assert measured.peak_tree_mb < BUDGET_MB, measured.peak_tree_mb
    assert measured.peak_process_mb < BUDGET_MB, measured.peak_process_mb


def assert_real_autoblog_archived(farm: HostileServer, out: Path) -> None:
    """The shape cost the farm's own autoblog nothing: every article archived."""
    truth = farm.farm.truth(f"{farm.host}:{farm.port}")["autoblogs"]
    uris = set(archived(out))
    for blog in truth.values():
        assert {a["url"] for a in blog["articles"]} <= uris
        assert summary_of(out)["autoblogs"][blog["base_url"]]["articles"] == len(blog["articles"])


def links_cut(out: Path) -> int:
    return summary_of(out)["skipped"].get(f"bound: MAX_LINKS_PER_PAGE={LINKS}", 0)


def fake_requests(farm: HostileServer) -> list[str]:
    return [t for t in farm.requests() if t.startswith("/autoblogs/h")]


@pytest.mark.parametrize(
    ("kind", "count"),
    [("sitemap", 400_000), ("export", 500_000), ("farm-index", 100_000)],
)
def test_a_farm_listing_hundreds_of_thousands_of_autoblogs(tmp_path, kind, count):
    """A sitemap of 900,000 URLs took 1.32 GB, an export of 1,000,000 entries 718 MB, a
    farm index of 100,000 entries 67.5 s: each is now read as a stream, and only
    MAX_LINKS_PER_PAGE of its links are ever made into requests."""
    with HostileServer(hostile={kind: count}) as farm:
        measured = crawl(farm.url, tmp_path)
        fakes = fake_requests(farm)
        assert measured.returncode == 1, measured.stdout[-2000:] + measured.stderr[-2000:]
        assert_real_autoblog_archived(farm, tmp_path)
    assert 0 < len(fakes) <= LINKS
    assert links_cut(tmp_path) >= count - LINKS
    assert f"bound: MAX_LINKS_PER_PAGE={LINKS}" in measured.stdout
    assert_within_budget(measured)
    if kind in ("export", "farm-index"):
        # The audit names every declared autoblog the bounded crawl never reached, up to
        # AUDIT_MAX_DECLARED (200,000) of them.
        audit = summary_of(tmp_path)["audit"]
        assert audit["complete"] is False
        assert audit["missing_total"] >= min(count, 200_000) - LINKS - 1, audit


def test_a_page_of_400000_links_and_its_reindex(tmp_path):
    """A page of 1,000,000 links took 1.23 GB (1.15 GB again in reindex): a page is read
    up to its first 50,000 tags, its lists up to MAX_LINKS_PER_PAGE links each."""
    with HostileServer(hostile={"links": 400_000}) as farm:
        measured = crawl(farm.base(), tmp_path)
        media = [t for t in farm.requests() if "/media/n" in t]
    assert measured.returncode == 1, measured.stdout[-2000:] + measured.stderr[-2000:]
    skipped = summary_of(tmp_path)["skipped"]
    assert skipped["bound: page of more than 50000 tags"] == 1
    assert links_cut(tmp_path) > 0 and 0 < len(media) <= LINKS
    assert farm.base() in archived(tmp_path)  # archived whole, however it was read
    assert_within_budget(measured)
    reindex = run_measured([str(BIN / "autoblog-archive"), "reindex", str(tmp_path)])
    assert reindex.returncode == 0, reindex.stdout[-2000:] + reindex.stderr[-2000:]
    assert_within_budget(reindex)


def test_robots_txt_is_read_up_to_500_kib_and_obeyed_that_far(tmp_path):
    """Its first rule (every vvb.ini) is obeyed; its last line, past 500 KiB, would have
    disallowed every autoblog and is ignored, as Google ignores it."""
    with HostileServer(hostile={"robots": 600_000}) as farm:
        measured = crawl(farm.base(), tmp_path)
        seen = farm.requests()
        assert measured.returncode == 1, measured.stdout[-2000:] + measured.stderr[-2000:]
        assert_real_autoblog_archived(farm, tmp_path)
    assert not [t for t in seen if t.endswith("vvb.ini")]
    skipped = summary_of(tmp_path)["skipped"]
    assert skipped["bound: ROBOTSTXT_MAX_SIZE=512000"] == 1 and skipped["robots.txt"] >= 1
    robots = archived(tmp_path)[farm.url + "robots.txt"]
    assert robots.get_header("WARC-Truncated") == "length"  # the archive says it is cut
    assert_within_budget(measured)


def test_response_headers_are_counted_and_bounded(tmp_path):
    """1,000,000 response headers took 923 MB, and headers did not count towards
    DOWNLOAD_MAXSIZE: a response fails past MAX_RESPONSE_HEADERS header lines, or when
    headers and body together pass DOWNLOAD_MAXSIZE."""
    big = [(f"X-Big-{i}", "v" * 600) for i in range(300)]  # ~185 KB of headers
    with HostileServer(hostile={"headers": 5_000}) as farm:
        base = farm.base()[len(farm.url) - 1 :]
        # Headers plus body past the bound, each below it; headers alone past it.
        farm.routes[base + "vvb.ini"] = lambda s, t: Reply(200, big, b"x" * 100_000)
        farm.routes[base + "?feed"] = lambda s, t: Reply(200, big + big[:100], b"")
        measured = crawl(farm.base(), tmp_path, "-s", "DOWNLOAD_MAXSIZE=200000")
    assert measured.returncode == 1, measured.stdout[-2000:] + measured.stderr[-2000:]
    reasons = summary_of(tmp_path)["error_reasons"]
    assert reasons["response more than 500 header lines"] == 1, reasons  # ?opml
    assert reasons["response headers larger than DOWNLOAD_MAXSIZE (200000 bytes)"] == 1
    assert reasons["body larger than DOWNLOAD_MAXSIZE (200000 bytes)"] == 1  # vvb.ini
    uris = archived(tmp_path)
    assert not [u for u in uris if u.endswith(("?opml", "?feed", "vvb.ini"))]
    assert_within_budget(measured)
