"""Text helpers of the extraction: decoding, cleaning, SimHash, language."""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
from py3langid.langid import visit_counts
from w3lib.encoding import read_bom, resolve_encoding

LANG_MAX_CHARS = 10_000
SHINGLE = 3

LATIN1_LABELS = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "cp1252", "windows-1252"}
LATIN1_LABELS |= {"us-ascii", "ascii", "iso-8859-15", "latin-9"}
META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
CHARSET_PARAM = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)
SURROGATES = re.compile("[\ud800-\udfff]")
WORD = re.compile(r"\w+", re.UNICODE)
ASCII_SPACE = re.compile(r"[ \t\n\r\f\v]+")
LINE_SPACE = re.compile(r"[ \t\f\v]+")  # ASCII whitespace but line breaks


# ---------------------------------------------------------------- charset


def charset_from_content_type(value: str | bytes | None) -> str | None:
    """The ``charset=`` parameter of a Content-Type header value, if any."""
    if not value:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    m = CHARSET_PARAM.search(value)
    return m.group(1).strip().lower() if m else None


def _codec(label: str) -> str | None:
    """w3lib's reading of a charset label (WHATWG's table: latin-1 is cp1252), else
    Python's own codec names."""
    name = resolve_encoding(label)
    if name is None:
        try:
            name = codecs.lookup(label).name
        except LookupError:
            return None
    return codecs.lookup(name).name


def decode_html(body: bytes, declared: str | None = None) -> tuple[str, str, list[str]]:
    """Decode page bytes: BOM, declared charset, else ``<meta charset>``, else UTF-8, else
    cp1252.

    w3lib reads the BOM and the labels; the rules it lacks are ours: a page labelled
    Latin-1 whose bytes are valid UTF-8 is UTF-8, bytes the label cannot decode fall back
    to UTF-8 then cp1252 instead of turning into replacement characters, and an unknown
    label is flagged. Returns ``(text, encoding_used, flags)``; ``charset_fallback`` when
    the declared (or assumed UTF-8) charset did not decode the bytes and another one was.
    """
    if not body:
        return "", (declared or "utf-8"), []
    bom_encoding, bom = read_bom(body)
    if bom_encoding is not None:
        # read_bom gives (None, None) or (str, bytes); unpacked, mypy loses the pairing.
        return body[len(bom) :].decode(bom_encoding, errors="replace"), bom_encoding, []  # type: ignore[arg-type]
    label = (declared or "").strip().lower() or None
    if label is None:
        m = META_CHARSET.search(body[:4096])
        label = m.group(1).decode("ascii", "replace").lower() if m else None
    name = _codec(label) if label else None
    flags: list[str] = []
    if label and name is None:
        flags.append("charset_unknown")
    if name and (label in LATIN1_LABELS or name in ("cp1252", "latin_1", "ascii", "iso8859-15")):
        # A page labelled Latin-1 whose bytes are valid, non-ASCII UTF-8 is mislabelled.
        if not body.isascii():
            try:
                return body.decode("utf-8"), "utf-8", ["charset_fallback"]
            except UnicodeDecodeError:
                pass
        return _decode_cp1252(body), "cp1252", flags
    if name and name != "utf-8":
        try:
            return body.decode(name), name, flags
        except UnicodeDecodeError:
            flags.append("charset_fallback")
    try:
        return body.decode("utf-8"), "utf-8", flags
    except UnicodeDecodeError:
        pass
    if "charset_fallback" not in flags:
        flags.append("charset_fallback")
    return _decode_cp1252(body), "cp1252", flags


def _decode_cp1252(body: bytes) -> str:
    """WHATWG treats ISO-8859-1 as windows-1252; the 5 undefined bytes map to C1 controls."""
    try:
        return body.decode("cp1252")
    except UnicodeDecodeError:
        return "".join(
            b.to_bytes(1, "big").decode("cp1252", errors="ignore") or chr(b) for b in body
        )


# ---------------------------------------------------------------- text helpers


