"""Farm content: autoblog identities and articles, generated lazily and deterministically.

Article ``c`` of an autoblog (c = 0 oldest ... N-1 newest) is a pure function of
(seed, autoblog index, c), so a 50,000-article farm starts instantly. The first autoblog
mirrors La Quadrature du Net and holds the five real articles of the seed dump.
"""

from __future__ import annotations

import hashlib
import html
import json
import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo

from .options import AutoblogSettings
from .prose import LONG_TITLE, paragraphs, title
from .shapes import SHAPES, shape_of

PARIS = ZoneInfo("Europe/Paris")
# 2026-11-28 12:40:43 +01:00, the clock of the reference pages; shifted by the seed.
BASE_NOW = 1795866043
PER_PAGE = {"generic": 5, "shaarli": 20, "microblog": 20, "twitter": 20, "youtube": 10}
MEDIA_RE = re.compile(r"\{\{MEDIA:([^}]+)\}\}")


def to_uri(title: str) -> str:
    """The engine's VroumVroum_Blog::toURI: strip tags, decode entities, cut at 70 BYTES,
    non-word runs -> '-'. Deviation: PHP would fail (preg /u on broken UTF-8) when the cut
    splits a character; we drop the partial character instead."""
    s = html.unescape(re.sub(r"<[^>]*>", "", title.strip()))
    s = s.encode("utf-8")[:70].decode("utf-8", "ignore")
    out = []
    for ch in s:
        keep = (ch.isascii() and (ch.isalnum() or ch in "_()")) or unicodedata.category(
            ch
        ).startswith("L")
        out.append(ch if keep else "-")
    s = re.sub(r"-{2,}", "-", "".join(out))
    return s.strip("-") if s not in ("-",) else ""


def site_slug(url: str) -> str:
    """Folder prefix: the site URL without scheme, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", re.sub(r"^[a-z]+://", "", url.lower()))


def media_name(orig_url: str) -> str:
    """The engine's mirrored file name: last 8 hex of sha1(url) + sanitized basename."""
    base = orig_url.rsplit("/", 1)[-1]
    return (
        hashlib.sha1(orig_url.encode()).hexdigest()[-8:] + "." + re.sub(r"[^\w.-]", "", base)[-64:]
    )


@dataclass
class Article:
    """One stored article (a row of articles.db plus what a perfect extraction yields)."""

    c: int
    id: int
    feed_id: str
    title: str
    uri: str
    url: str
    date: int
    content: str
    text: str
    media: list[str] = field(default_factory=list)
    reachable: bool = True


# ---------------------------------------------------------------- autoblogs
BLOGS = [
    (
        "Le Carnet de Camille",
        "https://carnet-camille.example/",
        "https://carnet-camille.example/feed/",
    ),
    (
        "Shaarli - Liens de Bérénice",
        "https://liens.berenice.example/shaarli/",
        "https://liens.berenice.example/shaarli/?do=rss",
    ),
    (
        "Journal d’un hébergeur associatif",
        "https://journal.chatons.example/",
        "https://journal.chatons.example/index.xml",
    ),
    (
        "Vidéos de l’Atelier",
        "https://www.youtube.example/channel/UCatelier",
        "https://www.youtube.example/feeds/videos.xml?channel_id=UCatelier",
    ),
    ("Microblog de Zoé", "https://social.zoe.example/@zoe", "https://social.zoe.example/@zoe.rss"),
]
DEFAULT_TYPES = ["generic", "generic", "shaarli", "youtube", "microblog"]


