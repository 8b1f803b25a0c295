"""Strings a crawl must remember per page but only ever looks up: kept on disk, not in memory.

A page title (for pages.jsonl) or a permalink already counted (for the summary) is a few
hundred bytes of Python objects; held in a dict or a set until the crawl ends, they made
its memory grow with the number of pages. :class:`DiskMap` keeps them in a private
temporary SQLite file instead (SQLite deletes it when the map is closed or the process
ends): lookups stay exact, memory stays at SQLite's page cache.
"""

from __future__ import annotations

import sqlite3

# SQLite's page cache of one map, in KiB (negative cache_size): what it costs in memory.
CACHE_KIB = 2048


def to_blob(text: str) -> bytes:
    """Any Python string as bytes (lone surrogates too: ``sqlite3`` refuses them as text).

    SQLite compares blobs byte by byte, and UTF-8 keeps the order of code points: an
    ``ORDER BY`` over such blobs sorts as Python sorts the strings.
    """
    return text.encode("utf-8", "surrogatepass")


def from_blob(data: bytes) -> str:
    """The string :func:`to_blob` made."""
    return bytes(data).decode("utf-8", "surrogatepass")


def scratch_db(shared: bool = False) -> sqlite3.Connection:
    """A private temporary SQLite file, deleted when closed (or when the process ends).

    Throwaway data: no journal, no sync, one transaction that is never committed (SQLite
    writes its pages to the file once its cache is full). ``shared``: used from several
    threads, one at a time (the caller holds the lock).
    """
    # "": a private on-disk database, unlinked as soon as SQLite opens it.
    db = sqlite3.connect("", isolation_level=None, check_same_thread=not shared)
    db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    return db


class DiskMap:
    """A ``str -> str`` map (and a set, through :meth:`add`) on a throwaway SQLite file.

    Used from the thread that made it, like the crawl's components that use it (the
    reactor's); see :func:`scratch_db`.
    """

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = scratch_db()
        self._db.execute("CREATE TABLE map (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID")

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ValueError("the map is closed")
        return self._db

    def __setitem__(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO map (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (to_blob(key), to_blob(value)),
        )

    def get(self, key: str, default: str | None = None) -> str | None:
        """The value of ``key``, or ``default``."""
        row = self._conn.execute("SELECT value FROM map WHERE key = ?", (to_blob(key),)).fetchone()
        if row is None or row[0] is None:
            return default
        return from_blob(row[0])

    def add(self, key: str) -> bool:
        """Use the map as a set: True if ``key`` was not in it yet (it is now)."""
        cursor = self._conn.execute(
            "INSERT INTO map (key) VALUES (?) ON CONFLICT (key) DO NOTHING", (to_blob(key),)
        )
        return cursor.rowcount == 1

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        found = self._conn.execute("SELECT 1 FROM map WHERE key = ?", (to_blob(key),))
        return found.fetchone() is not None

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM map").fetchone()[0]

    def close(self) -> None:
        """Delete the file (closing twice is harmless)."""
        if self._db is not None:
            self._db.close()
            self._db = None
