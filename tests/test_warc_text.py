"""The corpus as WARC conversion records (issue 23, item 4: ``extract --warc-text``), as
Common Crawl's WET files hold the text of its WARC files.

A real crawl of the sample farm, then the real command line: the text WARC files are read
back with warcio (and checked by ``warcio check``), tied record by record to the archive's
responses and to the corpus, found in the CDXJ index, kept there by the next crawl, and
left out of what pywb replays. ``verify`` names a conversion record that refers to no
capture of the archive.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import needs_pywb, replayed, run_cli
from warcio.archiveiterator import ArchiveIterator

from crawler.corpus.wet import conversion_record, text_warcinfo
from crawler.layout import OutputLayout
from crawler.warc.cdxj import write_cdxj
from crawler.warc.writer import RollingWarcWriter

pytestmark = pytest.mark.e2e

NAME = "farm"


def records(path: Path) -> list:
    """(type, WARC headers, content) of every record of a WARC file, read with warcio."""
    out = []
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            out.append((record.rec_type, record.rec_headers, record.content_stream().read()))
    return out


def corpus(folder: Path) -> list[dict]:
    return [
        json.loads(line)
        for part in sorted((folder / "corpus").glob("part-*.jsonl.gz"))
        for line in gzip.open(part, "rt", encoding="utf-8")
    ]


@pytest.fixture(scope="module")
def wet(tmp_path_factory):
    """A crawl of two autoblogs (engines 0.3.4 and 0.1), then ``extract OUT -o CORPUS
    --warc-text``."""
    from crawler.samplefarm import start_farm

    base = tmp_path_factory.mktemp("wet")
    out, extracted = base / "out", base / "corpus"
    with start_farm(autoblogs=2, articles=7, engine=["0.3.4", "0.1"]) as farm:
        crawl = ["crawl", farm.url, "-o", str(out), "--name", NAME, "--fast"]
        first = run_cli(*crawl)
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
        result = run_cli("extract", str(out), "-o", str(extracted), "--warc-text")
        yield {"farm": farm, "crawl": crawl, "out": out, "corpus": extracted, "result": result}


def test_every_corpus_record_is_a_conversion_record_of_its_capture(wet):
    result, layout = wet["result"], OutputLayout(wet["out"], NAME)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    texts = layout.text_warcs()
    assert texts and f"-> {layout.text_archive}" in result.stdout
    converted = {}
    for path in texts:
        found = records(path)
        assert found[0][0] == "warcinfo"
        for rtype, headers, content in found[1:]:
            assert rtype == "conversion"
            assert headers.get_header("Content-Type") == "text/plain; charset=utf-8"
            converted[headers.get_header("WARC-Refers-To"), content.decode("utf-8")] = headers
    responses = {
        headers.get_header("WARC-Record-ID"): headers
        for path in layout.warcs()
        for rtype, headers, _ in records(path)
        if rtype == "response"
    }
    made = corpus(wet["corpus"])
    assert len(converted) == len(made) and f"WET: {len(made)} conversion records" in result.stdout
    for record in made:
        headers = converted[record["warc"]["record_id"], record["text"]]
        capture = responses[headers.get_header("WARC-Refers-To")]
        for name in ("WARC-Target-URI", "WARC-Date"):
            assert headers.get_header(name) == capture.get_header(name), name
        assert headers.get_header("WARC-Target-URI") == record["warc"]["target_uri"]
    # A WET reader's check of the files: digests and headers (warcio's own).
    warcio = Path(sys.executable).parent / "warcio"
    check = subprocess.run([str(warcio), "check", *map(str, texts)], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_text_is_in_the_index_and_verify_ties_it_to_the_archive(wet):
    layout = OutputLayout(wet["out"], NAME)
    lines = [json.loads(line.split(" ", 2)[2]) for line in layout.cdxj.read_text().splitlines()]
    text_lines = [f for f in lines if f["filename"].startswith("text/")]
    expected = sum(len(records(p)) - 1 for p in layout.text_warcs())
    assert len(text_lines) == expected
    assert {f["mime"] for f in text_lines} == {"text/plain"}
    assert {f["filename"] for f in text_lines} == {f"text/{p.name}" for p in layout.text_warcs()}
    verify = run_cli("verify", str(wet["out"]))
    assert verify.returncode == 0, verify.stdout[-2000:]
    assert f"{len(layout.warcs()) + len(layout.text_warcs())} WARC files" in verify.stdout


@needs_pywb
def test_replay_still_serves_the_page_not_its_text(wet):
    """The conversion record has the capture's URL and date; pywb serves the capture."""
    layout = OutputLayout(wet["out"], NAME)
    for record in corpus(wet["corpus"])[:3]:
        stamp = record["crawl_date"].replace("-", "").replace(":", "").replace("T", "")[:14]
        page = replayed(wet["out"], f"{NAME}/{stamp}id_/{record['warc']['target_uri']}")
        (stored,) = [
            content
            for path in layout.warcs()
            for rtype, headers, content in records(path)
            if headers.get_header("WARC-Record-ID") == record["warc"]["record_id"]
        ]
        assert page == stored and record["text"].encode() not in page


