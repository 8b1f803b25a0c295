"""What the farm's root exports beside its index: ``?export`` (JSON), ``?exportopml``,
``?sitemap``, ``?rss``, as the real farm renders them (``/work/shared/autoblog-reference``)."""

from __future__ import annotations

from collections.abc import Callable

from . import render as R
from .content import Autoblog
from .response import Response


class FarmExports:
    """The root's exports of :class:`crawler.samplefarm.farm.Farm` (a mixin: the farm
    holds the state)."""

    now: int
    base_url: Callable[[Autoblog, str], str]  # the farm's (Farm.base_url)

    def farm_export(
        self, keys: dict[str, list[str]], listed: list[Autoblog], host: str
    ) -> Response | None:
        """The export the query names, or None (the index or another root resource)."""
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
        return None
