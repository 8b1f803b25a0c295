"""The crawl history: what is archived, where, and since when (``<output>/history.sqlite``).

Scheduled re-crawls need to know, per URL, the last capture (for revisit records and
for "is this page unchanged?") and, per article, whether it is already archived (to
stop walking an autoblog's pages). Scrapy's JOBDIR is neither cross-run nor crash-proof,
so the history lives in an embedded SQLite file: WAL mode, one connection, commits in
batches so a capture costs one ``INSERT`` and no ``fsync``.

The WARCs stay the source of truth. Everything here can be rebuilt from the CDXJ index
and the WARC records (:func:`rebuild_from_indexes`, ``autoblog-archive reindex DIR``),
and rows lost with an uncommitted batch after a crash are re-read from the WARCs
(:meth:`History.reconcile_files`). Runs are tied to their WARC files by two
``warcinfo`` fields (:func:`warcinfo_run_fields`), so a rebuild gets the runs back too.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import re
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from crawler.indexes import OutputLayout, write_cdxj
from crawler.templates import ArticleBlock, ParsedPage, parse_page
from crawler.urls import autoblog_base, canonical_url
from crawler.warcfiles import READ_LIMIT, read_limited, warc_defects

logger = logging.getLogger(__name__)

HISTORY_NAME = "history.sqlite"
SCHEMA_VERSION = 1
# warcinfo fields naming the run a WARC file belongs to (``crawlRun`` is its id here).
RUN_FIELD = "crawlRun"
RUN_STARTED_FIELD = "crawlRunStarted"
RUN_MODE_FIELD = "crawlRunMode"
CAPTURE_TYPES = ("response", "revisit")
# Run statuses: a run left "running" after its process died is a crashed run.
RUNNING, INTERRUPTED, FINISHED, PARTIAL, FAILED = (
    "running",
    "interrupted",
    "finished",
    "partial",
    "failed",
)
RESUMABLE = (RUNNING, INTERRUPTED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    seeds TEXT NOT NULL DEFAULT '[]',
    command TEXT,
    mode TEXT NOT NULL DEFAULT 'full',
    resumed INTEGER NOT NULL DEFAULT 0,
    stats TEXT
);
CREATE TABLE IF NOT EXISTS captures (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    warc_date TEXT NOT NULL,
    status INTEGER,
    payload_digest TEXT,
    normalized_digest TEXT,
    record_type TEXT NOT NULL CHECK (record_type IN ('response', 'revisit')),
    filename TEXT NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    record_id TEXT NOT NULL UNIQUE,
    refers_to TEXT,
    autoblog TEXT,
    bytes_written INTEGER
);
CREATE INDEX IF NOT EXISTS captures_url ON captures (url, warc_date);
CREATE INDEX IF NOT EXISTS captures_run ON captures (run_id);
CREATE INDEX IF NOT EXISTS captures_file ON captures (filename, offset);
CREATE TABLE IF NOT EXISTS articles (
    permalink TEXT PRIMARY KEY,
    autoblog TEXT NOT NULL,
    first_seen_run INTEGER NOT NULL,
    last_seen_run INTEGER NOT NULL,
    normalized_digest TEXT
);
CREATE INDEX IF NOT EXISTS articles_autoblog ON articles (autoblog);
-- One row per article and run in which it was listed or fetched: what makes a report of
-- any run (new / changed / unchanged / gone) exact, not just the latest one.
CREATE TABLE IF NOT EXISTS article_sightings (
    permalink TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    normalized_digest TEXT,
    PRIMARY KEY (permalink, run_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sightings_run ON article_sightings (run_id);
"""

CAPTURE_COLUMNS = (
    "url, run_id, warc_date, status, payload_digest, normalized_digest, record_type, "
    "filename, offset, length, record_id, refers_to, autoblog, bytes_written"
)


# ------------------------------------------------------------------ normalised digests


def _sha1_b32(data: bytes) -> str:
    """The archive's one digest form (what WARC-Payload-Digest uses): ``sha1:BASE32``."""
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def payload_digest(body: bytes) -> str:
    """``WARC-Payload-Digest`` of a body as stored (the form warcio writes), computed
    before writing so the capture can choose between a response and a revisit record."""
    return _sha1_b32(body)


_SPACE = re.compile(r"[ \t\n\r\f\v]+")


