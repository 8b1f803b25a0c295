"""Issue 19, item 3: every parse of farm content is linear in its size.

The escaped-script cut took 47 s on a 240 KB page (a lazy ``.*?`` to a terminator that
never came, tried from every opening). Time is not asserted here (the bench measures it,
``autoblog-archive bench --hostile``): what is asserted is that no pattern applied to
content can rescan or backtrack (a structural audit of every module-level pattern of
crawler/, spiders/ and pipelines/), and that the linear code cuts exactly what the old
patterns cut (so the corpus stays byte for byte the same).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from re import _compiler, _parser
from re import _constants as sre

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crawler
from crawler.escaped_code import has_code_residue, strip_escaped_code

# -- the old patterns, as the reference of what is cut ---------------------------------

OLD_CODE = re.compile(
    r"&lt;(script|style)\b.*?(?:</\1\s*>|(?=</div>\s*<(?:footer|p) class=\"source\"))",
    re.IGNORECASE | re.DOTALL,
)
OLD_LINK = re.compile(r"&lt;link\b[^>]*>", re.IGNORECASE)
OLD_RESIDUE = re.compile(
    r"<script|</script|&lt;script|<style|&lt;style|jQuery\s*\(|document\.write\s*\("
    r"|\bfunction\s+\w+\s*\([^)]*\)\s*\{",
    re.IGNORECASE,
)


def old_strip(html: str, marker: str) -> tuple[str, bool]:
    cleaned, n = OLD_CODE.subn(marker, html)
    cleaned, m = OLD_LINK.subn("", cleaned)
    return cleaned, bool(n or m)


MARKUP = [
    "&lt;script", "&lt;SCRIPT", "&lt;style", "&lt;ſcript", "&lt;scrİpt", "&lt;scripts",
    "&lt;link", "&LT;link", "</script>", "</SCRIPT >", "</style\n>", "</ſcript>",
    "</scrİpt>", "</script", "</div>", '</div> <p class="source"',
    '</DIV>\n<FOOTER class="source"', '<p class="source"', ">", "<", " ", "x", "é", "\n",
    "&lt;", "</", "div",
]  # fmt: skip
CODE = [
    "function", "FUNCTION", " ", "\n", "f", "functionx", "(", ")", "{", "}", "a", "é", "_",
    "jQuery", "document.write", "<scrip", "&lt;style", "\t",
]  # fmt: skip
MARKERS = ["", "<!--m-->"]
SOME = settings(max_examples=1000, deadline=None)


@SOME
@given(st.lists(st.sampled_from(MARKUP), max_size=16).map("".join), st.sampled_from(MARKERS))
def test_the_escaped_code_cut_is_the_old_patterns_cut(html, marker):
    assert strip_escaped_code(html, marker) == old_strip(html, marker)


@SOME
@given(st.lists(st.sampled_from(CODE), max_size=14).map("".join))
def test_the_code_residue_check_is_the_old_patterns_check(text):
    assert has_code_residue(text) == bool(OLD_RESIDUE.search(text))


# -- no pattern applied to content can rescan or backtrack ------------------------------

# Patterns applied to content with .match at a given position, though not written with "^".
ANCHORED_BY_USE = {"crawler.escaped_code.BRACE_NEXT"}
# Patterns the rules below would refuse, each with why it stays linear where it is used.
ALLOWED = {
    "crawler.corpus.text.META_CHARSET": "searched in the first 4096 bytes of a page only",
    "crawler.corpus.selfcheck.MARKDOWN_RULE": "anchored; each '|' ends one repetition, so "
    "a line splits into repetitions one way only (no choice to backtrack into)",
}
SKIPPED_PACKAGES = ("crawler.samplefarm", "crawler.bench")  # the test oracle, the bench
PROBES = [chr(i) for i in range(256)] + list("ſİıKé€\u2003\u3000")
REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None))
ONE_CHAR = (sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY, sre.CATEGORY)


def module_patterns() -> dict[str, re.Pattern[str] | re.Pattern[bytes]]:
    """Every module-level compiled pattern of the crawl's own code."""
    names = ["spiders.autoblog", "pipelines.warc_capture", "pipelines.research_corpus"]
    for info in pkgutil.walk_packages(crawler.__path__, "crawler."):
        if not info.name.startswith(SKIPPED_PACKAGES) and not info.name.endswith("__main__"):
            names.append(info.name)
    found = {}
    for name in names:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if isinstance(value, re.Pattern) and getattr(value, "__module__", name):
                found.setdefault(f"{name}.{attr}", value)
    return found


