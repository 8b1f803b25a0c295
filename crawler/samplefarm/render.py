"""Page templates per engine, copied from the real engine's output (reference pages) and,
for the parts the reference does not show, from the engine's PHP source."""

# ruff: noqa: E501 - template lines are copied verbatim from the engine's output

from __future__ import annotations

import html
import json
from datetime import datetime
from email.utils import format_datetime

from . import templates as T
from .content import PARIS, Article, Autoblog

JOURS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
MOIS = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]


def esc(s: str) -> str:
    """PHP htmlspecialchars (ENT_QUOTES off for single quotes, as escape() in functions.php)."""
    return html.escape(s, quote=False).replace('"', "&quot;")


def fr_date(ts: int) -> str:
    """strftime('%A %e %B %Y à %H:%M') in fr_FR, Europe/Paris: days 1-9 padded with a space."""
    d = datetime.fromtimestamp(ts, PARIS)
    return f"{JOURS[d.weekday()]} {d.day:2d} {MOIS[d.month - 1]} {d.year} à {d:%H:%M}"


def iso_date(ts: int) -> str:
    """PHP date(DATE_ATOM) in Europe/Paris."""
    return datetime.fromtimestamp(ts, PARIS).isoformat()


def rfc822(ts: int) -> str:
    """PHP date('r') in Europe/Paris."""
    return format_datetime(datetime.fromtimestamp(ts, PARIS))


def php_json(obj: object) -> str:
    """json_encode: ASCII with \\uXXXX escapes and escaped slashes."""
    return json.dumps(obj, separators=(",", ":")).replace("/", "\\/")


def date_text(ab: Autoblog, ts: int) -> str:
    """An article's date as the engine shows it."""
    if ab.engine == "2025":
        return iso_date(ts)
    if ab.engine == "0.1":
        return rfc822(ts)
    return fr_date(ts)


def error_trailer(ab: Autoblog, host: str, uri: str) -> str:
    """The text PHP's exception_handler prints ("Error happened !")."""
    return (
        "Error happened !\n\n8192 - Function strftime() is deprecated\n\nIn: "
        f"/var/www/html/autoblogs/{ab.folder}/index.php:398\n\nhttp://{host}{uri}\n\n"
        f"#0 [internal function]: exception_error_handler(8192, 'Function strftim...', "
        f"'/var/www/html/a...', 398)\n#1 /var/www/html/autoblogs/{ab.folder}/index.php(398): "
        "strftime('%A %e %B %Y \\xC3...', 1674482640)\n#2 {main}"
    )


# ------------------------------------------------------------------------- 0.3.1+ (and 2025)
UPDATE_034 = """    <article>
      <header>
        <h2>Mise à jour</h2>
      </header>
      <div class="content" id="update">
        Mise à jour de la base de données, veuillez patienter...
      </div>
    </article>
"""
UPDATE_SCRIPT_034 = """    <script type="text/javascript">
      window.onload = function () {
        document.getElementById("update").innerHTML = "Mise à jour terminée ! <a href=\\"#reload\\" onclick=\\"window.location.reload();\\">Cliquez ici pour recharger cette page.</a>";
      };
    </script>
"""
FOOTER_034 = """    <footer>
      <p>Propulsé par <a href="https://github.com/mitsukarenai/Projet-Autoblog">Projet Autoblog 0.3.0</a> - <a href="?feed">Flux ATOM</a></p>
      <p>Download: <a href="./vvb.ini">configuration</a> (<a href="?opml">OPML</a>)
        — <a href="./articles.db">articles</a></p>
      <p><a href="./?media">Export fichiers media <sup> JSON</sup></a></p>
    </footer>
"""


