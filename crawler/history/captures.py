"""The history's SQL about captures: what was fetched, when, and where its record lies."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

from crawler.history.model import ANSWERED_SQL, CAPTURE_TYPES, Capture
from crawler.urls import autoblog_base, canonical_url

CAPTURE_COLUMNS = (
    "url, run_id, warc_date, status, payload_digest, normalized_digest, record_type, "
    "filename, offset, length, record_id, refers_to, autoblog, bytes_written"
)

CAPTURE_LOCATIONS = "SELECT url, run_id, filename, offset, length FROM captures ORDER BY id"


def _capture_from_row(row: sqlite3.Row) -> Capture:
    return Capture(**{k: row[k] for k in row.keys() if k != "id"})


class CaptureQueries:
    """Part of :class:`crawler.history.store.History`: its connection, its batched commits."""

    conn: sqlite3.Connection
    _wrote: Callable[[], None]  # History's: one more write, committed in batches
    commit: Callable[[], None]  # History's: everything so far made durable

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
        """The newest capture of ``url`` that says what the page is (optionally from runs
        before ``before_run``): a throttled or failed fetch never replaces it (``answered``)."""
        sql = f"SELECT * FROM captures WHERE url = ? AND {ANSWERED_SQL}"
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
        """Whether any run before ``run_id`` captured anything."""
        row = self.conn.execute("SELECT 1 FROM captures WHERE run_id < ? LIMIT 1", (run_id,))
        return row.fetchone() is not None

    def urls_starting_with(self, prefix: str, before_run: int) -> Iterator[str]:
        """URLs (canonical) starting with ``prefix`` that a run before ``before_run``
        captured with 200-399: an autoblog's numbered pages, read off the URL index."""
        rows = self.conn.execute(
            "SELECT DISTINCT url FROM captures WHERE url >= ? AND url < ? AND run_id < ? "
            "AND status BETWEEN 200 AND 399",
            (prefix, prefix + "\x7f", before_run),
        )
        return (row[0] for row in rows)

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
        """The captures of a run, in the order they were recorded."""
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

    def capture_by_record_id(self, record_id: str) -> Capture | None:
        """The capture of a WARC record, or None."""
        row = self.conn.execute(
            "SELECT * FROM captures WHERE record_id = ?", (record_id,)
        ).fetchone()
        return _capture_from_row(row) if row else None

    def file_extent(self, filename: str) -> tuple[int, int | None]:
        """(offset of the last capture the history has in a file, the run of its first)."""
        row = self.conn.execute(
            "SELECT MAX(offset), MIN(run_id) FROM captures WHERE filename = ?", (filename,)
        ).fetchone()
        return (row[0], row[1]) if row and row[0] is not None else (0, None)

    def run_totals(self, run_id: int) -> Iterator[tuple[str, str | None, str, int]]:
        """(url, autoblog, record type, bytes written) of every capture of a run, as a
        cursor: a big run's captures are never all in memory at once."""
        return self.conn.execute(
            "SELECT url, autoblog, record_type, COALESCE(NULLIF(bytes_written, 0), length) "
            "FROM captures WHERE run_id = ? ORDER BY id",
            (run_id,),
        )

    def last_captures_in_run(self, run_id: int) -> Iterator[Capture]:
        """Each URL's last capture in a run, by URL (what the change report compares), as
        they are read."""
        rows = self.conn.execute(
            "SELECT c.* FROM captures c JOIN ("
            "  SELECT MAX(id) AS id FROM captures WHERE run_id = ? GROUP BY url"
            ") last ON last.id = c.id ORDER BY c.url",
            (run_id,),
        )
        return (_capture_from_row(row) for row in rows)

    def gone_from_run(self, run_id: int) -> Iterator[tuple[str, str | None, int | None]]:
        """(url, autoblog, status) of each URL's latest capture before a run, for the URLs
        the run did not capture (in a full pass: no longer listed)."""
        return self.conn.execute(
            "SELECT c.url, c.autoblog, c.status FROM captures c JOIN ("
            "  SELECT MAX(id) AS id FROM captures WHERE run_id < ? GROUP BY url"
            ") latest ON latest.id = c.id WHERE NOT EXISTS "
            # "+": looked up by URL (captures_url), not by scanning the run's captures.
            "(SELECT 1 FROM captures now WHERE +now.run_id = ? AND now.url = c.url)",
            (run_id, run_id),
        )

    def capture_locations(self) -> list[tuple[str, int, str, int, int]]:
        """(file, offset, record id, run, status) of every capture."""
        return self.conn.execute(CAPTURE_LOCATIONS).fetchall()

    def forget_capture(self, filename: str, offset: int) -> None:
        """Drop a capture whose record no WARC holds any more (it will be fetched again)."""
        self.conn.execute(
            "DELETE FROM captures WHERE filename = ? AND offset = ?", (filename, offset)
        )

    def unnoted_pages(self, filename: str) -> dict[str, tuple[int, int]]:
        """record id -> (offset, run) of the 200 responses of unfinished runs in a file that
        have no normalised digest yet: pages whose note a crash may have lost."""
        rows = self.conn.execute(
            "SELECT record_id, offset, run_id FROM captures WHERE filename = ? "
            "AND record_type = 'response' AND status = 200 AND normalized_digest IS NULL "
            "AND run_id IN (SELECT id FROM runs WHERE status IN ('running', 'interrupted'))",
            (filename,),
        )
        return {r[0]: (r[1], r[2]) for r in rows}
