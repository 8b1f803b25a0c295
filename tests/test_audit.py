"""The verdict is the truth (issue 20): an audit closes every run.

Every case is the real command line against the sample farm (a subprocess serving its
own model, which imports nothing of the crawler). What is asserted is what a scheduler
and a user see (the exit code, the missing items named, ``summary.json``) and what the
WARCs hold afterwards, read from the collection's CDXJ index, against the farm's own
truth (``/_farm/truth``).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
import support
from hostile import HostileServer, Reply
from support import run_cli, summary_of
from warcio.archiveiterator import ArchiveIterator

from crawler.samplefarm import start_farm
from crawler.urls import canonical_url

pytestmark = pytest.mark.e2e

NAME = "a"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "autoblog-archive.toml"


def crawl(url: str, out: Path, *extra: str):
    return support.crawl(url, out, *extra, name=NAME)


def held(out: Path) -> set[str]:
    """Canonical URLs whose newest line in the collection's CDXJ index answered below 500
    (a revisit line carries its original's status)."""
    newest: dict[str, tuple[str, int]] = {}
    for index in sorted((out / "collections").glob("*/indexes/index.cdxj")):
        for line in index.read_text(encoding="utf-8").splitlines():
            _key, stamp, blob = line.split(" ", 2)
            fields = json.loads(blob)
            url = canonical_url(fields["url"])
            if url not in newest or stamp >= newest[url][0]:
                newest[url] = (stamp, int(fields["status"]))
    return {url for url, (_, status) in newest.items() if status < 500}


def page_url(blog: dict, n: int) -> str:
    """Page ``n`` of an autoblog as its engine links it (the farm's URL scheme)."""
    base = blog["base_url"]
    if blog["engine"] == "0.2":
        return f"{base}{n}"
    if blog["engine"] == "0.1":
        return f"{base}?page{n}"
    return f"{base}?{n}"


def declared(blog: dict) -> dict[str, str]:
    """What the farm's model says an autoblog serves: canonical URL -> what (its index
    pages and the articles a permalink reaches; a numeric slug is served as a page)."""
    items = {canonical_url(page_url(blog, n)): "index page" for n in range(2, blog["pages"] + 1)}
    items.update({canonical_url(a["url"]): "article" for a in blog["articles"] if a["reachable"]})
    return items


def truth_missing(truth: dict, kept: set[str], hidden: tuple[str, ...] = ()) -> set:
    """What the audit must name, from the farm's own model: an autoblog whose first page
    the archive lacks (nothing more of it was ever shown), else each page and article."""
    expected: set[tuple[str, str]] = set()
    for folder, blog in truth.items():
        if blog["disabled"] and folder not in hidden:
            continue
        base = canonical_url(blog["base_url"])
        if base not in kept:
            expected.add(("autoblog", base))
            continue
        expected |= {(what, url) for url, what in declared(blog).items() if url not in kept}
    return expected


def audit_named(out: Path) -> set[tuple[str, str]]:
    """(what, URL) of every missing item the last run's audit named in summary.json."""
    audit = summary_of(out)["audit"]
    assert audit["missing_total"] == len(audit["missing"])
    return {(m["what"], m["url"]) for m in audit["missing"]}


def reasons(out: Path, url: str) -> list[str]:
    """``hopsFromSeed`` of every metadata record of ``url``: why each fetch was made."""
    found = []
    for path in sorted((out / "collections").glob("*/archive/*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type != "metadata":
                    continue
                if canonical_url(record.rec_headers.get_header("WARC-Target-URI")) != url:
                    continue
                for line in record.content_stream().read().decode().splitlines():
                    if line.startswith("hopsFromSeed: "):
                        found.append(line[len("hopsFromSeed: ") :])
    return found


# -- case 1: an old engine's autoblog first seen in an incremental run ------------------


def test_an_old_engine_autoblog_first_seen_in_an_incremental_run_is_walked_in_full(tmp_path):
    """One 0.1 autoblog by its own URL, then the farm root into the same folder: the
    others, new to the archive, get every one of their pages, not the first two."""
    with start_farm(autoblogs=3, articles=60, engine=["0.1"]) as farm:
        truth = farm.truth()["autoblogs"]
        first = next(iter(truth.values()))
        alone = crawl(first["base_url"], tmp_path)
        farm_wide = crawl(farm.url, tmp_path)
    assert alone.returncode == 0, alone.stdout[-2000:] + alone.stderr[-2000:]
    assert farm_wide.returncode == 0, farm_wide.stdout[-3000:] + farm_wide.stderr[-2000:]
    assert "Run 2 (incremental): complete" in farm_wide.stdout
    kept = held(tmp_path)
    for blog in truth.values():
        assert blog["pages"] == 6
        lacking = sorted(set(declared(blog)) - kept)
        assert not lacking, lacking
    assert summary_of(tmp_path)["audit"]["missing_total"] == 0


# -- 3: links cut by MAX_LINKS_PER_PAGE -----------------------------------------------


def test_links_cut_by_a_bound_are_named_then_fetched_first_by_the_next_run(tmp_path):
    with start_farm(autoblogs=2, articles=30, engine=["0.3.4", "0.1"]) as farm:
        truth = farm.truth()["autoblogs"]
        cut = crawl(farm.url, tmp_path, "--set", "MAX_LINKS_PER_PAGE=5")
        named = audit_named(tmp_path)
        report = json.loads((tmp_path / "report.json").read_text())
        kept = held(tmp_path)
        missing = summary_of(tmp_path)["audit"]["missing"]
        seen = len(farm.requests())
        after = crawl(farm.url, tmp_path)
        second = [canonical_url(farm.url.rstrip("/") + r["path"]) for r in farm.requests()[seen:]]
    assert cut.returncode == 1, cut.stdout[-2000:] + cut.stderr[-2000:]
    # Exactly what the farm serves and the archive lacks, each with its autoblog and why.
    assert named and named == truth_missing(truth, kept)
    bases = {canonical_url(blog["base_url"]) for blog in truth.values()}
    assert all(m["autoblog"] in bases and m["why"] for m in missing)
    for item in missing[:20]:
        assert f"missing {item['what']} {item['url']} ({item['why']})" in cut.stdout
    assert report["run"]["status"] == "partial"
    assert report["crawl_stats"]["missing"] == len(named)
    assert f"... and {len(missing) - 20} more missing items (summary.json)" in cut.stdout

    assert after.returncode == 0, after.stdout[-3000:] + after.stderr[-2000:]
    assert "Run 2 (incremental): complete" in after.stdout
    assert not truth_missing(truth, held(tmp_path))
    requested = [url for url in second if not url.endswith("/robots.txt")]
    assert requested[0] in {url for _, url in named}, requested[:5]  # fetched first
    assert {url for _, url in named} <= set(requested)
    # Still an incremental run: what the first run archived is not fetched again.
    archived = {url for b in truth.values() for url, what in declared(b).items() if url in kept}
    assert not archived & set(requested), sorted(archived & set(requested))[:5]


# -- verify runs the same audit offline -------------------------------------------------


def test_verify_names_the_articles_a_removed_warc_file_held(tmp_path):
    with start_farm(autoblogs=2, articles=20, engine=["0.3.4", "0.2"]) as farm:
        truth = farm.truth()["autoblogs"]
        result = crawl(farm.url, tmp_path, "--warc-max-size", "40000")
        root = canonical_url(farm.url)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert run_cli("verify", str(tmp_path)).returncode == 0
    articles = {
        canonical_url(a["url"]): canonical_url(blog["base_url"])
        for blog in truth.values()
        for a in blog["articles"]
        if a["reachable"]
    }
    firsts = {canonical_url(blog["base_url"]) for blog in truth.values()} | {root}
    victim, lost = None, set()
    for path in sorted((tmp_path / "collections" / NAME / "archive").glob("*.warc.gz")):
        with open(path, "rb") as fh:
            urls = {
                canonical_url(r.rec_headers.get_header("WARC-Target-URI"))
                for r in ArchiveIterator(fh)
                if r.rec_type in ("response", "revisit")
            }
        if len(urls & set(articles)) >= 3 and not urls & firsts:
            victim, lost = path, urls & set(articles)
            break
    assert victim is not None, "no WARC file holds articles without a first page"
    victim.unlink()
    result = run_cli("verify", str(tmp_path))
    assert result.returncode == 1, result.stdout[-3000:]
    lines = result.stdout.splitlines()
    for url in sorted(lost):
        assert any(
            line.startswith(f"MISSING  article {url} (")
            and line.endswith(f", autoblog {articles[url]}")
            for line in lines
        ), (url, lines[:10])


# -- what the audit reads from the farm is hostile --------------------------------------


def _database(rows: list[str] | None = None, view: bool = False) -> bytes:
    """An ``articles.db`` as an engine would serve it: a real table of ``rows``, or
    ``articles`` as a view that never ends."""
    db = sqlite3.connect(":memory:")
    if view:
        db.execute(
            "CREATE VIEW articles AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
            "SELECT x + 1 FROM c) SELECT x AS id, 'slug-' || x AS uri FROM c ORDER BY x DESC"
        )
    else:
        db.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, uri TEXT)")
        db.executemany("INSERT INTO articles (uri) VALUES (?)", [(r,) for r in rows or []])
    db.commit()
    data = db.serialize()
    db.close()
    return data


@pytest.mark.parametrize("kind", ["endless view", "not a database", "forbidden and too many"])
def test_a_hostile_articles_db_neither_hangs_nor_misleads_the_audit(tmp_path, kind):
    with HostileServer(articles=6) as farm:
        host = f"{farm.host}:{farm.port}"
        slugs = [a["slug"] for blog in farm.farm.truth(host)["autoblogs"].values()
                 for a in blog["articles"]]  # fmt: skip
        if kind == "endless view":
            body = _database(view=True)
        elif kind == "not a database":
            body = b"SQLite format 3\x00" + b"\xff" * 4096
        else:  # forbidden URLs first, then the real articles, then page numbers galore
            body = _database(["update", "q=ceci", *slugs, *map(str, range(1, 100))])
        path = farm.base()[len(farm.url) - 1 :] + "articles.db"
        farm.routes[path] = lambda server, target: Reply(
            200, [("Content-Type", "application/octet-stream")], body
        )
        result = crawl(farm.base(), tmp_path, "--set", "AUDIT_MAX_DECLARED=50")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    audit = summary_of(tmp_path)["audit"]
    assert audit["complete"] and audit["checked"] > 0
    notes = " ".join(audit["notes"])
    if kind == "forbidden and too many":  # ?update, ?q= and page numbers are not asked for
        assert "articles.db declares more than 50 items" in notes
    else:
        assert "its articles.db could not be read" in notes
    assert "audit: " in result.stdout  # said, not only logged


# -- the README's scheduled crawl, five rounds of a changing farm -----------------------


def scheduled_config(tmp_path: Path, farm_url: str, hidden: str) -> Path:
    """The README's scheduled-crawl example (examples/autoblog-archive.toml) pointed at
    the sample farm: its URL, output and hidden autoblog, no delay (loopback)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    swaps = [
        (r'(?m)^output = ".*"$', f'output = "{tmp_path / "archive"}"'),
        (r'(?m)^url = "https://autoblog\.example\.org/"$', f'url = "{farm_url}"'),
        (r"(?m)^hidden_autoblogs = \[.*\]$", f'hidden_autoblogs = ["{hidden}"]'),
        (r'(?m)^\[\[farms\]\]\nurl = "https://other-farm.*\n\n', ""),
        (r"(?m)^delay = .*$", "delay = 0"),
        (r"(?m)^concurrency = .*$", "concurrency = 8"),
    ]
    for pattern, value in swaps:
        text, count = re.subn(pattern, value, text)
        assert count == 1, f"the example no longer has {pattern}"
    path = tmp_path / "farm.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_scheduled_crawl_agrees_with_the_farm_round_after_round(tmp_path):
    """Five runs of the README's cron line while the farm changes; after each, what the
    audit names is exactly what the farm's model says the archive lacks, and the exit
    code is 1 exactly when it names something."""
    with start_farm(autoblogs=3, articles=32, engine=["0.3.4", "0.1", "2025"],
                    fault=["2:disabled"]) as farm:  # fmt: skip
        folders = list(farm.truth()["autoblogs"])
        a, b, hidden = folders  # 0.3.4, 0.1 (links only its next page), hidden 2025
        config = scheduled_config(tmp_path, farm.url, hidden)
        out = tmp_path / "archive"
        rounds: list[tuple[int, set]] = []

        def run() -> None:
            # The README's cron line; --fast only lifts AutoThrottle's start delay (loopback).
            result = run_cli("crawl", "--config", str(config), "--fast")
            truth = farm.truth()["autoblogs"]
            named = audit_named(out)
            assert named == truth_missing(truth, held(out), (hidden,)), result.stdout[-3000:]
            assert result.returncode == (1 if named else 0), result.stdout[-3000:]
            rounds.append((result.returncode, named))

        run()  # 1: the first crawl, a full pass
        farm.grow(a, 6)  # a new last page
        farm.grow(b, 9)  # 0.1: a fifth page, past where the incremental walk stops
        d = farm.add("0.1", 25)["autoblog"]  # new to the archive, in an incremental run
        run()
        farm.fault(b, "error=1")  # archived, now failing: every request answers 500/503
        e = farm.add("0.3.4", 8)
        farm.fault(e["autoblog"], "error=1")  # new, and failing from the start
        run()
        farm.fault(b, "error=0")
        farm.fault(e["autoblog"], "error=0")
        farm.remove(a)
        farm.grow(d, 4)
        run()
        farm.delete(b, 2)
        farm.grow(hidden, 1)
        farm.add("0.2", 15)
        run()
        base_b = canonical_url(farm.truth()["autoblogs"][b]["base_url"])
    assert [code for code, _ in rounds] == [0, 0, 1, 0, 0], rounds
    assert rounds[2][1] == {("autoblog", base_b), ("autoblog", canonical_url(e["base_url"]))}
    # Round 4 fetched the two named autoblogs because round 3's audit named them.
    assert "missing autoblog" in reasons(out, base_b)
    assert "missing autoblog" in reasons(out, canonical_url(e["base_url"]))
    verify = run_cli("verify", str(out))
    assert verify.returncode == 0, verify.stdout[-3000:]
