"""The corpus builder's entries: what it knows of each spooled record, spilled to SQLite.

An entry per article block seen (permalink pages and index pages alike) is what
:class:`crawler.corpus.builder.CorpusBuilder` decides with at ``close``: which index
sightings become records, the final order, the duplicate groups. Never the text itself.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from crawler.corpus.dedup import DuplicateGroups, group_duplicates
from crawler.spill import from_blob, scratch_db, to_blob


@dataclass(slots=True)
class Entry:
    """What the builder knows of a spooled record: where it is, how it sorts, and what
    the duplicate annotation needs (never the text itself). Kept in :class:`EntryTable`."""

    kind: str  # "permalink" | "index"
    key: str  # canonical permalink
    order: tuple[str, str | None, int]  # deterministic choice among index sightings
    offset: int
    length: int
    url: str = ""
    id: str = ""
    text_sha256: str | None = None  # None: no text (never grouped)
    simhash: str = ""
    row: int = 0  # its row in the table

    def describe(self, record: Mapping[str, Any]) -> None:
        """Take the sort key and the hashes from the record as it will be written."""
        self.url, self.id = record["url"], record["id"]
        self.text_sha256 = record["hashes"]["text_sha256"] if record["text"] else None
        self.simhash = record["hashes"]["simhash"] if record["text"] else ""


class EntryTable:
    """The entries of every spooled record, in a private temporary SQLite file.

    An entry per article block seen (permalink pages and index pages alike) held in
    memory made a crawl's memory grow with its pages; here what ``close`` needs of them
    (which index sightings become records, the final order, the duplicate groups) is
    asked of SQLite, which sorts on disk. Text columns are blobs (:func:`to_blob`), so
    SQLite's order is Python's. Used from the pool's thread and the closing one, one at
    a time (the builder's lock).
    """

    def __init__(self) -> None:
        self.db = scratch_db(shared=True)
        # final: NULL for an index sighting not (yet) chosen, 0 a permalink record, 1 an
        # index-only record. Equal (url, id) keep a stable order: permalink records as they
        # came (row), then index-only records as their articles were first seen (tie).
        self.db.execute(
            "CREATE TABLE entries (row INTEGER PRIMARY KEY, kind TEXT NOT NULL, "
            "key BLOB NOT NULL, o_url BLOB, o_rid BLOB, o_fragment INTEGER, "
            "offset INTEGER NOT NULL, length INTEGER NOT NULL, url BLOB, id BLOB, "
            "sha TEXT, simhash TEXT, final INTEGER, tie INTEGER)"
        )

    def add(self, e: Entry) -> None:
        """Add an entry (an index sighting or a permalink record)."""
        permalink = e.kind == "permalink"
        o_url, o_rid, o_fragment = e.order
        cursor = self.db.execute(
            "INSERT INTO entries (kind, key, o_url, o_rid, o_fragment, offset, length, url, "
            "id, sha, simhash, final) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                e.kind,
                to_blob(e.key),
                to_blob(o_url),
                None if o_rid is None else to_blob(o_rid),
                o_fragment,
                e.offset,
                e.length,
                *self._described(e),
                0 if permalink else None,
            ),
        )
        e.row = int(cursor.lastrowid or 0)

    @staticmethod
    def _described(e: Entry) -> tuple[bytes | None, bytes | None, str | None, str]:
        if not e.id:  # an index sighting: described once chosen
            return None, None, None, ""
        return to_blob(e.url), to_blob(e.id), e.text_sha256, e.simhash

    def index_only(self, archived_before: Container[str]) -> dict[str, Entry]:
        """Per article seen only on index pages (no permalink record, not archived before):
        its first sighting in (page url, record id, fragment) order, keyed by permalink in
        the order the articles were first seen."""
        self.db.execute("CREATE INDEX IF NOT EXISTS entries_kind_key ON entries (kind, key)")
        rows = self.db.execute(
            "SELECT row, key, o_url, o_rid, o_fragment, offset, length FROM entries "
            "WHERE kind = 'index' AND key NOT IN "
            "(SELECT key FROM entries WHERE kind = 'permalink') "
            "ORDER BY key, o_url, o_rid, o_fragment, row"
        )
        found: list[tuple[int, str, Entry]] = []  # (first seen, key, first in order)
        for row, key_blob, o_url, o_rid, o_fragment, offset, length in rows:
            key = from_blob(key_blob)
            if found and found[-1][1] == key:
                first_seen, _, best = found[-1]
                found[-1] = (min(first_seen, row), key, best)
                continue
            if key in archived_before:
                continue
            rid = None if o_rid is None else from_blob(o_rid)
            best = Entry("index", key, (from_blob(o_url), rid, o_fragment), offset, length)
            best.row = row
            found.append((row, key, best))
        found.sort(key=lambda f: f[0])
        return {key: best for _, key, best in found}

    def choose(self, e: Entry, tie: int) -> None:
        """An index sighting becomes a record (``e`` describes it as rewritten)."""
        self.db.execute(
            "UPDATE entries SET offset = ?, length = ?, url = ?, id = ?, sha = ?, "
            "simhash = ?, final = 1, tie = ? WHERE row = ?",
            (e.offset, e.length, *self._described(e), tie, e.row),
        )

    def count(self) -> int:
        """Records the corpus will hold."""
        return self.db.execute("SELECT COUNT(*) FROM entries WHERE final IS NOT NULL").fetchone()[0]

    # The corpus's order: (url, id), ties as described in __init__.
    FINAL = "FROM entries WHERE final IS NOT NULL ORDER BY url, id, final, COALESCE(tie, row)"

    def duplicate_groups(self, max_distance: int) -> DuplicateGroups:
        """Exact groups and near clusters of the records, numbered in the final order."""
        n = self.count()
        text_groups = np.empty(n, np.int64)
        simhashes = np.zeros(n, np.uint64)
        rows = self.db.execute(
            "SELECT CASE WHEN sha IS NULL THEN -1 ELSE DENSE_RANK() OVER (ORDER BY sha) END, "
            "simhash " + self.FINAL
        )
        for i, (group, simhash) in enumerate(rows):
            text_groups[i] = group
            if group >= 0:
                simhashes[i] = int(simhash, 16)
        return group_duplicates(text_groups, simhashes, max_distance)

    def final_order(self) -> Iterator[tuple[int, int]]:
        """(offset, length) in the spool of every record, in the corpus's order."""
        yield from self.db.execute("SELECT offset, length " + self.FINAL)

    def close(self) -> None:
        """Close the scratch database (deleted with it)."""
        self.db.close()
