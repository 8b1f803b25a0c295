"""Corpus building: captured pages in, deterministic gzip JSONL shards out.

:class:`CorpusBuilder` is shared by the crawl-time pipeline and the offline ``extract``
command, so both write the same corpus from the same captures. Why it looks like this:

- trafilatura is CPU bound, not thread-safe, has no timeout and grows in memory, so
  extraction runs in worker processes (:class:`ExtractionPool`, on pebble's process pool):
  one document at a time per worker, killed and replaced past a time limit, recycled after
  N documents. ``add_page``
  only queues work and returns, so a Scrapy reactor thread never waits on extraction.
- Results are spooled to a temporary file (only a small index stays in memory) and the
  corpus is written at :meth:`CorpusBuilder.close`, where the whole picture is known:
  which articles were only ever seen on index pages, exact and near duplicates, and a
  deterministic order (url, then id) so shards are byte-identical across runs.
"""

from __future__ import annotations

import functools
import gzip
import logging
import multiprocessing as mp
import os
import queue
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pebble

from crawler.dates import utc_iso
from crawler.extraction import (
    EXTRACTION_INFO,
    canonical_url,
    charset_from_content_type,
    extract_page,
    hamming,
    repair_surrogates,
    text_fields,
)

logger = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_TASKS = 500
RECORDS_PER_SHARD = 50_000
NEAR_DUP_DISTANCE = 3  # SimHash bits; 4 blocks of 16 bits make this exact (pigeonhole)
HTML_TYPES = ("text/html", "application/xhtml+xml")


# ---------------------------------------------------------------- worker side


def _read_warc_response(path: str, offset: int, length: int) -> dict[str, Any]:
    """One response record (one gzip member) -> decoded body + the headers extraction needs."""
    from crawler.warc.reader import READ_LIMIT, read_record_at

    record = read_record_at(path, offset)
    if not record.complete:
        # A compressed bomb or a giant page: never inflated whole, so never extracted.
        raise ValueError(f"stored body larger than {READ_LIMIT} bytes, not extracted")
    body = record.payload
    # A broken Content-Encoding: the raw bytes are kept, flagged.
    flags: list[str] = [] if record.decoded else ["content_decoding_error"]
    http = record.http_headers
    return {
        "body": body,
        "charset": charset_from_content_type(http.get_header("Content-Type") if http else None),
        "flags": flags,
    }


def process_task(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one extraction task (in a worker process, or inline for debugging)."""
    if payload.get("debug_sleep"):
        time.sleep(payload["debug_sleep"])  # test hook: simulates a hanging extraction
    if "block_html" in payload:  # deferred text of an index block (see CorpusBuilder.close)
        return text_fields(payload["block_html"])
    extra: list[str] = []
    if "warc_path" in payload:
        got = _read_warc_response(payload["warc_path"], payload["offset"], payload["length"])
        body, charset, extra = got["body"], got["charset"], got["flags"]
    else:
        body, charset = payload["body"], payload.get("charset")
    result = extract_page(
        body, payload["url"], charset, payload.get("http_status", 200), index_text=False
    )
    if extra:
        result["flags"] += extra
        for art in result["articles"]:
            art["quality_flags"] = sorted(set(art["quality_flags"]) | set(extra))
    return result


def _run_task(payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The function the workers run: the result, and which worker made it (for stats)."""
    return os.getpid(), process_task(payload)


# ---------------------------------------------------------------- pool


def worker_context() -> mp.context.BaseContext:
    """forkserver: safe next to threads (the reactor's, the pool's), cheap respawns after a
    kill or a recycling; the server preloads the extraction modules and the language model
    (:mod:`crawler.extraction_preload`) once, so a new worker starts warm."""
    try:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["crawler.extraction_preload"])
        return ctx
    except ValueError:
        return mp.get_context("spawn")


