"""The crawl history: real WARCs (RollingWarcWriter + warcio) of the in-process sample farm,
noted in history.sqlite the way the wired capture does, then lost and rebuilt.

``SimulatedCrawl`` is the reference wiring of the history into a crawl (see the
``History`` docstrings); test_report.py reuses it.
"""

from __future__ import annotations

import argparse
import sqlite3
import textwrap
import time
from datetime import UTC, datetime
from http import HTTPStatus
from io import BytesIO
from pathlib import Path

import pytest
from conftest import kill_when_ready
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date

from crawler.history.digests import article_digest, normalized_digest, page_digest, payload_digest
from crawler.history.model import FINISHED, warcinfo_run_fields
from crawler.history.rebuild import reconcile_files
from crawler.history.reindex import run_reindex
from crawler.history.store import History
from crawler.layout import HISTORY_NAME, OutputLayout
from crawler.parsing import parse_page
from crawler.samplefarm.farm import Farm
from crawler.samplefarm.options import FarmConfig
from crawler.urls import autoblog_base, canonical_url
from crawler.verify import Report, check_warc
from crawler.warc.indexes import write_cdxj
from crawler.warc.records import revisit_arguments
from crawler.warc.recovery import repair_directory
from crawler.warc.writer import RollingWarcWriter, make_record_builder

HOST = "farm.test"
ROOT = Path(__file__).resolve().parents[1]


class SimulatedCrawl:
    """What the spider + capture extension do once wired: fetch (here from the sample farm
    in-process), write a response or, for an unchanged payload, a revisit group, note it."""

    def __init__(self, farm: Farm, output: Path, name: str = "farm") -> None:
        self.farm = farm
        self.layout = OutputLayout(output, name)
        self.builder = make_record_builder()

    def base(self, index: int) -> str:
        return self.farm.base_url(self.farm.autoblogs[index], HOST)

    def walk(self, index: int, pages: int | None = None) -> list[str]:
        """Index pages (newest first) and every permalink they list: a mini spider."""
        urls: list[str] = []
        page_url: str | None = self.base(index)
        seen_pages = 0
        while page_url and (pages is None or seen_pages < pages):
            urls.append(page_url)
            page = parse_page(self.get(page_url)[1], page_url)
            urls += [canonical_url(a.permalink) for a in page.articles if a.permalink]
            page_url, seen_pages = page.next_page, seen_pages + 1
        return urls

    def get(self, url: str) -> tuple[int, bytes, list[tuple[str, str]]]:
        resp = self.farm.handle("GET", url.removeprefix(f"http://{HOST}"), HOST)
        return resp.status, resp.body, resp.headers

    def run(
        self,
        history: History,
        urls: list[str],
        mode: str = "full",
        status: str = FINISHED,
        fsync: bool = False,
    ) -> int:
        run_id = history.start_run([f"http://{HOST}/"], command="test crawl", mode=mode)
        run = history.get_run(run_id)
        writer = RollingWarcWriter(
            self.layout.archive,
            self.layout.name,
            {"software": "tests", **warcinfo_run_fields(run_id, run.started, mode)},
            fsync=fsync,
        )
        for url in urls:
            self.fetch(history, writer, run_id, url)
        writer.close()
        history.finish_run(run_id, status, stats={"requests": len(urls)})
        return run_id

    def fetch(self, history: History, writer: RollingWarcWriter, run_id: int, url: str) -> None:
        status, body, headers = self.get(url)
        date = datetime_to_iso_date(datetime.now(UTC).replace(tzinfo=None), use_micros=False)
        http = StatusAndHeaders(
            f"{status} {HTTPStatus(status).phrase}",
            [*headers, ("Content-Length", str(len(body)))],
            protocol="HTTP/1.1",
        )
        digest = payload_digest(body)
        original = history.find_original(url, digest)
        if original is not None:
            kwargs, extra = revisit_arguments(original)
            record = self.builder.create_revisit_record(
                url, http_headers=http, warc_headers_dict={"WARC-Date": date, **extra}, **kwargs
            )
        else:
            record = self.builder.create_warc_record(
                url,
                "response",
                payload=BytesIO(body),
                length=len(body),
                http_headers=http,
                warc_headers_dict={"WARC-Date": date},
            )
        rid = record.rec_headers.get_header("WARC-Record-ID")
        request = self.builder.create_warc_record(
            url,
            "request",
            payload=BytesIO(b""),
            length=0,
            http_headers=StatusAndHeaders(
                f"GET {url.removeprefix(f'http://{HOST}')} HTTP/1.1",
                [("Host", HOST)],
                is_http_request=True,
            ),
            warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": rid},
        )
        locations = writer.write_group([record, request])
        page = parse_page(body, url) if "html" in dict(headers).get("Content-type", "") else None
        history.record_capture(
            url=url,
            run_id=run_id,
            warc_date=date,
            status=status,
            payload_digest=digest,
            record_type=record.rec_type,
            filename=locations[0].filename,
            offset=locations[0].offset,
            length=locations[0].length,
            record_id=rid,
            normalized_digest=page_digest(page) if page and status == 200 else None,
            refers_to=original.record_id if original else None,
            bytes_written=sum(loc.length for loc in locations),
        )
        if page is not None and status == 200 and page.kind in ("index", "article"):
            for block in page.articles:
                if block.permalink:
                    history.mark_article(
                        block.permalink, autoblog_base(url), run_id, article_digest(block)
                    )