def _block_fields(block: ArticleBlock) -> list[object]:
    text = (
        _SPACE.sub(" ", block.content.text_content()).strip() if block.content is not None else ""
    )
    return [block.title, block.permalink, block.date_text, block.source_url, text, block.media]


def article_digest(block: ArticleBlock) -> str:
    """Digest of one article as shown (title, permalink, date, source, text, media).

    An index page and the permalink page show the same block, so both give the same value.
    """
    return _sha1_b32(json.dumps(_block_fields(block), ensure_ascii=False).encode("utf-8"))


def page_digest(page: ParsedPage) -> str | None:
    """Digest of an autoblog page's article blocks; ``None`` for non-autoblog pages.

    The "Mise à jour" block, the search form, the header, footer and pagination are left
    out: they change between two fetches of the same content (see guides/scale.md).
    """
    return page_digests(page)[0]


def page_digests(page: ParsedPage) -> tuple[str | None, list[tuple[str, str]]]:
    """The page digest and (permalink, article digest) of each block, reading each
    block's text once (both are needed for every page a crawl captures)."""
    if page.engine is None or page.kind == "farm":
        return None, []
    blocks = [_block_fields(b) for b in page.articles]
    digest = _sha1_b32(json.dumps([page.kind, blocks], ensure_ascii=False).encode("utf-8"))
    articles = [
        (b.permalink, _sha1_b32(json.dumps(fields, ensure_ascii=False).encode("utf-8")))
        for b, fields in zip(page.articles, blocks, strict=True)
        if b.permalink
    ]
    return digest, articles


def normalized_digest(body: bytes, url: str) -> str | None:
    """Normalised digest of a decoded autoblog HTML body (see :func:`page_digest`)."""
    return page_digest(parse_page(body, url))


def warcinfo_run_fields(run_id: int, started: str, mode: str = "full") -> dict[str, str]:
    """Fields to add to every ``warcinfo`` of a run so a rebuild can regroup files by run
    (and tell full passes from incremental runs, which the report's "gone" rule needs)."""
    return {RUN_FIELD: str(run_id), RUN_STARTED_FIELD: started, RUN_MODE_FIELD: mode}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class Capture:
    """One response or revisit record: what was fetched, and where its record lies."""

    url: str
    run_id: int
    warc_date: str
    status: int | None
    payload_digest: str | None
    normalized_digest: str | None
    record_type: str
    filename: str
    offset: int
    length: int
    record_id: str
    refers_to: str | None = None
    autoblog: str | None = None
    bytes_written: int | None = None


@dataclass(frozen=True)
class Run:
    id: int
    started: str
    finished: str | None
    status: str
    seeds: list[str]
    command: str | None
    mode: str
    resumed: int = 0
    stats: dict = field(default_factory=dict)


def _run_from_row(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"],
        started=row["started"],
        finished=row["finished"],
        status=row["status"],
        seeds=json.loads(row["seeds"] or "[]"),
        command=row["command"],
        mode=row["mode"],
        resumed=row["resumed"],
        stats=json.loads(row["stats"]) if row["stats"] else {},
    )


def revisit_arguments(original: Capture) -> tuple[dict[str, str], dict[str, str]]:
    """(keyword arguments, extra WARC headers) for warcio's ``create_revisit_record``.

    The identical-payload-digest profile: same digest, ``WARC-Refers-To`` the original's
    record id, ``-Target-URI`` and ``-Date`` its URL and date (pywb needs all three).
    """
    assert original.payload_digest, "a revisit needs the original's payload digest"
    kwargs = {
        "digest": original.payload_digest,
        "refers_to_uri": original.url,
        "refers_to_date": original.warc_date,
    }
    return kwargs, {"WARC-Refers-To": original.record_id}


def _capture_from_row(row: sqlite3.Row) -> Capture:
    return Capture(**{k: row[k] for k in row.keys() if k != "id"})


