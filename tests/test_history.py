"""The crawl history, on real crawls: the `crawl` command against the sample farm served
on loopback (``history_crawls`` in conftest.py: a full run, growth and an edit, an
incremental run, a deletion, a full pass), then read, lost and rebuilt, and a crawl killed
with SIGKILL; the change report of each run. The store API and the digests are also
tested alone.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from support import BIN, default_context, requested_urls, run_cli, wait_for
from warcio.archiveiterator import ArchiveIterator

from crawler import __version__ as VERSION
from crawler.exitcodes import EXIT_USAGE, UsageError
from crawler.history.consistency import reconcile_with_warcs
from crawler.history.digests import article_digest, normalized_digest, page_digest, payload_digest
from crawler.history.files import read_runs
from crawler.history.model import FINISHED
from crawler.history.rebuild import reconcile_files
from crawler.history.reindex import run_reindex
from crawler.history.report import build_report, format_report, run_report, write_report
from crawler.history.store import History
from crawler.layout import CROISSANT_JSON, HISTORY_NAME, OutputLayout
from crawler.parsing import parse_page
from crawler.samplefarm import start_farm
from crawler.samplefarm.farm import Farm
from crawler.samplefarm.options import FarmConfig
from crawler.urls import canonical_url
from crawler.verify import Report, check_warc
from crawler.warc.cdxj import write_cdxj
from crawler.warc.records import revisit_arguments
from crawler.warc.recovery import repair_directory

HOST = "farm.test"


def make_farm(articles: int = 12) -> Farm:
    return Farm(FarmConfig(autoblogs=2, articles=articles, seed=1, engines=["0.3.4", "2025"]))


def get(farm: Farm, url: str) -> bytes:
    """A page of the in-process farm, as served to ``http://farm.test``."""
    return farm.handle("GET", url.removeprefix(f"http://{HOST}"), HOST).body


def dump(db: Path) -> dict[str, list[tuple]]:
    """Comparable content of a history file (without columns a rebuild cannot know)."""
    conn = sqlite3.connect(db)
    out = {
        "captures": conn.execute(
            "SELECT url, run_id, warc_date, status, payload_digest, normalized_digest, "
            "record_type, filename, offset, length, record_id, refers_to, autoblog "
            "FROM captures ORDER BY record_id"
        ).fetchall(),
        "articles": conn.execute("SELECT * FROM articles ORDER BY permalink").fetchall(),
        "sightings": conn.execute("SELECT * FROM article_sightings ORDER BY 1, 2").fetchall(),
        "runs": conn.execute("SELECT id, status, seeds, command, mode FROM runs").fetchall(),
    }
    conn.close()
    return out


def warcs_ok(layout: OutputLayout) -> list[str]:
    report = Report()
    for path in layout.warcs():
        check_warc(path, report)
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh, check_digests=True):
                record.content_stream().read()
                if record.digest_checker.passed is False:
                    report.problems.append(f"{path.name}: digest")
    return report.problems


def warc_captures(layout: OutputLayout) -> dict[str, str]:
    """Record id -> target URI of every response and revisit record the WARCs hold."""
    held = {}
    for path in layout.warcs():
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type in ("response", "revisit"):
                    headers = record.rec_headers
                    held[headers.get_header("WARC-Record-ID")] = headers.get_header(
                        "WARC-Target-URI"
                    )
    return held


def copy_output(src: Path, dst: Path, name: str = "farm") -> OutputLayout:
    shutil.copytree(src, dst)
    return OutputLayout(dst, name)


# ------------------------------------------------------------------ normalised digest


