"""The self-check of extracted texts: one test per real-world content shape of the sample
farm (rendered by the farm's own templates, extracted by the one extraction function),
the check fed broken texts directly, and the visible-text rule itself."""

from __future__ import annotations

import argparse
from functools import lru_cache

import pytest
from rapidfuzz import fuzz
from support import REFERENCE_PAGES

from crawler.corpus.extraction import extract_page
from crawler.corpus.selfcheck import MAX_EXCESS, MIN_COVERAGE, check_text, parse_block, visible_text
from crawler.samplefarm.farm import Farm
from crawler.samplefarm.options import add_farm_arguments, config_from_args
from crawler.samplefarm.shapes import BROAD_FARM, SHAPES, repeated_line_runs

HOST = "farm.test"
CODE_MARKERS = ("<script", "&lt;script", "jQuery", "function footnote_", "<style", "tooltip(")


@lru_cache(maxsize=1)
def broad_farm() -> Farm:
    """The broadened farm in-process (same options as the end-to-end test)."""
    parser = argparse.ArgumentParser()
    add_farm_arguments(parser)
    argv = ["--autoblogs", str(BROAD_FARM["autoblogs"]), "--articles", "28"]
    argv += ["--engine", *BROAD_FARM["engine"]]
    for fault in BROAD_FARM["fault"]:
        argv += ["--fault", fault]
    return Farm(config_from_args(parser.parse_args(argv)))


def shape_articles(shape: str) -> list[tuple[str, dict, dict]]:
    """(engine, truth, record) of every article of ``shape`` on the broadened farm."""
    farm = broad_farm()
    out = []
    for folder, blog in farm.truth(HOST)["autoblogs"].items():
        for art in blog["articles"]:
            if art["kind"] != shape:
                continue
            target = art["url"].split(HOST, 1)[1]
            response = farm.handle("GET", target, HOST)
            assert response.status == 200, (folder, target)
            result = extract_page(response.body, art["url"], "utf-8")
            (record,) = result["articles"]
            out.append((blog["engine"], art, record))
    return out


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_extracts_to_its_truth(shape: str) -> None:
    found = shape_articles(shape)
    assert len(found) >= 3, "every shape appears on several autoblogs of the farm"
    engines = {engine for engine, _, _ in found}
    assert len(engines) >= 2, engines
    for engine, truth, record in found:
        text = record["text"]
        assert fuzz.ratio(text, truth["text"]) >= 95, (engine, text, truth["text"])
        assert not repeated_line_runs(text, truth["text"]), (engine, text)
        assert not any(m in text for m in CODE_MARKERS), (engine, text)
        assert "code_residue" not in record["quality_flags"]
        EXPECT[shape](text, truth["text"], record)
    if shape in REPAIRED:
        assert any(REPAIRED[shape] in r["quality_flags"] for _, _, r in found), shape


# Shapes where the broadened farm shows trafilatura's error at least once.
REPAIRED = {
    "link_post": "repeat_removed",
    "wp_footnotes": "table_recovered",
    "figure": "caption_recovered",
}


def _link_post(text: str, truth: str, record: dict) -> None:
    # trafilatura doubles these; the check drops the repeated tail and says so.
    assert text == truth
    assert {"text_check_failed", "repeat_removed"} <= set(record["quality_flags"])
    assert record["check"]["before"]["excess"] > 1.9  # the whole post twice
    assert record["check"]["after"] == {"coverage": 1.0, "excess": 1.0}


def _wp_footnotes(text: str, truth: str, record: dict) -> None:
    assert text == truth
    assert {"text_check_failed", "table_recovered"} <= set(record["quality_flags"])
    assert record["check"]["before"]["coverage"] < MIN_COVERAGE
    assert "script_removed" in record["quality_flags"]


def _table(text: str, truth: str, record: dict) -> None:
    assert text == truth and "|" not in text  # rows as the block shows them, no Markdown
    assert "text_check_failed" not in record["quality_flags"]


def _nothing(text: str, truth: str, record: dict) -> None:
    assert text == "" and record["n_words"] == 0
    assert "empty_text" in record["quality_flags"]
    assert "text_check_failed" not in record["quality_flags"]


def _exact(text: str, truth: str, record: dict) -> None:
    assert text == truth
    assert "text_check_failed" not in record["quality_flags"]