class ExtractionPool:
    """Worker processes with a per-document time limit and recycling (pebble's ProcessPool).

    ``submit`` never blocks (a feeder thread starts the pool and hands tasks to it); results
    (or failures) go to ``on_result(task_id, ok, value)`` from the pool's own thread.
    ``value`` is the result dict, or a reason string (``timeout``, ``worker_died``,
    ``ExceptionName: message``). A document's time limit
    counts from when a worker takes it, so a worker still starting on a busy machine is not
    killed for its start-up time. Workers ignore SIGINT (Ctrl-C reaches the whole process
    group: the crawl decides when they stop) and leave quietly when the crawl is gone.
    """

    def __init__(
        self,
        on_result: Callable[[int, bool, Any], None],
        workers: int = DEFAULT_WORKERS,
        timeout: float = DEFAULT_TIMEOUT,
        max_tasks_per_worker: int = DEFAULT_MAX_TASKS,
    ) -> None:
        self.on_result = on_result
        self.n_workers = max(1, workers)
        self.timeout = timeout
        self.max_tasks = max(1, max_tasks_per_worker)
        self._queue: queue.SimpleQueue[tuple[int, dict[str, Any]] | None] = queue.SimpleQueue()
        self._feeder: threading.Thread | None = None
        self._pending = 0
        self._cond = threading.Condition()
        self._done_by: Counter[int] = Counter()  # worker pid -> documents done
        self.stats = {"timeouts": 0, "crashes": 0, "errors": 0, "recycled": 0, "spawned": 0}

    def submit(self, task_id: int, payload: dict[str, Any]) -> None:
        with self._cond:
            self._pending += 1
            if self._feeder is None:
                self._feeder = threading.Thread(
                    target=self._feed, name="extraction-feeder", daemon=True
                )
                self._feeder.start()
        self._queue.put((task_id, payload))

    @property
    def pending(self) -> int:
        return self._pending

    def join(self) -> None:
        """Wait until every submitted task has a result, then stop the workers."""
        with self._cond:
            while self._pending:
                self._cond.wait(0.5)
            feeder, self._feeder = self._feeder, None
        if feeder is not None:
            self._queue.put(None)
            feeder.join()

    def _feed(self) -> None:
        """Hand the tasks to pebble, in this thread: starting the pool waits for the fork
        server to load the extraction modules, and payloads are pickled here, never on
        the caller's (the Scrapy reactor's) thread."""
        pool: pebble.ProcessPool | None = None
        try:
            while (item := self._queue.get()) is not None:
                task_id, payload = item
                try:
                    if pool is None:  # started on the first page: no idle workers before
                        pool = pebble.ProcessPool(
                            max_workers=self.n_workers,
                            max_tasks=self.max_tasks,
                            context=worker_context(),
                        )
                    future = pool.schedule(_run_task, (payload,), timeout=self.timeout)
                except Exception as exc:  # noqa: BLE001 - a broken pool: fail, never hang
                    logger.warning("corpus: extraction task %s not scheduled (%r)", task_id, exc)
                    self.stats["errors"] += 1
                    self._finish(task_id, False, f"{type(exc).__name__}: {exc}")
                    continue
                future.add_done_callback(functools.partial(self._done, task_id))
        finally:
            if pool is not None:
                pool.close()
                pool.join()

    def _done(self, task_id: int, future: Any) -> None:
        """A task's future settled (in the pool's thread): count it, hand it on."""
        try:
            pid, value = future.result()
            ok = True
            with self._cond:
                self._done_by[pid] += 1
                if self._done_by[pid] == 1:
                    self.stats["spawned"] += 1
                if self._done_by[pid] == self.max_tasks:
                    self.stats["recycled"] += 1
        except TimeoutError:
            ok, value = False, "timeout"
            self.stats["timeouts"] += 1
            logger.warning(
                "corpus: extraction of task %s exceeded %.1fs; worker killed", task_id, self.timeout
            )
        except pebble.ProcessExpired as exc:
            ok, value = False, "worker_died"
            self.stats["crashes"] += 1
            logger.warning("corpus: extraction worker died on task %s (%s)", task_id, exc)
        except Exception as exc:  # noqa: BLE001 - report, never kill the run
            ok, value = False, f"{type(exc).__name__}: {exc}"
            self.stats["errors"] += 1
        self._finish(task_id, ok, value)

    def _finish(self, task_id: int, ok: bool, value: Any) -> None:
        try:
            self.on_result(task_id, ok, value)
        except Exception:  # noqa: BLE001 - a bad result must not stop the pool
            logger.exception("corpus: result handler failed for task %s", task_id)
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()


# ---------------------------------------------------------------- builder


def _header(headers: Any, name: str) -> str | None:
    """One header value from a Scrapy ``Headers``, a mapping, pairs, or warcio headers."""
    if headers is None:
        return None
    if hasattr(headers, "get_header"):
        return headers.get_header(name)
    items: Iterable[tuple[Any, Any]] = headers.items() if hasattr(headers, "items") else headers
    want = name.lower()
    for key, value in items:
        k = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if k.lower() != want:
            continue
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        return value
    return None


def is_html(content_type: str | None) -> bool:
    """No Content-Type at all is accepted (sniffed later); otherwise (X)HTML only."""
    if not content_type:
        return True
    return content_type.split(";")[0].strip().lower() in HTML_TYPES


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


