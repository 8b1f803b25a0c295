"""The farm: routes a request (path, query, host) to a rendered response. No I/O here."""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import replace
from datetime import datetime
from urllib.parse import parse_qs, quote, quote_plus, unquote

from . import render as R
from .content import BASE_NOW, PARIS, Article, Autoblog, load_seed, media_name
from .options import ENGINES, AutoblogSettings, FarmConfig
from .response import RESOURCES, Response, png_bytes, svg_bytes

HTML = "text/html; charset=UTF-8"
EDIT_TEXT = "Correction : ajout d’un paragraphe."


class Farm:
    """All autoblogs of one farm and the routing of requests to them."""

    def __init__(self, cfg: FarmConfig) -> None:
        self.cfg = cfg
        self.now = BASE_NOW - (cfg.seed % 1000) * 3607
        self.seed_data = load_seed()
        self.autoblogs: list[Autoblog] = []
        for i in range(cfg.autoblogs):
            s = AutoblogSettings(**vars(cfg.defaults))
            for f in cfg.faults:
                if f.target in ("*", str(i)):
                    s.apply(f.kind, f.value)
            ab = Autoblog(
                cfg.seed,
                i,
                cfg.engines[i % len(cfg.engines)],
                cfg.articles,
                s,
                self.now,
                self.seed_data,
            )
            for f in cfg.faults:  # folder targets, matched once folders are known
                if f.target in (ab.folder, ab.folder.removesuffix(".disabled")):
                    s.apply(f.kind, f.value)
            if s.disabled and not ab.folder.endswith(".disabled"):
                ab.folder += ".disabled"
            self.autoblogs.append(ab)
        self.by_folder = {ab.folder: ab for ab in self.autoblogs}
        self._next_index = cfg.autoblogs  # the index of the next autoblog added (add())
        self._db_cache: dict[str, tuple[int, bytes]] = {}
        self._edited: dict[str, dict[int, Article]] = {}  # see edit()
        self.farm_engine_02 = all(ab.engine == "0.2" for ab in self.autoblogs)

    # ------------------------------------------------------------------ helpers
    def listed(self) -> list[Autoblog]:
        return sorted(
            (a for a in self.autoblogs if not a.settings.disabled), key=lambda a: a.title.lower()
        )

    def base_url(self, ab: Autoblog, host: str) -> str:
        if ab.engine == "0.2":
            return f"http://{host}/{ab.folder}/"
        return f"http://{host}/autoblogs/{ab.folder}/"

    def permalink(self, ab: Autoblog, a: Article, host: str) -> str:
        base = self.base_url(ab, host)
        if ab.engine == "0.2":
            return base + a.uri
        if ab.engine == "0.1":
            return base + "?" + R.slug_01(a)
        return base + "?" + a.uri

    def resolve(self, ab: Autoblog, q: str) -> Article | None:
        c = ab.find_uri(q)
        return ab.article(c) if c is not None else None

    # ------------------------------------------------------------------ routing
    def handle(self, method: str, target: str, host: str) -> Response:
        resp = self._handle(method, target, host)
        if self.cfg.hostile:  # --hostile KIND=N: the response grown by a hostile shape
            from .hostile import reshape

            base = self.base_url(self.autoblogs[0], host).split(host, 1)[1]
            resp = reshape(self.cfg.hostile, base, target, host, resp)
        return resp

    def _handle(self, method: str, target: str, host: str) -> Response:
        path, _, query = target.partition("?")
        has_q = "?" in target
        if path == "/" or path == "/index.php":
            return self.farm_root(query, host)
        if path.startswith("/resources/"):
            name = path[len("/resources/") :]
            if name in RESOURCES:
                body, ctype = RESOURCES[name]
                return Response(200, body, [("Content-Type", ctype)])
            return self.plain_404(path)
        if path in ("/xsaf3.php", "/xsaf2.php"):
            return Response(200, b"", [("Content-type", HTML)])
        if path == "/robots.txt":
            if self.cfg.robots is None and self.cfg.crawl_delay is None:
                return self.plain_404(path)
            txt = self.cfg.robots if self.cfg.robots is not None else "User-agent: *\nDisallow:"
            txt = txt.replace("\\n", "\n").rstrip("\n") + "\n"
            if self.cfg.crawl_delay is not None:
                txt += f"Crawl-delay: {self.cfg.crawl_delay:g}\n"
            return Response(200, txt.encode(), [("Content-Type", "text/plain; charset=UTF-8")])
        m = re.match(r"^/autoblogs/([^/]+)(/.*)?$", path) or re.match(
            r"^/([0-9a-f]{40})(/.*)?$", path
        )
        if not m:
            return self.plain_404(path)
        ab = self.by_folder.get(unquote(m.group(1)))
        if ab is None or (ab.engine == "0.2") != (not path.startswith("/autoblogs/")):
            return self.plain_404(path)
        if ab.settings.status == 404:  # the folder is gone: the web server's own 404
            return self.plain_404(path)
        if ab.settings.status:
            body = f"<html><body><h1>Error {ab.settings.status}</h1></body></html>".encode()
            return Response(ab.settings.status, body, [("Content-Type", HTML)], ab)
        rest = m.group(2)
        if rest is None:  # no trailing slash: Apache redirects
            loc = f"http://{host}{path}/" + (f"?{query}" if has_q else "")
            return Response(301, b"", [("Location", loc), ("Content-type", HTML)], ab)
        resp = self.autoblog(ab, rest[1:], query, has_q, host, target)
        resp.autoblog = ab
        if ab.settings.content_type:  # its pages, as a misconfigured server labels them
            resp.headers = [
                (k, ab.settings.content_type if v.startswith("text/html") else v)
                for k, v in resp.headers
            ]
        return resp

    def plain_404(self, path: str) -> Response:
        body = (
            "<!doctype html><html><head><title>404 Not Found</title></head><body><h1>Not "
            f'Found</h1><p>The requested resource <code class="url">{R.esc(unquote(path))}'
            "</code> was not found on this server.</p></body></html>"
        )
        return Response(404, body.encode(), [("Content-Type", "text/html; charset=UTF-8")])

    # ------------------------------------------------------------------ farm root
    def farm_root(self, query: str, host: str) -> Response:
        listed = self.listed()
        keys = parse_qs(query, keep_blank_values=True)
        if "export" in keys:
            data = {
                "meta": {
                    "xsaf-version": 3,
                    "xsaf-db_transfer": "true",
                    "xsaf-media_transfer": "true",
                },
                "autoblogs": {
                    f"autoblogs/{ab.folder}": {
                        "SITE_TYPE": ab.site_type,
                        "SITE_TITLE": ab.title,
                        "SITE_URL": ab.site_url,
                        "FEED_URL": ab.feed_url,
                    }
                    for ab in sorted(listed, key=lambda a: a.folder)
                },
            }
            return Response(200, R.php_json(data).encode(), [("Content-Type", "application/json")])
        if "exportopml" in keys:
            outl = "".join(
                f'<outline title="{R.esc(ab.title)}" text="{ab.site_type}" '
                f'htmlUrl="{R.esc(ab.site_url)}" xmlUrl="{R.esc(ab.feed_url)}"/>'
                for ab in sorted(listed, key=lambda a: a.folder)
            )
            body = (
                f'<?xml version="1.0"?>\n<opml version="1.0"><head><title>Autoblog OPML export '
                f"from {host}</title><dateCreated>{R.rfc822(self.now)}</dateCreated></head>"
                f"<body>{outl}</body></opml>\n"
            )
            return Response(
                200,
                body.encode(),
                [
                    ("Content-type", "text/xml;charset=UTF-8"),
                    ("Content-Disposition", f'attachment; filename="autoblogs-{host}.xml"'),
                ],
            )
        if "sitemap" in keys:
            iso = R.iso_date(self.now)
            urls = "".join(
                f"<url>\n <loc>{self.base_url(ab, host)}</loc>\n <lastmod>{iso}</lastmod>\n"
                " <changefreq>hourly</changefreq>\n</url>\n\n"
                for ab in sorted(listed, key=lambda a: a.folder)
            )
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/'
                f'schemas/sitemap/0.9">\n<url>\n <loc>http://{host}/</loc>\n  <lastmod>{iso}'
                f"</lastmod>\n  <changefreq>daily</changefreq>\n</url>\n{urls}</urlset>"
            )
            return Response(200, body.encode(), [("Content-Type", "application/xml")])
        if "rss" in keys:
            items = []
            for ab in listed:
                u = f"http://{host}/./" + self.base_url(ab, host).split("/", 3)[3]
                t = R.esc(ab.title)
                items.append(
                    f'\n<item>\n\t<title>{t}</title>\n\t<description><![CDATA[Autoblog "{t}" '
                    f'ajouté.<br>Autoblog : <a href="{u}">{t}</a><br>Site : <a href="'
                    f'{ab.site_url}">{ab.site_url}</a><br>RSS : <a href="{ab.feed_url}">'
                    f"{ab.feed_url}</a>]]></description>\n\t<link>{u}</link>\n\t<guid "
                    f'isPermaLink="false">{self.now}</guid>\n\t<dc:creator>Autoblog</dc:creator>'
                    f"\n\t<pubDate>{R.rfc822(self.now)}</pubDate>\n</item>"
                )
            body = (
                '<?xml version="1.0" encoding="UTF-8" ?>\n\t<rss version="2.0" xmlns:atom='
                '"http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/">'
                f'<channel><link>http://{host}/</link><atom:link href="http://{host}//?rss" '
                'rel="self" type="application/rss+xml"/><title>Projet Autoblog</title>'
                "<description>Projet Autoblog - RSS : Ajouts et changements de disponibilité."
                f"</description>{''.join(items)}</channel></rss>"
            )
            return Response(
                200, body.encode(), [("Content-type", "application/rss+xml; charset=utf-8")]
            )
        if "check" in keys:  # 0.2 status icon
            return Response(200, svg_bytes("#4a4"), [("Content-Type", "image/svg+xml")])
        if self.farm_engine_02:
            return Response(200, R.farm_index_02(host, listed).encode(), [("Content-type", HTML)])
        return Response(200, R.farm_index_03(host, listed).encode(), [("Content-type", HTML)])

    # ------------------------------------------------------------------ one autoblog
    def vvb_ini(self, ab: Autoblog) -> str:
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

    def autoblog(
        self, ab: Autoblog, rest: str, query: str, has_q: bool, host: str, target: str
    ) -> Response:
        charset = "ISO-8859-1" if ab.settings.latin1 else "UTF-8"
        html_type = f"text/html; charset={charset}"
        if rest == "vvb.ini":
            return Response(
                200,
                self.vvb_ini(ab).encode(),
                [("Content-Type", "text/plain; charset=UTF-8")],
                static=True,
            )
        if rest == "articles.db":
            return Response(
                200,
                self.articles_db(ab),
                [("Content-Type", "application/octet-stream")],
                static=True,
            )
        if rest.startswith("media/"):
            name = unquote(rest[6:])
            if name in ab.media_files():
                if name.endswith(".svg"):
                    return Response(
                        200, svg_bytes(), [("Content-Type", "image/svg+xml")], static=True
                    )
                return Response(
                    200, png_bytes(name, 16), [("Content-Type", "image/png")], static=True
                )
            return self.plain_404("/" + rest)
        if ab.engine == "0.2":
            return self.autoblog_02(ab, unquote(rest), query, host, html_type, charset)
        if rest not in ("", "index.php"):
            return self.plain_404("/" + rest)
        local_url = f"http://{host}{target}"
        keys = parse_qs(query, keep_blank_values=True)
        if "feed" in keys:
            return self.feed(ab, host, local_url)
        if "opml" in keys:
            body = (
                f'<?xml version="1.0"?>\n<opml version="1.0"><head><title>{R.esc(ab.title)}'
                f"</title><dateCreated>{R.rfc822(self.now)}</dateCreated></head><body><outline "
                f'title="{R.esc(ab.title)}" text="{ab.site_type}" htmlUrl="{R.esc(ab.site_url)}" '
                f'xmlUrl="{R.esc(ab.feed_url)}"/></body></opml>\n'
            )
            return Response(
                200,
                body.encode(),
                [
                    ("Content-type", "text/xml;charset=UTF-8"),
                    ("Content-Disposition", f'attachment; filename="{ab.title}.xml"'),
                ],
            )
        if "media" in keys:
            files = {str(i + 2): n for i, n in enumerate([".htaccess", *ab.media_files()])}
            body = R.php_json({"url": local_url.replace("?media", "media/"), "files": files})
            return Response(200, body.encode(), [("Content-Type", "application/json")])
        if "update" in keys:
            query = ""
        search = (keys.get("q") or [""])[0].strip()
        status = 200
        update = ab.settings.update or "update" in keys
        if ab.engine == "0.1":
            return self.autoblog_01(ab, query, host, local_url, html_type, charset, update)
        parts: list[str] = []
        page = None
        if search:
            results = self.search(ab, search)
            parts.append(
                R.search_034(search, results)
                if ab.engine != "0.3.0"
                else "".join(
                    '\n        <div class="article result">\n'
                    f'            <h3><a href="./?{R.esc(a.uri)}">'
                    f"{R.esc(a.title)}</a></h3>\n            <p>{a.content}</p>\n        </div>"
                    for a in results
                )
            )
        elif query and not query.isdigit():
            uri = unquote(query)
            a = self.resolve(ab, uri)
            if a is None:
                status = 404
                parts.append(R.not_found_034(uri) if ab.engine != "0.3.0" else R.not_found_030(uri))
            else:
                parts.append(R.article_034(ab, a) if ab.engine != "0.3.0" else R.article_030(ab, a))
        else:
            page = max(1, int(query)) if query else 1
            for c in ab.page_cs(page):
                a = ab.article(c)
                parts.append(R.article_034(ab, a) if ab.engine != "0.3.0" else R.article_030(ab, a))
        if ab.engine == "0.3.0":
            out = R.head_030(ab, local_url, search, charset)
            if ab.settings.trailer == "strftime":
                out += R.error_trailer(ab, host, target)
            else:
                out += (R.UPDATE_030 if update else "") + "".join(parts)
                if page is not None:
                    out += R.pagination_030(ab, page)
                out += R.FOOTER_030 + "\n</body>\n</html>"
        else:
            out = R.head_034(ab, local_url, search, charset)
            if ab.settings.trailer == "strftime":
                out += R.error_trailer(ab, host, target)
            else:
                out += (R.UPDATE_034 if update else "") + "".join(parts)
                if page is not None and ab.count:
                    out += R.nav_034(ab, page)
                out += R.FOOTER_034
                if ab.settings.trailer == "footer":
                    out += R.error_trailer(ab, host, target) + "\n"
                out += (R.UPDATE_SCRIPT_034 if update else "") + "  </body>\n</html>"
        return Response(status, self.encode(out, charset), [("Content-type", html_type)])

    @staticmethod
    def encode(text: str, charset: str) -> bytes:
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

    def autoblog_02(
        self, ab: Autoblog, rest: str, query: str, host: str, html_type: str, charset: str
    ) -> Response:
        """0.2 farm with rewrite rule: /<sha1>/N pages, /<sha1>/<slug> articles."""
        base = self.base_url(ab, host)
        search = (parse_qs(query).get("q") or [""])[0].strip()
        status, parts, page = 200, [], None
        if search:
            parts = [
                R.article_030(ab, a, base + R.esc(a.uri), True) for a in self.search(ab, search)
            ]
        elif rest == "" or rest.isdigit():
            page = max(1, int(rest)) if rest else 1
            parts = [
                R.article_030(ab, ab.article(c), base + R.esc(ab.article(c).uri), True)
                for c in ab.page_cs(page)
            ]
        else:
            a = self.resolve(ab, rest)
            if a is None:
                status = 404
                parts = [R.not_found_030(rest, base + rest)]
            else:
                parts = [R.article_030(ab, a, base + R.esc(a.uri), True)]
        out = R.head_02(ab, base, search, charset) + "".join(parts)
        if page is not None:
            out += R.pagination_030(ab, page, lambda i: f"{base}{i}")
        out += R.footer_02(base)
        return Response(status, self.encode(out, charset), [("Content-type", html_type)])

    def autoblog_01(
        self,
        ab: Autoblog,
        query: str,
        host: str,
        local_url: str,
        html_type: str,
        charset: str,
        update: bool,
    ) -> Response:
        """0.1 standalone: ?pageN, ?YYYYMMDD_HHMMSS_title, RFC 822 dates, Older/Newer only.
        The 0.1 source was not available: markup follows the 0.2 div layout (unverified)."""
        status, parts, page = 200, [], None
        m = re.fullmatch(r"page(\d+)", query)
        if not query or m:
            page = max(1, int(m.group(1))) if m else 1
            arts = [ab.article(c) for c in ab.page_cs(page)]
        else:
            target = unquote(query)
            arts = [a for a in (ab.article(c) for c in range(ab.count)) if R.slug_01(a) == target]
            if not arts:
                status = 404
                parts.append(R.not_found_030(target, "?" + target))
        for a in arts:
            parts.append(R.article_030(ab, a, "?" + R.esc(R.slug_01(a)), True))
        out = (
            R.head_030(ab, local_url, "", charset)
            + (R.UPDATE_030 if update else "")
            + "".join(parts)
        )
        if page is not None:
            links = []
            if page > 1:
                links.append(f'<a href="?page{page - 1}">&larr; Newer</a>')
            if page < ab.last_page():
                links.append(f'<a href="?page{page + 1}">Older &rarr;</a>')
            out += '<div class="pagination">' + " ".join(links) + "</div>"
        out += (
            '\n<div class="footer">\n    <p>Powered by VroumVroumBlog 0.1 - <a href="?feed">'
            "RSS Feed</a></p>\n</div>\n</body>\n</html>"
        )
        return Response(status, self.encode(out, charset), [("Content-type", html_type)])

    # ------------------------------------------------------------------ control interface
    def truth(self, host: str) -> dict:
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


__all__ = ["Farm", "Response", "media_name"]
