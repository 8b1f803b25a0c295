"""The corpus of a merge: one record per (url, payload digest) from the workers' shards.

The workers' corpus parts are untrusted input: a line that is not JSON, too long, or not
what the tool writes is named and skipped, the others merged.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from crawler.cluster.intake import Intake, Worker
from crawler.layout import OutputLayout
from crawler.untrusted import shown
from crawler.urls import canonical_url

CHUNK = 1 << 20
MAX_RECORD_LINE = 1 << 27  # a corpus record holds at most a page's text (64 MB of page)


def merge_corpora(intake: Intake, target: Path, skip: Callable[[str], None]) -> int:
    """One corpus from the workers' corpus parts: a record per (url, payload digest), the
    first capture's; index-only records only for articles no worker fetched the page of.
    A record that is not what the tool writes is named to ``skip`` and left out; a
    record's ``warc.filename`` follows its file's name in the merged archive."""
    from crawler.corpus.dedup import NEAR_DUP_DISTANCE, annotate_duplicates
    from crawler.corpus.shards import RECORDS_PER_SHARD, record_problem, write_shards

    pages: dict[tuple[str, str], dict] = {}
    index_only: dict[str, dict] = {}
    for worker in intake.workers:
        names = {s.name: s.target for s in worker.sources if s.target}
        for where, rec in _corpus_records(intake, worker, skip):
            problem = record_problem(rec)
            if problem is not None:
                skip(f"{where}: {problem}")
                continue
            try:
                url = canonical_url(rec["url"])
            except ValueError:  # UnicodeError included
                skip(f"{where}: url is not a URL")
                continue
            warc = rec.get("warc")
            if warc and warc.get("filename") in names:
                rec["warc"] = warc | {"filename": names[warc["filename"]]}
            rec["dup"] = None
            if "from_index_only" in rec["quality_flags"]:
                if url not in index_only or rec["id"] < index_only[url]["id"]:
                    index_only[url] = rec
                continue
            key = (url, (rec.get("warc") or {}).get("payload_digest") or rec["id"])
            if key not in pages or (rec["crawl_date"] or "", rec["id"]) < (
                pages[key]["crawl_date"] or "",
                pages[key]["id"],
            ):
                pages[key] = rec
    fetched = {url for url, _ in pages}
    records = list(pages.values()) + [r for u, r in index_only.items() if u not in fetched]
    records.sort(key=lambda r: (r["url"], r["id"]))
    annotate_duplicates(records, NEAR_DUP_DISTANCE)
    folder = OutputLayout(target).corpus
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.jsonl.gz"):
        old.unlink()
    write_shards(records, folder, RECORDS_PER_SHARD)
    return len(records)


def _corpus_records(
    intake: Intake, worker: Worker, skip: Callable[[str], None]
) -> Iterator[tuple[str, Any]]:
    """("<shard> line N", parsed JSON) of every line of the worker's corpus shards; a line
    that is not JSON, too long, or a shard that stops reading is named to ``skip``."""
    for path, fh in intake.corpus_shards(worker):
        number = 0
        try:
            with gzip.GzipFile(fileobj=fh, mode="rb") as lines:
                while line := lines.readline(MAX_RECORD_LINE + 1):
                    number += 1
                    where = f"{shown(path)} line {number}"
                    if not line.endswith(b"\n") and len(line) > MAX_RECORD_LINE:
                        while line and not line.endswith(b"\n"):  # the rest of it, unread
                            line = lines.readline(CHUNK)
                        skip(f"{where}: longer than {MAX_RECORD_LINE} bytes")
                        continue
                    if not line.strip():
                        continue
                    try:
                        yield where, orjson.loads(line)
                    except orjson.JSONDecodeError:
                        skip(f"{where}: not JSON")
        except (OSError, EOFError, zlib.error) as exc:
            skip(f"{shown(path)}: unreadable after line {number} ({exc})")
