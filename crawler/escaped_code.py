"""Escaped code cut out of an article's raw markup, in one pass linear in the page, and
the check that an extracted text shows none left (:func:`has_code_residue`).

The engines escape only the opening tag of ``<script>``, ``<style>`` and ``<link>`` in
an article: read as HTML, the source would glue to the text after it. The spider, the
history and the extraction read pages through :func:`crawler.parsing.parse_page`, which
cuts it here first.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_left
from collections.abc import Iterable, Iterator

# The engine escapes only the OPENING tag of <script>, <style> and <link> inside
# article HTML; the real closing tag stays.  An HTML parser then drops the closing
# tag and glues the script source to the next text, so the source must be cut from
# the raw markup, where both ends are still visible.  A run goes from ``&lt;script``
# (or ``&lt;style``) to the nearest closing tag of the same name, or, when the source
# div comes first, up to (not into) ``</div>`` before ``<footer|p class="source">``.
# Each pattern below matches a fixed shape and is searched once over the page: no
# pattern spans the run itself (a lazy ``.*?`` to a terminator that never comes made
# the cut quadratic in the page: 47 s on a 240 KB page); :func:`_code_runs` pairs them.
CODE_OPEN = re.compile(r"&lt;(script|style)\b", re.IGNORECASE)
CODE_CLOSE = re.compile(r"</(script|style)\s*>", re.IGNORECASE)
SOURCE_DIV = re.compile(r"</div>\s*<(?:footer|p) class=\"source\"", re.IGNORECASE)
LINK_OPEN = re.compile(r"&lt;link\b", re.IGNORECASE)


CODE_REMOVED_MARK = "<!--autoblog-archive:code-removed-->"


def strip_escaped_code(html: str, marker: str = "") -> tuple[str, bool]:
    """Remove escaped ``&lt;script``/``&lt;style`` source (and ``&lt;link``) from raw HTML.

    ``marker`` replaces each removed run (e.g. :data:`CODE_REMOVED_MARK`, an HTML comment),
    so that extraction can tell WHICH article block had code removed. Linear in the page.
    """
    cleaned, n = _cut(html, _code_runs(html), marker)
    cleaned, m = _cut(cleaned, _link_runs(cleaned), "")
    return cleaned, bool(n or m)


def _code_runs(html: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each escaped code run, in order, none overlapping.

    An opening with no terminator after it is left as it is, and so is its text.
    """
    closes: dict[str, tuple[list[int], list[int]]] = {}
    for m in CODE_CLOSE.finditer(html):
        starts, ends = closes.setdefault(_name_key(m.group(1)), ([], []))
        starts.append(m.start())
        ends.append(m.end())
    divs = [m.start() for m in SOURCE_DIV.finditer(html)]
    done = 0
    for m in CODE_OPEN.finditer(html):
        if m.start() < done:
            continue  # inside the run cut before
        end = _NO_END
        starts, ends = closes.get(_name_key(m.group(1)), ([], []))
        i = bisect_left(starts, m.end())
        if i < len(starts):
            end = ends[i]
            first = starts[i]
        else:
            first = _NO_END
        j = bisect_left(divs, m.end())
        if j < len(divs) and divs[j] < first:
            end = divs[j]  # the run stops before the source div, which stays
        if end == _NO_END:
            continue
        yield m.start(), end
        done = end


def _link_runs(html: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each ``&lt;link ...>``: up to the first ``>`` after the name."""
    done = 0
    for m in LINK_OPEN.finditer(html):
        if m.start() < done:
            continue
        close = html.find(">", m.end())
        if close < 0:
            return  # no ">" after this opening, nor after any later one
        yield m.start(), close + 1
        done = close + 1


_NO_END = sys.maxsize


def _name_key(name: str) -> str:
    """A tag name as a case-insensitive backreference compares it: character by character,
    simple lower case (``İ`` is ``i``; ``ſ`` and ``ı`` stay themselves)."""
    return name.replace("İ", "i").lower()


def _cut(html: str, runs: Iterable[tuple[int, int]], marker: str) -> tuple[str, int]:
    """``html`` with each (start, end) run replaced by ``marker``; the count of runs."""
    parts: list[str] = []
    kept = 0
    for start, end in runs:
        parts.append(html[kept:start])
        parts.append(marker)
        kept = end
    if not parts:
        return html, 0
    parts.append(html[kept:])
    return "".join(parts), len(parts) // 2


# Script/style source that escaped the template cleaning would look like this, or like
# "function name(...) {", which has_code_residue finds in one pass: as one more branch of
# this pattern, "[^)]*" ran from every "function f(" to the end of a text without ")".
CODE_RESIDUE = re.compile(
    r"<script|</script|&lt;script|<style|&lt;style|jQuery\s*\(|document\.write\s*\(",
    re.IGNORECASE,
)
FUNCTION_HEAD = re.compile(r"\bfunction\s+\w+\s*\(", re.IGNORECASE)
BRACE_NEXT = re.compile(r"\s*\{")


def has_code_residue(text: str) -> bool:
    """Whether ``text`` shows script or style source; linear in the text."""
    if CODE_RESIDUE.search(text):
        return True
    close = -1  # the ")" that closes the heads found so far, none followed by "{"
    for head in FUNCTION_HEAD.finditer(text):
        if head.end() <= close:
            continue  # its first ")" is the one already tried
        close = text.find(")", head.end())
        if close < 0:
            return False  # no ")" after this head, nor after any later one
        if BRACE_NEXT.match(text, close + 1):
            return True
    return False
