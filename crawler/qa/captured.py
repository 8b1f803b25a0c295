"""The archive's side of ``qa``: which pages are opened (the HTML 200 captures of the
index, or a sample of them) and what their WARC records hold (the captured text, a cut
or unreadable record named)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# -- the pages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PageRef:
    """One HTML 200 capture of the index: what is opened, and where its record is."""

    collection: str
    url: str
    timestamp: str  # the CDXJ's 14 digits
    filename: str
    offset: int


def html_captures(collections: list) -> Iterator[PageRef]:
    """Every HTML 200 capture of the collections' indexes (the pages of pages.jsonl)."""
    from crawler.warc.cdxj import parse_cdxj_line

    for collection in collections:
        with open(collection.index, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parsed = parse_cdxj_line(line)
                if parsed is None:
                    continue  # `verify` names a damaged index line
                _key, ts, fields = parsed
                mime = fields.get("mime")
                if fields.get("status") != "200" or not isinstance(mime, str) or "html" not in mime:
                    continue
                if not (len(ts) == 14 and ts.isdigit()):
                    continue
                yield PageRef(
                    collection.name, fields["url"], ts, fields["filename"], int(fields["offset"])
                )


def choose(pages: Iterator[PageRef], sample: int | None, seed: int) -> list[PageRef]:
    """All pages, or ``sample`` of them drawn with ``seed`` (reservoir sampling: memory
    bounded by the sample, the same draw for the same archive and seed)."""
    if sample is None:
        return list(pages)
    rng = random.Random(seed)
    chosen: list[PageRef] = []
    for i, page in enumerate(pages):
        if i < sample:
            chosen.append(page)
        else:
            j = rng.randrange(i + 1)
            if j < sample:
                chosen[j] = page
    return sorted(chosen, key=lambda p: (p.collection, p.url, p.timestamp))


# -- the captured side --------------------------------------------------------------------


@dataclass
class CapturedPage:
    """A captured page's text, or why it cannot be compared."""

    text: str = ""
    problem: str | None = None


def captured_page(path: Path | None, offset: int, chars: int, read_limit: int) -> CapturedPage:
    """The visible text of the captured response (the farm's truth rule:
    crawler.corpus.selfcheck.visible_text), and what is wrong with its record: a record
    cut short (a truncated file) or unreadable is named, never raised."""
    from crawler.corpus.selfcheck import visible_text
    from crawler.corpus.text import charset_from_content_type, decode_html
    from crawler.parsing import parse_html
    from crawler.warc.reader import RecordWalk, open_warc

    if path is None:
        return CapturedPage(problem="its WARC file is not in the archive")
    problem = None
    try:
        with open_warc(path) as fh:
            fh.seek(offset)
            walk = RecordWalk(fh, payload=lambda _record: read_limit)  # DOWNLOAD_MAXSIZE
            record = next(iter(walk), None)
    except OSError as exc:
        return CapturedPage(problem=f"its record in {path.name} is unreadable ({exc!r})")
    if record is None or not record.decoded:
        if record is None and walk.failure is None:
            return CapturedPage(problem=f"no record at offset {offset} of {path.name}")
        why = repr(walk.failure) if record is None else "its Content-Encoding cannot be undone"
        return CapturedPage(problem=f"its record in {path.name} is unreadable ({why})")
    payload, defect = record.payload, record.defect
    declared = record.http_headers.get_header("Content-Type") if record.http_headers else None
    if defect:
        problem = f"its record in {path.name} at offset {offset} is cut: {defect}"
    try:
        html, _, _ = decode_html(payload, charset_from_content_type(declared))
        doc = parse_html(html, "")
        body = doc.find("body")
        text = visible_text(body if body is not None else doc)
    except Exception as exc:  # noqa: BLE001 - a page lxml cannot read has no text
        return CapturedPage(problem=problem or f"its captured page cannot be parsed ({exc!r})")
    return CapturedPage(text[:chars], problem)
