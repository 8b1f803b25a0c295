"""The corpus of a real crawl: per article against the farm, and equal to the offline pass."""

from __future__ import annotations

import gzip
import zlib

from conftest import default_context, run_cli
from rapidfuzz import fuzz

from crawler.corpus.shards import read_corpus
from crawler.urls import canonical_url
from crawler.warc.reader import read_record_at

CODE_MARKERS = ("<script", "&lt;script", "document.write", "<style", "function(")


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
                assert not any(m in record[field] for m in CODE_MARKERS), record["url"]
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
