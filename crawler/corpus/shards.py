"""Corpus shards: gzip JSONL, byte-reproducible (mtime 0, sorted records), and reading them."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from crawler.corpus.text import repair_value

RECORDS_PER_SHARD = 50_000


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


def read_corpus(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of ``<directory>/corpus/[run-*/]part-*.jsonl.gz`` (or of ``directory``)."""
    base = Path(directory)
    shards = sorted(base.glob("corpus/**/part-*.jsonl.gz")) or sorted(base.glob("part-*.jsonl.gz"))
    out: list[dict[str, Any]] = []
    for shard in shards:
        with gzip.open(shard, "rb") as fh:
            out.extend(orjson.loads(line) for line in fh if line.strip())
    return out
