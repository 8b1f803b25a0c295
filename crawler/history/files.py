"""A history file read from outside the crawl that owns it, read-only.

``verify``, ``merge``, a rebuild and the dataset's provenance read a ``history.sqlite``
they did not open as the crawl's store (:class:`crawler.history.store.History`): another
worker's, the one being replaced, one handed over. They never create it, never take its
write lock, and read only rows that pass the checks of :mod:`crawler.history.validate`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crawler.history.captures import CAPTURE_LOCATIONS
from crawler.history.validate import MAX_VALUE, HistoryError, check_connection, valid_rows


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a history file (``verify``, checks, a rebuild's past),
    closed on the way out; never creates the file nor takes a write lock."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE)
    try:
        yield conn
    finally:
        conn.close()


def malformed(path: Path) -> str | None:
    """What is malformed in a history file (:func:`check_connection`), or None; read-only."""
    try:
        with read_only(path) as conn:
            check_connection(conn, path)
    except HistoryError as exc:
        return exc.problem
    except sqlite3.Error:
        return None  # unreadable as a whole: file_problem's question, not this one
    return None


def read_runs(path: Path) -> dict[int, dict[str, Any]]:
    """Run rows of a previous history file, if it is still readable (kept on rebuild)."""
    if not path.exists():
        return {}
    try:
        with read_only(path) as conn:
            conn.row_factory = sqlite3.Row
            # Only rows as the tool writes them: a rebuild never carries a crafted one over.
            return {r["id"]: dict(r) for r in conn.execute(valid_rows("runs"))}
    except sqlite3.Error:
        return {}


def run_seeds(row: dict[str, Any]) -> list[str]:
    """The seeds a run row of :func:`read_runs` lists: the history is a file from outside,
    so anything but a JSON list of strings lists none."""
    try:
        seeds = json.loads(row.get("seeds") or "[]")
    except (ValueError, TypeError):
        return []
    return [s for s in seeds if isinstance(s, str)] if isinstance(seeds, list) else []


def file_problem(path: Path) -> str | None:
    """Why a history file cannot be trusted as it is (corrupt, unreadable, emptied), or None."""
    try:
        with read_only(path) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                return f"corrupt ({check})"
            # No run at all: emptied. Runs without captures are a killed crawl's, whose
            # uncommitted captures crawler.history.rebuild.reconcile_files reads back.
            runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            return "empty"
        return f"unreadable ({exc})"
    return "empty" if runs == 0 else None


def read_capture_locations(path: Path) -> list[tuple[str, int, str, int, int]]:
    """(url, run, file, offset, length) of every capture, read-only (``verify``); a
    malformed history raises :class:`HistoryError`."""
    with read_only(path) as conn:
        check_connection(conn, path)
        return conn.execute(CAPTURE_LOCATIONS).fetchall()