@dataclass(slots=True)
class _Entry:
    """What the builder keeps in memory per spooled record: where it is, how it sorts,
    and what the duplicate annotation needs (never the text itself)."""

    kind: str  # "permalink" | "index"
    key: str  # canonical permalink
    order: tuple[str, str, int]  # deterministic choice among index sightings
    offset: int
    length: int
    url: str = ""
    id: str = ""
    text_sha256: str | None = None  # None: no text (never grouped)
    simhash: str = ""

    def describe(self, record: Mapping[str, Any]) -> None:
        """Take the sort key and the hashes from the record as it will be written."""
        self.url, self.id = record["url"], record["id"]
        self.text_sha256 = record["hashes"]["text_sha256"] if record["text"] else None
        self.simhash = record["hashes"]["simhash"] if record["text"] else ""


@dataclass
class CorpusStats:
    pages: int = 0
    pages_skipped: int = 0
    permalink_records: int = 0
    index_only_records: int = 0
    failures: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class CorpusBuilder:
    """Collects captured pages, writes ``<output_dir>/corpus/part-NNNNN.jsonl.gz`` at close.

    Usable from a Scrapy item pipeline (``add_page`` is cheap: it queues the page for the
    worker processes and returns) and from :func:`crawler.offline.extract_warcs`.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        workers: int = DEFAULT_WORKERS,
        timeout: float = DEFAULT_TIMEOUT,
        max_tasks_per_worker: int = DEFAULT_MAX_TASKS,
        records_per_shard: int = RECORDS_PER_SHARD,
        near_dup_distance: int = NEAR_DUP_DISTANCE,
        debug_sleep: Mapping[str, float] | None = None,
        corpus_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        # A scheduled crawl gives each run its own folder: earlier shards stay untouched.
        self.corpus_dir = Path(corpus_dir) if corpus_dir else self.output_dir / "corpus"
        self.records_per_shard = records_per_shard
        self.near_dup_distance = near_dup_distance
        self.debug_sleep = dict(debug_sleep or {})
        self.pool = ExtractionPool(self._on_result, workers, timeout, max_tasks_per_worker)
        self.corpus_dir.mkdir(parents=True, exist_ok=True)
        self._spool = tempfile.TemporaryFile(prefix="corpus-spool-", dir=self.corpus_dir)
        self._lock = threading.Lock()
        self._meta: dict[int, _Meta | int] = {}
        self._block_text: dict[int, dict[str, Any] | None] = {}
        self._entries: list[_Entry] = []
        self._problems: dict[str, set[str]] = defaultdict(set)  # permalink key -> flags
        self._skipped: list[dict[str, Any]] = []
        self._next_id = 0
        self._closed = False
        self.stats = CorpusStats()

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
    ) -> bool:
        """Queue one captured page; returns False when it is not an HTML 200/404 page.

        ``body`` is the payload after Content-Encoding decoding (Scrapy's ``response.body``);
        ``headers`` (the HTTP response headers) give the declared charset, ``encoding``
        overrides it. Give either ``body`` or ``warc_path`` (the worker then reads the record
        at ``warc_pointer['offset']``). ``crawl_date`` should be the record's WARC-Date so
        that crawl-time and offline corpora match.
        """
        if self._closed:
            raise RuntimeError("CorpusBuilder is closed")
        content_type = _header(headers, "Content-Type")
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
            payload["length"] = pointer["length"]
        else:
            payload["body"] = bytes(body or b"")
        for marker, seconds in self.debug_sleep.items():
            if marker in url:
                payload["debug_sleep"] = seconds
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
            if isinstance(meta, int):  # deferred text of index block ``meta``
                self._block_text[meta] = value if ok else None
                if not ok:
                    logger.warning("corpus: index block text failed (%s)", value)
                return
            key = canonical_url(meta.url)
            if not ok:
                self.stats.failures += 1
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
                entry = _Entry(kind, art_key, order, 0, 0)
                if kind == "permalink":  # an index sighting's text comes later, if ever
                    entry.describe(record)
                self._store(entry, record)
                self._entries.append(entry)

    def _store(self, entry: _Entry, record: dict[str, Any]) -> None:
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
        return _repair(record)

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
        covered = {e.key for e in self._entries if e.kind == "permalink"}
        covered.update(e.key for e in self._entries if e.key in archived_before)
        chosen: dict[str, _Entry] = {}
        for e in self._entries:
            if e.kind == "index" and e.key not in covered:
                if e.key not in chosen or e.order < chosen[e.key].order:
                    chosen[e.key] = e
        self._fill_deferred_text(chosen)
        for key, e in chosen.items():
            rec = self._load(e)
            flags = set(rec["quality_flags"]) | {"from_index_only"} | self._problems.get(key, set())
            if not self._problems.get(key):
                flags.add("permalink_not_captured")
            rec["quality_flags"] = sorted(flags)
            e.describe(rec)
            self._store(e, rec)
        # Records stay in the spool; only their entries (no text) are sorted and annotated,
        # then each record is read back once, in order, on its way into a shard.
        entries = [e for e in self._entries if e.kind == "permalink"]
        entries += chosen.values()
        self._entries = []
        entries.sort(key=lambda e: (e.url, e.id))
        self.stats.permalink_records = len(entries) - len(chosen)
        self.stats.index_only_records = len(chosen)
        dups = duplicate_annotations(
            [(e.id, e.text_sha256, e.simhash) for e in entries], self.near_dup_distance
        )
        for old in self.corpus_dir.glob("part-*.jsonl.gz"):
            old.unlink()
        records = (self._load(e) | {"dup": dup} for e, dup in zip(entries, dups, strict=True))
        paths = write_shards(records, self.corpus_dir, self.records_per_shard)
        self._spool.close()
        self._write_side_files(len(entries))
        logger.info(
            "corpus: %d records (%d from index only), %d pages skipped by extraction",
            len(entries),
            len(chosen),
            len(self._skipped),
        )
        return paths

    def _fill_deferred_text(self, chosen: dict[str, _Entry]) -> None:
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

    def _load(self, e: _Entry) -> dict[str, Any]:
        self._spool.seek(e.offset)
        return orjson.loads(self._spool.read(e.length))

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


# ---------------------------------------------------------------- helpers


def _repair(value: Any) -> Any:
    """Lone surrogates anywhere in a record are replaced (orjson raises on them)."""
    if isinstance(value, str):
        return repair_surrogates(value)
    if isinstance(value, dict):
        return {k: _repair(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_repair(v) for v in value]
    return value


def annotate_duplicates(
    records: list[dict[str, Any]], max_distance: int = NEAR_DUP_DISTANCE
) -> None:
    """Fill ``dup`` in place: exact groups (same text sha256) and SimHash clusters.

    Records must already be in their final order: the first member of a group is its
    canonical record. Empty texts are never grouped.
    """
    items = [
        (r["id"], r["hashes"]["text_sha256"] if r["text"] else None, r["hashes"]["simhash"])
        for r in records
    ]
    for r, dup in zip(records, duplicate_annotations(items, max_distance), strict=True):
        r["dup"] = dup


def duplicate_annotations(
    items: list[tuple[str, str | None, str]], max_distance: int = NEAR_DUP_DISTANCE
) -> Iterator[dict[str, Any]]:
    """The ``dup`` field of each record, in turn (one at a time: a corpus streams into its
    shards), from ``(id, text sha256 or None when the text is empty, simhash hex)`` in the
    records' final order (see :func:`annotate_duplicates`)."""
    exact: dict[str, list[int]] = defaultdict(list)
    for i, (_, sha, _) in enumerate(items):
        if sha is not None:
            exact[sha].append(i)
    # near duplicates: union-find over distinct simhashes, candidates via 4 x 16-bit blocks
    values: dict[int, list[int]] = defaultdict(list)
    for i, (_, sha, simhash) in enumerate(items):
        if sha is not None:
            values[int(simhash, 16)].append(i)
    distinct = list(values)
    parent = list(range(len(distinct)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    if max_distance > 0:
        blocks = max_distance + 1
        width = 64 // blocks
        for b in range(blocks):
            shift = b * width
            mask = (1 << width) - 1 if b < blocks - 1 else (1 << (64 - shift)) - 1
            buckets: dict[int, list[int]] = defaultdict(list)
            for j, v in enumerate(distinct):
                buckets[(v >> shift) & mask].append(j)
            for members in buckets.values():
                for a_i in range(len(members)):
                    for b_i in range(a_i + 1, len(members)):
                        a, c = members[a_i], members[b_i]
                        if find(a) != find(c) and hamming(distinct[a], distinct[c]) <= max_distance:
                            parent[find(a)] = find(c)
    clusters: dict[int, list[int]] = defaultdict(list)
    for j, v in enumerate(distinct):
        clusters[find(j)].extend(values[v])
    cluster_of: dict[int, list[int]] = {}
    for members in clusters.values():
        members.sort()
        for i in members:
            cluster_of[i] = members
    for i, (_, sha, _) in enumerate(items):
        group = exact.get(sha, []) if sha is not None else []
        near = cluster_of.get(i, [])
        yield {
            "exact_group": sha if len(group) > 1 else None,
            "exact_group_size": len(group) if len(group) > 1 else 1,
            "exact_canonical_id": items[group[0]][0] if len(group) > 1 else None,
            "near_cluster": items[near[0]][0] if len(near) > 1 else None,
            "near_cluster_size": len(near) if len(near) > 1 else 1,
            "is_canonical": not (
                (len(group) > 1 and group[0] != i) or (len(near) > 1 and near[0] != i)
            ),
        }


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
                    gz.write(orjson.dumps(_repair(rec), option=orjson.OPT_APPEND_NEWLINE))
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