def _chars(items: list, pattern: re.Pattern) -> set[str]:
    """The probe characters one single-character item matches, under the pattern's flags."""
    state = _parser.State()
    state.flags = pattern.flags
    compiled = _compiler.compile(_parser.SubPattern(state, list(items)), pattern.flags)
    if isinstance(pattern.pattern, bytes):
        return {c for c in PROBES if ord(c) < 256 and compiled.fullmatch(c.encode("latin-1"))}
    return {c for c in PROBES if compiled.fullmatch(c)}


def _first(seq: list, pattern: re.Pattern) -> set[str]:
    """Characters a match of ``seq`` may start with (every probe when unknown)."""
    out: set[str] = set()
    for op, av in seq:
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            continue
        if op in ONE_CHAR:
            return out | _chars([(op, av)], pattern)
        if op is sre.SUBPATTERN:
            return out | _first(list(av[-1]), pattern)
        if op is sre.BRANCH:
            return out | set().union(*(_first(list(b), pattern) for b in av[1]))
        if op in REPEATS:
            out |= _first(list(av[2]), pattern)
            if av[0] > 0:
                return out
            continue
        return set(PROBES)
    return out


def problems(name: str, pattern: re.Pattern) -> list[str]:
    """Why ``pattern`` may take more than linear time on a long input, if it may.

    - an unbounded repeat inside an unbounded repeat (nested quantifiers);
    - in a pattern searched for (not anchored): an unbounded run of any character; an
      unbounded run of a class S followed by something that can start with a character of
      S (backtracking into the run); an unbounded run followed by more pattern, when the
      pattern may start inside such a run (each start would scan the run again), unless
      the item just before the run cannot be in it (the run then has one start only).
    """
    anchored = pattern.pattern[:1] in ("^", b"^") or name in ANCHORED_BY_USE
    tree = list(_parser.parse(pattern.pattern, pattern.flags))
    starts = _first(tree, pattern)
    found: list[str] = []

    def walk(seq: list, in_unbounded: bool, followed: bool, prev: tuple | None = None) -> None:
        """``prev``: the item before ``seq`` in the enclosing sequence (a group's fence)."""
        for i, (op, av) in enumerate(seq):
            after = followed or any(o not in (sre.AT,) for o, _ in seq[i + 1 :])
            if op in REPEATS:
                low, high, sub = av
                unbounded = high == sre.MAXREPEAT
                sub = list(sub)
                if unbounded and in_unbounded:
                    found.append("nested unbounded repeats")
                if unbounded and not anchored and len(sub) == 1 and sub[0][0] in ONE_CHAR:
                    run = _chars(sub, pattern)
                    if sub[0][0] is sre.ANY:
                        found.append("an unbounded run of any character")
                    if _first(seq[i + 1 :], pattern) & run and i + 1 < len(seq):
                        found.append("backtracking into an unbounded run")
                    before = [prev, *(item for item in seq[:i] if item[0] is not sre.AT)]
                    fenced = before[-1] is not None and _fence(before[-1], run, pattern)
                    if after and starts & run and not fenced:
                        found.append("a run every start scans again")
                walk(sub, in_unbounded or unbounded, after)
            elif op in (sre.SUBPATTERN, sre.BRANCH):
                last = [item for item in seq[:i] if item[0] is not sre.AT]
                enclosing = last[-1] if last else prev
                for branch in [av[-1]] if op is sre.SUBPATTERN else av[1]:
                    walk(list(branch), in_unbounded, after, enclosing)

    walk(tree, False, False)
    return found


def _fence(item: tuple, run: set[str], pattern: re.Pattern) -> bool:
    """A mandatory item none of whose characters can be in ``run``."""
    op, av = item
    if op in REPEATS:
        if av[0] < 1 or len(av[2]) != 1:
            return False
        item = list(av[2])[0]
        op = item[0]
    return op in ONE_CHAR and not (_chars([item], pattern) & run)


def test_no_pattern_applied_to_content_can_rescan_or_backtrack():
    patterns = module_patterns()
    assert "crawler.escaped_code.CODE_OPEN" in patterns and "crawler.outlinks.LINK_ATTR" in patterns
    refused = {
        name: found
        for name, pattern in patterns.items()
        if (found := problems(name, pattern)) and name not in ALLOWED
    }
    assert refused == {}, refused


@pytest.mark.parametrize(
    "source",
    [
        OLD_CODE.pattern,
        OLD_LINK.pattern,
        OLD_RESIDUE.pattern,
        r"<meta[^>]+charset",
        r"(a+)+b",
        r"\s+x",
    ],
)
def test_the_audit_refuses_the_patterns_that_were_quadratic(source):
    assert problems("test", re.compile(source, re.IGNORECASE)), source