def head_034(ab: Autoblog, local_url: str, q: str, charset: str) -> str:
    """The head of a 0.3.4 page."""
    t = esc(ab.title)
    css = T.CSS_034_SHAARLI if ab.site_type == "shaarli" else T.CSS_034_YOUTUBE
    archived = "Archivé" if ab.settings.archived else ""
    desc = "Site original : " if ab.settings.archived else "source: "
    return (
        "<!DOCTYPE html>\n"
        '<html lang="fr" dir="ltr">\n'
        "  <head>\n"
        f'    <meta http-equiv="Content-Type" content="text/html; charset={charset}" '
        f'charset="{charset.lower()}" />\n'
        f"    <title>{t}</title>\n"
        f'    <link rel="canonical" href="{esc(ab.site_url)}">\n'
        '    <link rel="alternate" type="application/atom+xml" title="Flux ATOM" href="?feed">\n'
        '    <style type="text/css" media="screen,projection">\n'
        f"{css}    </style>\n"
        "  </head>\n"
        "  <body>\n"
        "    <header>\n"
        '      <h1><a href="../../" style="font-size:0.8em;">PROJET AUTOBLOG</a></h1>\n'
        "      <hr />\n"
        f'      <h1><a href="./">{t}</a></h1>{archived}\n'
        f"      <p>{desc}<a href='{esc(ab.site_url)}'>{t}</a></p>\n"
        '      <p><a href="../../">&lArr; retour index</a></p>\n'
        f'      <form method="get" action="{esc(local_url)}">\n'
        f'        <input type="search" name="q" value="{esc(q)}" />\n'
        '        <input type="submit" value="Recherche" />\n'
        "      </form>\n"
        "    </header>\n\n"
    )


def article_034(ab: Autoblog, a: Article) -> str:
    """An article block of a 0.3.4 page."""
    return (
        "    <article>\n"
        "      <header>\n"
        f'        <h2><a href="./?{esc(a.uri)}">{esc(a.title)}</a></h2>\n'
        f"        {date_text(ab, a.date)}\n"
        "      </header>\n"
        f'      <div class="content">{a.content}</div>\n'
        f'      <footer class="source"><p>Source : <a href="{esc(a.url)}">{esc(a.url)}</a></p>'
        "</footer>\n"
        "    </article>\n"
    )


def nav_034(ab: Autoblog, page: int) -> str:
    """0.3.2+ <nav>: every page listed; 0.3.1 prints the same links without rel."""
    if ab.count <= ab.per_page:
        return ""
    last = ab.last_page()
    rel = ab.engine != "0.3.1"
    out = ["    <nav>\n"]
    if page > 1:
        r = ' rel="prev"' if rel else ""
        out.append(f'      <a{r} href="./?{page - 1}">&larr; Plus récents</a>\n')
    for i in range(1, last + 1):
        out.append(
            f"      <strong>{i}</strong>\n" if i == page else f'      <a href="./?{i}">{i}</a>\n'
        )
    if page < last:
        r = ' rel="next"' if rel else ""
        out.append(f'      <a{r} href="./?{page + 1}">Plus anciens &rarr;</a>\n')
    out.append("    </nav>\n")
    return "".join(out)


def not_found_034(uri: str) -> str:
    """The 0.3.4 "not found" block."""
    return (
        "    <article>\n"
        "      <header>\n"
        "        <h2>Introuvable</h2>\n"
        f"        <p><tt>./?{esc(uri)}</tt></p>\n"
        "        Cet article n'a pas été trouvé.\n"
        "      </header>\n"
        "    </article>\n"
    )


def search_034(q: str, results: list[Article]) -> str:
    """The 0.3.4 search results."""
    out = [
        '    <article id="results">\n      <header>\n        <h2>Recherche</h2>\n'
        f"        <strong>{len(results)}</strong> results for <em>{esc(q)}</em>\n"
        "      </header>\n    <article>\n"
    ]
    for a in results:
        out.append(
            '    <article class="result">\n      <header>\n'
            f'        <h3><a href="./?{esc(a.uri)}">{esc(a.title)}</a></h3>\n'
            f"      </header>\n      <p>{a.content}</p>\n    </article>\n"
        )
    return "".join(out)


