"""Text from outside never reaches what people read raw: the terminal, the dataset card,
the manifest. Through the real command line, on a hostile farm, hostile file names and a
hostile history file.

"Raw" means a control byte a terminal acts on (ESC[31m recolours, ESC[2J clears, a
newline forges a line) or Markdown/HTML a renderer turns into a link or a script.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from hostile import HostileServer
from markdown_it import MarkdownIt
from support import run_cli

from crawler.corpus.shards import read_corpus
from crawler.exitcodes import EXIT_OK, EXIT_USAGE

pytestmark = pytest.mark.e2e

# An autoblog's name and an article's title (the engine prints them HTML-escaped).
NAME = (
    "\x1b[31mRed\x1b[0m [click me](javascript:alert(1)) ![x](http://evil.example/x.png) "
    "<img src=x onerror=alert(1)>\nforged line"
)
TITLE = "Mobilisation \x1b]8;;http://evil.example/\x1b\\générale\x1b]8;;\x1b\\ <b>x</b>"
# The card's title, from the command line.
CARD_TITLE = "Corpus <script>alert(1)</script> \u202eevil"


def control_bytes(text: str) -> list[str]:
    """The control characters of ``text`` other than the newlines ending its lines."""
    return sorted({c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0
                   or 0x202A <= ord(c) <= 0x202E})  # fmt: skip


def rendered(markdown: str) -> str:
    """The card as a CommonMark renderer (with GitHub's tables) shows it, in HTML."""
    return MarkdownIt("commonmark").enable("table").render(markdown)


@pytest.fixture(scope="module")
def hostile_crawl(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A crawl of a farm whose first autoblog's name and first title are NAME and TITLE
    (read it, never write it: copy it first)."""
    out = tmp_path_factory.mktemp("escaping") / "out"
    with HostileServer(autoblogs=2, articles=6) as farm:
        blog = farm.farm.autoblogs[0]
        blog.title = NAME
        blog.seed_articles = [dict(a) for a in blog.seed_articles]
        blog.seed_articles[0]["title"] = TITLE
        crawled = run_cli("crawl", farm.url, "-o", str(out), "--name", "f", "--fast")
    assert crawled.returncode == EXIT_OK, crawled.stdout[-2000:] + crawled.stderr[-2000:]
    return out, crawled


def test_a_hostile_autoblog_name_and_title_stay_text_everywhere(hostile_crawl, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(hostile_crawl[0], out)
    crawled = hostile_crawl[1]
    records = read_corpus(out)  # what pages said reached the corpus as it was
    assert any("\x1b[31m" in r["site"]["title"] and "<img" in r["site"]["title"] for r in records)
    assert any("\x1b]8;;" in r["title"] and "<b>" in r["title"] for r in records)

    report = run_cli("report", str(out))
    packaged = run_cli("package", str(out), "--no-parquet", "--title", CARD_TITLE)
    assert report.returncode == EXIT_OK and packaged.returncode == EXIT_OK, packaged.stderr
    for result in (crawled, report, packaged):
        assert control_bytes(result.stdout + result.stderr) == []

    card = (out / "README.md").read_text(encoding="utf-8")
    assert control_bytes(card) == []
    html = rendered(card)
    for live in ("<script", "<a ", "<img", "<b>"):
        assert live not in html, live
    # The name is still there for a reader, as the text it is (escapes shown, not acted on).
    assert "\\x1b[31mRed\\x1b[0m [click me](javascript:alert(1)) ![x](http" in html
    assert "&lt;img src=x onerror=alert(1)&gt; forged line" in html
    heading = "<h1>Corpus &lt;script&gt;alert(1)&lt;/script&gt; \\u202eevil</h1>"
    assert html.count("<h1>") == 1 and heading in html
    assert control_bytes((out / "MANIFEST.sha256").read_text(encoding="utf-8")) == []

    # croissant.json: what pages said is data (a value, as it was), never a key.
    raw = (out / "croissant.json").read_text(encoding="utf-8")
    assert control_bytes(raw) == []
    meta = json.loads(raw)
    assert [key for key in keys_of(meta) if not KEY.fullmatch(key)] == []
    autoblogs = next(s for s in meta["recordSet"] if s["@id"] == "autoblogs")["data"]
    assert {row["autoblogs/title"] for row in autoblogs} == {r["site"]["title"] for r in records}
    assert meta["name"] == CARD_TITLE


# The keys croissant.json may have: JSON-LD's, Croissant's and PROV's terms, field ids.
KEY = re.compile(r"@?[A-Za-z0-9]+(:[A-Za-z]+)?|autoblogs/[a-z]+")


def keys_of(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


def test_hostile_file_names_and_history_reach_the_terminal_escaped(hostile_crawl, tmp_path):
    """Folders and state files are outside text too: a WARC file named with escape codes,
    a history whose URLs hold them."""
    out = tmp_path / "out"
    shutil.copytree(hostile_crawl[0], out)
    archive = out / "collections" / "f" / "archive"
    bad = archive / "\x1b[2J\x1b[31mnot-a-warc.warc.gz"
    bad.write_bytes(b"\x1b[2Jnot a WARC file\n")
    for command in (["verify", str(out)], ["verify", str(bad)],
                    ["extract", str(archive), "-o", str(tmp_path / "x")]):  # fmt: skip
        result = run_cli(*command)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "\\x1b[2J\\x1b[31mnot-a-warc.warc.gz" in result.stdout, (command, result.stdout)
        assert control_bytes(result.stdout + result.stderr) == [], command
    bad.unlink()

    evil = "\x1b[2J\x1b]0;pwned\x07"
    with sqlite3.connect(out / "history.sqlite") as db:
        db.execute("UPDATE articles SET permalink = permalink || ?, autoblog = autoblog || ?",
                   (evil, evil))  # fmt: skip
        db.execute("UPDATE article_sightings SET permalink = permalink || ?", (evil,))
    report = run_cli("report", str(out))
    assert report.returncode == EXIT_OK, report.stderr
    assert "\\x1b[2J" in report.stdout and control_bytes(report.stdout + report.stderr) == []


def test_the_manifest_escapes_file_names_as_sha256sum_reads_them(hostile_crawl, tmp_path):
    corpus_dir = tmp_path / "data" / "corpus"
    corpus_dir.mkdir(parents=True)
    for shard in (hostile_crawl[0] / "corpus").rglob("part-*.jsonl.gz"):
        (corpus_dir / shard.name).write_bytes(shard.read_bytes())
    data = tmp_path / "data"
    (data / "notes\nforged  line.txt").write_text("a")
    (data / "back\\slash.txt").write_text("b")
    packaged = run_cli("package", str(data), "--no-parquet")
    assert packaged.returncode == EXIT_OK, packaged.stderr
    manifest = (data / "MANIFEST.sha256").read_text(encoding="utf-8")
    assert control_bytes(manifest) == []
    assert not [line for line in manifest.splitlines() if line.startswith("forged")]
    check = subprocess.run(["sha256sum", "--strict", "-c", "MANIFEST.sha256"], cwd=data,
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "notes\\nforged  line.txt: OK" in check.stdout

    (data / "\x1b[2Jclear.txt").write_text("c")
    refused = run_cli("package", str(data), "--no-parquet")
    assert refused.returncode == EXIT_USAGE, refused.stdout + refused.stderr
    assert "\\x1b[2Jclear.txt holds a control character" in refused.stderr
    assert control_bytes(refused.stdout + refused.stderr) == []
