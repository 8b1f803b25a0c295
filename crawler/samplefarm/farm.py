"""The farm: routes a request (path, query, host) to a rendered response. No I/O here."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote

from . import render as R
from .content import BASE_NOW, Article, Autoblog, load_seed, media_name
from .control import FarmControl
from .engine_files import EngineFiles
from .exports import FarmExports
from .options import AutoblogSettings, FarmConfig
from .response import RESOURCES, Response, png_bytes, svg_bytes

HTML = "text/html; charset=UTF-8"


class Farm(FarmControl, EngineFiles, FarmExports):
    """All autoblogs of one farm and the routing of requests to them (its control
    interface: :class:`.control.FarmControl`; its engine files:
    :class:`.engine_files.EngineFiles`; its exports: :class:`.exports.FarmExports`)."""

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
        """The autoblogs the farm lists, by title."""
        return sorted(
            (a for a in self.autoblogs if not a.settings.disabled), key=lambda a: a.title.lower()
        )

    def base_url(self, ab: Autoblog, host: str) -> str:
        """The autoblog's base URL (0.2 has no ``autoblogs/`` folder)."""
        if ab.engine == "0.2":
            return f"http://{host}/{ab.folder}/"
        return f"http://{host}/autoblogs/{ab.folder}/"

    def permalink(self, ab: Autoblog, a: Article, host: str) -> str:
        """The article's permalink, as its engine writes it."""
        base = self.base_url(ab, host)
        if ab.engine == "0.2":
            return base + a.uri
        if ab.engine == "0.1":
            return base + "?" + R.slug_01(a)
        return base + "?" + a.uri

    def resolve(self, ab: Autoblog, q: str) -> Article | None:
        """The article at ``?q``, or None."""
        c = ab.find_uri(q)
        return ab.article(c) if c is not None else None

    # ------------------------------------------------------------------ routing
    def handle(self, method: str, target: str, host: str) -> Response:
        """The farm's answer to ``method target`` on ``host``."""
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
        """Apache's 404 page for ``path``."""
        body = (
            "<!doctype html><html><head><title>404 Not Found</title></head><body><h1>Not "
            f'Found</h1><p>The requested resource <code class="url">{R.esc(unquote(path))}'
            "</code> was not found on this server.</p></body></html>"
        )
        return Response(404, body.encode(), [("Content-Type", "text/html; charset=UTF-8")])

    # ------------------------------------------------------------------ farm root
    def farm_root(self, query: str, host: str) -> Response:
        """The farm's root: its index page, or an export it asks for."""
        listed = self.listed()
        keys = parse_qs(query, keep_blank_values=True)
        exported = self.farm_export(keys, listed, host)
        if exported is not None:
            return exported
        if "check" in keys:  # 0.2 status icon
            return Response(200, svg_bytes("#4a4"), [("Content-Type", "image/svg+xml")])
        if self.farm_engine_02:
            return Response(200, R.farm_index_02(host, listed).encode(), [("Content-type", HTML)])
        return Response(200, R.farm_index_03(host, listed).encode(), [("Content-type", HTML)])

    # ------------------------------------------------------------------ one autoblog
    def autoblog(
        self, ab: Autoblog, rest: str, query: str, has_q: bool, host: str, target: str
    ) -> Response:
        """An autoblog's answer: its pages, articles, search, feed or engine files."""
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


__all__ = ["Farm", "Response", "media_name"]
