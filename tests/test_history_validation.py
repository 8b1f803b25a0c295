"""The history is read as a hostile file (issue 19, item 9).

A real crawl's folder is copied and its ``history.sqlite`` given one crafted row; then
the real commands run on it: ``report`` and the next ``crawl`` stop with one line naming
the file and ``autoblog-archive reindex DIR`` (exit 4), the crawl before any request and
with the folder as it was; ``verify`` names it as a defect; ``reindex`` makes a history
every command accepts again. State files the tool reads back (``processes/deal.json``)
are read as hostile too.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import orjson
import pytest
from support import crawl_log, run_cli, snapshot

from crawler.layout import HISTORY_NAME
from crawler.samplefarm import start_farm

pytestmark = pytest.mark.e2e

NAME = "c"


@pytest.fixture(scope="module")
def site():
    with start_farm(autoblogs=2, articles=5, seed=3) as farm:
        yield farm


@pytest.fixture(scope="module")
def crawled(site, tmp_path_factory):
    out = tmp_path_factory.mktemp("crawled") / "out"
    result = run_cli("crawl", site.url, "-o", str(out), "--name", NAME, "--fast")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return out


def craft(root: Path, sql: str) -> None:
    """One statement on the history, as anyone with the file could run it."""
    conn = sqlite3.connect(root / HISTORY_NAME)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


def one_line(result) -> str:
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and not result.stdout.strip(), result.stdout + result.stderr
    return lines[0]


CRAFTED = {
    # The review's case: seeds that are not JSON crashed `report` and the next crawl ran
    # outside the history.
    "runs seeds not JSON": "UPDATE runs SET seeds = 'http://x/ (not JSON)'",
    "runs resumed text": "UPDATE runs SET resumed = 'many'",
    "runs status unknown": "UPDATE runs SET status = 'done'",
    "captures offset text": "UPDATE captures SET offset = 'far' WHERE id = 1",
    "captures length negative": "UPDATE captures SET length = -1 WHERE id = 2",
    "captures file with a path": (
        "UPDATE captures SET filename = '../../elsewhere.warc.gz' WHERE id = 3"
    ),
    "captures run unknown": "UPDATE captures SET run_id = 99 WHERE id = 4",
    # Not completed with an empty table: the runs left would be read unchecked.
    "captures table dropped": "DROP TABLE captures",
}


@pytest.mark.parametrize("crafted", list(CRAFTED))
def test_crafted_history_row_stops_report_and_crawl_with_one_line(crafted, site, crawled, tmp_path):
    root = tmp_path / "out"
    shutil.copytree(crawled, root)
    craft(root, CRAFTED[crafted])
    history = root / HISTORY_NAME
    reindex = f"autoblog-archive reindex {root}"

    report = run_cli("report", str(root))
    assert report.returncode == 4
    line = one_line(report)
    assert str(history) in line and reindex in line and "Traceback" not in line

    before, requests = snapshot(root, times=False), len(site.requests())
    crawl = run_cli("crawl", site.url, "-o", str(root), "--name", NAME, "--fast")
    assert crawl.returncode == 4
    line = one_line(crawl)
    assert str(history) in line and reindex in line
    assert snapshot(root, times=False) == before  # not even a lock file or a -wal left
    assert len(site.requests()) == requests  # nothing fetched outside the history

    verify = run_cli("verify", str(root))
    assert verify.returncode == 1
    assert any(x.startswith("DEFECT") and reindex in x for x in verify.stdout.splitlines())

    # The command the line names makes a history every command accepts again.
    assert run_cli("reindex", str(root)).returncode in (0, 1)
    assert run_cli("report", str(root)).returncode == 0
    again = run_cli("crawl", site.url, "-o", str(root), "--name", NAME, "--fast")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]


def test_report_of_a_file_that_is_no_database_is_one_line(crawled, tmp_path):
    root = tmp_path / "out"
    shutil.copytree(crawled, root)
    (root / HISTORY_NAME).write_bytes(b"not a database, " * 512)
    report = run_cli("report", str(root))
    assert report.returncode == 4
    line = one_line(report)
    assert str(root / HISTORY_NAME) in line and f"autoblog-archive reindex {root}" in line


def test_reindex_keeps_no_crafted_run_row(crawled, tmp_path):
    """A rebuild keeps what it can of the old runs table: never a malformed row."""
    root = tmp_path / "out"
    shutil.copytree(crawled, root)
    craft(root, "UPDATE runs SET stats = '[1, 2', command = 'kept?'")
    result = run_cli("reindex", str(root))
    assert "malformed runs row" in result.stdout and "not kept" in result.stdout
    conn = sqlite3.connect(f"file:{root / HISTORY_NAME}?mode=ro", uri=True)
    try:
        (command, stats) = conn.execute("SELECT command, stats FROM runs").fetchone()
    finally:
        conn.close()
    assert command != "kept?" and stats is None
    assert run_cli("report", str(root)).returncode == 0


def test_a_run_the_history_cannot_start_fetches_nothing(site, crawled, tmp_path):
    """A history whose rows pass but whose runs table refuses a new run (a CHECK the tool
    never writes): the crawl stops before its first request, exit 2, one verdict line,
    never a crawl outside the history."""
    root = tmp_path / "out"
    shutil.copytree(crawled, root)
    craft(root, "ALTER TABLE runs RENAME TO old_runs")
    craft(
        root,
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT, "
        "status TEXT NOT NULL CHECK (status != 'running'), seeds TEXT NOT NULL, command TEXT, "
        "mode TEXT NOT NULL, resumed INTEGER NOT NULL DEFAULT 0, stats TEXT)",
    )
    craft(root, "INSERT INTO runs SELECT * FROM old_runs")
    craft(root, "DROP TABLE old_runs")
    before, requests = snapshot(root, times=False), len(site.requests())

    crawl = run_cli("crawl", site.url, "-o", str(root), "--name", NAME, "--fast")

    assert crawl.returncode == 2, crawl.stdout + crawl.stderr
    assert "could not start a run (IntegrityError: CHECK constraint" in crawl.stdout + crawl.stderr
    assert len(site.requests()) == requests
    assert snapshot(root, times=False) == before


def test_crafted_deal_is_dealt_again(site, tmp_path):
    """``processes/deal.json`` with owners that are not process numbers: the deal is made
    again instead of the crawl failing on it."""
    root = tmp_path / "out"
    (root / "processes").mkdir(parents=True)
    deal = {"processes": 2, "autoblogs": {f"{site.url}autoblogs/x/": "zero", "y": [1]}}
    (root / "processes" / "deal.json").write_bytes(orjson.dumps(deal))
    result = run_cli("crawl", site.url, "-o", str(root), "--name", NAME, "--fast", "-p", "2")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    owners = orjson.loads((root / "processes" / "deal.json").read_bytes())["autoblogs"]
    assert owners and all(isinstance(v, int) for v in owners.values())
    assert run_cli("verify", str(root)).returncode == 0


def test_lock_file_that_is_a_link_is_refused(site, crawled, tmp_path):
    """``.lock`` is opened, truncated and written by the run that takes the folder: as a
    link it would overwrite what it points at. Refused in one line, the target unchanged."""
    root = tmp_path / "out"
    shutil.copytree(crawled, root)
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    (root / ".lock").unlink(missing_ok=True)
    (root / ".lock").symlink_to(outside)
    requests = len(site.requests())
    crawl = run_cli("crawl", site.url, "-o", str(root), "--name", NAME, "--fast")
    assert crawl.returncode == 4
    assert ".lock" in one_line(crawl)
    assert outside.read_text() == "keep me\n"
    assert len(site.requests()) == requests


def test_hostile_warcinfo_fields_never_make_a_history_the_check_refuses(crawled, tmp_path):
    """``reindex`` takes run numbers, dates and modes from the WARCs' ``warcinfo``: a file
    whose fields are not the tool's (a run number of 23 digits, a date that is no date,
    an unknown mode) is rebuilt into a history every command accepts."""
    from warcio.archiveiterator import ArchiveIterator

    from crawler.warc.writer import gzip_member, make_record_builder, serialize_record

    root = tmp_path / "out"
    shutil.copytree(crawled, root)
    (warc,) = (root / "collections" / NAME / "archive").glob("*.warc.gz")
    data = warc.read_bytes()
    with open(warc, "rb") as fh:
        it = ArchiveIterator(fh)
        first = next(iter(it))
        assert first.rec_type == "warcinfo"
        it.read_to_end(first)
        rest = data[it.get_record_offset() + it.get_record_length() :]
    fields = {"crawlRun": "9" * 23, "crawlRunStarted": "yesterday", "crawlRunMode": "evil"}
    info = make_record_builder().create_warcinfo_record(warc.name, fields)
    warc.write_bytes(gzip_member(serialize_record(info)) + rest)

    assert run_cli("reindex", str(root)).returncode in (0, 1)
    report = run_cli("report", str(root), "--json")
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    run = orjson.loads(report.stdout)["run"]
    assert run["id"] < 1000 and run["started"][:4].isdigit() and run["mode"] == "full"


def test_index_line_with_a_crafted_field_does_not_fail_the_next_run(site, crawled, tmp_path):
    """The collection's own ``index.cdxj`` is read back at the end of every run (for
    ``pages.jsonl``): a line whose ``mime`` is not text is passed over, not a crash that
    leaves ``pages.jsonl`` unwritten."""
    root = tmp_path / "out"
    shutil.copytree(crawled, root)
    cdxj = root / "collections" / NAME / "indexes" / "index.cdxj"
    lines = cdxj.read_text(encoding="utf-8").splitlines(keepends=True)
    key, stamp, blob = lines[0].split(" ", 2)
    lines[0] = f"{key} {stamp} {orjson.dumps(orjson.loads(blob) | {'mime': 5}).decode()}\n"
    cdxj.write_text("".join(lines), encoding="utf-8")
    again = run_cli("crawl", site.url, "-o", str(root), "--name", NAME, "--fast")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    # The index step runs in a signal handler: a crash there shows only in the log.
    assert "Traceback" not in crawl_log(again)
    assert not (root / "pages.jsonl.tmp").exists()