def make_farm(articles: int = 12) -> Farm:
    return Farm(FarmConfig(autoblogs=2, articles=articles, seed=1, engines=["0.3.4", "2025"]))


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


# ------------------------------------------------------------------ normalised digest


def test_normalized_digest_ignores_update_block_and_follows_content():
    farm = make_farm()
    crawl = SimulatedCrawl(farm, Path("/nonexistent"))
    base = crawl.base(0)
    plain = crawl.get(base)[1]
    farm.autoblogs[0].settings.update = True
    with_update = crawl.get(base)[1]
    farm.autoblogs[0].settings.update = False
    assert plain != with_update and b"Mise \xc3\xa0 jour" in with_update
    assert payload_digest(plain) != payload_digest(with_update)
    assert normalized_digest(plain, base) == normalized_digest(with_update, base) is not None
    # The search form's action carries the page URL: page 2 differs only by articles.
    farm.grow(farm.autoblogs[0].folder, 1, HOST)
    assert normalized_digest(crawl.get(base)[1], base) != normalized_digest(plain, base)
    # An index block and its permalink page give one article digest.
    index = parse_page(crawl.get(base)[1], base)
    block = index.articles[0]
    single = parse_page(crawl.get(block.permalink)[1], block.permalink)
    assert single.kind == "article"
    assert article_digest(single.articles[0]) == article_digest(block)
    # A farm page and non-HTML are not autoblog pages.
    root = f"http://{HOST}/"
    assert normalized_digest(crawl.get(root)[1], root) is None
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


def test_batched_commits_cost_little(tmp_path):
    with History.open(tmp_path, batch_size=500) as h:
        run = h.start_run(["http://f/"])
        started = time.perf_counter()
        for i in range(5000):
            h.record_capture(
                url=f"http://f/a/?{i}", run_id=run, warc_date="2025-01-01T00:00:00Z",
                status=200, payload_digest=f"sha1:{i}", record_type="response",
                filename="f.warc.gz", offset=i * 100, length=100, record_id=f"<urn:uuid:{i}>",
            )  # fmt: skip
        elapsed = time.perf_counter() - started
        assert h._pending < 500  # committed in batches, not once per row
    assert elapsed < 2.0, f"5,000 captures took {elapsed:.2f}s"


# ------------------------------------------------------------------ real crawls


