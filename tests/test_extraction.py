"""Extraction on pages the real engine rendered (shared/autoblog-reference/pages) and on
broken input: the template decides what an article is, trafilatura only sees its block."""

from __future__ import annotations

import orjson
import pytest
from support import REFERENCE_PAGES

from crawler.corpus.extraction import extract_facts, extract_page, reuse_parse
from crawler.corpus.text import decode_html, hamming, repair_surrogates, simhash64
from crawler.parsing import parse_page
from crawler.urls import canonical_url

PAGES = REFERENCE_PAGES
BASE = "http://farm.test/autoblogs/wwwlaquadraturenet_d04d205820c5b2317c2b58149db26047c414a48b/"
ARTICLE_URL = BASE + "?Loi-Renseignement-la-Quadrature-a-d%C3%A9pos%C3%A9-son-recours"
CODE_MARKERS = ("<script", "&lt;script", "jQuery", "document.write", "var footnotes", ".x{")


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def test_permalink_page_v034() -> None:
    result = extract_page(page("v034-fr_article.html"), ARTICLE_URL, "utf-8")
    assert result["kind"] == "article"
    assert result["engine"] == "0.3"
    (art,) = result["articles"]
    assert art["from_permalink"] is True
    assert art["url"] == ARTICLE_URL
    assert art["title"] == "Loi Renseignement : la Quadrature a déposé son recours"
    assert art["date"] == "2023-01-23T15:04:00+01:00"
    assert art["date_raw"] == "lundi 23 janvier 2023 à 15:04"
    assert art["source_url"] == "https://www.laquadrature.net/2023/01/23/article-0/"
    # the page writes «&nbsp;texte&nbsp;»: the no-break spaces are the article's, kept
    assert art["text"] == "Corps de l’article 0 — «\xa0texte\xa0»."
    assert art["lang"] == "fr"
    # not the page's site name, not the canonical link of the mirrored blog
    assert result["site"] == {
        "url": BASE,
        "title": "La Quadrature du Net",
        "source": "https://www.laquadrature.net/",
        "engine": "0.3",
    }


def test_index_page_gives_every_block_marked_as_index() -> None:
    result = extract_page(page("v034-fr_index-p1.html"), BASE, "utf-8")
    assert result["kind"] == "index"
    arts = result["articles"]
    assert [a["fragment"] for a in arts] == [0, 1, 2, 3, 4]
    assert all(not a["from_permalink"] for a in arts)
    assert arts[0]["url"] == ARTICLE_URL  # the permalink, percent-encoded like a crawler does
    assert [a["text"] for a in arts] == [
        f"Corps de l’article {i} — «\xa0texte\xa0»." for i in range(5)
    ]
    # duplicate titles keep their own permalinks
    assert arts[3]["url"].endswith("?2026-11-28-M%C3%AAme-titre")


def test_update_block_is_not_an_article() -> None:
    result = extract_page(page("v034-fr_index-p1_with-update-block.html"), BASE, "utf-8")
    assert "update_block" in result["flags"]
    titles = [a["title"] for a in result["articles"]]
    assert "Mise à jour" not in titles and len(titles) == 5
    assert all("veuillez patienter" not in a["text"] for a in result["articles"])
    first = extract_page(page("v034-fr_first-visit_update-block_no-articles.html"), BASE, "utf-8")
    assert first["articles"] == []


@pytest.mark.parametrize(
    ("name", "status", "kind"),
    [
        ("v034-fr_article-404.html", 404, "not_found"),
        ("v034-fr_article-404.html", 200, "not_found"),
        ("v034-fr_search-q-titre.html", 200, "search"),
        ("v034-fr_index-p9_beyond-last.html", 200, "index"),
        ("v034_farm-index.html", 200, "farm"),
        ("v034_archived-shaarli-empty.html", 200, "index"),
    ],
)
def test_pages_without_articles(name: str, status: int, kind: str) -> None:
    result = extract_page(page(name), BASE + "?x", "utf-8", http_status=status)
    assert result["kind"] == kind
    assert result["articles"] == []


@pytest.mark.parametrize("name", ["v034-fr_index-p2.html", "v030_index-p2_div-layout.html"])
def test_escaped_script_removed_footnotes_kept(name: str) -> None:
    result = extract_page(page(name), BASE + "?2", "utf-8")
    art = result["articles"][0]
    assert art["title"] == "Article avec notes de bas de page"
    assert "script_removed" in art["quality_flags"]
    assert "Note 1" in art["text"]  # footnote kept as text
    for a in result["articles"]:
        assert not any(m in a["text"] for m in CODE_MARKERS), a["text"]
        assert "script_removed" not in a["quality_flags"] or a["fragment"] == 0


