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
