"""The history is read as a hostile file: every row is checked before anything uses it.

``history.sqlite`` is a file in a folder anyone may have handed over (a copy, a backup, a
worker's folder). A row the tool did not write (text where a number belongs, a NULL, a run
number of 10^15, a file name with a path in it, seeds that are not a JSON list) would crash
a command half-way or, worse, let a crawl run outside the history. So every command that
opens a history (:meth:`crawler.history.store.History.open`: crawl start, ``report``,
``merge``, ``reconcile``; ``verify`` and ``reindex`` through the same check) first has
SQLite check every row of every table against what the tool writes (one scan per table,
no row held in memory) and stops at the first malformed one with :class:`HistoryError`:
one line naming the file, the row and the column, and the command that rebuilds the
history from the WARCs, exit 4.
"""

from __future__ import annotations

import shlex
import sqlite3
from pathlib import Path
from typing import TypeGuard

from crawler.exitcodes import UsageError
from crawler.history.model import CAPTURE_TYPES, FAILED, FINISHED, INTERRUPTED, PARTIAL, RUNNING
from crawler.warc.names import warc_name_problem

# Bounds of what the tool itself writes, generously: anything beyond is not ours. Text
# from pages (URLs, permalinks) has no bound of its own but SQLite's: MAX_VALUE, set on
# every connection to a history, past which any read of a value fails.
MAX_ID = 1 << 31
MAX_OFFSET = 1 << 62
MAX_STAMP = 64  # an ISO date and time, with room to spare
MAX_NAME = 1024  # a WARC file name
MAX_VALUE = 1 << 27  # a page is at most DOWNLOAD_MAXSIZE (64 MB): so is any text from it
STATUSES = (RUNNING, INTERRUPTED, FINISHED, PARTIAL, FAILED)
MODES = ("full", "incremental")


def _text(column: str, limit: int | None = None, nullable: bool = False) -> str:
    bound = f"length({column}) BETWEEN 1 AND {limit}" if limit else f"{column} != ''"
    check = f"(typeof({column}) = 'text' AND {bound})"
    return f"({column} IS NULL OR {check})" if nullable else check


def is_stamp(text: object) -> TypeGuard[str]:
    """Whether ``text`` passes the check of a run's start or end (:func:`_stamp`)."""
    return (
        isinstance(text, str)
        and 11 <= len(text) <= MAX_STAMP
        and text[:4].isascii()
        and text[:4].isdigit()
        and text[4] == "-"
        and text[5:7].isascii()
        and text[5:7].isdigit()
        and text[7] == "-"
        and text[8:10].isascii()
        and text[8:10].isdigit()
        and text[10] == "T"
    )


def _stamp(column: str, nullable: bool = False) -> str:
    """An ISO 8601 date and time (as ``_now`` and WARC-Date write them)."""
    check = (
        f"({_text(column, MAX_STAMP)} AND "
        f"{column} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*')"
    )
    return f"({column} IS NULL OR {check})" if nullable else check


def _int(column: str, low: int, high: int, nullable: bool = False) -> str:
    check = f"(typeof({column}) = 'integer' AND {column} BETWEEN {low} AND {high})"
    return f"({column} IS NULL OR {check})" if nullable else check