def test_a_second_extract_replaces_the_text_and_the_next_crawl_keeps_it(wet, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(wet["out"], out)
    layout = OutputLayout(out, NAME)
    before = layout.text_warcs()
    converted = sum(len(records(p)) - 1 for p in before)
    again = run_cli("extract", str(out), "-o", str(tmp_path / "c"), "--warc-text")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    after = layout.text_warcs()
    assert after and not {p.name for p in after} & {p.name for p in before}
    assert sorted(p.name for p in layout.archive.iterdir()) == sorted(
        [p.name for p in layout.warcs()] + ["text"]
    )  # no new nor old set left beside it
    assert sum(len(records(p)) - 1 for p in after) == converted
    # The next crawl into the folder rewrites the index: the text lines stay.
    wet["farm"].grow(None, 2)
    crawl = [*wet["crawl"]]
    crawl[crawl.index("-o") + 1] = str(out)
    result = run_cli(*crawl)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = layout.cdxj.read_text().splitlines()
    names = [json.loads(line.split(" ", 2)[2])["filename"] for line in lines]
    assert sum(name.startswith("text/") for name in names) == converted
    assert run_cli("verify", str(out)).returncode == 0


def _damaged(wet, tmp_path: Path, change: dict) -> subprocess.CompletedProcess:
    """``verify`` of a copy of the crawl with one more text WARC file (written by the real
    writer) whose one conversion record is made of a corpus record with ``change``."""
    out = tmp_path / "out"
    shutil.copytree(wet["out"], out)
    record = corpus(wet["corpus"])[0]
    record = {**record, "warc": {**record["warc"], **change.get("warc", {})}}
    record.update({k: v for k, v in change.items() if k != "warc"})
    layout = OutputLayout(out, NAME)
    writer = RollingWarcWriter(layout.text_archive, "extra", text_warcinfo(NAME), 1 << 30)
    writer.write_group([conversion_record(record)])
    writer.close()
    write_cdxj(layout)
    return run_cli("verify", str(out))


@pytest.mark.parametrize(
    ("change", "defect"),
    [
        ({"warc": {"record_id": "<urn:uuid:00000000-0000-0000-0000-000000000000>"}},
         "no response record of the archive"),
        ({"warc": {"target_uri": "http://127.0.0.1:1/elsewhere"}}, "refers to the capture"),
        ({"crawl_date": "2001-01-01T00:00:00Z"}, "refers to the capture"),
    ],
)  # fmt: skip
def test_verify_names_a_conversion_record_without_its_capture(wet, tmp_path, change, defect):
    verify = _damaged(wet, tmp_path, change)
    assert verify.returncode == 1
    problems = [line for line in verify.stdout.splitlines() if line.startswith("DEFECT")]
    assert len(problems) == 1 and defect in problems[0], verify.stdout[-2000:]


def test_verify_names_a_text_file_gone_from_under_its_index(wet, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(wet["out"], out)
    for path in OutputLayout(out, NAME).text_warcs():
        path.unlink()
    verify = run_cli("verify", str(out))
    assert verify.returncode == 1 and "does not exist" in verify.stdout


def test_warc_text_wants_a_crawls_output_folder(wet, tmp_path):
    (warc,) = OutputLayout(wet["out"], NAME).warcs()[:1]
    result = run_cli("extract", str(warc), "-o", str(tmp_path / "c"), "--warc-text")
    assert result.returncode == 4 and len(result.stderr.strip().splitlines()) <= 2
    assert "--warc-text" in result.stderr and "output folder" in result.stderr
    assert not (tmp_path / "c").exists()


def test_text_files_reached_through_a_link_are_not_the_archives(wet, tmp_path):
    """A symbolic link planted as archive/text (or as one of its files) would hand the
    index and verify files from anywhere: neither is read through it."""
    out = tmp_path / "out"
    shutil.copytree(wet["out"], out)
    layout = OutputLayout(out, NAME)
    elsewhere = tmp_path / "elsewhere"
    layout.text_archive.rename(elsewhere)
    layout.text_archive.symlink_to(elsewhere, target_is_directory=True)
    write_cdxj(layout)
    assert '"filename": "text/' not in layout.cdxj.read_text()
    layout.text_archive.unlink()
    layout.text_archive.mkdir()
    for path in elsewhere.iterdir():
        (layout.text_archive / path.name).symlink_to(path)
    write_cdxj(layout)
    assert '"filename": "text/' not in layout.cdxj.read_text()
