"""The same farm and seed give the same output as the code before the reshape (issue 11).

The fingerprint (``tests/fingerprint.py``) keeps every WARC record's type, URI, payload
and status, the outlinks, the CDXJ, pages.jsonl, the corpus and the change reports of a
full crawl and of an incremental one after the farm grew; it leaves out dates, record
ids, file names and offsets. It was committed from the code as it was before the reshape.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from fingerprint import crawl_twice, scrub_volatile

pytestmark = pytest.mark.e2e

GOLDEN = Path(__file__).parent / "data" / "crawl-fingerprint.json.gz"


def _first_difference(a, b, path="") -> str | None:
    if type(a) is not type(b):
        return f"{path}: {str(a)[:200]} != {str(b)[:200]}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}/{key}: only on one side"
            found = _first_difference(a[key], b[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = _first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None if len(a) == len(b) else f"{path}: {len(a)} items != {len(b)}"
    return None if a == b else f"{path}: {str(a)[:200]!r} != {str(b)[:200]!r}"


def _without_empty_throttled(value):
    """0.3.0's change report has a ``throttled`` category (polite back-off, issue 23) that
    the golden predates: dropped where empty, so a page really throttled still differs."""
    if isinstance(value, dict):
        return {
            k: _without_empty_throttled(v)
            for k, v in value.items()
            if not (k == "throttled" and v in ([], 0, {}))
        }
    if isinstance(value, list):
        return [_without_empty_throttled(v) for v in value]
    return value


def test_crawl_output_is_unchanged(tmp_path):
    # Scrubbed again: what VOLATILE leaves out now (the version) was kept in the file.
    expected = scrub_volatile(orjson.loads(gzip.decompress(GOLDEN.read_bytes())))
    got = _without_empty_throttled(crawl_twice(tmp_path / "out"))
    assert got["first"]["corpus"] and got["second"]["reports"]
    assert _first_difference(expected, got) is None, _first_difference(expected, got)