def _one_of(column: str, values: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"(typeof({column}) = 'text' AND {column} IN ({listed}))"


def _valid_json(column: str) -> str:
    """``column`` if it holds valid JSON, else ``null``: json_type and json_each raise an
    error on malformed JSON, and SQLite does not promise to cut an AND short."""
    return f"(CASE WHEN json_valid({column}) THEN {column} ELSE 'null' END)"


def _json(column: str, kind: str, nullable: bool = False) -> str:
    check = f"({_text(column)} AND json_type({_valid_json(column)}) = '{kind}')"
    return f"({column} IS NULL OR {check})" if nullable else check


# table -> (how a bad row is named, {column: SQL condition every row must meet})
CHECKS: dict[str, tuple[str, dict[str, str]]] = {
    "runs": (
        "id",
        {
            "id": _int("id", 1, MAX_ID),
            "started": _stamp("started"),
            "finished": _stamp("finished", nullable=True),
            "status": _one_of("status", STATUSES),
            "seeds": f"({_json('seeds', 'array')} AND NOT EXISTS "
            f"(SELECT 1 FROM json_each({_valid_json('seeds')}) WHERE type != 'text'))",
            "command": _text("command", nullable=True),
            "mode": _one_of("mode", MODES),
            "resumed": _int("resumed", 0, MAX_ID),
            "stats": _json("stats", "object", nullable=True),
        },
    ),
    "captures": (
        "id",
        {
            "url": _text("url"),
            "run_id": f"({_int('run_id', 1, MAX_ID)} AND "
            "EXISTS (SELECT 1 FROM runs r WHERE r.id = captures.run_id))",
            "warc_date": _text("warc_date", MAX_STAMP),
            # Any number: a server may answer any status line Twisted reads as one.
            "status": "(status IS NULL OR typeof(status) = 'integer')",
            "payload_digest": _text("payload_digest", nullable=True),
            "normalized_digest": _text("normalized_digest", nullable=True),
            "record_type": _one_of("record_type", CAPTURE_TYPES),
            "filename": _text("filename", MAX_NAME),  # and a plain name: malformed_row
            "offset": _int("offset", 0, MAX_OFFSET),
            "length": _int("length", 1, MAX_OFFSET),
            "record_id": _text("record_id"),
            "refers_to": _text("refers_to", nullable=True),
            "autoblog": _text("autoblog", nullable=True),
            "bytes_written": _int("bytes_written", 0, MAX_OFFSET, nullable=True),
        },
    ),
    "articles": (
        "permalink",
        {
            "permalink": _text("permalink"),
            "autoblog": _text("autoblog"),
            "first_seen_run": _int("first_seen_run", 1, MAX_ID),
            "last_seen_run": _int("last_seen_run", 1, MAX_ID),
            "normalized_digest": _text("normalized_digest", nullable=True),
        },
    ),
    "article_sightings": (
        "run_id",
        {
            "permalink": _text("permalink"),
            "run_id": _int("run_id", 1, MAX_ID),
            "normalized_digest": _text("normalized_digest", nullable=True),
        },
    ),
}


def _row_checks(table: str) -> list[tuple[str, str]]:
    # COALESCE: a check on a NULL is NULL, which must count as failed, not as passed.
    return [(name, f"COALESCE({sql}, 0)") for name, sql in CHECKS[table][1].items()]


def valid_rows(table: str) -> str:
    """A query of the rows of ``table`` that pass every check."""
    return f"SELECT * FROM {table} WHERE " + " AND ".join(sql for _, sql in _row_checks(table))


class HistoryError(UsageError):
    """A history file the tool did not write as it is: one line, exit 4, and the command
    that rebuilds it from the WARCs (which never reads the malformed rows back)."""

    def __init__(self, path: Path, problem: str) -> None:
        root = path.parent
        super().__init__(
            f"{path}: {problem}; rebuild it from the WARCs: "
            f"autoblog-archive reindex {shlex.quote(str(root))}"
        )
        self.path = path
        self.problem = problem


def malformed_row(conn: sqlite3.Connection) -> str | None:
    """The first malformed row of an open history (table, row, column), or None."""
    tables = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
        )
    }
    kinds = {kind for (kind,) in conn.execute("SELECT DISTINCT type FROM sqlite_master")}
    if "trigger" in kinds or "view" in kinds:
        return "holds triggers or views the tool never creates"
    for table, (key, columns) in CHECKS.items():
        if table not in tables:
            return f"no {table} table"
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        missing = sorted(set(columns) - present)
        if missing:
            return f"table {table} has no column {missing[0]}"
        checks = _row_checks(table)
        first_bad = " ".join(f"WHEN NOT {sql} THEN '{name}'" for name, sql in checks)
        every = " AND ".join(sql for _, sql in checks)
        row = conn.execute(
            f"SELECT CASE {first_bad} END, typeof({key}), {key} FROM {table} "
            f"WHERE NOT ({every}) LIMIT 1"
        ).fetchone()
        if row is not None:
            where = f"{key} {row[2]}" if row[1] == "integer" else "a row"
            return f"malformed {table} row ({where}): bad {row[0]}"
    # A WARC file is opened by this name in the archive folder: a plain name only, the
    # rule merge applies to the files it takes in. One name per file: a short list.
    for (name,) in conn.execute("SELECT DISTINCT filename FROM captures"):
        problem = warc_name_problem(name)
        if problem is not None:
            return f"malformed captures row (filename {name!r}): {problem}"
    return None


def check_connection(conn: sqlite3.Connection, path: Path) -> None:
    """Raise :class:`HistoryError` if any row of the history open on ``conn`` is malformed."""
    try:
        problem = malformed_row(conn)
    except sqlite3.Error as exc:
        problem = f"unreadable ({exc})"
    if problem is not None:
        raise HistoryError(path, problem)
