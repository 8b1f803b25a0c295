"""The self-check of every extracted text against its content block's own visible text.

trafilatura is a heuristic made for whole web pages; on feed content it errs silently in
ways that end up in someone's paper: its short-document recovery appends what it already
extracted (a Shaarli link post comes out twice, upstream issues #879, #660, #768), it
drops some tables (the WordPress footnotes plugin's reference table), and it renders
tables as Markdown rows. The content block is small and its visible text is known (the
block's text nodes once escaped script/style source was cut by the template module), so
every text is compared with it, at crawl time and offline alike:

- normal form first (no flag): lines equal to a block line but for the no-break spaces or
  zero-width joiners trafilatura drops get them back; Markdown table rows become the
  row's cells joined by a space, as the block shows them;
- a repeated tail (trailing lines that also occur earlier, more often than the block
  holds them) is dropped: ``repeat_removed``;
- a table whose rows are missing gets them back where the block has them:
  ``table_recovered``; a figure caption of which the text has not a word, likewise:
  ``caption_recovered``;
- whatever still covers the block's text badly (too little: ``coverage`` below
  :data:`MIN_COVERAGE`; far too much: ``excess`` above :data:`MAX_EXCESS`, both over
  letter 5-grams so that line breaks do not matter) or still repeats a line the block
  does not, is replaced by the block's visible text: ``visible_text_fallback``.

Every record the check touched carries ``text_check_failed`` plus the specific flag, and
its ``extraction.self_check`` says what was measured and done. Thresholds were chosen on
the broadened sample farm (benchmarks/shape_fidelity.py, README "The research corpus").
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from typing import Any

import lxml.html
from lxml.html import HtmlElement

# Measured on trafilatura's raw output (benchmarks/shape_fidelity.py, seeds 1-3 of the
# broadened farm, 190 articles each, and a 6 x 150 prose farm, seed 7, 895 articles):
# every correct text covers 1.000 of the block's 5-grams with excess 1.000; the failures
# sit far off: a doubled link post has excess 2.04-2.05, the footnotes article without
# its table covers 0.60-0.64, a figure without its caption 0.71-0.99 (caught by the
# caption check, not by these), and 2 prose articles in 895 lost a whole paragraph (0.83,
# 0.86). The thresholds leave room on both sides.
MIN_COVERAGE = 0.95
MAX_EXCESS = 1.1
# A repeated line must have this many words to count as a repeat (a footnote number or
# a short label like "References" legitimately recurs).
MIN_REPEAT_WORDS = 4
GRAM = 5

WORD = re.compile(r"\w+", re.UNICODE)
NON_WORD = re.compile(r"\W+", re.UNICODE)
LINE_SPACE = re.compile(r"[ \t\r\f\v]+")
SPACES = re.compile(r" {2,}")
MARKDOWN_ROW = re.compile(r"^\|(.*)\|$")
MARKDOWN_RULE = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+$")

BLOCK_TAGS = frozenset(
    "address article aside blockquote caption center dd details dialog div dl dt fieldset "
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section "
    "summary table tbody tfoot thead tr ul".split()
)
CELL_TAGS = frozenset({"td", "th"})
# Not text: code, and what an embed shows instead of its own markup.
SKIP_TAGS = frozenset(
    {"script", "style", "template", "iframe", "object", "embed", "video", "audio", "canvas"}
)


def _lines(text: str) -> list[str]:
    """The corpus's normal form of a text as lines (see crawler.corpus.text.clean_text)."""
    out = (line.strip(" ") for line in LINE_SPACE.sub(" ", text).split("\n"))
    return [line for line in out if line]


def _walk(el: HtmlElement, parts: list[str]) -> None:
    tag = el.tag if isinstance(el.tag, str) else None
    if tag is None or tag in SKIP_TAGS:  # comments, processing instructions, code
        return
    block = tag in BLOCK_TAGS
    if block:
        parts.append("\n")
    elif tag in CELL_TAGS:
        parts.append(" ")
    elif tag == "br":
        parts.append("\n")
    _walk_children(el, parts)
    if block:
        parts.append("\n")
    elif tag in CELL_TAGS:
        parts.append(" ")