@pytest.fixture
def two_runs(tmp_path):
    """A full crawl, the farm grows, an incremental crawl of page 1-2 of autoblog 0."""
    farm = make_farm()
    crawl = SimulatedCrawl(farm, tmp_path)
    history = History.open(tmp_path)
    first = crawl.walk(0) + crawl.walk(1) + [crawl.base(0) + "articles.db"]
    run1 = crawl.run(history, first)
    farm.grow(farm.autoblogs[0].folder, 3, HOST)
    second = crawl.walk(0, pages=2) + [crawl.base(0) + "articles.db", crawl.base(1) + "?2"]
    run2 = crawl.run(history, second, mode="incremental")
    yield crawl, history, run1, run2, first, second
    history.close()


def test_recrawl_writes_revisits_that_verify(two_runs):
    crawl, history, run1, run2, first, second = two_runs
    assert warcs_ok(crawl.layout) == []
    revisits = [c for c in history.captures_in_run(run2) if c.record_type == "revisit"]
    responses = [c for c in history.captures_in_run(run2) if c.record_type == "response"]
    # Permalink pages of old articles are byte-identical: revisits; index pages shifted.
    assert {c.url for c in revisits} >= {u for u in second if "?" in u and u in first} - {
        crawl.base(0) + "?2",
        crawl.base(1) + "?2",
    }
    assert crawl.base(0) in {c.url for c in responses}
    for capture in revisits:
        original = history.find_original(capture.url, capture.payload_digest)
        assert original.run_id == run1 and capture.refers_to == original.record_id
    # The revisit record carries what pywb needs.
    path = crawl.layout.archive / revisits[0].filename
    with open(path, "rb") as fh:
        fh.seek(revisits[0].offset)
        record = next(iter(ArchiveIterator(fh)))
    headers = record.rec_headers
    assert headers.get_header("WARC-Profile").endswith("/revisit/identical-payload-digest")
    assert headers.get_header("WARC-Refers-To") == revisits[0].refers_to
    assert headers.get_header("WARC-Refers-To-Target-URI") == revisits[0].url
    assert headers.get_header("WARC-Refers-To-Date")
    assert history.urls_captured_in_run(run2) == set(second)


def test_rebuild_from_indexes_restores_everything(two_runs, capsys):
    crawl, history, run1, run2, first, second = two_runs
    history.close()
    db = crawl.layout.root / HISTORY_NAME
    before = dump(db)
    assert before["captures"] and before["articles"] and before["sightings"]
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    code = run_reindex(argparse.Namespace(directory=str(crawl.layout.root)))
    assert code == 0
    assert "2 runs" in capsys.readouterr().out
    assert crawl.layout.cdxj.exists()
    after = dump(db)
    assert after["captures"] == before["captures"]
    assert after["articles"] == before["articles"]
    assert after["sightings"] == before["sightings"]
    assert [r[0] for r in after["runs"]] == [run1, run2]
    # A second reindex keeps the run details of the readable history it replaces.
    with History.open(db) as h:
        h.conn.execute("UPDATE runs SET command = 'kept', mode = 'incremental' WHERE id = ?", (2,))
        h.commit()
    assert run_reindex(argparse.Namespace(directory=str(crawl.layout.root))) == 0
    assert dump(db)["runs"][1][3:] == ("kept", "incremental")