class History:
    """The crawl history of one output folder. Not thread-safe: one connection, one thread."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, batch_size: int, batch_seconds: float
    ) -> None:
        self.conn = conn
        self.path = path
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self._pending = 0
        self._last_commit = time.monotonic()

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], batch_size: int = 500, batch_seconds: float = 2.0
    ) -> History:
        """Open or create the store. ``path`` is the file or the output folder holding it."""
        path = Path(path)
        if path.is_dir() or not path.suffix:
            path = path / HISTORY_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit costs no fsync; a power cut loses at most the last
        # commits, which reconcile_files re-reads from the WARCs.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Only a new file is written to here: `report` may open the history of a running
        # crawl, and WAL lets it read without waiting for the crawl's open batch.
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'captures'").fetchone() is None:
            conn.executescript(SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        conn.execute("BEGIN")
        return cls(conn, path, batch_size, batch_seconds)

    # -- transactions ------------------------------------------------------------

    def commit(self) -> None:
        """Make everything recorded so far durable (done in batches on its own)."""
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")
        self.conn.execute("BEGIN")
        self._pending = 0
        self._last_commit = time.monotonic()

    def _wrote(self) -> None:
        self._pending += 1
        if (
            self._pending >= self.batch_size
            or time.monotonic() - self._last_commit >= self.batch_seconds
        ):
            self.commit()

    def close(self) -> None:
        """Commit and close (closing twice is harmless)."""
        if self.conn is None:
            return
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")
        self.conn.close()
        self.conn = None  # type: ignore[assignment]

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs --------------------------------------------------------------------

    def start_run(
        self,
        seeds: Iterable[str],
        command: str | None = None,
        mode: str = "full",
        resume: bool = True,
        started: str | None = None,
    ) -> int:
        """A new run id, or, with ``resume``, the id of the same seeds' unfinished run.

        Call it while holding the output folder's run lock: a run still "running" is
        then one whose process died, and resuming it keeps one run per scheduled crawl.
        """
        seeds = list(seeds)
        if resume:
            previous = self.resumable_run(seeds)
            if previous is not None:
                self.conn.execute(
                    "UPDATE runs SET status = ?, finished = NULL, resumed = resumed + 1 "
                    "WHERE id = ?",
                    (RUNNING, previous.id),
                )
                self.commit()
                return previous.id
        cur = self.conn.execute(
            "INSERT INTO runs (started, status, seeds, command, mode) VALUES (?, ?, ?, ?, ?)",
            (started or _now(), RUNNING, json.dumps(seeds), command, mode),
        )
        self.commit()
        return int(cur.lastrowid)

    def discard_run(self, run_id: int) -> None:
        """Forget a run that captured nothing, as if it never started."""
        self.conn.execute("DELETE FROM article_sightings WHERE run_id = ?", (run_id,))
        self.conn.execute("DELETE FROM captures WHERE run_id = ?", (run_id,))
        self.conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        self.commit()

    def resumable_run(self, seeds: Iterable[str]) -> Run | None:
        """The latest run, if it did not finish and crawled the same seeds."""
        run = self.latest_run()
        if run is not None and run.status in RESUMABLE and run.seeds == list(seeds):
            return run
        return None

    def finish_run(self, run_id: int, status: str, stats: dict | None = None) -> None:
        """Close a run: ``finished`` / ``partial`` / ``failed``, or ``interrupted`` (Ctrl-C)."""
        self.conn.execute(
            "UPDATE runs SET finished = ?, status = ?, stats = COALESCE(?, stats) WHERE id = ?",
            (_now(), status, json.dumps(stats) if stats is not None else None, run_id),
        )
        self.commit()

    def get_run(self, run_id: int) -> Run | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run_from_row(row) if row else None

    def latest_run(self) -> Run | None:
        row = self.conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return _run_from_row(row) if row else None

    def runs(self) -> list[Run]:
        return [_run_from_row(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY id")]

    def runs_since_full(self) -> int:
        """Finished incremental runs since the last finished full pass (for ``full_every``)."""
        count = 0
        for run in reversed(self.runs()):
            if run.status not in (FINISHED, PARTIAL):
                continue
            if run.mode == "full":
                return count
            count += 1
        return count

    # -- captures ----------------------------------------------------------------

    def record_capture(
        self,
        *,
        url: str,
        run_id: int,
        warc_date: str,
        status: int | None,
        payload_digest: str | None,
        record_type: str,
        filename: str,
        offset: int,
        length: int,
        record_id: str,
        normalized_digest: str | None = None,
        refers_to: str | None = None,
        autoblog: str | None = None,
        bytes_written: int | None = None,
    ) -> None:
        """Note one written response/revisit record (idempotent on ``record_id``)."""
        if record_type not in CAPTURE_TYPES:
            raise ValueError(f"record_type must be response or revisit, not {record_type!r}")
        url = canonical_url(url)
        self.conn.execute(
            f"INSERT OR IGNORE INTO captures ({CAPTURE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                url,
                run_id,
                warc_date,
                status,
                payload_digest,
                normalized_digest,
                record_type,
                filename,
                offset,
                length,
                record_id,
                refers_to,
                autoblog if autoblog is not None else autoblog_base(url),
                bytes_written,
            ),
        )
        self._wrote()

    def set_normalized_digest(self, record_id: str, digest: str | None) -> None:
        """Fill in the normalised digest once the page is parsed (after capture)."""
        self.conn.execute(
            "UPDATE captures SET normalized_digest = ? WHERE record_id = ?", (digest, record_id)
        )
        self._wrote()

    def latest_capture(
        self, url: str, before_run: int | None = None, record_type: str | None = None
    ) -> Capture | None:
        """The newest capture of ``url`` (optionally from runs before ``before_run``)."""
        sql = "SELECT * FROM captures WHERE url = ?"
        params: list[object] = [canonical_url(url)]
        if before_run is not None:
            sql += " AND run_id < ?"
            params.append(before_run)
        if record_type is not None:
            sql += " AND record_type = ?"
            params.append(record_type)
        row = self.conn.execute(
            sql + " ORDER BY warc_date DESC, id DESC LIMIT 1", params
        ).fetchone()
        return _capture_from_row(row) if row else None

    def has_captures_before(self, run_id: int) -> bool:
        row = self.conn.execute("SELECT 1 FROM captures WHERE run_id < ? LIMIT 1", (run_id,))
        return row.fetchone() is not None

    def latest_complete(self, url: str, before_run: int) -> Capture | None:
        """The newest full 200 response of ``url`` before a run (where its validators are)."""
        row = self.conn.execute(
            "SELECT * FROM captures WHERE url = ? AND run_id < ? AND status = 200 "
            "AND record_type = 'response' ORDER BY warc_date DESC, id DESC LIMIT 1",
            (canonical_url(url), before_run),
        ).fetchone()
        return _capture_from_row(row) if row else None

    def find_original(self, url: str, payload_digest: str) -> Capture | None:
        """The newest full ``response`` of ``url`` with this payload: what a revisit refers to.

        Its ``record_id``, ``url`` and ``warc_date`` give ``WARC-Refers-To``,
        ``WARC-Refers-To-Target-URI`` and ``WARC-Refers-To-Date``.
        """
        row = self.conn.execute(
            "SELECT * FROM captures WHERE url = ? AND payload_digest = ? "
            "AND record_type = 'response' ORDER BY warc_date DESC, id DESC LIMIT 1",
            (canonical_url(url), payload_digest),
        ).fetchone()
        return _capture_from_row(row) if row else None

    def captures_in_run(self, run_id: int) -> list[Capture]:
        rows = self.conn.execute(
            "SELECT * FROM captures WHERE run_id = ? ORDER BY id", (run_id,)
        ).fetchall()
        return [_capture_from_row(r) for r in rows]

    def urls_captured_in_run(self, run_id: int) -> set[str]:
        """What a resumed run must not fetch again."""
        rows = self.conn.execute("SELECT DISTINCT url FROM captures WHERE run_id = ?", (run_id,))
        return {r[0] for r in rows}

    def forget_after(self, filename: str, offset: int) -> int:
        """Drop captures that pointed past a cut made by crash recovery; returns how many."""
        cur = self.conn.execute(
            "DELETE FROM captures WHERE filename = ? AND offset >= ?", (filename, offset)
        )
        self.commit()
        return cur.rowcount

    # -- articles ----------------------------------------------------------------

    def has_article(self, permalink: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM articles WHERE permalink = ?", (canonical_url(permalink),)
        )
        return row.fetchone() is not None

    def mark_article(
        self,
        permalink: str,
        autoblog: str,
        run_id: int,
        normalized_digest: str | None = None,
    ) -> str:
        """Note that ``run_id`` saw this article; returns new / changed / unchanged / seen.

        "seen" means there is no digest to compare (this time or before). Calling it
        several times in one run (index page, then permalink page) is harmless.
        """
        state = self.article_state(permalink, run_id, normalized_digest)
        self.note_article(permalink, autoblog, run_id, normalized_digest)
        return state

    def article_state(self, permalink: str, run_id: int, normalized_digest: str | None) -> str:
        """new / changed / unchanged / seen, compared with the runs before ``run_id``."""
        permalink = canonical_url(permalink)
        prev = self.conn.execute(
            "SELECT normalized_digest FROM article_sightings WHERE permalink = ? AND run_id < ? "
            "AND normalized_digest IS NOT NULL ORDER BY run_id DESC LIMIT 1",
            (permalink, run_id),
        ).fetchone()
        earlier = self.conn.execute(
            "SELECT 1 FROM article_sightings WHERE permalink = ? AND run_id < ? LIMIT 1",
            (permalink, run_id),
        ).fetchone()
        if earlier is None:
            return "new"
        if prev is None or normalized_digest is None:
            return "seen"
        return "unchanged" if prev[0] == normalized_digest else "changed"

    def note_article(
        self, permalink: str, autoblog: str, run_id: int, normalized_digest: str | None = None
    ) -> None:
        """Record a sighting only (what the crawl does for every block it reads: no lookups)."""
        permalink = canonical_url(permalink)
        self.conn.execute(
            "INSERT INTO article_sightings (permalink, run_id, normalized_digest) VALUES (?, ?, ?) "
            "ON CONFLICT (permalink, run_id) DO UPDATE SET normalized_digest = "
            "COALESCE(excluded.normalized_digest, article_sightings.normalized_digest)",
            (permalink, run_id, normalized_digest),
        )
        self.conn.execute(
            "INSERT INTO articles (permalink, autoblog, first_seen_run, last_seen_run, "
            "normalized_digest) VALUES (?, ?, ?, ?, ?) ON CONFLICT (permalink) DO UPDATE SET "
            "first_seen_run = MIN(first_seen_run, excluded.first_seen_run), "
            "normalized_digest = CASE WHEN excluded.last_seen_run >= last_seen_run "
            "THEN COALESCE(excluded.normalized_digest, normalized_digest) "
            "ELSE normalized_digest END, "
            "last_seen_run = MAX(last_seen_run, excluded.last_seen_run)",
            (permalink, autoblog, run_id, run_id, normalized_digest),
        )
        self._wrote()

    def articles_known_before(self, run_id: int) -> set[str]:
        """Permalinks (canonical) that runs before ``run_id`` saw."""
        rows = self.conn.execute(
            "SELECT permalink FROM articles WHERE first_seen_run < ?", (run_id,)
        )
        return {r[0] for r in rows}

    def article(self, permalink: str) -> dict | None:
        row = self.conn.execute(
            "SELECT * FROM articles WHERE permalink = ?", (canonical_url(permalink),)
        )
        found = row.fetchone()
        return dict(found) if found else None

    # -- reading WARCs back -------------------------------------------------------

    def index_record(self, found: FoundRecord, run_id: int, with_articles: bool = True) -> None:
        """Record one response/revisit read back from a WARC (rebuild and reconcile).

        A revisit has no body: its page digest and articles are its original's, re-read
        from the original record (identical payload, identical page).
        """
        if found.record_type == "revisit" and found.refers_to and found.page_digest is None:
            self._complete_revisit(found)
        self.record_capture(
            url=found.url,
            run_id=run_id,
            warc_date=found.warc_date,
            status=found.status,
            payload_digest=found.payload_digest,
            normalized_digest=found.page_digest,
            record_type=found.record_type,
            filename=found.filename,
            offset=found.offset,
            length=found.length,
            record_id=found.record_id,
            refers_to=found.refers_to,
        )
        if with_articles:
            for permalink, digest in found.articles:
                self.note_article(permalink, autoblog_base(found.url), run_id, digest)

    def _complete_revisit(self, found: FoundRecord) -> None:
        row = self.conn.execute(
            "SELECT filename, offset, normalized_digest FROM captures WHERE record_id = ?",
            (found.refers_to,),
        ).fetchone()
        if row is None or row["normalized_digest"] is None or found.directory is None:
            return
        try:
            with open(found.directory / row["filename"], "rb") as fh:
                fh.seek(row["offset"])
                record = next(iter(ArchiveIterator(fh)), None)
                if record is None:
                    return
                original = _read_found(
                    record, found.directory / row["filename"], 0, 0, (None, None, None)
                )
        except (ArchiveLoadFailed, OSError, EOFError, ValueError) as exc:
            logger.warning("history: original of %s unreadable (%s)", found.url, exc)
            return
        found.page_digest = original.page_digest
        found.articles = original.articles

    def reconcile_files(self, warcs: Iterable[Path], run_id: int) -> int:
        """Re-read records the history lacks (an uncommitted batch lost in a crash).

        Only the tail of each file past its last known capture is read, so calling it on
        every closed file of the collection at the start of a resumed run is cheap.
        Records land in the run their file's ``warcinfo`` names, else in ``run_id``.
        Returns how many captures were added.
        """
        added = 0
        for path in warcs:
            row = self.conn.execute(
                "SELECT MAX(offset), MIN(run_id) FROM captures WHERE filename = ?", (path.name,)
            ).fetchone()
            start, file_run = (row[0], row[1]) if row and row[0] is not None else (0, None)
            target = file_run
            for found in iter_warc_captures(path, start):
                if found.run_key is not None and target is None:
                    target = self._run_for_key(found.run_key, run_id)
                if found.offset == start and file_run is not None:
                    continue
                known = self.conn.execute(
                    "SELECT 1 FROM captures WHERE record_id = ?", (found.record_id,)
                ).fetchone()
                if known:
                    continue
                self.index_record(found, target if target is not None else run_id)
                added += 1
        self.commit()
        return added

    def _run_for_key(self, key: str, default: int) -> int:
        try:
            wanted = int(key)
        except ValueError:
            return default
        return wanted if self.get_run(wanted) is not None else default


# ------------------------------------------------------------------ reading WARCs


@dataclass
class FoundRecord:
    """A response/revisit read from a WARC file, with what the history stores about it."""

    url: str
    warc_date: str
    status: int | None
    payload_digest: str | None
    record_type: str
    filename: str
    offset: int
    length: int
    record_id: str
    refers_to: str | None
    page_digest: str | None
    articles: list[tuple[str, str]]
    run_key: str | None = None
    run_started: str | None = None
    run_mode: str | None = None
    directory: Path | None = None  # the archive folder, to find a revisit's original


def _read_found(record, path: Path, offset: int, length: int, run: tuple) -> FoundRecord:
    headers = record.rec_headers
    url = headers.get_header("WARC-Target-URI")
    status = None
    digest: str | None = None
    articles: list[tuple[str, str]] = []
    if record.http_headers is not None:
        code = record.http_headers.get_statuscode()
        status = int(code) if code and code.isdigit() else None
        ctype = (record.http_headers.get_header("Content-Type") or "").lower()
        if record.rec_type == "response" and status == 200 and "html" in ctype:
            body = b""
            try:
                # Undoes Content-Encoding, a bounded prefix only: a stored bomb stays small.
                body, complete = read_limited(record.content_stream(), READ_LIMIT)
            except (OSError, EOFError, ValueError, zlib.error) as exc:
                logger.warning("history: cannot decode %s (%s)", url, exc)
            else:
                if not complete:
                    logger.warning("history: %s larger than %d bytes, not parsed", url, READ_LIMIT)
                    body = b""
            if body:
                page = parse_page(body, url)
                digest, blocks = page_digests(page)
                if digest is not None and page.kind in ("index", "article"):
                    articles = blocks
    return FoundRecord(
        url=url,
        warc_date=headers.get_header("WARC-Date"),
        status=status,
        payload_digest=headers.get_header("WARC-Payload-Digest"),
        record_type=record.rec_type,
        filename=path.name,
        offset=offset,
        length=length,
        record_id=headers.get_header("WARC-Record-ID"),
        refers_to=headers.get_header("WARC-Refers-To"),
        page_digest=digest,
        articles=articles,
        run_key=run[0],
        run_started=run[1],
        run_mode=run[2],
        directory=path.parent,
    )


WARCINFO_READ_LIMIT = 1 << 20


def _warcinfo_fields(record) -> dict[str, str]:
    text = read_limited(record.content_stream(), WARCINFO_READ_LIMIT)[0].decode(
        "utf-8", errors="replace"
    )
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _run_info(fields: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    return fields.get(RUN_FIELD), fields.get(RUN_STARTED_FIELD), fields.get(RUN_MODE_FIELD)


def iter_warc_captures(path: Path, start: int = 0) -> Iterator[FoundRecord]:
    """Response/revisit records of one WARC from byte ``start``, with offsets and lengths."""
    run: tuple[str | None, str | None, str | None] = (None, None, None)
    with open(path, "rb") as fh:
        fh.seek(start)
        it = ArchiveIterator(fh)
        try:
            for record in it:
                # The body must be read before asking for offsets: that consumes it.
                if record.rec_type == "warcinfo":
                    fields = _warcinfo_fields(record)
                    run = _run_info(fields)
                    continue
                if record.rec_type not in CAPTURE_TYPES:
                    continue
                found = _read_found(record, path, 0, 0, run)
                found.offset = it.get_record_offset()  # absolute: the iterator starts at tell()
                found.length = it.get_record_length()
                yield found
        except (ArchiveLoadFailed, OSError, EOFError, ValueError) as exc:
            logger.warning("history: %s unreadable after offset %s (%s)", path.name, start, exc)


# ------------------------------------------------------------------ rebuild


@dataclass
class RebuildReport:
    runs: int = 0
    captures: int = 0
    articles: int = 0
    files: int = 0
    cdxj_lines: int = 0
    problems: list[str] = field(default_factory=list)


PID_IN_NAME = re.compile(r"-(\d{17})-\d{5}-[^-]+-(\d+)\.warc\.gz$")


def _old_runs(path: Path) -> dict[int, dict]:
    """Run rows of a previous history file, if it is still readable (kept on rebuild)."""
    if not path.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        rows = {r["id"]: dict(r) for r in conn.execute("SELECT * FROM runs")}
        conn.close()
        return rows
    except sqlite3.Error:
        return {}


def _cdxj_entries(layout: OutputLayout) -> dict[str, list[tuple[int, int]]]:
    """(offset, length) of every CDXJ line, grouped by file: the index drives the rebuild."""
    by_file: dict[str, list[tuple[int, int]]] = {}
    if not layout.cdxj.exists():
        return by_file
    with open(layout.cdxj, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.rstrip("\n").split(" ", 2)
            try:
                fields = json.loads(parts[2])
                if fields.get("mime") in ("application/warc-fields",):
                    continue
                entry = (int(fields["offset"]), int(fields["length"]))
                by_file.setdefault(str(fields["filename"]), []).append(entry)
            except (IndexError, ValueError, KeyError, TypeError, AttributeError):
                continue  # a damaged index line: `verify` reports it
    for entries in by_file.values():
        entries.sort()
    return by_file


READ_ERRORS = (ArchiveLoadFailed, OSError, EOFError, ValueError, zlib.error)


def _read_at(
    path: Path, entries: list[tuple[int, int]], problems: list[str]
) -> Iterator[FoundRecord]:
    """The capture at each CDXJ offset, with the file's warcinfo run; an unreadable record
    is noted in ``problems`` and skipped, and the rest of the file is still read."""
    with open(path, "rb") as fh:
        run: tuple[str | None, str | None, str | None] = (None, None, None)
        try:
            first = next(iter(ArchiveIterator(fh)), None)
            if first is not None and first.rec_type == "warcinfo":
                run = _run_info(_warcinfo_fields(first))
        except READ_ERRORS as exc:
            problems.append(f"{path.name}: warcinfo unreadable ({exc}), run taken from the name")
        for offset, length in entries:
            try:
                fh.seek(offset)
                record = next(iter(ArchiveIterator(fh)), None)
                if record is None or record.rec_type not in CAPTURE_TYPES:
                    continue
                found = _read_found(record, path, offset, length, run)
                if not (found.url and found.warc_date and found.record_id):
                    raise ValueError("no target URI, date or record id")
            except READ_ERRORS as exc:
                problems.append(f"{path.name} offset {offset}: unreadable record skipped ({exc})")
                continue
            yield found


def rebuild_from_indexes(output_dir: str | os.PathLike[str]) -> RebuildReport:
    """Rebuild ``history.sqlite`` from the collections' CDXJ indexes and WARC records.

    Captures come from the CDXJ lines (file, offset, length), each completed from its
    record (record id, date, digests, normalised digest of HTML pages); articles from the
    article blocks of captured index and permalink pages. Runs come from the ``crawlRun``
    warcinfo field (files without it: one run per writing process), keeping the details
    (command, seeds, status) of a still-readable previous history. Written to a temporary
    file, then swapped in, so a failed rebuild leaves the old history alone.
    """
    root = Path(output_dir)
    report = RebuildReport()
    target = root / HISTORY_NAME
    tmp = root / (HISTORY_NAME + ".rebuild")
    for leftover in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
        leftover.unlink(missing_ok=True)
    old_runs = _old_runs(target)
    # First pass: group the records by run key, in file order.
    groups: dict[str, list[FoundRecord]] = {}
    started: dict[str, str] = {}
    modes: dict[str, str] = {}
    for layout in OutputLayout.find(root):
        by_file = _cdxj_entries(layout)
        report.cdxj_lines += sum(len(v) for v in by_file.values())
        for path in layout.warcs():
            entries = by_file.get(path.name)
            if not entries:
                continue
            report.files += 1
            try:
                for found in _read_at(path, entries, report.problems):
                    key = found.run_key
                    if key is None:
                        m = PID_IN_NAME.search(path.name)
                        key = f"pid:{m.group(2)}" if m else f"file:{path.name}"
                    groups.setdefault(key, []).append(found)
                    first = found.run_started or found.warc_date
                    started[key] = min(started.get(key, first), first)
                    if found.run_mode:
                        modes[key] = found.run_mode
            except READ_ERRORS as exc:
                report.problems.append(f"{path.name}: unreadable, skipped ({exc})")
    history = History.open(tmp, batch_size=5000, batch_seconds=60)
    try:
        numeric = {k: int(k) for k in groups if k.isdigit()}
        next_id = max([*numeric.values(), *old_runs.keys(), 0]) + 1
        ordered = sorted(groups, key=lambda k: (started[k], k))
        for key in ordered:
            records = groups[key]
            if key in numeric:
                run_id = numeric[key]
            else:
                run_id, next_id = next_id, next_id + 1
            old = old_runs.get(run_id, {})
            dates = [r.warc_date for r in records]
            history.conn.execute(
                "INSERT INTO runs (id, started, finished, status, seeds, command, mode, "
                "resumed, stats) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    old.get("started") or started[key],
                    old.get("finished") or max(dates),
                    old.get("status") or FINISHED,
                    old.get("seeds") or "[]",
                    old.get("command") or "rebuilt by autoblog-archive reindex",
                    old.get("mode") or modes.get(key) or "full",
                    old.get("resumed") or 0,
                    old.get("stats"),
                ),
            )
            for found in records:
                history.index_record(found, run_id)
            report.runs += 1
            report.captures += len(records)
        history.commit()
        report.articles = history.conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        history.conn.execute("COMMIT")
        history.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        history.conn.execute("BEGIN")
    finally:
        history.close()
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    os.replace(tmp, target)
    return report


# ------------------------------------------------------------------ command line


def add_reindex_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="an output folder written by `crawl`")


def run_reindex(args: argparse.Namespace) -> int:
    """``autoblog-archive reindex DIR``: repair ``.open`` files, rewrite the CDXJ, then
    rebuild history.sqlite; refused (exit 3) while a crawl holds the folder."""
    from crawler.exitcodes import EXIT_FAILED, EXIT_LOCKED
    from crawler.runlock import RunLock, RunLockedError

    root = Path(args.directory)
    layouts = OutputLayout.find(root)
    if not layouts:
        print(f"{root}: no collections/ folder, nothing to reindex")
        return EXIT_FAILED
    try:
        lock = RunLock(root).acquire()  # the history file is replaced: no crawl may run
    except RunLockedError as exc:
        print(exc)
        return EXIT_LOCKED
    try:
        return _reindex(root, layouts)
    finally:
        lock.release()


def _reindex(root: Path, layouts: list[OutputLayout]) -> int:
    from crawler.recovery import repair_directory

    problems: list[str] = []
    for layout in layouts:
        # Under the run lock, an .open file is a killed crawl's: repair it, then index it.
        for repair in repair_directory(layout.archive):
            print(f"repaired {repair.describe()}")
        for path in layout.warcs():
            problems.extend(warc_defects(path))  # damage the index alone would pass over
        write_cdxj(layout, rebuild=True, problems=problems)
    report = rebuild_from_indexes(root)
    report.problems[:0] = problems
    for problem in report.problems:
        print(f"PROBLEM  {problem}")
    print(
        f"Rebuilt {root / HISTORY_NAME}: {report.runs} runs, {report.captures} captures, "
        f"{report.articles} articles from {report.files} WARC files "
        f"({report.cdxj_lines} CDXJ lines)"
    )
    return 0 if not report.problems else 1
