"""Hostile shapes the farm can serve (``--hostile KIND=N``): what a farm may send to
make a crawl slow or large (issue 19), for the bounds' tests and ``bench --hostile``.

Each shape is the farm's own response grown by N units of one kind; the farm's real
autoblogs stay as they are, so a crawl still finds, archives and extracts them.
"""

from __future__ import annotations

from .response import Response

OPENINGS = "&lt;script x &lt;link x "
CODE_TEXT = "function f( "


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def robots_txt(size: int) -> bytes:
    """``size`` bytes of rules: the first disallows every ``vvb.ini`` (obeyed by whoever
    reads the file at all), the filler nothing of the farm, the last line every autoblog
    (obeyed only by a crawler that reads the whole file)."""
    head = "User-agent: *\nDisallow: /*/vvb.ini\n"
    tail = "Disallow: /autoblogs/\n"
    line = "Disallow: /nowhere/0123456789\n"
    filler = line * max(0, (size - len(head) - len(tail)) // len(line))
    return (head + filler + tail).encode()


def reshape(shapes: dict[str, int], base: str, target: str, host: str, resp: Response) -> Response:
    """``resp`` (the farm's answer to ``target`` on ``host``) grown by the ``shapes`` asked
    for; ``base`` is the path of the farm's first autoblog."""

    def n(kind: str, default: int = 0) -> int:
        return shapes.get(kind, default)

    if target == "/robots.txt" and "robots" in shapes:
        return Response(200, robots_txt(n("robots")), [("Content-Type", "text/plain")])
    if target == base and ("links" in shapes or "escaped-script" in shapes):
        body = resp.body.decode("utf-8")
        size = n("escaped-script", 0)
        links = "".join(f'<img src="media/n{i}.png">' for i in range(n("links", 0)))
        text = f"<p>{_repeat(CODE_TEXT, size // 2)}</p>" if size else ""
        at = body.index('<div class="content">') + len('<div class="content">')
        body = body[:at] + links + text + body[at:]
        if size:
            at = body.rindex("</body>")
            body = body[:at] + _repeat(OPENINGS, size - size // 2) + body[at:]
        return Response(resp.status, body.encode(), resp.headers, resp.autoblog)
    if target == base + "?opml" and "headers" in shapes:
        extra = [(f"X-Filler-{i}", "x") for i in range(n("headers"))]
        return Response(resp.status, resp.body, resp.headers + extra, resp.autoblog)
    if target == "/" and "farm-index" in shapes:
        body = resp.body.decode("utf-8")
        at = body.index("</ul>", body.index('<section id="autoblogs"'))
        items = "".join(
            f'<li><header><a href="./autoblogs/h{i:07d}/">h{i}</a></header></li>'
            for i in range(n("farm-index"))
        )
        return Response(resp.status, (body[:at] + items + body[at:]).encode(), resp.headers)
    if target == "/?sitemap" and "sitemap" in shapes:
        body = resp.body.decode("utf-8")
        at = body.rindex("</urlset>")
        urls = "".join(
            f"<url><loc>http://{host}/autoblogs/h{i:07d}/</loc></url>\n"
            for i in range(n("sitemap"))
        )
        return Response(resp.status, (body[:at] + urls + body[at:]).encode(), resp.headers)
    if target == "/?export" and "export" in shapes:
        body = resp.body.decode("utf-8")
        at = body.rindex("}}")  # the end of "autoblogs", then of the document
        entries = "".join(f',"autoblogs\\/h{i:07d}":{{}}' for i in range(n("export")))
        if body[at - 1] == "{":  # no autoblog listed before
            entries = entries[1:]
        return Response(resp.status, (body[:at] + entries + body[at:]).encode(), resp.headers)
    return resp