def test_reconcile_after_lost_batch_and_torn_file(tmp_path):
    """Crash story: the last batch never reached SQLite and the WARC was left `.open`
    and torn; repair + forget_after + reconcile_files give back every kept capture."""
    farm = make_farm()
    crawl = SimulatedCrawl(farm, tmp_path)
    urls = crawl.walk(0)
    h = History.open(tmp_path, batch_size=10**6, batch_seconds=10**6)
    run = h.start_run([f"http://{HOST}/"], command="test crawl")
    writer = RollingWarcWriter(
        crawl.layout.archive, "farm", warcinfo_run_fields(run, "x"), fsync=False
    )
    for i, url in enumerate(urls):
        crawl.fetch(h, writer, run, url)
        if i == 5:
            h.commit()  # a batch that made it
    name = writer.current_name
    writer._fh.flush()
    h.conn.close()  # without committing the rest: as after a SIGKILL
    open_file = crawl.layout.archive / (name + ".open")
    data = open_file.read_bytes()
    open_file.write_bytes(data[: len(data) - 50])  # torn last record
    (repair,) = repair_directory(crawl.layout.archive)
    with History.open(tmp_path) as h:
        assert len(h.urls_captured_in_run(run)) == 6
        h.forget_after(repair.result.name, repair.size_after)
        added = reconcile_files(h, crawl.layout.warcs(), run)
        assert added == repair.kept_captures - 6
        assert h.urls_captured_in_run(run) == set(urls[:-1])
        assert reconcile_files(h, crawl.layout.warcs(), run) == 0  # idempotent, cheap
        assert h.has_article(urls[-2])
    write_cdxj(crawl.layout)
    assert warcs_ok(crawl.layout) == []


def test_sigkilled_writer_loses_nothing_that_the_warc_holds(tmp_path):
    """A real process writing WARC groups and history rows, killed with SIGKILL."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from test_history import SimulatedCrawl, make_farm, HOST
        from crawler.history.store import History
        from crawler.history.model import warcinfo_run_fields
        from crawler.warc.writer import RollingWarcWriter
        crawl = SimulatedCrawl(make_farm(), Path({str(tmp_path)!r}))
        h = History.open(Path({str(tmp_path)!r}), batch_size=7, batch_seconds=3600)
        run = h.start_run([f"http://{{HOST}}/"], command="killed")
        w = RollingWarcWriter(crawl.layout.archive, "farm", warcinfo_run_fields(run, "x"),
                              max_size=40_000, fsync=False)
        urls = crawl.walk(0) + crawl.walk(1)
        for i in range(10**6):
            crawl.fetch(h, w, run, urls[i % len(urls)] + ("" if i < len(urls) else f"&{{i}}"))
            if i == 40:
                print("ready", flush=True)
        """
    )
    kill_when_ready(script, settle=0.2)
    layout = OutputLayout(tmp_path, "farm")
    repair_directory(layout.archive)
    with History.open(tmp_path) as h:
        run = h.latest_run()
        assert run.status == "running"  # crashed: resumable
        assert h.start_run([f"http://{HOST}/"]) == run.id
        reconcile_files(h, layout.warcs(), run.id)
        in_warcs = sum(1 for path in layout.warcs() for _ in _captures(path))
        assert len(h.captures_in_run(run.id)) == in_warcs
        assert in_warcs > 40
    assert warcs_ok(layout) == []


def _captures(path: Path):
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type in ("response", "revisit"):
                yield record


def test_reindex_repairs_open_files_and_respects_the_run_lock(tmp_path, capsys):
    from crawler.exitcodes import EXIT_LOCKED
    from crawler.runlock import RunLock

    crawl = SimulatedCrawl(make_farm(), tmp_path)
    with History.open(tmp_path) as h:
        crawl.run(h, crawl.walk(0))
        run = h.start_run(["http://other/"])
        writer = RollingWarcWriter(crawl.layout.archive, "farm", warcinfo_run_fields(run, "x"))
        crawl.fetch(h, writer, run, crawl.base(1))
        writer._fh.flush()  # left .open, as by a killed crawl
    args = argparse.Namespace(directory=str(tmp_path))
    with RunLock(tmp_path, command="a crawl"):
        assert run_reindex(args) == EXIT_LOCKED
    assert "a crawl" in capsys.readouterr().out
    assert run_reindex(args) == 0
    assert "repaired" in capsys.readouterr().out
    assert not crawl.layout.open_warcs()
    with History.open(tmp_path) as h:
        assert h.urls_captured_in_run(run) == {crawl.base(1)}
    assert warcs_ok(crawl.layout) == []