class Autoblog:
    """One mirrored blog: identity, engine, settings and its lazily generated articles."""

    def __init__(
        self,
        farm_seed: int,
        index: int,
        engine: str,
        n_articles: int,
        settings: AutoblogSettings,
        now: int,
        seed_data: dict,
    ) -> None:
        self.seed = farm_seed
        self.index = index
        self.engine = engine
        self.settings = settings
        self.now = now
        self.insert_day = datetime.fromtimestamp(now, PARIS).strftime("%Y-%m-%d-")
        if index == 0:
            self.title = seed_data["site_title"]
            self.site_url = seed_data["site_url"]
            self.feed_url = seed_data["feed_url"]
            self.site_type = "generic"
            self.seed_articles = seed_data["articles"]
        else:
            name, url, feed = BLOGS[(index - 1) % len(BLOGS)]
            k = (index - 1) // len(BLOGS)
            if k:
                name, url = f"{name} ({k + 1})", url.replace(".example", f"{k + 1}.example")
                feed = feed.replace(".example", f"{k + 1}.example")
            self.title, self.site_url, self.feed_url = name, url, feed
            self.site_type = DEFAULT_TYPES[(index - 1) % len(DEFAULT_TYPES)]
            self.seed_articles = []
        if settings.site_type:
            self.site_type = settings.site_type
        sha = hashlib.sha1(self.feed_url.encode()).hexdigest()
        self.sha1 = sha
        self.folder = sha if engine == "0.2" else f"{site_slug(self.site_url)}_{sha}"
        if settings.disabled:
            self.folder += ".disabled"
        self.per_page = 10 if engine in ("0.2", "0.1") else PER_PAGE[self.site_type]
        self.n0 = 0 if settings.archived else n_articles
        self.count = self.n0
        rng = random.Random(f"{farm_seed}/{index}/blog")
        self.step = {"generic": 26, "youtube": 50, "shaarli": 5, "microblog": 3, "twitter": 3}[
            self.site_type
        ] * 3600
        self.newest0 = now - rng.randint(3, 40) * 3600 - rng.randint(0, 3599)
        self.n_seed = min(len(self.seed_articles), self.n0)
        self._seed_dates = [
            int(datetime.fromisoformat(a["date_local"]).replace(tzinfo=PARIS).timestamp())
            for a in self.seed_articles
        ]
        # specials are placed after the seed articles, counted from the newest initial one
        s = self.n_seed
        self.special = {
            s + 2: "dup1",
            s + 3: "dup2",
            s + 4: "long",
            s + 5: "footnote",
            s + 6: "images",
            s + 7: "numeric",
        }
        self._slug_index: dict[str, int] | None = None
        self._article: Callable[[int], Article] = lru_cache(maxsize=4096)(self._make_article)

    # ---- identity of article c
    def _rng(self, c: int) -> random.Random:
        return random.Random(f"{self.seed}/{self.index}/{c}")

    def date_of(self, c: int) -> int:
        """Strictly decreasing with display position; fixed by the seed."""
        d = self.n0 - 1 - c
        if c >= self.n0:  # grown: newer than every initial article
            top = self._seed_dates[0] if self.n_seed else self.newest0
            return top + (c - self.n0 + 1) * self.step + self._rng(c).randint(0, self.step // 3)
        if d < self.n_seed:
            return self._seed_dates[d]
        anchor = self._seed_dates[self.n_seed - 1] if self.n_seed else self.newest0 + self.step
        j = self._rng(c).randint(-self.step // 3, self.step // 3)
        return anchor - (d - self.n_seed + 1) * self.step + j

    def kind_of(self, c: int) -> str:
        """What article ``c`` is: seed, grown, a special or plain."""
        d = self.n0 - 1 - c
        if c >= self.n0:
            return "grown"
        if d < self.n_seed:
            return "seed"
        return self.special.get(d, "plain")

    def shape_of(self, c: int) -> str | None:
        """The real-world content shape of article ``c`` (``--fault N:shapes`` only)."""
        if not self.settings.shapes or self.kind_of(c) not in ("plain", "grown"):
            return None
        return shape_of(self.site_type, c)

    def title_of(self, c: int) -> str:
        """Article ``c``'s title."""
        kind = self.kind_of(c)
        if kind == "seed":
            return self.seed_articles[self.n0 - 1 - c]["title"]
        if kind in ("dup1", "dup2"):
            return "Même titre"
        if kind == "numeric":
            return "2024"
        if kind == "long":
            return LONG_TITLE.format(n=c + 1)
        return title(self._rng(c), c + 1)

    def uri_of(self, c: int) -> str:
        """Article ``c``'s URI (its ``?uri`` in the engine's links)."""
        uri = to_uri(self.title_of(c))
        if self.kind_of(c) == "dup2":  # inserted after dup1 (same batch, newest first)
            uri = self.insert_day + uri
        return uri

    def id_of(self, c: int) -> int:
        """Row id: the initial batch is inserted newest first, grown ones afterwards."""
        return self.n0 - c if c < self.n0 else c + 1

    def source_url(self, c: int) -> str:
        """The source site's URL of article ``c``."""
        if self.kind_of(c) == "seed":
            return self.seed_articles[self.n0 - 1 - c]["url"]
        dt = datetime.fromtimestamp(self.date_of(c), PARIS)
        if self.site_type == "shaarli":
            return f"https://links{c}.example/page/{c + 1}"
        return f"{self.site_url}{dt:%Y/%m/%d}/billet-{c + 1}/"

    def article(self, c: int) -> Article:
        """Article ``c``, generated once (an edited one in its place)."""
        return self._article(c)

    def _make_article(self, c: int) -> Article:
        kind = self.kind_of(c)
        url = self.source_url(c)
        media: list[str] = []
        shape = self.shape_of(c)
        if shape is not None:
            blocks = [SHAPES[shape](self._rng(c), c, self.site_url)]
        elif kind == "seed":
            blocks = [(b["html"], b["text"]) for b in self.seed_articles[self.n0 - 1 - c]["blocks"]]
        else:
            rng = self._rng(c)
            blocks = paragraphs(rng, c + 1, self.site_url)
            if kind == "footnote":
                blocks.append(
                    (
                        '<p>Texte avec une note<sup><a href="#fn1" id="fnref1">1</a></sup> et une '
                        "suite.</p>",
                        "Texte avec une note1 et une suite.",
                    )
                )
                blocks.append(
                    (
                        '&lt;script type="text/javascript">var footnotes = {"fn1": '
                        '"Note 1"}; document.write("x");</script>',
                        "",
                    )
                )
                blocks.append(
                    (
                        '<div class="footnotes"><ol><li id="fn1">Note 1 : la référence '
                        "complète du rapport.</li></ol></div>",
                        "Note 1 : la référence complète du rapport.",
                    )
                )
                blocks.append(("&lt;style>.x{color:red}</style>", ""))
            if kind == "images" or (kind in ("plain", "grown") and c % 7 == 3):
                img = f"{self.site_url}wp-content/uploads/{c % 5 + 2020}/photo-{c + 1}.png"
                svg = f"{self.site_url}images/schema-{c + 1}.svg"
                blocks.insert(
                    1,
                    (
                        f'<p><img src="{{{{MEDIA:{img}}}}}" alt="Illustration"> '
                        f'<img src="{img}?x=1" alt="non miroitée"></p>',
                        "",
                    ),
                )
                if kind == "images":
                    blocks.insert(
                        2,
                        (
                            f'<p><a href="{{{{MEDIA:{svg}}}}}">Le schéma</a> en SVG.</p>',
                            "Le schéma en SVG.",
                        ),
                    )
        out_html = []
        for h, _t in blocks:

            def _mirror(m: re.Match[str]) -> str:
                media.append(media_name(m.group(1)))
                return f'./media/{media_name(m.group(1))}" data-original-source="{m.group(1)}'

            out_html.append(MEDIA_RE.sub(_mirror, h))
        text = "\n".join(t for _h, t in blocks if t)
        title = self.title_of(c)
        uri = self.uri_of(c)
        return Article(
            c=c,
            id=self.id_of(c),
            feed_id=url if kind != "seed" else self.seed_articles[self.n0 - 1 - c]["feed_id"],
            title=title,
            uri=uri,
            url=url,
            date=self.date_of(c),
            content="".join(out_html),
            text=text,
            media=media,
            reachable=not uri.isdigit(),
        )

    # ---- listing
    def page_cs(self, page: int) -> list[int]:
        """Article indexes on page ``page`` (1-based), newest first."""
        start = (page - 1) * self.per_page
        return [self.count - 1 - p for p in range(start, min(start + self.per_page, self.count))]

    def last_page(self) -> int:
        """The number of the last index page."""
        return max(1, -(-self.count // self.per_page))

    def find_uri(self, uri: str) -> int | None:
        """Slug -> article index (index built once, extended on grow)."""
        if self._slug_index is None:
            self._slug_index = {}
            for c in range(self.count):
                self._slug_index.setdefault(self.uri_of(c), c)
        return self._slug_index.get(uri)

    def grow(self, n: int) -> list[int]:
        """Publish ``n`` new articles; returns their numbers."""
        new = list(range(self.count, self.count + n))
        self.count += n
        if self._slug_index is not None:
            for c in new:
                self._slug_index.setdefault(self.uri_of(c), c)
        return new

    def media_files(self) -> list[str]:
        """The media files the articles link to."""
        names: set[str] = set()
        for c in range(self.count):
            k = self.kind_of(c)
            plain = k in ("plain", "grown") and c % 7 == 3 and self.shape_of(c) is None
            if k in ("seed", "images") or plain:
                names.update(self.article(c).media)
        return sorted(names)


def load_seed() -> dict:
    """The real La Quadrature du Net articles the farm serves first."""
    return json.loads(
        resources.files(__package__).joinpath("data/lqdn_seed.json").read_text("utf-8")
    )