def test_normalized_digest_ignores_update_block_and_follows_content():
    farm = make_farm()
    base = farm.base_url(farm.autoblogs[0], HOST)
    plain = get(farm, base)
    farm.autoblogs[0].settings.update = True
    with_update = get(farm, base)
    farm.autoblogs[0].settings.update = False
    assert plain != with_update and b"Mise \xc3\xa0 jour" in with_update
    assert payload_digest(plain) != payload_digest(with_update)
    assert normalized_digest(plain, base) == normalized_digest(with_update, base) is not None
    # The search form's action carries the page URL: page 2 differs only by articles.
    farm.grow(farm.autoblogs[0].folder, 1, HOST)
    assert normalized_digest(get(farm, base), base) != normalized_digest(plain, base)
    # An index block and its permalink page give one article digest.
    index = parse_page(get(farm, base), base)
    block = index.articles[0]
    single = parse_page(get(farm, block.permalink), block.permalink)
    assert single.kind == "article"
    assert article_digest(single.articles[0]) == article_digest(block)
    # An edit (a paragraph appended) changes the article digest and the page digest.
    edited = farm.edit(farm.autoblogs[0].folder, farm.autoblogs[0].count - 1, HOST)
    assert edited["articles"][0]["permalink"] == block.permalink
    again = parse_page(get(farm, block.permalink), block.permalink)
    assert article_digest(again.articles[0]) != article_digest(block)
    assert page_digest(again) != page_digest(single)
    # A farm page and non-HTML are not autoblog pages.
    root = f"http://{HOST}/"
    assert normalized_digest(get(farm, root), root) is None
    assert normalized_digest(b"\x00\x01binary", base + "articles.db") is None


# ------------------------------------------------------------------ the store


def test_runs_captures_and_articles_api(tmp_path):
    with History.open(tmp_path) as h:
        assert (tmp_path / HISTORY_NAME).exists()
        assert h.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        run1 = h.start_run(["http://f/"], command="crawl http://f/")
        assert h.start_run(["http://f/"]) == run1  # unfinished: resumed, same id
        assert h.get_run(run1).resumed == 1
        common = dict(
            filename="a.warc.gz", length=100, status=200, warc_date="2025-01-01T00:00:00Z"
        )
        h.record_capture(
            url="http://f/a/?x", run_id=run1, payload_digest="sha1:AAA", record_type="response",
            offset=10, record_id="<urn:uuid:1>", normalized_digest="sha1:N1", **common,
        )  # fmt: skip
        h.record_capture(
            url="http://f/a/?x", run_id=run1, payload_digest="sha1:AAA", record_type="response",
            offset=10, record_id="<urn:uuid:1>", **common,
        )  # fmt: skip
        assert h.urls_captured_in_run(run1) == {"http://f/a/?x"}
        with pytest.raises(ValueError):
            h.record_capture(
                url="u", run_id=run1, payload_digest=None, record_type="request",
                offset=0, record_id="<r>", **common,
            )  # fmt: skip
        assert h.mark_article("http://f/a/?x", "http://f/a/", run1, "sha1:D1") == "new"
        assert h.mark_article("http://f/a/?x", "http://f/a/", run1, "sha1:D1") == "new"
        h.finish_run(run1, FINISHED, stats={"requests": 1})
        assert h.get_run(run1).stats == {"requests": 1}

        run2 = h.start_run(["http://f/"], mode="incremental")
        assert run2 == run1 + 1
        h.record_capture(
            url="http://f/a/?x", run_id=run2, payload_digest="sha1:AAA", record_type="revisit",
            offset=500, record_id="<urn:uuid:2>", refers_to="<urn:uuid:1>",
            **{**common, "warc_date": "2025-01-02T00:00:00Z"},
        )  # fmt: skip
        latest = h.latest_capture("http://f/a/?x")
        assert latest.record_type == "revisit" and latest.run_id == run2
        assert h.latest_capture("http://f/a/?x", before_run=run2).record_id == "<urn:uuid:1>"
        original = h.find_original("http://f/a/?x", "sha1:AAA")
        assert original.record_id == "<urn:uuid:1>" and original.normalized_digest == "sha1:N1"
        kwargs, extra = revisit_arguments(original)
        assert extra == {"WARC-Refers-To": "<urn:uuid:1>"}
        assert kwargs["refers_to_date"] == "2025-01-01T00:00:00Z"
        assert h.find_original("http://f/a/?x", "sha1:OTHER") is None
        assert h.latest_capture("http://f/nope") is None
        assert h.has_article("http://f/a/?x") and not h.has_article("http://f/a/?y")
        assert h.mark_article("http://f/a/?x", "http://f/a/", run2, "sha1:D1") == "unchanged"
        assert h.mark_article("http://f/a/?y", "http://f/a/", run2) == "new"
        h.finish_run(run2, FINISHED)
        run3 = h.start_run(["http://f/"], mode="incremental")
        assert h.mark_article("http://f/a/?x", "http://f/a/", run3, "sha1:D2") == "changed"
        assert h.mark_article("http://f/a/?y", "http://f/a/", run3) == "seen"
        assert h.article("http://f/a/?x") == {
            "permalink": "http://f/a/?x",
            "autoblog": "http://f/a/",
            "first_seen_run": run1,
            "last_seen_run": run3,
            "normalized_digest": "sha1:D2",
        }
        h.finish_run(run3, FINISHED)
        assert h.runs_since_full() == 2
        assert h.start_run(["http://other/"]) == run3 + 1  # other seeds: a new run
        assert h.forget_after("a.warc.gz", 500) == 1
        assert h.latest_capture("http://f/a/?x").record_id == "<urn:uuid:1>"