def test_older_engines() -> None:
    r030 = extract_page(page("v030_index-p2_div-layout.html"), BASE + "?2", "utf-8")
    assert r030["engine"] == "0.3.0" and len(r030["articles"]) == 5
    assert r030["articles"][2]["date"] == "2023-01-16T15:04:00+01:00"
    url02 = (
        "http://farm02.test/305a559f9eeaac5bf10ecb8989efd5a5b04aba1a/Article-avec-image-relative"
    )
    r02 = extract_page(page("v02_article_farm-rewrite.html"), url02, "utf-8")
    assert r02["engine"] == "0.2" and r02["kind"] == "article"
    (a02,) = r02["articles"]
    assert a02["from_permalink"] and a02["date"] == "2023-01-17T15:04:00+01:00"
    assert a02["source_url"] == "http://source.test/2023/01/17/article-6/"
    assert r02["site"]["url"] == "http://farm02.test/305a559f9eeaac5bf10ecb8989efd5a5b04aba1a/"
    iso = extract_page(page("head2025_article_iso-date.html"), BASE + "?Article-8", "utf-8")
    assert iso["engine"] == "2025"
    assert iso["articles"][0]["date"] == "2023-01-16T15:04:00+01:00"
    assert iso["articles"][0]["from_permalink"]


# ---------------------------------------------------------------- broken input


def test_latin1_without_charset() -> None:
    html = page("v034-fr_article.html").decode("utf-8")
    html = html.replace(
        '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" charset="utf-8" />', ""
    )
    body = html.replace("’", "'").replace("—", "-").encode("latin-1")
    result = extract_page(body, ARTICLE_URL, None)
    (art,) = result["articles"]
    assert "charset_fallback" in art["quality_flags"]
    assert art["title"] == "Loi Renseignement : la Quadrature a déposé son recours"
    assert art["text"] == "Corps de l'article 0 - «\xa0texte\xa0»."


def test_wrong_declared_charset() -> None:
    body = page("v034-fr_article.html")  # UTF-8 bytes served as ISO-8859-1
    (art,) = extract_page(body, ARTICLE_URL, "iso-8859-1")["articles"]
    assert art["title"] == "Loi Renseignement : la Quadrature a déposé son recours"
    assert "charset_fallback" in art["quality_flags"]
    text, enc, flags = decode_html("é".encode("latin-1"), "utf-8")
    assert (text, flags) == ("é", ["charset_fallback"])


def test_invalid_html_still_yields_the_article() -> None:
    html = page("v034-fr_article.html").decode()
    broken = html.replace("</p></div>", "<b><i>gras</p><table><td>cellule</div>")
    broken = broken.replace("</body>", "<div><div><span>").replace("</html>", "<<<>>")
    (art,) = extract_page(broken.encode(), ARTICLE_URL, "utf-8")["articles"]
    assert art["title"].startswith("Loi Renseignement")
    assert "Corps de l’article 0" in art["text"] and "cellule" in art["text"]


def test_empty_inputs() -> None:
    empty = extract_page(b"", ARTICLE_URL, "utf-8")
    assert empty["articles"] == [] and "empty_page" in empty["flags"]
    html = page("v034-fr_article.html").decode()
    hollow = html.replace("<p>Corps de l’article 0 — «&nbsp;texte&nbsp;».</p>", "")
    (art,) = extract_page(hollow.encode(), ARTICLE_URL, "utf-8")["articles"]
    assert art["text"] == "" and art["n_words"] == 0
    assert "empty_text" in art["quality_flags"] and art["lang"] is None
    garbage = extract_page(b"\x00\xff\xfe garbage \x00", ARTICLE_URL, None)
    assert garbage["articles"] == []


def test_error_trailer_pages() -> None:
    html = page("v034-fr_article.html").decode()
    noisy = html.replace("</body>", "Error happened! strftime() is deprecated</body>")
    (art,) = extract_page(noisy.encode(), ARTICLE_URL, "utf-8")["articles"]
    assert "error_trailer" in art["quality_flags"] and "Error happened" not in art["text"]
    head = html[: html.index("</header>") + len("</header>")]
    stopped = head + "\nError happened! strftime() is deprecated"
    result = extract_page(stopped.encode(), BASE + "?2", "utf-8")
    assert result["articles"] == [] and result["kind"] in ("error", "index")


