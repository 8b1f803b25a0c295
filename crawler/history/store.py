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

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawler.history.articles import ArticleQueries
from crawler.history.captures import CaptureQueries
from crawler.history.model import FINISHED, PARTIAL, RESUMABLE, RUNNING, Run
from crawler.history.validate import MAX_VALUE, HistoryError, check_connection
from crawler.layout import HISTORY_NAME

SCHEMA_VERSION = 1
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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


class History(CaptureQueries, ArticleQueries):
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
        try:
            cls._prepare(conn, path)
        except sqlite3.OperationalError:
            conn.close()
            raise  # locked, disk full: not the file's fault
        except sqlite3.DatabaseError as exc:
            conn.close()  # not a database, malformed pages
            raise HistoryError(path, f"unreadable ({exc})") from None
        except HistoryError:
            conn.close()
            raise
        return cls(conn, path, batch_size, batch_seconds)

    @staticmethod
    def _prepare(conn: sqlite3.Connection, path: Path) -> None:
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE)  # a crafted value stays small
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit costs no fsync; a power cut loses at most the last
        # commits, which reconcile_files re-reads from the WARCs.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Only a new file is written to here: `report` may open the history of a running
        # crawl, and WAL lets it read without waiting for the crawl's open batch. A file
        # holding anything is checked, never completed: a crafted table stays refused.
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            conn.executescript(SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        else:
            check_connection(conn, path)  # every row, before anything reads one
        conn.execute("BEGIN")

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
        return int(cur.lastrowid)  # type: ignore[arg-type]  # an INSERT sets it

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

    def finish_run(self, run_id: int, status: str, stats: dict[str, Any] | None = None) -> None:
        """Close a run: ``finished`` / ``partial`` / ``failed``, or ``interrupted`` (Ctrl-C)."""
        self.conn.execute(
            "UPDATE runs SET finished = ?, status = ?, stats = COALESCE(?, stats) WHERE id = ?",
            (_now(), status, json.dumps(stats) if stats is not None else None, run_id),
        )
        self.commit()

    def get_run(self, run_id: int) -> Run | None:
        """The run ``run_id``, or None."""
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run_from_row(row) if row else None

    def latest_run(self) -> Run | None:
        """The newest run, or None."""
        row = self.conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return _run_from_row(row) if row else None

    def runs(self) -> list[Run]:
        """Every run, oldest first."""
        return [_run_from_row(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY id")]

    def previous_run_id(self, run_id: int) -> int | None:
        """The run before ``run_id``, or None."""
        found: int | None
        found = self.conn.execute("SELECT MAX(id) FROM runs WHERE id < ?", (run_id,)).fetchone()[0]
        return found

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

    def insert_run(self, row: tuple[Any, ...]) -> None:
        """A run row as a rebuild found it (id, started, finished, status, seeds, command,
        mode, resumed, stats)."""
        self.conn.execute(
            "INSERT INTO runs (id, started, finished, status, seeds, command, mode, "
            "resumed, stats) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    def checkpoint(self) -> None:
        """Commit and fold the WAL into the file (before a rebuilt file is swapped in)."""
        self.conn.execute("COMMIT")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.execute("BEGIN")


# Worst first: the status a run of several processes ends with is its worst process's.
STATUS_ORDER = ("running", "interrupted", "failed", "partial", "finished")


def merge_histories(
    target: str | os.PathLike[str], sources: Iterable[tuple[Path, dict[str, str]]]
) -> None:
    """One history of the histories of processes that crawled the same runs side by side
    (``crawl --processes``): run N of each process is run N of the whole. Captures and
    sightings are copied as they are (each WARC file is one process's; a file the merge
    renamed is given its new name, as ``{old: new}`` beside each history says), an article
    seen by two processes keeps its earliest first and latest last sighting. Written to a
    temporary file, then swapped in; much cheaper than re-reading every WARC record."""
    target = Path(target)
    tmp = target.with_name(target.name + ".merge")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    history = History.open(tmp)
    conn = history.conn
    try:
        conn.execute("COMMIT")
        for number, (source, renamed) in enumerate(sources):
            conn.execute("ATTACH DATABASE ? AS src", (str(source),))
            conn.execute("BEGIN")
            before = conn.execute("SELECT COALESCE(MAX(id), 0) FROM captures").fetchone()[0]
            for row in conn.execute("SELECT * FROM src.runs").fetchall():
                old = conn.execute("SELECT * FROM runs WHERE id = ?", (row["id"],)).fetchone()
                if old is None:
                    conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", tuple(row))
                    continue
                worse = min(old["status"], row["status"], key=_status_rank)
                conn.execute(
                    "UPDATE runs SET started = min(started, ?), finished = max(finished, ?), "
                    "status = ?, resumed = max(resumed, ?) WHERE id = ?",
                    (row["started"], row["finished"], worse, row["resumed"], row["id"]),
                )
            conn.execute(
                f"INSERT INTO captures ({CAPTURE_COLUMNS}) SELECT {CAPTURE_COLUMNS} "
                "FROM src.captures ORDER BY id"
            )
            conn.executemany(
                "UPDATE captures SET filename = ? WHERE filename = ? AND id > ?",
                [(new, old, before) for old, new in renamed.items()],
            )
            conn.execute(
                "INSERT OR IGNORE INTO article_sightings SELECT * FROM src.article_sightings"
            )
            conn.execute(
                "INSERT INTO articles SELECT * FROM src.articles WHERE true "
                "ON CONFLICT (permalink) DO UPDATE SET "
                "first_seen_run = min(first_seen_run, excluded.first_seen_run), "
                "last_seen_run = max(last_seen_run, excluded.last_seen_run), "
                "normalized_digest = CASE WHEN excluded.last_seen_run >= last_seen_run "
                "THEN excluded.normalized_digest ELSE normalized_digest END"
            )
            if number == 0:
                conn.execute("INSERT OR IGNORE INTO meta SELECT * FROM src.meta")
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE src")
        conn.execute("BEGIN")
    finally:
        history.close()
    Path(f"{tmp}-wal").unlink(missing_ok=True)
    Path(f"{tmp}-shm").unlink(missing_ok=True)
    for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
        stale.unlink(missing_ok=True)
    os.replace(tmp, target)


def _status_rank(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else 0
