"""The sample farm's control interface: what a test asks of the farm it crawls.

``truth`` is what the farm holds (the test oracle); ``grow``, ``edit``, ``delete``,
``add``, ``remove`` and ``fault`` change it between crawls, as a real farm changes
between scheduled runs. Served on the farm's ``/__control/`` URLs (crawler.samplefarm.server).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import render as R
from .content import PARIS, Article, Autoblog
from .options import ENGINES, AutoblogSettings

if TYPE_CHECKING:
    from .options import FarmConfig

EDIT_TEXT = "Correction : ajout d’un paragraphe."


class FarmControl:
    """The control interface of :class:`crawler.samplefarm.farm.Farm` (a mixin: the farm
    holds the state)."""

    cfg: FarmConfig
    now: int
    autoblogs: list[Autoblog]
    by_folder: dict[str, Autoblog]
    _next_index: int
    _edited: dict[str, dict[int, Article]]

    _db_cache: dict[str, tuple[int, bytes]]
    seed_data: dict[str, Any]
    permalink: Callable[[Autoblog, Article, str], str]  # the farm's
    base_url: Callable[[Autoblog, str], str]  # the farm's

    def truth(self, host: str) -> dict:
        """Every listed autoblog and its articles, as the farm serves them."""
        out = {}
        for ab in self.autoblogs:
            arts = []
            for c in range(ab.count - 1, -1, -1):
                a = ab.article(c)
                pl = self.permalink(ab, a, host)
                arts.append(
                    {
                        "permalink": pl,
                        "url": quote(pl, safe=":/?&=%#()"),
                        "slug": a.uri,
                        "title": a.title,
                        "date": R.iso_date(a.date),
                        "source_url": a.url,
                        "text": a.text,
                        "kind": ab.shape_of(c) or ab.kind_of(c),
                        "media": a.media,
                        # A numeric slug is served as a page number, but a 0.1
                        # permalink puts the date before it.
                        "reachable": a.reachable or ab.engine == "0.1",
                    }
                )
            out[ab.folder] = {
                "engine": ab.engine,
                "base_url": self.base_url(ab, host),
                "title": ab.title,
                "site_url": ab.site_url,
                "feed_url": ab.feed_url,
                "site_type": ab.site_type,
                "articles_per_page": ab.per_page,
                "disabled": ab.settings.disabled,
                "archived": ab.settings.archived,
                "latin1": ab.settings.latin1,
                "pages": ab.last_page() if ab.count else 0,
                "articles": arts,
            }
        return {"now": datetime.fromtimestamp(self.now, PARIS).isoformat(), "autoblogs": out}

    def _find(self, folder: str | None) -> Autoblog:
        ab = self.by_folder.get(folder) if folder else self.autoblogs[0]
        if ab is None:
            raise KeyError(folder)
        return ab

    def _listing(self, ab: Autoblog, cs: list[int], host: str) -> list[dict]:
        return [
            {
                "permalink": self.permalink(ab, ab.article(c), host),
                "title": ab.article(c).title,
                "date": R.iso_date(ab.article(c).date),
            }
            for c in cs
        ]

    def grow(self, folder: str | None, n: int, host: str) -> dict:
        """Publish ``n`` new articles in an autoblog; returns them."""
        ab = self._find(folder)
        new = ab.grow(max(0, n))
        return {
            "autoblog": ab.folder,
            "count": ab.count,
            "articles": self._listing(ab, list(reversed(new)), host),
        }

    def edit(self, folder: str | None, c: int, host: str, text: str = EDIT_TEXT) -> dict:
        """The author corrects article ``c`` (0 = the oldest): a paragraph is appended.

        Its permalink page, the index page listing it, articles.db and (if it is recent
        enough to be in it) the feed change; its date, slug and place do not. The
        truth's ``text`` follows (one more line, by the truth rule).
        """
        ab = self._find(folder)
        if not 0 <= c < ab.count:
            raise IndexError(f"{ab.folder} has no article {c} (0..{ab.count - 1})")
        a = ab.article(c)
        line = unicodedata.normalize("NFC", re.sub(r"[ \t\n\r\f]+", " ", text).strip())
        edited = replace(
            a,
            content=a.content + f"<p>{R.esc(text)}</p>",
            text="\n".join(t for t in (a.text, line) if t),
        )
        self._pinned(ab)[c] = edited
        self._db_cache.pop(ab.folder, None)
        return {
            "autoblog": ab.folder,
            "count": ab.count,
            "articles": self._listing(ab, [c], host),
        }

    def delete(self, folder: str | None, n: int, host: str) -> dict:
        """The ``n`` newest articles are deleted (as an admin removing feed items)."""
        ab = self._find(folder)
        n = min(max(0, n), ab.count)
        gone = list(range(ab.count - 1, ab.count - 1 - n, -1))
        listing = self._listing(ab, gone, host)
        ab.count -= n
        ab._slug_index = None  # rebuilt from the remaining articles on the next lookup
        for c in gone:  # grown again later, it comes back as first generated
            self._edited.get(ab.folder, {}).pop(c, None)
        self._db_cache.pop(ab.folder, None)
        return {"autoblog": ab.folder, "count": ab.count, "articles": listing}

    def add(self, engine: str, n: int, host: str) -> dict:
        """A new autoblog of ``n`` articles (the admin adds a feed): listed from now on."""
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}")
        settings = AutoblogSettings(**vars(self.cfg.defaults))
        index, self._next_index = self._next_index, self._next_index + 1
        ab = Autoblog(self.cfg.seed, index, engine, max(0, n), settings, self.now, self.seed_data)
        self.autoblogs.append(ab)
        self.by_folder[ab.folder] = ab
        return {"autoblog": ab.folder, "base_url": self.base_url(ab, host), "count": ab.count}

    def remove(self, folder: str | None) -> dict:
        """The admin deletes an autoblog's folder: unlisted, and every URL of it answers 404."""
        ab = self._find(folder)
        self.autoblogs.remove(ab)
        del self.by_folder[ab.folder]
        self._db_cache.pop(ab.folder, None)
        self._edited.pop(ab.folder, None)
        return {"autoblog": ab.folder, "count": ab.count}

    def fault(self, folder: str | None, spec: str) -> dict:
        """Switch a fault of an autoblog on or off while the farm runs (``error=1``: every
        request answers 500 or 503; ``error=0``: it recovers). Only the faults that leave
        the autoblog's identity and articles as they are (not ``disabled``, ``archived``,
        ``type`` nor ``shapes``)."""
        ab = self._find(folder)
        kind, _, value = spec.partition("=")
        if kind in ("disabled", "archived", "type", "shapes"):
            raise ValueError(f"{kind} cannot change while the farm runs")
        ab.settings.apply(kind, value if _ else None)
        return {"autoblog": ab.folder, "settings": vars(ab.settings)}

    def _pinned(self, ab: Autoblog) -> dict[int, Article]:
        """Edited articles of ``ab``, served in place of the generated (and cached) ones."""
        pinned = self._edited.get(ab.folder)
        if pinned is None:
            pinned = self._edited[ab.folder] = {}
            generated = ab._article

            def article(c: int) -> Article:
                return pinned[c] if c in pinned else generated(c)

            ab._article = article
        return pinned