def repair_surrogates(text: str) -> str:
    """Join valid surrogate pairs and replace lone surrogates (orjson refuses them)."""
    if not SURROGATES.search(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clean_text(text: str) -> str:
    """NFC, one paragraph per line, no blank or padded lines (no-break spaces kept)."""
    text = repair_surrogates(unicodedata.normalize("NFC", text))
    # One substitution over the whole text: runs of spaces never cross a line break.
    text = LINE_SPACE.sub(" ", text.replace("\r", "\n"))
    return "\n".join(line for line in (x.strip(" ") for x in text.split("\n")) if line)


def one_line(text: str | None) -> str:
    """A title or URL on one line: NFC, ASCII whitespace collapsed, no-break spaces kept."""
    text = unicodedata.normalize("NFC", repair_surrogates(text or ""))
    return ASCII_SPACE.sub(" ", text).strip(" ")


def simhash64(text: str, shingle: int = SHINGLE) -> int:
    """64-bit SimHash over lower-cased word ``shingle``-grams (frequency weighted)."""
    words = WORD.findall(text.lower())
    if not words:
        return 0
    if len(words) < shingle:
        grams = [" ".join(words)]
    else:
        grams = [" ".join(words[i : i + shingle]) for i in range(len(words) - shingle + 1)]
    digests = b"".join([hashlib.blake2b(g.encode(), digest_size=8).digest() for g in grams])
    hashes = np.frombuffer(digests, dtype="<u8")
    bits = np.unpackbits(hashes.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    votes = bits.sum(axis=0, dtype=np.int64) * 2 - len(grams)
    packed = np.packbits((votes > 0).astype(np.uint8), bitorder="little")
    return int.from_bytes(packed.tobytes(), "little")


def hamming(a: int, b: int) -> int:
    """Bits that differ between two SimHashes."""
    return (a ^ b).bit_count()


def _windowed_counts(identifier: Any, data: bytes) -> Counter[int] | None:
    """py3langid's ``visit_counts``, the same counts in the same order, without its walk.

    The walk follows the n-gram automaton byte after byte, each step waiting on the last
    one's memory lookup in a 40 MB table (a third of the extraction's language time). The
    automaton is Aho-Corasick's: the state after a byte is the longest suffix of the text,
    at most ``depth`` bytes, that begins an n-gram, so it is the state reached from the root
    over the last ``depth`` bytes alone, and all positions step together with numpy
    (benchmarks/langid_walk.py proves it for the shipped model; tests/test_extraction.py
    compares counts). Counter keeps first-seen order, the order the scores sum in.
    """
    next_row, nextmove, output, depth = identifier.tables
    n = len(data)
    if n < 4 * depth:  # too short for numpy to pay
        return visit_counts(identifier.tk_nextmove, identifier._rowbase, identifier.tk_output, data)
    moves, rowbase = identifier.tk_nextmove, identifier._rowbase
    head = []  # the first positions see fewer than ``depth`` bytes
    for i in range(depth - 1):
        state = 0
        for letter in data[: i + 1]:
            state = moves[rowbase[state] + letter]
        head.append(state)
    text = np.frombuffer(data, dtype=np.uint8)
    rows = np.zeros(n - depth + 1, dtype=np.int32)  # the root's row
    for k in range(depth - 1, 0, -1):  # byte i - k of each window, oldest first
        rows = next_row[rows + text[depth - 1 - k : n - k]]
    found = output[nextmove[rows + text[depth - 1 :]]]
    visits = Counter(output[head].tolist())
    del visits[-1]
    visits.update(found[found >= 0].tolist())
    return visits or None


@lru_cache(maxsize=1)
def _lang_identifier() -> Any:
    """py3langid's identifier (shipped model, normalised probabilities), its model read
    through the cache of :mod:`crawler.corpus.langid_model`, its automaton walked by
    :func:`_windowed_counts`."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    from crawler.corpus import langid_model

    class _Identifier(LanguageIdentifier):
        __slots__ = ("tables",)

        def _raw_score(self, text: bytes) -> Any:
            visits = _windowed_counts(self, text)
            if visits:
                return self._sparse_score(visits, self.nb_ptc)
            return super()._raw_score(text)  # no feature: py3langid's own fill

    model = langid_model.load(MODEL_DIR / MODEL_FILE)
    args, kwargs = model.identifier_args()
    identifier = _Identifier(*args, norm_probs=True, **kwargs)
    # The row a move leads to: one lookup a byte instead of two (40 MB, mapped from the
    # cache and loaded by the workers' fork server, so shared).
    output = model.out_feat.astype(np.int64)
    identifier.tables = (model.next_row, model.nextmove, output, model.depth)
    return identifier


def warm_up() -> None:
    """Load what the first extraction would load (the language model), ahead of time."""
    _lang_identifier()


def detect_language(text: str) -> tuple[str | None, float | None]:
    """Offline language id (py3langid's shipped model, normalised probability)."""
    if not text.strip():
        return None, None
    lang, prob = _lang_identifier().classify(text[:LANG_MAX_CHARS])
    return str(lang), round(float(prob), 4)


def repair_value(value: Any) -> Any:
    """Lone surrogates anywhere in a record are replaced (orjson raises on them)."""
    if isinstance(value, str):
        return repair_surrogates(value)
    if isinstance(value, dict):
        return {k: repair_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [repair_value(v) for v in value]
    return value


HTML_TYPES = ("text/html", "application/xhtml+xml")


def header_value(headers: Any, name: str) -> str | None:
    """One header value from a Scrapy ``Headers``, a mapping, pairs, or warcio headers."""
    if headers is None:
        return None
    if hasattr(headers, "get_header"):
        return headers.get_header(name)
    items: Iterable[tuple[Any, Any]] = headers.items() if hasattr(headers, "items") else headers
    want = name.lower()
    for key, value in items:
        k = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if k.lower() != want:
            continue
        if isinstance(value, list | tuple):
            value = value[0] if value else None
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        return value
    return None


def is_html(content_type: str | None) -> bool:
    """No Content-Type at all is accepted (sniffed later); otherwise (X)HTML only."""
    if not content_type:
        return True
    return content_type.split(";")[0].strip().lower() in HTML_TYPES