def test_lone_surrogates_and_hashes() -> None:
    fixed = repair_surrogates("a\ud800b\ud83d\ude00")
    assert fixed == "a\ufffdb😀"
    orjson.dumps(fixed)
    a = simhash64("le chat est sur le tapis et il dort profondément ce soir")
    b = simhash64("le chat est sur le tapis et il dort profondément ce matin")
    c = simhash64("tout autre chose qui n'a aucun rapport avec le texte précédent")
    assert hamming(a, b) < hamming(a, c)
    assert simhash64("") == 0


def test_canonical_url() -> None:
    assert canonical_url(BASE + "?Loi-Renseignement-la-Quadrature-a-déposé-son-recours#x") == (
        ARTICLE_URL
    )
    assert canonical_url(ARTICLE_URL) == ARTICLE_URL


REUSE_PAGES = [
    ("v034-fr_article.html", ARTICLE_URL),
    ("v034-fr_index-p1.html", BASE),
    ("v034-fr_index-p1_with-update-block.html", BASE),
    ("v02_article_farm-rewrite.html", "http://farm.test/autoblogs/x/article-slug"),
    ("head2025_article_iso-date.html", BASE + "?Article-8"),
    ("v034-fr_search-q-titre.html", BASE + "?q=titre"),
    ("v034-fr_article-404.html", BASE + "?x"),
]


@pytest.mark.parametrize(("name", "url"), REUSE_PAGES)
def test_spider_parse_reused_gives_the_same_records(name: str, url: str) -> None:
    """At crawl time the workers get the spider's parse (with its resources, without code
    marks): the records must be those of the worker's own parse, field for field."""
    body = page(name)
    text = body.decode("utf-8")
    facts = reuse_parse(body, url, "utf-8", text, parse_page(text, url))
    assert facts is not None
    assert extract_facts(facts, url) == extract_page(body, url, "utf-8")
    assert extract_facts(facts, url, index_text=False) == extract_page(
        body, url, "utf-8", index_text=False
    )


def test_spider_parse_not_reused_when_the_corpus_would_parse_otherwise() -> None:
    body = page("v034-fr_article.html")
    text = body.decode("utf-8")
    parsed = parse_page(text, ARTICLE_URL)
    # Another decoding (a UTF-8 page Scrapy read as Latin-1): the worker decodes the body.
    assert reuse_parse(body, ARTICLE_URL, "utf-8", body.decode("latin-1"), parsed) is None
    # Parsed under another URL than the canonical one the corpus parses under.
    other = parse_page(text, ARTICLE_URL + "#x")
    assert reuse_parse(body, ARTICLE_URL + "#x", "utf-8", text, other) is None
    # Escaped code cut (this page has some): the corpus's parse marks where it was.
    coded = page("v030_index-p2_div-layout.html")
    coded_text = coded.decode("utf-8")
    coded_parse = parse_page(coded_text, BASE + "?2")
    assert coded_parse.script_removed
    assert reuse_parse(coded, BASE + "?2", "utf-8", coded_text, coded_parse) is None


def test_windowed_language_walk_equals_py3langid() -> None:
    """The numpy walk (crawler.corpus.text._windowed_counts) against py3langid's own, on
    texts of every length and script; benchmarks/langid_walk.py proves it for all texts."""
    import random

    from py3langid.langid import MODEL_FILE, LanguageIdentifier, visit_counts

    from crawler.corpus.text import _lang_identifier, _windowed_counts

    plain = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ours = _lang_identifier()
    rnd = random.Random(7)
    texts = [
        "",
        "a",
        "Le chat dort sur le tapis, «\xa0tranquille\xa0» ce soir.",
        "Der schnelle braune Fuchs springt über den faulen Hund. " * 40,
        "Быстрая коричневая лиса прыгает через ленивую собаку. 素早い茶色の狐。" * 9,
    ]
    for _ in range(150):
        size = rnd.choice([3, 20, 200, 3000])
        texts.append(
            "".join(
                chr(rnd.choice([rnd.randrange(32, 127), rnd.randrange(160, 12000)]))
                for _ in range(size)
            )
        )
    for text in texts:
        data = plain._encode(text)
        want = visit_counts(plain.tk_nextmove, plain._rowbase, plain.tk_output, data)
        got = _windowed_counts(ours, data)
        assert (list(want.items()) if want else None) == (list(got.items()) if got else None)
        assert ours.classify(text) == plain.classify(text)
