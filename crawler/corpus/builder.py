"""Corpus building: captured pages in, deterministic gzip JSONL shards out.

:class:`CorpusBuilder` is shared by the crawl-time pipeline and the offline ``extract``
command, so both write the same corpus from the same captures. ``add_page`` only queues
work (:mod:`crawler.corpus.pool`). Results are spooled to a temporary file (only a small
index stays in memory) and the corpus is written at :meth:`CorpusBuilder.close`, where
the whole picture is known: which articles were only ever seen on index pages, exact
and near duplicates, and a deterministic order (url, then id) so shards are
byte-identical across runs.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import threading
from collections import defaultdict
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from crawler.corpus.dates import utc_iso
from crawler.corpus.dedup import NEAR_DUP_DISTANCE, Annotator
from crawler.corpus.entries import Entry, EntryTable
from crawler.corpus.extraction import EXTRACTION_INFO, reuse_parse, text_fields
from crawler.corpus.pool import ExtractionPool
from crawler.corpus.shards import RECORDS_PER_SHARD, write_shards
from crawler.corpus.text import charset_from_content_type, header_value, is_html, repair_value
from crawler.parsing import ParsedPage
from crawler.urls import canonical_url

if TYPE_CHECKING:
    from crawler.context import CorpusOptions

logger = logging.getLogger(__name__)


@dataclass
class _Meta:
    url: str
    warc: dict[str, Any] | None
    crawl_date: str | None
    http_status: int


POINTER_KEYS = ("filename", "record_id", "offset", "length", "payload_digest", "http_status")


def _ordered_pointer(pointer: Mapping[str, Any]) -> dict[str, Any]:
    """The same key order whoever made the pointer, so shards are byte-identical."""
    ordered = {k: pointer[k] for k in POINTER_KEYS if k in pointer}
    return ordered | {k: v for k, v in pointer.items() if k not in ordered}


@dataclass
class CorpusStats:
    """Counts of a corpus build: pages read and skipped, records by kind."""

    pages: int = 0
    pages_skipped: int = 0
    permalink_records: int = 0
    index_only_records: int = 0
    failures: int = 0
    first_failure: str | None = None  # why the first page failed extraction
    extra: dict[str, int] = field(default_factory=dict)


class CorpusBuilder:
    """Collects captured pages, writes ``<output_dir>/corpus/part-NNNNN.jsonl.gz`` at close.

    Usable from a Scrapy item pipeline (``add_page`` is cheap: it queues the page for the
    worker processes and returns) and from :func:`crawler.corpus.from_warcs.extract_warcs`.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        options: CorpusOptions,
        read_limit: int,
        records_per_shard: int = RECORDS_PER_SHARD,
        near_dup_distance: int = NEAR_DUP_DISTANCE,
        corpus_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        # A scheduled crawl gives each run its own folder: earlier shards stay untouched.
        self.corpus_dir = Path(corpus_dir) if corpus_dir else self.output_dir / "corpus"
        self.records_per_shard = records_per_shard
        self.near_dup_distance = near_dup_distance
        self.read_limit = read_limit  # of a page the workers read from a WARC (DOWNLOAD_MAXSIZE)
        self.pool = ExtractionPool(self._on_result, options)
        self.corpus_dir.mkdir(parents=True, exist_ok=True)
        self._spool = tempfile.TemporaryFile(prefix="corpus-spool-", dir=self.corpus_dir)
        self._lock = threading.Lock()
        self._meta: dict[int, _Meta | int] = {}
        self._block_text: dict[int, dict[str, Any] | None] = {}
        self._entries = EntryTable()
        self._problems: dict[str, set[str]] = defaultdict(set)  # permalink key -> flags
        self._skipped: list[dict[str, Any]] = []
        self._next_id = 0
        self._closed = False
        self.stats = CorpusStats()
        # The first failure to store a result (a full disk): the corpus cannot be whole,
        # so later results are dropped and close() raises it; never once per page.
        self.write_error: OSError | sqlite3.Error | None = None

    # -- input
    def add_page(
        self,
        url: str,
        body: bytes | None = None,
        headers: Any = None,
        encoding: str | None = None,
        http_status: int = 200,
        warc_pointer: Mapping[str, Any] | None = None,
        crawl_date: datetime | str | None = None,
        warc_path: str | os.PathLike[str] | None = None,
        parsed: ParsedPage | None = None,
        text: str | None = None,
    ) -> bool:
        """Queue one captured page; returns False when it is not an HTML 200/404 page.

        ``body`` is the payload after Content-Encoding decoding (Scrapy's ``response.body``);
        ``headers`` (the HTTP response headers) give the declared charset, ``encoding``
        overrides it. Give either ``body`` or ``warc_path`` (the worker then reads the record
        at ``warc_pointer['offset']``). ``crawl_date`` should be the record's WARC-Date so
        that crawl-time and offline corpora match. ``parsed`` and ``text``: the spider's
        parse of the page and the text it parsed; the workers get that parse instead of the
        body when it is the one they would make (:func:`~crawler.corpus.extraction.reuse_parse`).
        """
        if self._closed:
            raise RuntimeError("CorpusBuilder is closed")
        content_type = header_value(headers, "Content-Type")
        if http_status not in (200, 404) or not is_html(content_type):
            self.stats.pages_skipped += 1
            return False
        charset = encoding or charset_from_content_type(content_type)
        pointer = _ordered_pointer(warc_pointer) if warc_pointer else None
        if pointer is not None:
            pointer.setdefault("http_status", http_status)
            # For records built from an index page, this is that page, not the record's url.
            pointer.setdefault("target_uri", url)
        payload: dict[str, Any] = {"url": url, "charset": charset, "http_status": http_status}
        if warc_path is not None:
            if pointer is None:
                raise ValueError("warc_path needs warc_pointer (offset, length)")
            payload.update(warc_path=str(warc_path), offset=pointer["offset"])
            payload.update(length=pointer["length"], read_limit=self.read_limit)
        else:
            body = bytes(body or b"")
            facts = None
            if parsed is not None and text is not None:
                facts = reuse_parse(body, url, charset, text, parsed)
            if facts is not None:
                payload["facts"] = facts
                self.stats.extra["parses_reused"] = self.stats.extra.get("parses_reused", 0) + 1
            else:
                payload["body"] = body
        with self._lock:
            task_id = self._next_id
            self._next_id += 1
            self._meta[task_id] = _Meta(url, pointer, utc_iso(crawl_date), http_status)
            self.stats.pages += 1
        self.pool.submit(task_id, payload)
        return True

    # -- results (dispatcher thread)
    def _on_result(self, task_id: int, ok: bool, value: Any) -> None:
        with self._lock:
            meta = self._meta.pop(task_id)
            if self.write_error is not None:
                return
            try:
                self._take_result(meta, ok, value)
            except (OSError, sqlite3.Error) as exc:
                self.write_error = exc

    def _take_result(self, meta: _Meta | int, ok: bool, value: Any) -> None:
        """Spool the records of one result (the caller holds the lock)."""
        if isinstance(meta, int):  # deferred text of index block ``meta``
            self._block_text[meta] = value if ok else None
            if not ok:
                logger.warning("corpus: index block text failed (%s)", value)
            return
        key = canonical_url(meta.url)
        if not ok:
            self.stats.failures += 1
            self.stats.first_failure = self.stats.first_failure or str(value)
            reason = "extraction_timeout" if value == "timeout" else "extraction_failed"
            self._problems[key].add(f"permalink_{reason}")
            logger.warning("corpus: skipped %s (%s: %s)", meta.url, reason, value)
            self._skipped.append(
                {"url": meta.url, "reason": reason, "detail": str(value), "warc": meta.warc}
            )
            return
        page = value
        if page["http_status"] == 404 or page["kind"] == "not_found":
            self._problems[key].add("permalink_404")
        elif "empty_page" in page["flags"]:
            self._problems[key].add("permalink_empty_page")
        elif not page["articles"]:
            # e.g. an article titled "2024": its permalink ?2024 serves page 2024
            self._problems[key].add(f"permalink_{page['kind']}_page")
        for art in page["articles"]:
            record = self._record(meta, page, art)
            kind = "permalink" if art["from_permalink"] else "index"
            art_key = key if kind == "permalink" else art["permalink"] or record["url"]
            order = (meta.url, (meta.warc or {}).get("record_id", ""), art["fragment"])
            entry = Entry(kind, art_key, order, 0, 0)
            if kind == "permalink":  # an index sighting's text comes later, if ever
                entry.describe(record)
            self._store(entry, record)
            self._entries.add(entry)

    def _store(self, entry: Entry, record: dict[str, Any]) -> None:
        """Append ``record`` to the spool; ``entry`` points at it."""
        data = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        self._spool.seek(0, os.SEEK_END)
        entry.offset, entry.length = self._spool.tell(), len(data)
        self._spool.write(data)

    @staticmethod
    def _record(meta: _Meta, page: dict[str, Any], art: dict[str, Any]) -> dict[str, Any]:
        warc = meta.warc
        rid = (warc or {}).get("record_id") or ""
        base = rid.strip("<>") if rid else "url:" + canonical_url(meta.url)
        flags = set(art["quality_flags"])
        flags.discard("from_index")
        record: dict[str, Any] = {
            "id": f"{base}#{art['fragment']}",
            "url": art["url"] if not art["from_permalink"] else meta.url,
            "source_url": art["source_url"],
            "title": art["title"],
            "date": art["date"],
            "date_raw": art["date_raw"],
            "crawl_date": meta.crawl_date,
            "lang": art["lang"],
            "text": art["text"],
            "n_words": art["n_words"],
            "site": page["site"],
            "warc": warc,
            "extraction": {
                **EXTRACTION_INFO,
                "lang_id": "py3langid (norm_probs=True)",
                "lang_score": art["lang_score"],
            },
            "hashes": art["hashes"],
            "dup": None,
            "quality_flags": sorted(flags),
        }
        if art.get("check"):
            record["extraction"]["self_check"] = art["check"]
        if "content_html" in art:
            record["_content_html"] = art["content_html"]
        return repair_value(record)

    # -- output
    def close(self, archived_before: Container[str] = ()) -> list[Path]:
        """Wait for the workers, decide index-only records and duplicates, write shards.

        ``archived_before``: permalinks an earlier run already has records for; seen
        again on an index page, they are not new articles and get no index-only record.
        """
        if self._closed:
            return sorted(self.corpus_dir.glob("part-*.jsonl.gz"))
        self.pool.join()
        self._closed = True
        if self.write_error is not None:
            self._entries.close()
            self._spool.close()
            raise self.write_error
        chosen = self._entries.index_only(archived_before)
        self._fill_deferred_text(chosen)
        for tie, (key, e) in enumerate(chosen.items()):
            rec = self._load(e)
            flags = set(rec["quality_flags"]) | {"from_index_only"} | self._problems.get(key, set())
            if not self._problems.get(key):
                flags.add("permalink_not_captured")
            rec["quality_flags"] = sorted(flags)
            e.describe(rec)
            self._store(e, rec)
            self._entries.choose(e, tie)
        # Records stay in the spool; only their entries (no text) are sorted and annotated,
        # then each record is read back once, in order, on its way into a shard.
        n_records = self._entries.count()
        self.stats.permalink_records = n_records - len(chosen)
        self.stats.index_only_records = len(chosen)
        annotate = Annotator(self._entries.duplicate_groups(self.near_dup_distance))
        for old in self.corpus_dir.glob("part-*.jsonl.gz"):
            old.unlink()

        def records() -> Iterator[dict[str, Any]]:
            for i, (offset, length) in enumerate(self._entries.final_order()):
                rec = self._load_at(offset, length)
                sha = rec["hashes"]["text_sha256"] if rec["text"] else None
                rec["dup"] = annotate(i, rec["id"], sha)
                yield rec

        paths = write_shards(records(), self.corpus_dir, self.records_per_shard)
        self._entries.close()
        self._spool.close()
        self._write_side_files(n_records)
        logger.info(
            "corpus: %d records (%d from index only), %d pages skipped by extraction",
            n_records,
            len(chosen),
            len(self._skipped),
        )
        return paths

    def _fill_deferred_text(self, chosen: dict[str, Entry]) -> None:
        """Extract, in the workers, the text of the index blocks that become records."""
        jobs: dict[int, str] = {}
        for n, (key, e) in enumerate(sorted(chosen.items())):
            html = self._load(e).get("_content_html")
            if html is None:
                continue
            with self._lock:
                task_id = self._next_id
                self._next_id += 1
                self._meta[task_id] = n
            jobs[n] = key
            self.pool.submit(task_id, {"block_html": html})
        if jobs:
            self.pool.join()
        for n, key in jobs.items():
            e = chosen[key]
            rec = self._load(e)
            fields = self._block_text.pop(n, None)
            if fields is None:
                fields = text_fields(None)
                fields["text_flags"] = ["extraction_failed"]
            rec.pop("_content_html", None)
            rec["text"], rec["n_words"], rec["lang"] = (
                fields["text"],
                fields["n_words"],
                fields["lang"],
            )
            rec["hashes"] = fields["hashes"]
            rec["extraction"]["lang_score"] = fields["lang_score"]
            if fields.get("check"):
                rec["extraction"]["self_check"] = fields["check"]
            rec["quality_flags"] = sorted(set(rec["quality_flags"]) | set(fields["text_flags"]))
            self._store(e, rec)

    def _load(self, e: Entry) -> dict[str, Any]:
        return self._load_at(e.offset, e.length)

    def _load_at(self, offset: int, length: int) -> dict[str, Any]:
        self._spool.seek(offset)
        return orjson.loads(self._spool.read(length))

    def _write_side_files(self, n_records: int) -> None:
        skipped = sorted(self._skipped, key=lambda s: (s["url"], str(s["warc"])))
        with open(self.corpus_dir / "skipped.jsonl", "wb") as fh:
            for s in skipped:
                fh.write(orjson.dumps(s, option=orjson.OPT_APPEND_NEWLINE))
        summary = {
            "records": n_records,
            "permalink_records": self.stats.permalink_records,
            "index_only_records": self.stats.index_only_records,
            "skipped_pages": len(skipped),
            "extraction": EXTRACTION_INFO,
        }
        (self.corpus_dir / "summary.json").write_bytes(
            orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        )

    def __enter__(self) -> CorpusBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