def _element_lines(el: HtmlElement) -> list[str]:
    """An element as the block shows it (a table: caption, then a line per row)."""
    parts: list[str] = []
    _walk_children(el, parts)
    return _lines("".join(parts))


def _walk_children(el: HtmlElement, parts: list[str]) -> None:
    parts.append(el.text or "")
    for child in el:
        _walk(child, parts)
        parts.append(child.tail or "")


def visible_text(block: HtmlElement | None) -> str:
    """The block's own text by the farm's truth rule (crawler/samplefarm/__init__.py)."""
    if block is None:
        return ""
    parts: list[str] = []
    _walk_children(block, parts)
    return "\n".join(_lines("".join(parts)))


def block_parts(block: HtmlElement | None, tag: str) -> list[list[str]]:
    """Every outermost ``tag`` element of the block (tables, figure captions) as lines."""
    if block is None:
        return []
    return [_element_lines(e) for e in block.iter(tag) if not list(e.iterancestors(tag))]


def parse_block(html: str | None) -> HtmlElement | None:
    """The serialised content block parsed back into one element."""
    if not html:
        return None
    try:
        return lxml.html.fragment_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return None


@lru_cache(maxsize=32)
def _letters(text: str) -> str:
    """Word characters only, lower-cased: where trafilatura breaks lines (around a ``sup``,
    a link, a table cell) differs from the block, so comparisons ignore every boundary."""
    return NON_WORD.sub("", text.lower())


def _grams(text: str) -> Counter[str]:
    letters = _letters(text)
    if len(letters) < GRAM:
        return Counter([letters] if letters else [])
    return Counter(letters[i : i + GRAM] for i in range(len(letters) - GRAM + 1))


def _occurrences(haystack: str, needle: str) -> int:
    """How often ``needle``'s letters occur in ``haystack``'s (line breaks ignored)."""
    letters = _letters(needle)
    return _letters(haystack).count(letters) if letters else 0


def measures(text: str, visible: str) -> dict[str, float]:
    """Coverage (share of the block's letter 5-grams the text has) and excess (the text's
    5-grams over the block's): a lost paragraph lowers the first, a repeat raises the second."""
    if _letters(text) == _letters(visible):  # the usual case, and the cheap one
        return {"coverage": 1.0, "excess": 1.0}
    seen, wanted = _grams(text), _grams(visible)
    total = sum(wanted.values())
    n_text = sum(seen.values())
    if not total:
        return {"coverage": 1.0, "excess": 1.0 if not n_text else float(n_text)}
    found = sum((seen & wanted).values())
    return {"coverage": round(found / total, 4), "excess": round(n_text / total, 4)}


# ---------------------------------------------------------------- repairs


def _plain(line: str) -> str:
    """A line as trafilatura writes it: no-break spaces as spaces, one space, no ZWJ."""
    if "\xa0" not in line and "\u200d" not in line and "  " not in line:
        return line
    return SPACES.sub(" ", line.replace("\xa0", " ").replace("\u200d", "")).strip(" ")


def normal_form(lines: list[str], visible_lines: list[str], has_table: bool) -> list[str]:
    """Give lines back the characters trafilatura drops; Markdown rows as the block's rows."""
    restore: dict[str, str] = {}
    for line in visible_lines:
        if _plain(line) != line:
            restore.setdefault(_plain(line), line)
    out: list[str] = []
    for line in lines:
        if has_table and MARKDOWN_RULE.match(line):
            continue
        row = MARKDOWN_ROW.match(line) if has_table else None
        if row:
            joined = " ".join(c.strip() for c in row.group(1).split(" | ") if c.strip())
            if joined in visible_lines or _plain(joined) in restore:
                line = joined
        out.append(restore.get(_plain(line), line) if restore else line)
    return out


