"""Text from outside escaped for what people read: the terminal, the dataset card, the manifest.

A page's title or an autoblog's name may hold an ANSI escape (``ESC[31m`` recolours a
terminal, ``ESC]8;;`` makes a hidden link, others clear the screen), a newline (a forged
line in a report), bidirectional overrides (text shown in another order than it is),
Markdown (``[click](javascript:...)``) or HTML (``<script>``); so may an archive's headers
and a folder's file names. Everything rendered from such text for a person goes through
this module (:func:`html` for the HTML report). In JSON, orjson escapes C0 control
characters; :func:`safe_json` escapes every other one too (``croissant.json``, which
people and tools read as they are).

Each function is one ``str.translate`` (linear, no regular expression on the content).
"""

from __future__ import annotations

import logging

# C0 controls, DEL and C1 controls; the line and paragraph separators; the bidirectional
# marks, embeddings, overrides and isolates.
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
CONTROLS = frozenset((*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *_BIDI))


def _shown(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_TERMINAL = {code: _shown(code) for code in CONTROLS}

# ASCII punctuation that can open inline Markdown, HTML, an autolink (``:``, ``@``, ``.``),
# math (``$``) or end a table cell (``|``); CommonMark renders each, backslash-escaped, as
# itself. White space controls become a space (a newline would end a table row).
_MARKDOWN = {
    **_TERMINAL,
    **{code: " " for code in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029)},
    **{ord(c): "\\" + c for c in "\\`*_{}[]()<>#+-.!|~:@&$"},
}

# What GNU coreutils escapes in a checksum line (the line then starts with a backslash).
_CHECKSUM = {ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r"}


def terminal(text: object) -> str:
    """``text`` as one line for a terminal: every control character shown (``\\x1b``),
    none sent."""
    return str(text).translate(_TERMINAL)


def markdown(text: object) -> str:
    """``text`` as inline Markdown (a heading, a table cell) that renders as the text
    itself: no link, image, HTML, emphasis or code can form, no control character left."""
    return str(text).translate(_MARKDOWN)


# HTML's five special characters as references, every control character shown escaped
# (``\x1b``): the text of a value, never markup, in an element's text or a quoted attribute.
_HTML = {
    **_TERMINAL,
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("'"): "&#x27;",
}


def html(text: object) -> str:
    """``text`` for an HTML page (the HTML report): shown as itself, no tag, attribute,
    entity or control character can form."""
    return str(text).translate(_HTML)


# JSON escapes for what orjson leaves raw (DEL, C1 controls, bidirectional marks, line
# separators: never a character of the JSON's own layout), each only ever inside a string,
# where any character may be written \uXXXX.
_JSON = {code: f"\\u{code:04x}" for code in CONTROLS if code >= 0x7F}


def safe_json(value: object) -> bytes:
    """``value`` as indented JSON in which every control character is a ``\\u`` escape:
    the same data for a JSON reader, nothing a terminal or an editor acts on (orjson
    escapes C0 controls only; a bidirectional override in a value would reorder what a
    person reading the file sees)."""
    import orjson

    text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8")
    return text.translate(_JSON).encode("utf-8")


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character :func:`terminal` would show escaped."""
    return any(ord(c) in CONTROLS for c in text)


def checksum_line(digest: str, name: str) -> str:
    """One ``sha256sum -c`` line. A backslash, newline or carriage return in ``name`` is
    escaped as GNU coreutils does, which ``sha256sum -c`` reads back; other control
    characters have no escape there (see :func:`has_control`)."""
    escaped = name.translate(_CHECKSUM)
    flag = "\\" if escaped != name else ""
    return f"{flag}{digest}  {escaped}\n"


class TerminalFormatter(logging.Formatter):
    """Log lines for a terminal: a message about outside text stays one escaped line."""

    def format(self, record: logging.LogRecord) -> str:
        """The log record as the base formatter makes it, escaped for the terminal."""
        return terminal(super().format(record))