def test_captures_are_committed_in_batches(tmp_path):
    """One INSERT per capture and a commit per batch, not one per row (the cost is
    measured by `autoblog-archive bench`, not asserted here)."""
    with History.open(tmp_path, batch_size=500, batch_seconds=3600) as h:
        run = h.start_run(["http://f/"])
        for i in range(1200):
            h.record_capture(
                url=f"http://f/a/?{i}", run_id=run, warc_date="2025-01-01T00:00:00Z",
                status=200, payload_digest=f"sha1:{i}", record_type="response",
                filename="f.warc.gz", offset=i * 100, length=100, record_id=f"<urn:uuid:{i}>",
            )  # fmt: skip
        assert h._pending == 200  # two batches committed, the third still open
        assert h.conn.in_transaction


# ------------------------------------------------------------------ real crawls


@pytest.mark.e2e
def test_recrawl_writes_revisits_that_verify(history_crawls):
    c = history_crawls
    run1, run2, run3 = c["runs"]
    ab0, ab1 = c["bases"]
    layout: OutputLayout = c["layout"]
    assert warcs_ok(layout) == []
    with History.open(c["out"]) as history:
        assert [(r.id, r.mode, r.status) for r in history.runs()] == [
            (run1, "full", FINISHED),
            (run2, "incremental", FINISHED),
            (run3, "full", FINISHED),
        ]
        assert all(x.record_type == "response" for x in history.captures_in_run(run1))
        second = {x.url: x for x in history.captures_in_run(run2)}
        third = {x.url: x for x in history.captures_in_run(run3)}
        # Every fetch is captured: the farm's log of each run is the run's captures.
        for run, log in zip(c["runs"], c["requests"], strict=True):
            assert history.urls_captured_in_run(run) == set(requested_urls(c["farm_url"], log))
        # Run 2: autoblog 1 did not change, its first page is a revisit; autoblog 0 grew.
        assert second[ab1].record_type == "revisit"
        assert second[ab0].record_type == "response"
        # Run 3, a full pass: the permalink pages of the articles that did not change are
        # byte-identical, so revisits; the edited article is a new response.
        unchanged = {
            canonical_url(a["permalink"]) for blog in c["truth"].values() for a in blog["articles"]
        } | set(c["grown"])
        unchanged -= {c["edited"], c["deleted"]}
        assert unchanged <= set(third)
        assert {u for u in unchanged if third[u].record_type != "revisit"} == set()
        assert third[c["edited"]].record_type == "response"
        revisits = [x for x in [*second.values(), *third.values()] if x.record_type == "revisit"]
        for capture in revisits:
            original = history.find_original(capture.url, capture.payload_digest)
            assert original.record_type == "response" and original.run_id < capture.run_id
            assert capture.refers_to == original.record_id
            # The revisit record carries what pywb needs.
            with open(layout.archive / capture.filename, "rb") as fh:
                fh.seek(capture.offset)
                record = next(iter(ArchiveIterator(fh)))
            headers = record.rec_headers
            assert record.rec_type == "revisit"
            assert headers.get_header("WARC-Profile").endswith("/revisit/identical-payload-digest")
            assert headers.get_header("WARC-Refers-To") == original.record_id
            assert headers.get_header("WARC-Refers-To-Target-URI") == original.url == capture.url
            assert headers.get_header("WARC-Refers-To-Date") == original.warc_date
            assert headers.get_header("WARC-Payload-Digest") == original.payload_digest