# ------------------------------------------------------------------------- 0.3.0
def head_030(ab: Autoblog, local_url: str, q: str, charset: str) -> str:
    """The head of a 0.3.0 page."""
    t = esc(ab.title)
    return (
        "\n<!DOCTYPE html>\n"
        '<html lang="en" dir="ltr">\n'
        "<head>\n"
        f'    <meta http-equiv="Content-Type" content="text/html; charset={charset}">\n'
        f"    <title>{t}</title>\n"
        f'    <link rel="canonical" href="{esc(ab.site_url)}">\n'
        '    <link rel="alternate" type="application/atom+xml" title="Flux ATOM" href="?feed">\n'
        '    <style type="text/css" media="screen,projection">\n'
        f"{T.CSS_030}    </style>\n"
        "</head>\n<body>\n"
        '<div class="header">\n'
        '    <h1><a href="../../" style="font-size:0.8em;">PROJET AUTOBLOG</a></h1>\n'
        "    <hr>\n"
        f"    <h1><a href=\"./\">{t}</a></h1><p>source: <a href='{esc(ab.site_url)}'>{t}</a>"
        '<br><a href="../../">&lArr; retour index</a></p>\n'
        f'    <form method="get" action="{esc(local_url)}" class="searchForm">\n'
        "    <div>\n"
        f'        <input type="text" name="q" value="{esc(q)}">\n'
        '        <input type="submit" value="Recherche">\n'
        "    </div>\n"
        "    </form>\n"
        "</div>\n"
    )


def article_030(ab: Autoblog, a: Article, href: str | None = None, h4: bool = False) -> str:
    """An article block of a 0.3.0 page."""
    href = href if href is not None else f"./?{esc(a.uri)}"
    d = date_text(ab, a.date)
    return (
        '\n    <div class="article">\n'
        '        <div class="title">\n'
        f'            <h2><a href="{href}">{esc(a.title)}</a></h2>\n'
        f"            {'<h4>' + d + '</h4>' if h4 else d}\n"
        "        </div>\n"
        f'        <div class="content">{a.content}</div>\n'
        f'        <p class="source">Source : <a href="{esc(a.url)}">{esc(a.url)}</a></p>\n'
        '        <br style="clear: both;" />\n'
        "    </div>"
    )


def pagination_030(ab: Autoblog, page: int, link=lambda i: f"./?{i}") -> str:
    """The 0.3.0 pagination links."""
    if ab.count <= ab.per_page:
        return ""
    last = ab.last_page()
    out = ['<div class="pagination">']
    if page > 1:
        out.append(f'<a href="{link(page - 1)}">&larr; Plus récents</a> ')
    for i in range(1, last + 1):
        out.append(f'<a href="{link(i)}">{f"<b>{i}</b>" if i == page else i}</a> ')
    if page < last:
        out.append(f'<a href="{link(page + 1)}">Plus anciens &rarr;</a> ')
    out.append("</div>")
    return "".join(out)


FOOTER_030 = """
<div class="footer">
    <p>Propulsé par <a href="https://github.com/mitsukarenai/Projet-Autoblog">Projet Autoblog 0.3.0</a> - <a href="?feed">Flux ATOM</a></p>
    <p>Download: <a href="./vvb.ini">configuration</a> (<a href="?opml">OPML</a>)
        - <a href="./articles.db">articles</a><p/>
    <p><a href="./?media">Export fichiers media <sup> JSON</sup></a></p>
</div>"""

UPDATE_030 = """
    <div class="article">
        <div class="title">
            <h2>Mise à jour</h2>
        </div>
        <div class="content" id="update">
            Mise à jour de la base de données, veuillez patienter...
        </div>
    </div>"""


def not_found_030(uri: str, shown: str | None = None) -> str:
    """The 0.3.0 "not found" block."""
    return (
        '\n        <div class="article">\n            <div class="title">\n'
        "                <h2>Introuvable</h2>\n"
        f"                <p><tt>{esc(shown if shown is not None else './?' + uri)}</tt></p>\n"
        "                Cet article n'a pas été trouvé.\n            </div>\n        </div>"
    )


