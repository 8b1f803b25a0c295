"""What the archive holds, as the audit (:mod:`crawler.history.audit`) asks it.

The history's captures, less those whose WARC file is gone, and their records read back
bounded; and an engine's ``articles.db`` (farm data) read with a budget, never trusted.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from warcio.exceptions import ArchiveLoadFailed

from crawler.history.captures import _capture_from_row
from crawler.history.model import THROTTLED, Capture, answered
from crawler.history.readback import read_response
from crawler.urls import autoblog_base, canonical_url

# sqlite's progress handler runs every this many virtual-machine steps while articles.db
# is read; the read is interrupted past max_declared calls.
DB_STEPS = 1000


class ArchiveView:
    """What the archive holds, as the audit asks it: the history's captures (less ``lost``
    ones, whose WARC file is gone: ``verify``) and their records, read back bounded.

    ``conn`` is the history's connection (rows as :class:`sqlite3.Row`).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        archives: Iterable[Path],
        read_limit: int,
        lost: frozenset[tuple[str, int]] = frozenset(),
    ) -> None:
        self.conn = conn
        self.archives = list(archives)
        self.lost = lost
        self.read_limit = read_limit

    def held(self, url: str) -> bool:
        """The newest capture of ``url`` (canonical) still in its file answered: a 404 is
        what the engine serves; a 5xx, 408 or 429 (throttled) says nothing of the page as
        the farm serves it now (:func:`crawler.history.model.answered`)."""
        return answered(self.newest_status(url))

    def captured(self, url: str) -> bool:
        """Whether any capture of ``url`` (canonical) is in the history, held or not: one
        indexed lookup, for the many URLs a long farm list declares and no run fetched."""
        return (
            self.conn.execute("SELECT 1 FROM captures WHERE url = ? LIMIT 1", (url,)).fetchone()
            is not None
        )

    def newest_status(self, url: str) -> int | None:
        """The HTTP status of the newest capture of ``url`` still in its file (None: none)."""
        rows = self.conn.execute(
            "SELECT status, filename, offset FROM captures WHERE url = ? "
            "ORDER BY warc_date DESC, id DESC",
            (url,),
        )
        status: int | None
        for status, name, offset in rows:
            if (name, offset) not in self.lost:
                return status
        return None

    def throttled(self) -> Iterator[tuple[str, str]]:
        """(URL, autoblog) of every URL whose newest capture was throttled (429), by URL."""
        rows = self.conn.execute(
            "SELECT url, MIN(autoblog) FROM captures WHERE status = ? GROUP BY url ORDER BY url",
            (THROTTLED,),
        )
        for url, autoblog in rows:
            if self.newest_status(url) == THROTTLED:
                yield url, autoblog or autoblog_base(url)

    def newest(self, url: str) -> Capture | None:
        """The newest capture of ``url`` that answered 200 and is held (a revisit: its
        original, which holds the same payload)."""
        rows = self.conn.execute(
            "SELECT * FROM captures WHERE url = ? AND status = 200 "
            "ORDER BY warc_date DESC, id DESC",
            (canonical_url(url),),
        )
        for row in rows:
            capture = _capture_from_row(row)
            if capture.record_type == "revisit":
                found = self.conn.execute(
                    "SELECT * FROM captures WHERE record_id = ?", (capture.refers_to,)
                ).fetchone()
                if found is None:
                    continue
                capture = _capture_from_row(found)
            if (capture.filename, capture.offset) not in self.lost:
                return capture
        return None

    def read(self, capture: Capture) -> Response | None:
        """The capture as the crawl's Scrapy response (decoded as the spider saw it), or
        None when its record cannot be read within ``read_limit``."""
        path = self._path(capture.filename)
        if path is None:
            return None
        try:
            return read_response(path, capture, Request(capture.url), self.read_limit)
        except (IgnoreRequest, ArchiveLoadFailed, OSError, ValueError, EOFError, zlib.error):
            return None

    def _path(self, name: str) -> Path | None:
        if Path(name).name != name:
            return None
        for archive in self.archives:
            path = archive / name
            if path.is_file() and not path.is_symlink():
                return path
        return None

    def known_autoblogs(self) -> Iterator[str]:
        """Every URL that some capture shows as its own autoblog base (a full scan, once)."""
        rows = self.conn.execute("SELECT DISTINCT url FROM captures WHERE url = autoblog")
        return (row[0] for row in rows)

    def sighted(self, autoblog: str) -> Iterator[str]:
        """Permalinks the archived pages of an autoblog listed, in any run."""
        rows = self.conn.execute(
            "SELECT permalink FROM articles WHERE autoblog = ? ORDER BY permalink", (autoblog,)
        )
        return (row[0] for row in rows)


def database_uris(data: bytes, limit: int) -> Iterator[str]:
    """The ``uri`` of each row of an engine's ``articles.db`` (at most ``limit`` + 1).

    The file came from the farm: it is opened in memory, read-only, with schema code
    distrusted, page checks on and a budget of steps; only a real ``articles`` table is
    read, never a view or a virtual table. Raises ``sqlite3.Error`` when it is no such
    database, or the budget ran out.
    """
    conn = sqlite3.connect(":memory:")
    calls = 0

    def budget() -> int:
        nonlocal calls
        calls += 1
        return 1 if calls > max(limit, 1000) else 0

    try:
        conn.deserialize(data)
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA cell_size_check = ON")
        conn.execute("PRAGMA query_only = ON")
        conn.set_progress_handler(budget, DB_STEPS)
        row = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'articles'"
        ).fetchone()
        if row is None or not str(row[0]).upper().startswith("CREATE TABLE"):
            raise sqlite3.DatabaseError("no articles table")
        for (uri,) in conn.execute("SELECT uri FROM articles LIMIT ?", (limit + 1,)):
            if isinstance(uri, str):
                yield uri
    finally:
        conn.close()