@pytest.mark.e2e
def test_rebuild_from_indexes_restores_everything(history_crawls, tmp_path, capsys):
    layout = copy_output(history_crawls["out"], tmp_path / "copy")
    db = layout.history
    before = dump(db)
    assert before["captures"] and before["articles"] and before["sightings"]
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    layout.cdxj.unlink()
    code = run_reindex(argparse.Namespace(directory=str(layout.root), set=[]))
    assert code == 0
    assert "3 runs" in capsys.readouterr().out
    assert layout.cdxj.exists()
    after = dump(db)
    assert after["captures"] == before["captures"]
    assert after["articles"] == before["articles"]
    assert after["sightings"] == before["sightings"]
    assert [r[0] for r in after["runs"]] == list(history_crawls["runs"])
    # A second reindex keeps the run details of the readable history it replaces.
    with History.open(db) as h:
        h.conn.execute("UPDATE runs SET command = 'kept', mode = 'incremental' WHERE id = ?", (2,))
        h.commit()
    assert run_reindex(argparse.Namespace(directory=str(layout.root), set=[])) == 0
    assert dump(db)["runs"][1][3:] == ("kept", "incremental")


@pytest.mark.e2e
def test_package_of_a_scheduled_crawl_is_live_with_the_crawl_as_provenance(
    history_crawls, tmp_path
):
    """Three runs into one folder: croissant.json says the dataset is live, the crawl is
    its provenance (seeds, dates, tool and version, robots.txt policy), and the licence is
    the operator's: the [dataset] table of --config, the command line over it."""
    layout = copy_output(history_crawls["out"], tmp_path / "copy")
    runs = read_runs(layout.history)
    config = tmp_path / "farm.toml"
    config.write_text(
        f'farms = ["{history_crawls["farm_url"]}"]\noutput = "{layout.root}"\n'
        '[dataset]\nlicense = "CC-BY-4.0"\nurl = "https://data.example.org/autoblogs"\n'
    )
    packaged = run_cli("package", "--config", str(config))  # the folder: the config's output
    assert packaged.returncode == 0, packaged.stdout + packaged.stderr
    meta = json.loads((layout.root / CROISSANT_JSON).read_text())
    assert meta["isLiveDataset"] is True
    assert meta["license"] == "CC-BY-4.0" and meta["url"] == "https://data.example.org/autoblogs"
    assert "**This dataset**: CC\\-BY\\-4\\.0" in (layout.root / "README.md").read_text()
    crawl = next(a for a in meta["prov:wasGeneratedBy"] if a["@id"] == "crawl")
    assert crawl["prov:startedAtTime"] == runs[1]["started"]
    assert crawl["prov:endedAtTime"] == runs[3]["finished"]
    assert [e["url"] for e in crawl["prov:used"]] == [history_crawls["farm_url"]]
    assert crawl["prov:wasAssociatedWith"] == [
        {"@type": "prov:SoftwareAgent", "name": "autoblog-archive", "softwareVersion": VERSION}
    ]
    properties = {(p["name"], p["value"]) for p in crawl["additionalProperty"]}
    assert {("runs", 3), ("robots.txt", "obey"), ("operator", "unknown operator")} <= properties
    assert meta["datePublished"] == runs[3]["finished"]
    check = subprocess.run(
        [str(BIN / "mlcroissant"), "validate", "--jsonld", str(layout.root / CROISSANT_JSON)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    licence = "https://creativecommons.org/licenses/by/4.0/"
    again = run_cli("package", str(layout.root), "-c", str(config), "--license", licence)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads((layout.root / CROISSANT_JSON).read_text())["license"] == licence
    bad = run_cli("package", str(layout.root), "--url", "javascript:alert(1)")
    assert bad.returncode == EXIT_USAGE and "--url must be an http(s) URL" in bad.stderr


# ------------------------------------------------------------------ a crawl killed


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A real crawl SIGKILLed while it writes a WARC file, with captures in its history
    and more past them: its output folder as the kill left it (copy it before use)."""
    out = tmp_path_factory.mktemp("killed")
    layout = OutputLayout(out, "k")
    # About 400 requests with 40 ms of latency each: the kill lands well before the end
    # (the first batch is committed after 2 s, some 150 requests in).
    with start_farm(autoblogs=2, articles=150, engine=["0.3.4", "0.2"], latency=40) as farm:
        proc = subprocess.Popen(
            [str(BIN / "autoblog-archive"), "crawl", farm.url, "-o", str(out), "--name", "k",
             "--fast", "--set", "CONCURRENT_REQUESTS_PER_DOMAIN=2", "--warc-max-size", "40000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def frozen_while_writing() -> bool:
            # Kill with a batch committed and a few captures past it (most likely still
            # uncommitted), two WARC files closed and a third being written.
            committed = _committed(out)
            ready = committed and len(farm.requests()) >= committed + 10
            if not (ready and len(layout.warcs()) >= 2 and _half_written(layout)):
                return False
            # Frozen, the crawl cannot close its file between our look and the kill.
            os.kill(proc.pid, signal.SIGSTOP)
            if _half_written(layout):
                return True
            os.kill(proc.pid, signal.SIGCONT)
            return False

        try:
            wait_for(frozen_while_writing, "a WARC file being written past a batch", proc)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        yield {"out": out, "truth": farm.truth()["autoblogs"]}


def _half_written(layout: OutputLayout) -> bool:
    """The file being written is half its roll size (40,000 bytes): it holds whole record
    groups before the torn one, so the repair closes it. Just after a roll it may hold
    only a part of its first group, and the repair rightly deletes it instead."""
    sizes = []
    for path in layout.open_warcs():
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:  # closed between the listing and the look
            pass
    return any(size >= 20000 for size in sizes)


def _committed(out: Path) -> int:
    """Captures the running crawl has committed to its history so far."""
    if not (out / HISTORY_NAME).exists():
        return 0
    conn = sqlite3.connect(f"file:{out / HISTORY_NAME}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT count(*) FROM captures").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        conn.close()


@pytest.mark.e2e
def test_sigkilled_crawl_loses_nothing_that_the_warc_holds(killed, tmp_path):
    """Repair the torn `.open` file, then reconcile: the history gives back every capture
    the WARCs hold, also those of the batch that never reached SQLite."""
    layout = copy_output(killed["out"], tmp_path / "k", "k")
    (torn,) = layout.open_warcs()
    # The kill may land mid-record: here it does, 50 bytes before the end.
    torn.write_bytes(torn.read_bytes()[:-50])
    repairs = repair_directory(layout.archive)
    assert [r.action for r in repairs] == ["closed"] and repairs[0].cut_bytes > 50
    held = warc_captures(layout)
    assert len(held) > 20
    read_limit = default_context().bounds.read_limit
    reconcile_with_warcs(layout.root, read_limit)  # what a resumed crawl does first
    with History.open(layout.root) as h:
        run = h.latest_run()
        assert run.status == "running"  # crashed: resumable
        assert h.start_run(run.seeds) == run.id
        committed = {x.record_id for x in h.captures_in_run(run.id)}
        assert committed <= set(held)
        for repair in repairs:  # nothing committed points past the cut
            assert h.forget_after(repair.result.name, repair.size_after) == 0
        added = reconcile_files(h, layout.warcs(), run.id, read_limit)
        assert added == len(held) - len(committed)
        captures = h.captures_in_run(run.id)
        assert {x.record_id: x.url for x in captures} == held
        assert reconcile_files(h, layout.warcs(), run.id, read_limit) == 0  # idempotent
        # The articles of the permalink pages read back are known again.
        permalinks = {
            canonical_url(a["permalink"])
            for blog in killed["truth"].values()
            for a in blog["articles"]
        }
        fetched = {x.url for x in captures if x.status == 200} & permalinks
        assert all(h.has_article(u) for u in fetched)
    reconciled = dump(layout.history)
    write_cdxj(layout)
    assert warcs_ok(layout) == []
    # A history rebuilt from the WARCs alone holds the same captures and articles.
    for suffix in ("", "-wal", "-shm"):
        Path(str(layout.history) + suffix).unlink(missing_ok=True)
    assert run_reindex(argparse.Namespace(directory=str(layout.root), set=[])) == 0
    rebuilt = dump(layout.history)
    # Every capture the WARCs hold, each where its record is.
    lost = {row[10] for row in reconciled["captures"] if row[5] is None}
    assert [
        (*row[:5], None, *row[6:]) if row[10] in lost else row for row in rebuilt["captures"]
    ] == reconciled["captures"]
    assert {a[0] for a in reconciled["articles"]} <= {a[0] for a in rebuilt["articles"]}
    assert set(reconciled["sightings"]) <= set(rebuilt["sightings"])
    # What the crawl noted about each page once parsed (normalised digest, listed
    # articles) is read back too, whichever batch the kill cut.
    for key in ("captures", "articles", "sightings"):
        assert rebuilt[key] == reconciled[key], key


@pytest.mark.e2e
def test_reindex_repairs_open_files_and_respects_the_run_lock(killed, tmp_path, capsys):
    from crawler.exitcodes import EXIT_LOCKED
    from crawler.runlock import RunLock

    layout = copy_output(killed["out"], tmp_path / "k", "k")
    assert layout.open_warcs(), "the kill left no .open file"
    args = argparse.Namespace(directory=str(layout.root), set=[])
    with RunLock(layout.root, command="a crawl"):
        assert run_reindex(args) == EXIT_LOCKED
    assert "a crawl" in capsys.readouterr().out
    assert layout.open_warcs()  # refused: nothing touched
    assert run_reindex(args) == 0
    assert "repaired" in capsys.readouterr().out
    assert not layout.open_warcs()
    held = warc_captures(layout)
    with History.open(layout.root) as h:
        (run,) = h.runs()
        assert {x.record_id: x.url for x in h.captures_in_run(run.id)} == held
    assert warcs_ok(layout) == []


# ------------------------------------------------------------------ the change report

K = 3


@pytest.fixture(scope="module")
def reported(history_crawls):
    """``history_crawls`` with its history open (read only)."""
    history = History.open(history_crawls["out"])
    yield {**history_crawls, "history": history}
    history.close()


@pytest.mark.e2e
def test_first_run_is_all_new(reported):
    report = build_report(reported["history"], reported["runs"][0])
    ab0, ab1 = reported["bases"]
    for base in (ab0, ab1):
        entry = report["autoblogs"][base]
        assert len(entry["articles"]["new"]) == 12
        assert not entry["articles"]["changed"] and not entry["articles"]["gone"]
        assert not entry["pages"]["unchanged"] and not entry["pages"]["changed"]
    assert report["previous_run"] is None
    captures = reported["history"].captures_in_run(reported["runs"][0])
    assert report["totals"]["requests"] == len(captures)
    assert report["totals"]["bytes_written"] == sum(c.bytes_written for c in captures)
    assert all(c.record_type == "response" for c in captures)


@pytest.mark.e2e
def test_incremental_run_lists_exactly_the_k_new_articles(reported):
    history = reported["history"]
    run2 = reported["runs"][1]
    report = build_report(history, run2)
    ab0, ab1 = reported["bases"]
    entry = report["autoblogs"][ab0]
    assert len(reported["grown"]) == K
    assert entry["articles"]["new"] == sorted(reported["grown"])
    assert report["totals"]["articles"]["new"] == K
    assert entry["articles"]["changed"] == [] and entry["articles"]["gone"] == []
    # Pages 1 and 2 shifted by K articles: changed.
    assert ab0 in entry["pages"]["changed"] and ab0 + "?2" in entry["pages"]["changed"]
    assert set(reported["grown"]) <= set(entry["pages"]["new"])
    assert ab0 + "articles.db" in entry["pages"]["changed"]  # the database grew
    # The run fetched no article it already held; what it found unchanged is a revisit.
    fetched = {url for urls in entry["pages"].values() for url in urls}
    old = {
        canonical_url(a["permalink"])
        for blog in reported["truth"].values()
        for a in blog["articles"]
    }
    assert len(old) == 24 and not fetched & old
    assert entry["revisits"] == len(entry["pages"]["unchanged"]) > 0
    # An incremental run says nothing is gone just because it did not look. Autoblog 1's
    # first page did not change: the run went no further (the edit on page 3 waits for
    # a full pass).
    assert report["totals"]["pages"]["gone"] == 0
    assert report["autoblogs"][ab1]["pages"] == {
        "new": [], "changed": [], "unchanged": [ab1], "gone": [], "errors": [],
        "throttled": [],
    }  # fmt: skip
    assert all(not report["autoblogs"][ab1]["articles"][c] for c in ("new", "changed", "gone"))
    assert report["gone_rule"] == "404/410 only"
    # Requests made are the fetches captured: the farm's own log of the run.
    urls = requested_urls(reported["farm_url"], reported["requests"][1])
    assert report["totals"]["requests"] == len(urls)
    assert entry["requests"] == len([u for u in urls if u.startswith(ab0)])
    assert entry["bytes_written"] > 0
    assert report["crawl_stats"]["reason"] == "finished"
    assert report["crawl_stats"]["errors"] == 0


@pytest.mark.e2e
def test_full_pass_finds_edits_and_deletions(reported):
    report = build_report(reported["history"])  # default: the latest run
    assert report["run"]["id"] == reported["runs"][2]
    ab0, ab1 = reported["bases"]
    assert report["autoblogs"][ab1]["articles"]["changed"] == [reported["edited"]]
    assert reported["edited"] in report["autoblogs"][ab1]["pages"]["changed"]
    assert report["autoblogs"][ab0]["articles"]["gone"] == [reported["deleted"]]
    assert reported["deleted"] in report["autoblogs"][ab0]["pages"]["gone"]
    assert report["totals"]["articles"]["new"] == 0
    assert report["gone_rule"].startswith("404/410, and not listed")
    # 12 + 3 - 1 articles listed in autoblog 0, all unchanged.
    assert len(report["autoblogs"][ab0]["articles"]["unchanged"]) == 12 + K - 1
    # What the farm says it did (/_farm/edit, /_farm/delete).
    after = {
        canonical_url(a["permalink"]): a
        for blog in reported["truth_after"].values()
        for a in blog["articles"]
    }
    assert after[reported["edited"]]["text"].endswith("\nCorrection : ajout d’un paragraphe.")
    assert reported["deleted"] not in after and len(after) == 24 + K - 1


@pytest.mark.e2e
def test_text_summary_and_files(reported, tmp_path):
    report = build_report(reported["history"], reported["runs"][1])
    text = format_report(report)
    assert f"{K} new" in text
    for url in reported["grown"]:
        assert f"new article: {url}" in text
    path = write_report(OutputLayout(tmp_path), report)
    assert json.loads(path.read_text())["run"]["id"] == reported["runs"][1]
    kept = tmp_path / "reports" / f"run-{reported['runs'][1]:05d}.json"
    assert kept.read_bytes() == path.read_bytes()
    # The crawl wrote the same report at the end of its run.
    assert (reported["out"] / "reports" / kept.name).read_bytes() == kept.read_bytes()
    short = format_report(report, limit=1)
    assert f"and {K - 1} more new articles" in short


@pytest.mark.e2e
def test_report_command(reported, tmp_path):
    reported["history"].commit()
    out = io.StringIO()
    args = argparse.Namespace(directory=str(reported["out"]), run=None, json=False, limit=20)
    assert run_report(args, out=out) == 0
    assert f"Run {reported['runs'][2]} (full, {FINISHED})" in out.getvalue()
    out = io.StringIO()
    args.json, args.run = True, reported["runs"][1]
    assert run_report(args, out=out) == 0
    assert json.loads(out.getvalue())["totals"]["articles"]["new"] == K
    missing = argparse.Namespace(directory=str(tmp_path), run=None, json=False, limit=20)
    with pytest.raises(UsageError, match="no crawl here yet"):
        run_report(missing, out=io.StringIO())
    args.run = 999
    with pytest.raises(UsageError):
        run_report(args, out=io.StringIO())


@pytest.mark.e2e
def test_report_survives_a_rebuild(reported, tmp_path):
    """Reports computed from a history rebuilt from the WARCs alone are the same."""
    import shutil

    from crawler.history.rebuild import rebuild_from_indexes
    from crawler.warc.cdxj import write_cdxj

    copy = tmp_path / "copy"
    shutil.copytree(reported["out"] / "collections", copy / "collections")
    write_cdxj(OutputLayout(copy, "farm"))
    rebuild_from_indexes(copy, default_context().bounds.read_limit)
    with History.open(copy) as rebuilt:
        for run in reported["runs"]:
            a = build_report(reported["history"], run)
            b = build_report(rebuilt, run)
            assert a["autoblogs"].keys() == b["autoblogs"].keys()
            for base in a["autoblogs"]:
                assert a["autoblogs"][base]["articles"] == b["autoblogs"][base]["articles"]
                assert a["autoblogs"][base]["pages"] == b["autoblogs"][base]["pages"]
