"""The history's SQL about articles: which permalinks each run saw, and their digests."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from crawler.urls import canonical_url


class ArticleQueries:
    """Part of :class:`crawler.history.store.History`: its connection, its batched commits."""

    conn: sqlite3.Connection
    _wrote: Callable[[], None]  # History's: one more write, committed in batches

    def has_article(self, permalink: str) -> bool:
        """Whether the history knows the article (any run)."""
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

    def article(self, permalink: str) -> dict[str, Any] | None:
        """The article's row (autoblog, first and last run, digest), or None."""
        row = self.conn.execute(
            "SELECT * FROM articles WHERE permalink = ?", (canonical_url(permalink),)
        )
        found = row.fetchone()
        return dict(found) if found else None

    def article_count(self) -> int:
        """Articles the history knows."""
        count: int = self.conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        return count

    def sightings_in_run(self, run_id: int) -> Iterator[tuple[Any, ...]]:
        """(permalink, autoblog, first run, digest now, last digest before, status of the
        permalink's last capture in the run or None) of a run's sightings, by permalink:
        what the change report compares. A cursor: read as the report goes."""
        return self.conn.execute(
            "SELECT s.permalink, a.autoblog, a.first_seen_run, s.normalized_digest, ("
            "  SELECT p.normalized_digest FROM article_sightings p WHERE p.permalink = s.permalink"
            "  AND p.run_id < s.run_id AND p.normalized_digest IS NOT NULL"
            "  ORDER BY p.run_id DESC LIMIT 1) AS previous, ("
            # "+": looked up by URL (captures_url), not by scanning the run's captures.
            "  SELECT c.status FROM captures c WHERE c.url = s.permalink AND +c.run_id = s.run_id"
            "  ORDER BY c.id DESC LIMIT 1) AS status_now "
            "FROM article_sightings s JOIN articles a ON a.permalink = s.permalink "
            "WHERE s.run_id = ? ORDER BY s.permalink",
            (run_id,),
        )

    def sighted_in(self, permalink: str, run_id: int) -> bool:
        """Did the run list or fetch this article (``permalink`` as stored: canonical)?"""
        row = self.conn.execute(
            "SELECT 1 FROM article_sightings WHERE permalink = ? AND run_id = ?",
            (permalink, run_id),
        )
        return row.fetchone() is not None

    def articles_not_seen_in(self, run_id: int) -> list[tuple[str, str]]:
        """(permalink, autoblog) of articles earlier runs saw and this one did not."""
        return self.conn.execute(
            "SELECT permalink, autoblog FROM articles WHERE first_seen_run < ? "
            "AND permalink NOT IN (SELECT permalink FROM article_sightings WHERE run_id = ?)",
            (run_id, run_id),
        ).fetchall()
