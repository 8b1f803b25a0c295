"""Corpus shards: gzip JSONL, byte-reproducible (mtime 0, sorted records), and reading them."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from crawler.corpus.text import repair_value

RECORDS_PER_SHARD = 50_000
SUFFIX = ".jsonl.gz"


def write_shards(records: Iterable[dict[str, Any]], directory: Path, per_shard: int) -> list[Path]:
    """gzip JSONL shards (mtime 0, no file name in the header): byte-reproducible.

    ``records`` may be a generator: one record at a time is in memory here.
    """
    paths: list[Path] = []
    it = iter(records)
    rec = next(it, None)
    n = 0
    while rec is not None or not paths:  # an empty corpus still gets its one empty shard
        path = directory / f"part-{n:05d}.jsonl.gz"
        with (
            open(path, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
        ):
            written = 0
            while rec is not None and written < per_shard:
                try:
                    gz.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
                except orjson.JSONEncodeError:
                    gz.write(orjson.dumps(repair_value(rec), option=orjson.OPT_APPEND_NEWLINE))
                written += 1
                rec = next(it, None)
        paths.append(path)
        n += 1
    return paths


def record_problem(rec: Any) -> str | None:
    """Why a record read back is not one the corpus tools can use as they are (a corpus
    part handed over by someone else), or None. Checks what merging and deduplicating read."""
    from crawler.warc.names import warc_name_problem

    if not isinstance(rec, dict):
        return "not a JSON object"
    for key in ("id", "url"):
        if not isinstance(rec.get(key), str) or not rec[key]:
            return f"no {key}"
    if not isinstance(rec.get("crawl_date"), str | None):
        return "crawl_date is not text"
    if not isinstance(rec.get("text"), str | None):
        return "text is not text"
    flags = rec.get("quality_flags")
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        return "quality_flags is not a list of text"
    warc = rec.get("warc")
    if warc is not None:
        if not isinstance(warc, dict):
            return "warc is not an object"
        if not isinstance(warc.get("payload_digest"), str | None):
            return "warc.payload_digest is not text"
        name = warc.get("filename")
        if name is not None and (not isinstance(name, str) or warc_name_problem(name)):
            return "warc.filename is not a WARC file name"
    hashes = rec.get("hashes")
    if not isinstance(hashes, dict):
        return "no hashes"
    simhash = hashes.get("simhash")
    if not (isinstance(simhash, str) and 0 < len(simhash) <= 16 and _is_hex(simhash)):
        return "hashes.simhash is not 64 bits of hex"
    if rec["text"] and not isinstance(hashes.get("text_sha256"), str):
        return "hashes.text_sha256 is not text"
    return None


def _is_hex(text: str) -> bool:
    return text.isascii() and all(c in "0123456789abcdefABCDEF" for c in text)


def _shards_below(folder: Path, depth: int) -> list[Path]:
    """``part-*.jsonl.gz`` files in ``folder`` and ``depth`` levels of folders below it;
    symbolic links are neither followed nor read (a link could list a corpus twice, or
    point outside the folder)."""
    found: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        if entry.is_symlink():
            continue
        if entry.is_file() and entry.name.startswith("part-") and entry.name.endswith(SUFFIX):
            found.append(Path(entry.path))
        elif depth and entry.is_dir():
            found += _shards_below(Path(entry.path), depth - 1)
    return found


def corpus_shards(directory: str | os.PathLike[str]) -> list[Path]:
    """The shards of the corpus in ``directory``: ``corpus/part-*`` (``extract``),
    ``corpus/run-NNNNN/part-*`` (a crawl's runs), or ``part-*`` (a corpus folder itself)."""
    base = Path(directory)
    if Path(base, "corpus").is_symlink():
        return []
    return sorted(_shards_below(base / "corpus", 1)) or sorted(_shards_below(base, 0))


def iter_corpus(directory: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The records of the corpus in ``directory`` (:func:`corpus_shards`), one at a time."""
    for shard in corpus_shards(directory):
        with gzip.open(shard, "rb") as fh:
            yield from (orjson.loads(line) for line in fh if line.strip())


def read_corpus(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of the corpus in ``directory`` (:func:`corpus_shards`)."""
    return list(iter_corpus(directory))
