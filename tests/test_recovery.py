"""Crash repair of `.open` WARC files: real files from RollingWarcWriter, torn and damaged
at many byte positions, repaired, then checked with `warcio check` and the project's verify."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import textwrap
from io import BytesIO
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse
from support import kill_when_ready
from warcio.archiveiterator import ArchiveIterator
from warcio.timeutils import datetime_to_iso_date

from crawler.verify import Report, check_warc
from crawler.warc.records import request_http_headers, response_http_headers
from crawler.warc.recovery import repair_directory, repair_open_file, scan_members
from crawler.warc.writer import RollingWarcWriter, make_record_builder

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
WARCINFO = {"software": "autoblog-archive tests", "isPartOf": "recovery"}
MAX_SIZE = 1 << 30  # WARC_MAX_SIZE: one file per test


def capture_group(url: str, body: bytes, status: int = 200, metadata: bool = True) -> list:
    """response + request (+ metadata) records built the way pipelines.warc_capture does."""
    from datetime import UTC, datetime

    builder = make_record_builder()
    date = datetime_to_iso_date(datetime.now(UTC).replace(tzinfo=None), use_micros=False)
    response = HtmlResponse(
        url,
        status=status,
        body=body,
        headers={"Content-Type": "text/html; charset=UTF-8"},
        request=Request(url),
    )
    resp = builder.create_warc_record(
        url,
        "response",
        payload=BytesIO(body),
        length=len(body),
        http_headers=response_http_headers(response),
        warc_headers_dict={"WARC-Date": date},
    )
    rid = resp.rec_headers.get_header("WARC-Record-ID")
    req = builder.create_warc_record(
        url,
        "request",
        payload=BytesIO(b""),
        length=0,
        http_headers=request_http_headers(Request(url)),
        warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": rid},
    )
    group = [resp, req]
    if metadata:
        payload = f"fetchTimeMs: 3\r\noutlink: {url}x\r\n".encode()
        group.append(
            builder.create_warc_record(
                url,
                "metadata",
                payload=BytesIO(payload),
                length=len(payload),
                warc_content_type="application/warc-fields",
                warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": rid},
            )
        )
    return group


def write_open_warc(directory: Path, groups: int, body_size: int = 600) -> tuple[Path, list]:
    """A real `.open` file (writer never closed, as after a SIGKILL) and its group layout."""
    writer = RollingWarcWriter(directory, "crash", WARCINFO, MAX_SIZE, fsync=False)
    layout = []
    for i in range(groups):
        body = (f"<html><body><p>page {i}</p>" + "x" * (body_size + 37 * i)).encode()
        locations = writer.write_group(capture_group(f"http://farm.test/a/?{i}", body))
        layout.append((locations[0].offset, locations[-1].offset + locations[-1].length, locations))
    assert writer._fh is not None
    writer._fh.flush()
    path = directory / (writer.current_name + ".open")
    return path, layout


def warcio_check_ok(path: Path) -> bool:
    """In-process equivalent of `warcio check` (digests of every record)."""
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh, check_digests=True):
            record.content_stream().read()
            if record.digest_checker.passed is False:
                return False
    return True


def pairs_ok(path: Path) -> list[str]:
    report = Report()
    check_warc(path, report)
    return report.problems


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[bytes, list, str]:
    directory = tmp_path_factory.mktemp("pristine")
    path, layout = write_open_warc(directory, groups=6)
    return path.read_bytes(), layout, path.name


def _cut_positions(data: bytes, layout: list) -> list[int]:
    boundaries = {0, len(data)}
    for _start, _end, locations in layout:
        for loc in locations:
            boundaries |= {loc.offset, loc.offset + loc.length}
    positions = set()
    for b in boundaries:
        for delta in (-1, 0, 1, 5, 10, 11, 40):  # gzip header is 10 bytes: mid-header cuts
            if 0 <= b + delta <= len(data):
                positions.add(b + delta)
    for loc in (loc for _s, _e, locs in layout for loc in locs):
        positions.add(loc.offset + loc.length // 2)  # mid-member
        positions.add(loc.offset + loc.length - 8)  # inside the gzip trailer
    return sorted(positions)


def _expected_groups(layout: list, limit: int) -> int:
    """Groups wholly (response + request) before ``limit``."""
    count = 0
    for _start, _end, locations in layout:
        request_end = locations[1].offset + locations[1].length
        if request_end <= limit:
            count += 1
        else:
            break
    return count


def test_truncation_at_many_positions(tmp_path, pristine):
    data, layout, name = pristine
    positions = _cut_positions(data, layout)
    assert len(positions) > 60
    for pos in positions:
        path = tmp_path / name
        path.write_bytes(data[:pos])
        repair = repair_open_file(path)
        expected = _expected_groups(layout, pos)
        assert not path.exists(), pos
        if expected == 0:
            assert repair.action == "deleted", (pos, repair)
            assert not (tmp_path / name.removesuffix(".open")).exists()
            continue
        final = tmp_path / name.removesuffix(".open")
        assert repair.action == "closed" and repair.result == final, pos
        assert repair.kept_captures == expected, (pos, repair)
        assert warcio_check_ok(final), pos
        assert pairs_ok(final) == [], (pos, pairs_ok(final))
        # Everything complete before the cut is kept, byte for byte.
        group_end = layout[expected - 1][2][1].offset + layout[expected - 1][2][1].length
        meta = layout[expected - 1][2][2]
        if meta.offset + meta.length <= pos:
            group_end = meta.offset + meta.length
        assert final.read_bytes() == data[:group_end], pos
        final.unlink()


def test_corruption_inside_members(tmp_path, pristine):
    data, layout, name = pristine
    for g, (_start, _end, locations) in enumerate(layout):
        for m, loc in enumerate(locations):
            for where in (3, loc.length // 2, loc.length - 3):  # header, deflate, CRC
                damaged = bytearray(data)
                damaged[loc.offset + where] ^= 0x5A
                path = tmp_path / name
                path.write_bytes(bytes(damaged))
                repair = repair_open_file(path)
                # A damaged response or request loses its group; a damaged metadata record
                # leaves the pair before it.
                expected = g + (1 if m == 2 else 0)
                final = tmp_path / name.removesuffix(".open")
                if expected == 0:
                    assert repair.action == "deleted"
                    continue
                assert repair.kept_captures == expected, (g, m, where, repair)
                assert warcio_check_ok(final) and pairs_ok(final) == []
                final.unlink()


def test_unpaired_response_at_the_end_is_cut(tmp_path):
    writer = RollingWarcWriter(tmp_path, "crash", WARCINFO, MAX_SIZE, fsync=False)
    writer.write_group(capture_group("http://farm.test/a/?1", b"<html>one</html>"))
    # A crash between the response and its request: the response member is complete.
    writer.write_group(capture_group("http://farm.test/a/?2", b"<html>two</html>")[:1])
    path = tmp_path / (writer.current_name + ".open")
    writer._fh.flush()
    repair = repair_open_file(path)
    assert repair.action == "closed"
    assert repair.kept_captures == 1 and repair.dropped_records == 1
    assert repair.dropped == ["response http://farm.test/a/?2"]
    assert pairs_ok(repair.result) == []
    # The records are gzip members: look for the cut URL in what they hold, not in the
    # compressed bytes (where "?2" can occur by chance).
    assert b"farm.test/a/?2" not in gzip.decompress(repair.result.read_bytes())


def test_whole_file_untouched_and_metadata_optional(tmp_path):
    writer = RollingWarcWriter(tmp_path, "crash", WARCINFO, MAX_SIZE, fsync=False)
    writer.write_group(capture_group("http://farm.test/a/?1", b"<html>one</html>"))
    writer.write_group(capture_group("http://farm.test/a/?2", b"two", metadata=False))
    writer._fh.flush()
    path = tmp_path / (writer.current_name + ".open")
    before = path.read_bytes()
    (repair,) = repair_directory(tmp_path)
    assert repair.cut_bytes == 0 and repair.kept_records == 6
    assert repair.result.read_bytes() == before


def test_warcinfo_only_and_empty_files_are_deleted(tmp_path):
    writer = RollingWarcWriter(tmp_path, "crash", WARCINFO, MAX_SIZE, fsync=False)
    writer.write_group([])
    writer._fh.flush()
    path = tmp_path / (writer.current_name + ".open")
    assert len(scan_members(path).members) == 1
    assert repair_open_file(path).action == "deleted"
    empty = tmp_path / "x-20250101000000000-00000-h-1.warc.gz.open"
    empty.write_bytes(b"")
    assert repair_open_file(empty).action == "deleted"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.e2e
def test_real_cli_warcio_check_and_sigkilled_writer(tmp_path):
    """A writer process killed with SIGKILL mid-stream; the repaired file passes
    `warcio check` (the real command) and `autoblog-archive verify`-style pairing."""
    archive = tmp_path / "collections" / "c" / "archive"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
        from crawler.warc.writer import RollingWarcWriter
        from test_recovery import capture_group, WARCINFO
        w = RollingWarcWriter({str(archive)!r}, "killed", WARCINFO, 1 << 30, fsync=False)
        i = 0
        while True:
            w.write_group(capture_group(f"http://farm.test/a/?{{i}}", b"y" * 200_000))
            i += 1
            if i == 5:
                print("ready", flush=True)
        """
    )
    kill_when_ready(script, growing=archive, more=4000)
    (open_file,) = archive.glob("*.open")
    repairs = repair_directory(archive)
    assert [r.action for r in repairs] == ["closed"]
    assert repairs[0].kept_captures >= 5
    assert not open_file.exists()
    result = subprocess.run(
        [str(BIN / "warcio"), "check", "-v", str(repairs[0].result)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert pairs_ok(repairs[0].result) == []
    shutil.rmtree(archive)


def test_record_with_wrong_digest_ends_the_kept_prefix(tmp_path):
    """A member whose gzip is intact but whose record fails its digests (bit rot before
    compression) is not kept: the pair before it is."""
    import zlib

    from crawler.warc.writer import gzip_member

    path, layout = write_open_warc(tmp_path, groups=3)
    data = path.read_bytes()
    loc = layout[1][2][0]
    record = zlib.decompress(data[loc.offset : loc.offset + loc.length], 31)
    tampered = gzip_member(record.replace(b"page 1", b"PAGE 1"))
    path.write_bytes(data[: loc.offset] + tampered + data[loc.offset + loc.length :])
    repair = repair_open_file(path)
    assert repair.kept_captures == 1 and "digest mismatch" in repair.reason
    assert repair.result.read_bytes() == data[: loc.offset]


def test_recovered_prefix_of_a_worker_file_stops_at_a_record_past_the_bound(tmp_path):
    """``merge`` recovers a worker's unfinished file (untrusted) one gzip member at a time,
    each inflated in memory to be checked: a member that inflates past the body bound (a
    compressed bomb: 24 MB of one byte, 24 KB on disk) ends the kept prefix there, and the
    groups before it are copied whole."""
    from crawler.warc.recovery import copy_whole_prefix

    writer = RollingWarcWriter(tmp_path, "worker", WARCINFO, MAX_SIZE, fsync=False)
    writer.write_group(capture_group("http://farm.test/a/?1", b"<html>one</html>"))
    before_bomb = writer._size
    writer.write_group(capture_group("http://farm.test/a/?2", b"\0" * (24 << 20)))
    writer.write_group(capture_group("http://farm.test/a/?3", b"<html>three</html>"))
    writer._fh.flush()
    path = tmp_path / (writer.current_name + ".open")
    assert path.stat().st_size < 1 << 20  # the bomb is small on disk
    with open(path, "rb") as fh:
        repair = copy_whole_prefix(fh, path.name, tmp_path / "taken.warc.gz", read_limit=1 << 20)
    assert repair.action == "closed" and repair.kept_captures == 1
    assert "larger than" in repair.reason
    assert repair.result.read_bytes() == path.read_bytes()[:before_bomb]
    report = Report()
    check_warc(repair.result, report)
    assert report.problems == [] and report.records == 4