# ------------------------------------------------------------------------- 0.2 (farm rewrite)
def head_02(ab: Autoblog, base: str, q: str, charset: str) -> str:
    """The head of a 0.2 page."""
    t = esc(ab.title)
    return (
        '\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml">\n<head>\n'
        f'    <meta http-equiv="Content-Type" content="text/html; charset={charset}" />\n'
        f"    <title>{t}</title>\n"
        f'    <link rel="canonical" href="{esc(ab.site_url)}" />\n'
        '    <link rel="alternate" type="application/rss+xml" title="Flux RSS" href="?feed" />\n'
        '    <style type="text/css" media="screen,projection">\n'
        f"{T.CSS_02}    </style>\n</head>\n<body>\n"
        '<div class="header">\n'
        f'    <h1><a href="{base}">{t}</a></h1><p>Ce site n\'est pas le site officiel de {t}<br>'
        "C'est un blog automatis&eacute; qui r&eacute;plique les articles de "
        f"<a href={esc(ab.site_url)}>{t}</a></p>\n"
        f'    <form method="get" action="{base}" class="searchForm">\n'
        "    <div>\n"
        f'        <input type="text" name="q" value="{esc(q)}" />\n'
        '        <input type="submit" value="Recherche" />\n'
        "    </div>\n    </form>\n</div>\n"
    )


def footer_02(base: str) -> str:
    """The footer of a 0.2 page."""
    return (
        '\n<div class="footer">\n'
        '    <p>Powered by VroumVroumBlog 0.2.11 - <a href="?feed">Flux RSS</a></p>\n'
        f'    <p> <a href="{base}vvb.ini">configuration</a>\n'
        f'        - <a href="{base}articles.db">articles</a></p>\n'
        "</div>\n</body>\n</html>"
    )


# ------------------------------------------------------------------------- 0.1 (unverified)
def slug_01(a: Article) -> str:
    """0.1 permalink ``?YYYYMMDD_HHMMSS_title``. The 0.1 source was not available: the title
    part here is the 0.3 slug with '-' turned into '_' (documented guess)."""
    d = datetime.fromtimestamp(a.date, PARIS)
    return f"{d:%Y%m%d_%H%M%S}_" + a.uri.replace("-", "_")


# ------------------------------------------------------------------------- farm level
def farm_index_03(host: str, autoblogs: list[Autoblog]) -> str:
    """The farm's index page (0.3 engines)."""
    items = []
    for ab in autoblogs:
        href = f"./{ab.folder}/" if ab.engine == "0.2" else f"./autoblogs/{ab.folder}/"
        t = esc(ab.title)
        items.append(
            "<li>\n"
            "          <header>\n"
            f'            <a title="{t}" href="{href}">\n'
            f'              <img width="15" height="15" alt="" src="./resources/icon-{ab.site_type}.svg" />\n'
            '              <img width="15" height="15" alt="" src="./resources/icon-ok.svg" />\n'
            f"              <h3>{t}</h3>\n"
            "            </a>\n"
            "          </header>\n"
            f'          <div class="source">config <sup><a href="{href}vvb.ini">ini</a> '
            f'<a href="{href}?opml">opml</a></sup> | {ab.site_type} source : '
            f'<a href="{esc(ab.site_url)}">{esc(ab.site_url)}</a></div>\n'
            "        </li>"
        )
    body = "        " + "".join(items) + "\n" if items else ""
    return (
        T.FARM034_HEAD.replace("farm.test", host)
        + body
        + T.FARM034_MID.replace("farm.test", host)
        + f"      <p>{len(autoblogs)} autoblogs hébergés</p>"
        + T.FARM034_TAIL.replace("farm.test", host)
    )


def farm_index_02(host: str, autoblogs: list[Autoblog]) -> str:
    """The farm's index page (0.2)."""
    items = []
    for ab in autoblogs:
        t = esc(ab.title)
        items.append(
            '\n\t\t\t\t<div class="vignette">\n'
            f'\t\t\t\t\t<div class="title"><a title="{t}" href="{ab.folder}/"><img width="15" '
            f'height="15" alt="" src="./?check={ab.sha1}"> {t}</a></div>\n'
            f'\t\t\t\t\t<div class="source"><a href="{ab.folder}/vvb.ini">config</a> | source: '
            f'<a href="{esc(ab.site_url)}">{esc(ab.site_url)}</a></div>\n'
            "\t\t\t\t</div>"
        )
    return (
        T.FARM02_HEAD.replace("farm02.test", host).replace("farm.test", host)
        + "".join(items)
        + '<div class="clear"></div>\n'
        + f"<br/>{len(autoblogs)} autoblogs d'hébergés"
        + T.FARM02_TAIL
    )