def drop_repeated_tail(lines: list[str], visible: str) -> tuple[list[str], int]:
    """Drop trailing runs of lines that repeat earlier lines when the block does not.

    The longest such run goes first. A tail of n lines that does not occur earlier means
    no longer tail does either (it would contain it), so the search stops there.
    """
    shown = _letters(visible)
    dropped = 0
    while len(lines) > 1:
        full = _letters("\n".join(lines))
        tail, cut = "", 0
        for n in range(1, len(lines) // 2 + 1):
            tail = _letters(lines[-n]) + tail
            if not tail:
                continue
            if full.find(tail, 0, len(full) - len(tail)) < 0:
                break
            if full.count(tail) > shown.count(tail):
                cut = n
        if not cut:
            break
        lines, dropped = lines[:-cut], dropped + cut
    return lines, dropped


def repeated_lines(lines: list[str], visible: str) -> list[str]:
    """Lines of MIN_REPEAT_WORDS+ words the text holds more often than the block."""
    text, shown = _letters("\n".join(lines)), _letters(visible)
    out = []
    for line, n in Counter(lines).items():
        if n > 1 and len(WORD.findall(line)) >= MIN_REPEAT_WORDS:
            letters = _letters(line)
            if text.count(letters) > shown.count(letters):
                out.append(line)
    return out


def recover_tables(
    lines: list[str], visible_lines: list[str], tables: list[list[str]]
) -> tuple[list[str], int]:
    """Put back the rows of tables the text lacks, where the block has them."""
    recovered = 0
    for rows in tables:
        # By lines, not letters: footnote tooltips repeat a note's text in the paragraph.
        present = set(lines)
        if rows and sum(row in present for row in rows) * 2 < len(rows):
            lines = _insert(lines, visible_lines, rows)
            recovered += 1
    return lines, recovered


def recover_captions(
    lines: list[str], visible_lines: list[str], captions: list[list[str]]
) -> tuple[list[str], int]:
    """Put back figure captions of which the text has not a word, where the block has them.

    trafilatura drops the caption of some figures (one of La Quadrature du Net's own
    articles loses it); the rest of the text is right, so only the caption comes back.
    """
    recovered = 0
    for caption in captions:
        text = "\n".join(lines)
        if caption and not any(_occurrences(text, line) for line in caption):
            lines = _insert(lines, visible_lines, caption)
            recovered += 1
    return lines, recovered


def _insert(lines: list[str], visible_lines: list[str], part: list[str]) -> list[str]:
    """``part`` inserted after the last line of the text that comes before it in the block."""
    start = _find_run(visible_lines, part)
    before = set(visible_lines[:start]) if start >= 0 else set()
    at = max((i + 1 for i, line in enumerate(lines) if line in before), default=len(lines))
    return lines[:at] + part + lines[at:]


def _find_run(lines: list[str], run: list[str]) -> int:
    for i in range(len(lines) - len(run) + 1):
        if lines[i : i + len(run)] == run:
            return i
    return -1


def _bad(m: dict[str, float]) -> bool:
    return m["coverage"] < MIN_COVERAGE or m["excess"] > MAX_EXCESS


def check_text(
    text: str, block: HtmlElement | None
) -> tuple[str, list[str], dict[str, Any] | None]:
    """Check (and repair) one extracted text against its block: ``(text, flags, info)``.

    ``info`` is None when nothing was wrong; otherwise it holds the measures of the
    extractor's text, what was done and the measures of the text kept.
    """
    visible = visible_text(block)
    visible_lines = visible.split("\n") if visible else []
    tables = block_parts(block, "table")
    # ``text`` is already in the corpus's normal form (clean_text): one line per line.
    lines = normal_form(text.split("\n") if text else [], visible_lines, bool(tables))
    before = measures("\n".join(lines), visible)
    actions: list[str] = []
    lines, dropped = drop_repeated_tail(lines, visible)
    if dropped:
        actions.append("repeat_removed")
    now = measures("\n".join(lines), visible) if dropped else before
    if tables and now["coverage"] < MIN_COVERAGE:
        lines, recovered = recover_tables(lines, visible_lines, tables)
        if recovered:
            actions.append("table_recovered")
    lines, recovered = recover_captions(lines, visible_lines, block_parts(block, "figcaption"))
    if recovered:
        actions.append("caption_recovered")
    after = measures("\n".join(lines), visible) if actions else before
    if _bad(after) or repeated_lines(lines, visible):
        lines = visible_lines
        actions.append("visible_text_fallback")
        after = measures(visible, visible)
    if not actions:
        return "\n".join(lines), [], None
    info = {"before": before, "actions": actions, "after": after}
    return "\n".join(lines), ["text_check_failed", *actions], info