def _figure(text: str, truth: str, record: dict) -> None:
    # trafilatura drops the caption of a figure followed by some paragraphs; it comes back.
    assert text == truth
    flags = set(record["quality_flags"])
    assert "text_check_failed" not in flags or "caption_recovered" in flags


def _nested_list(text: str, truth: str, record: dict) -> None:
    # trafilatura marks list items with "- "; the items themselves are all there.
    assert text.replace("- ", "") == truth
    assert "text_check_failed" not in record["quality_flags"]


def _entities(text: str, truth: str, record: dict) -> None:
    assert text == truth and "\xa0" in text and "&" in text and "<" in text


def _scripts(text: str, truth: str, record: dict) -> None:
    assert text == truth and "\u200d" in text  # the flag's zero-width joiner survives


EXPECT = {
    "link_post": _link_post,
    "link_only": _exact,
    "wp_footnotes": _wp_footnotes,
    "table": _table,
    "nested_list": _nested_list,
    "pre_code": _exact,
    "figure": _figure,
    "video": _exact,
    "micro": _exact,
    "empty": _nothing,
    "image_only": _nothing,
    "entities": _entities,
    "scripts": _scripts,
}


# ---------------------------------------------------------------- the check fed broken texts

BLOCK = parse_block(
    '<div class="content"><p>Premier paragraphe sur la surveillance des réseaux.</p>'
    "<p>Deuxième paragraphe : la commission a rejeté les amendements.</p>"
    "<blockquote>Une citation qui compte plusieurs mots.</blockquote>"
    "<p>Quatrième paragraphe avec la conclusion de l’article.</p></div>"
)
VISIBLE = visible_text(BLOCK)


def test_a_doubled_text_is_caught_and_repaired() -> None:
    text, flags, info = check_text(VISIBLE + "\n" + VISIBLE, BLOCK)
    assert text == VISIBLE
    assert flags == ["text_check_failed", "repeat_removed"]
    assert info is not None and info["before"]["excess"] > 1.9 > MAX_EXCESS


def test_a_repeat_in_the_middle_falls_back_to_the_block() -> None:
    lines = VISIBLE.split("\n")
    text, flags, info = check_text("\n".join([*lines[:2], *lines[:2], *lines[2:]]), BLOCK)
    assert text == VISIBLE
    assert "visible_text_fallback" in flags and "text_check_failed" in flags


def test_a_text_missing_half_the_block_falls_back_to_the_block() -> None:
    half = "\n".join(VISIBLE.split("\n")[:2])
    text, flags, info = check_text(half, BLOCK)
    assert text == VISIBLE
    assert flags == ["text_check_failed", "visible_text_fallback"]
    assert info is not None and info["before"]["coverage"] < MIN_COVERAGE
    assert info["after"] == {"coverage": 1.0, "excess": 1.0}


def test_a_good_text_passes_untouched() -> None:
    assert check_text(VISIBLE, BLOCK) == (VISIBLE, [], None)
    # A line the block itself repeats is no repeat.
    twice = parse_block('<div class="content"><p>Même ligne ici.</p><p>Même ligne ici.</p></div>')
    assert check_text("Même ligne ici.\nMême ligne ici.", twice) == (
        "Même ligne ici.\nMême ligne ici.",
        [],
        None,
    )


def test_visible_text_rule() -> None:
    block = parse_block(
        '<div class="content">Avant<br />après <a href="x">lien</a><sup>1</sup>'
        "<script>var x = 1;</script><style>.x{}</style><!-- commentaire -->"
        '<iframe src="https://v.example/embed"></iframe><img alt="texte alternatif" src="i">'
        "<table><caption>Titre</caption><tr><th>A</th><td>1</td></tr></table>"
        "<ul><li>un<ul><li>deux</li></ul></li></ul><pre>  a   b\n\n c</pre>"
        "<p>«&nbsp;fin&nbsp;»</p></div>"
    )
    assert visible_text(block) == "Avant\naprès lien1\nTitre\nA 1\nun\ndeux\na b\nc\n«\xa0fin\xa0»"
    assert visible_text(None) == ""


def test_real_engine_pages_pass_the_check() -> None:
    pages = sorted(REFERENCE_PAGES.glob("*.html"))
    assert pages
    checked = 0
    for path in pages:
        result = extract_page(path.read_bytes(), "http://farm.test/autoblogs/x/?2", "utf-8")
        for art in result["articles"]:
            assert "text_check_failed" not in art["quality_flags"], (path.name, art["text"])
            checked += 1
    assert checked >= 10
