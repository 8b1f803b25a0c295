"""The files every autoblog serves beside its pages: ``vvb.ini``, ``articles.db`` (a real
SQLite file), the Atom ``?feed``; and the engine's search and text encoding."""

from __future__ import annotations

import sqlite3
from urllib.parse import quote_plus

from . import render as R
from .content import Article, Autoblog
from .response import Response


class EngineFiles:
    """The engine files of :class:`crawler.samplefarm.farm.Farm` (a mixin: the farm holds
    the state)."""

    now: int
    _db_cache: dict[str, tuple[int, bytes]]

    def vvb_ini(self, ab: Autoblog) -> str:
        """The autoblog's ``vvb.ini``."""
        return (
            "[VroumVroumBlogConfig]\n"
            f'SITE_TYPE="{ab.site_type}"\nSITE_TITLE="{ab.title}"\n'
            f"SITE_DESCRIPTION=\"source: <a href='{ab.site_url}'>{ab.title}</a>\"\n"
            f'SITE_URL="{ab.site_url}"\nFEED_URL="{ab.feed_url}"\n'
            f'ARTICLES_PER_PAGE="{ab.per_page}"\nUPDATE_INTERVAL="3600"\nUPDATE_TIMEOUT="30"\n'
        )

    def articles_db(self, ab: Autoblog) -> bytes:
        """A real SQLite file with the engine's schema, built lazily, rebuilt after grow."""
        cached = self._db_cache.get(ab.folder)
        if cached and cached[0] == ab.count:
            return cached[1]
        con = sqlite3.connect(":memory:")
        con.executescript(
            "CREATE TABLE articles (id INTEGER PRIMARY KEY, feed_id TEXT, title TEXT, uri TEXT,"
            " url TEXT, date INT, content TEXT);"
            "CREATE TABLE update_log (date INT PRIMARY KEY, success INT, log TEXT);"
            "CREATE UNIQUE INDEX feed_id ON articles (feed_id);"
            "CREATE INDEX date ON articles (date);"
        )
        rows = []
        for c in range(ab.count):
            a = ab.article(c)
            rows.append((a.id, a.feed_id, a.title, a.uri, a.url, a.date, a.content))
        con.executemany("INSERT INTO articles VALUES (?,?,?,?,?,?,?)", sorted(rows))
        con.execute(
            "INSERT INTO update_log VALUES (?, 1, ?)", (self.now, f"{ab.count} elements updated")
        )
        con.commit()
        data = con.serialize()
        con.close()
        self._db_cache[ab.folder] = (ab.count, data)
        return data

    @staticmethod
    def encode(text: str, charset: str) -> bytes:
        """``text`` in the autoblog's charset (Latin-1 with character references)."""
        if charset == "UTF-8":
            return text.encode()
        return text.encode("latin-1", "xmlcharrefreplace")

    def search(self, ab: Autoblog, q: str) -> list[Article]:
        """SQLite LIKE '%q%' on content or title (ASCII case-insensitive), ORDER BY id DESC."""
        ql = q.lower()
        hits = []
        for c in range(ab.count):
            a = ab.article(c)
            if ql in a.content.lower() or ql in a.title.lower():
                hits.append(a)
        hits.sort(key=lambda a: -a.id)
        return hits[:100]

    def feed(self, ab: Autoblog, host: str, local_url: str) -> Response:
        """The autoblog's RSS feed (its two newest pages)."""
        base = local_url.replace("?feed", "?")
        entries = []
        for c in ab.page_cs(1) + ab.page_cs(2):
            a = ab.article(c)
            link = base + quote_plus(a.uri, safe="")
            entries.append(
                "\n            <entry>\n\t\t\t\t\t<author>\n"
                f"\t\t\t\t\t<name>{R.esc(ab.title)}</name>\n\t\t\t\t\t<uri>{R.esc(ab.site_url)}</uri>\n"
                "\t\t\t\t\t</author>\n"
                f'                <title type="html"><![CDATA[{R.esc(a.title)}]]></title>\n'
                f'\t\t\t\t<link rel="alternate" type="text/html" href="{link}" />\n'
                f"                <id>{link}</id>\n"
                f"                <updated>{R.iso_date(a.date)}</updated>\n\n"
                '                <content type="html">\n'
                f'                    <![CDATA[(<a href="{R.esc(a.url)}">source</a>)<br />'
                f"{a.content}]]>\n"
                "                </content>\n            </entry>"
            )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n\t<feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:thr="http://purl.org/syndication/thread/1.0" xml:lang="fr-FR">\n'
            f'        <title type="text">{R.esc(ab.title)}</title>\n'
            f'        <subtitle type="text">source: {R.esc(ab.title)}</subtitle>\n'
            f"\t\t<updated>{R.iso_date(self.now)}</updated>\n"
            f'        <link rel="alternate" type="text/html" href="{local_url}" />\n'
            f"\t\t<id>{local_url}</id>\n"
            f'\t\t<link rel="self" type="application/atom+xml" href="{local_url}" />\n'
            '\t\t<generator uri="https://github.com/mitsukarenai/Projet-Autoblog" version="3">'
            f"Projet Autoblog</generator>{''.join(entries)}\n    </feed>"
        )
        return Response(
            200, body.encode(), [("Content-Type", "application/atom+xml; charset=UTF-8")]
        )
