"""The WARC layer's own contracts: file names made and parsed in one place, and the one
record walk reading only real files (never through a link) within its bounds."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from crawler.verify import Report, check_warc
from crawler.warc.names import (
    WarcName,
    parse_warc_filename,
    renamed_warc_name,
    warc_filename,
)
from crawler.warc.reader import walk_file, warc_defects
from crawler.warc.writer import RollingWarcWriter

WARCINFO = {"software": "autoblog-archive tests", "isPartOf": "layer"}


def write_warc(directory, prefix: str = "c") -> os.PathLike:
    """A closed WARC file, as the crawl's writer writes it (warcinfo only: enough here)."""
    writer = RollingWarcWriter(directory, prefix, WARCINFO, 1 << 30, fsync=False)
    writer.write_group([])
    return writer.close()


@pytest.mark.parametrize("host", ["farm", "my-build-host", "a-1-b"])
def test_a_writer_name_parses_back_whatever_the_host(host):
    """``reindex`` groups files without a run field by the process that wrote them: read
    back from the name the writer made, also when the host name holds dashes."""
    when = datetime(2026, 12, 7, 1, 2, 3, 456000, tzinfo=UTC)
    name = warc_filename("my-farm", 7, when, host=host, pid=4242)
    assert parse_warc_filename(name) == WarcName("my-farm", "20261207010203456", 7, host, 4242)


def test_names_that_are_not_the_writers_parse_as_nothing():
    name = warc_filename("c", 1, host="h", pid=12)
    renamed = renamed_warc_name(name, "<urn:uuid:1>", {name})
    assert renamed != name and renamed.endswith(".warc.gz")
    # A merge's renamed file: its 12 hex are no process id, even if they were all digits.
    assert parse_warc_filename(renamed) is None
    assert parse_warc_filename(name[:-3] + "-123456789012.warc.gz") is None
    for other in ("x.warc.gz", "a-b-c-d.warc.gz", name + ".open", "c--00001-h-1.warc.gz"):
        assert parse_warc_filename(other) is None, other


def test_the_walk_does_not_follow_a_link_to_a_warc(tmp_path):
    """A WARC file name in the archive that is a symbolic link is named, not read: what
    it points at (anywhere on the machine) stays unread by verify and reindex."""
    outside = write_warc(tmp_path / "outside")
    archive = tmp_path / "archive"
    archive.mkdir()
    link = archive / "c-linked.warc.gz"
    link.symlink_to(outside)
    report = Report()
    check_warc(link, report)
    assert report.records == 0
    assert any("unreadable" in p and "symbolic link" in p for p in report.problems), report
    assert any("symbolic link" in p for p in warc_defects(link))
    with walk_file(outside) as walk:  # the file itself reads whole
        assert [r.rec_type for r in walk] == ["warcinfo"] and walk.stopped("x") is None


def test_the_walk_never_waits_on_a_fifo(tmp_path):
    fifo = tmp_path / "c-fifo.warc.gz"
    os.mkfifo(fifo)
    with walk_file(fifo) as walk:
        assert list(walk) == [] and "FIFO" in walk.stopped(fifo.name)


@pytest.mark.e2e
def test_the_indexer_loads_without_pkg_resources_and_leaves_it_importable():
    """cdxj-indexer is loaded with setuptools' ``pkg_resources`` held off (pyamf only
    looks its own folder up with it): pyamf still registers its adapters, the indexer
    makes its line, and ``pkg_resources`` stays importable for whoever needs it next."""
    code = """
import io, sys
from crawler.warc.cdxj import indexer_module
from warcio.warcwriter import WARCWriter
from warcio.statusandheaders import StatusAndHeaders
main = indexer_module()
import pyamf.adapters
# Its folder found all the same: the adapters of modules already loaded are loaded.
assert pyamf.adapters.adapters_registered and "pyamf.adapters._collections" in sys.modules
assert "pkg_resources" not in sys.modules
buf = io.BytesIO()
w = WARCWriter(buf, gzip=True)
http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
w.write_record(w.create_warc_record("http://127.0.0.1/a", "response", payload=io.BytesIO(b"<p>a"),
                                    http_headers=http))
buf.seek(0)
out = io.StringIO()
main.write_cdx_index(out, buf, {"filename": "x.warc.gz"})
assert out.getvalue().startswith("1,0,0,127)/a "), out.getvalue()
import pkg_resources
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
