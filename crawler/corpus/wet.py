"""The research corpus as WARC ``conversion`` records, as Common Crawl's WET files hold the
text of its WARC files: tools that read WET read our text, and every text stays tied to
the capture it was read from.

One ``conversion`` record per corpus record (``extract --warc-text``): its text as
``text/plain; charset=utf-8``, ``WARC-Target-URI`` the page the text was read from,
``WARC-Date`` the capture's, ``WARC-Refers-To`` the capture's ``response`` record. They go
into their own WARC files in the collection's ``archive/text/`` (:data:`TEXT_DIR`),
written by warcio through the crawl's own :class:`~crawler.warc.writer.RollingWarcWriter`,
and into the collection's CDXJ index under ``text/<file>``, a path relative to
``archive/`` as pywb reads it. The set is rewritten whole: a new one is written beside the
old and takes its place only once complete. ``verify`` checks that each record refers to a
response the archive holds, with the same target and date.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import orjson
from warcio.recordloader import ArcWarcRecord

import crawler
from crawler.corpus.output import new_folder, put_in_place, remove_path
from crawler.layout import TEXT_NEW_PREFIX, TEXT_OLD_PREFIX, OutputLayout
from crawler.warc.writer import RollingWarcWriter, make_record_builder

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; charset=utf-8"


def text_warcinfo(name: str) -> dict[str, str]:
    """What each text WARC file says about itself (its ``warcinfo`` record)."""
    return {
        "software": f"autoblog-archive/{crawler.__version__} (trafilatura, warcio)",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "isPartOf": name,
        "description": "Text of the research corpus, one conversion record per article "
        "record (WET): WARC-Refers-To names the response record the text was read from",
    }


def conversion_record(record: dict[str, Any]) -> ArcWarcRecord | None:
    """The ``conversion`` record of one corpus record (None if it names no capture)."""
    warc = record.get("warc")
    text = record.get("text")
    if not isinstance(warc, dict) or not isinstance(text, str):
        return None
    refers_to, uri = warc.get("record_id"), warc.get("target_uri") or record.get("url")
    date = record.get("crawl_date")
    if not all(isinstance(v, str) and v for v in (refers_to, uri, date)):
        return None
    payload = text.encode("utf-8")
    converted = make_record_builder().create_warc_record(
        uri, "conversion", payload=BytesIO(payload), length=len(payload),
        warc_content_type=CONTENT_TYPE,
    )  # fmt: skip
    converted.rec_headers.replace_header("WARC-Date", date)
    converted.rec_headers.add_header("WARC-Refers-To", refers_to)
    return converted


def read_records(shards: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """The records of corpus shards, one at a time (a corpus is never held whole)."""
    for shard in shards:
        with gzip.open(shard, "rb") as fh:
            for line in fh:
                if line.strip():
                    yield orjson.loads(line)


class TextWriter:
    """Conversion records into a new set of text WARC files of one collection, written
    beside the old set; :meth:`finish` puts it in place whole and indexes it."""

    def __init__(self, layout: OutputLayout, max_size: int) -> None:
        self.layout = layout
        self.records = 0
        self.new = new_folder(layout.archive, TEXT_NEW_PREFIX)
        info = text_warcinfo(layout.name)
        self.writer = RollingWarcWriter(self.new, f"{layout.name}-text", info, max_size)

    def write(self, record: dict[str, Any]) -> bool:
        """Write a corpus record as a conversion record; False when it has no text to convert."""
        converted = conversion_record(record)
        if converted is None:
            return False
        self.writer.write_group([converted])
        self.records += 1
        return True

    def finish(self) -> list[Path]:
        """Close the last file, put the new set in place of the old one, index it."""
        from crawler.warc.cdxj import write_cdxj

        self.writer.close()
        put_in_place(self.new, self.layout.text_archive, TEXT_OLD_PREFIX)
        write_cdxj(self.layout)
        return [self.layout.text_archive / p.name for p in self.writer.closed_files]

    def abandon(self) -> None:
        """Leave the text files and the index as they were."""
        remove_path(self.new)


def remove_text_leftovers(layout: OutputLayout) -> None:
    """What a killed ``extract --warc-text`` left in the archive folder (under its lock)."""
    if not layout.archive.is_dir():
        return
    for entry in os.scandir(layout.archive):
        if entry.name.startswith((TEXT_NEW_PREFIX, TEXT_OLD_PREFIX)):
            remove_path(Path(entry.path))


def write_corpus_text(
    shards: Iterable[Path], layouts: dict[str, OutputLayout], max_size: int
) -> dict[str, Any]:
    """Every record of ``shards`` as a conversion record, into the text WARC files of the
    collection that holds its capture (``layouts``: WARC file name -> its collection).
    A record whose capture is in none of them is counted under ``unplaced``; files roll
    over at ``max_size`` bytes (``WARC_MAX_SIZE``)."""
    writers: dict[Path, TextWriter] = {}
    try:
        for layout in layouts.values():
            if layout.collection not in writers:
                remove_text_leftovers(layout)
                writers[layout.collection] = TextWriter(layout, max_size)
        unplaced = 0
        for record in read_records(shards):
            name = (record.get("warc") or {}).get("filename")
            target = layouts.get(name) if isinstance(name, str) else None
            if target is None or not writers[target.collection].write(record):
                unplaced += 1
    except BaseException:
        for writer in writers.values():
            writer.abandon()
        raise
    files = [path for writer in writers.values() for path in writer.finish()]
    return {
        "records": sum(w.records for w in writers.values()),
        "files": [str(p) for p in files],
        "unplaced": unplaced,
    }
