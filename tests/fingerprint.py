"""What a crawl wrote, minus what legitimately differs between two runs of the same crawl.

Dates, record ids, file names, offsets and lengths (gzip members differ when a date or
an id does) are left out; everything else a user receives is kept: every WARC record's
type, target URI, payload digest and HTTP status, the metadata records' outlinks, the
CDXJ lines, pages.jsonl, the corpus and the change report. ``tests/test_same_output.py``
compares a fresh crawl with the fingerprint committed before the code was reshaped.

Regenerate (only when an output change is intended):
    .venv/bin/python tests/fingerprint.py | gzip -9 > tests/data/crawl-fingerprint.json.gz
"""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
from warcio.archiveiterator import ArchiveIterator

BIN = Path(sys.executable).parent
# Run-specific values inside otherwise stable text, and the version (user agent, warcinfo,
# corpus provenance): a release changes it, not the output.
VOLATILE = re.compile(
    r"autoblog-archive[/ ]\d+\.\d+\.\d+|"
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?|<?urn:uuid:[0-9a-f-]+>?|\d{14}|"
    r"[\w.-]+-\d{17}-\d{5}-[\w.-]+\.warc\.gz|fetchTimeMs: \d+|127\.0\.0\.1:\d+|127:\d+\)"
)
PORT = re.compile(rb"127\.0\.0\.1:\d+")
DROPPED = {
    *("offset", "length", "filename", "record_id", "id", "payload_digest"),
    *("ts", "timestamp", "bytes_written", "warc_bytes", "command"),
}


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in sorted(value.items()) if k not in DROPPED}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return VOLATILE.sub("*", value)
    return value


def warc_records(archive: Path) -> list[list[Any]]:
    out = []
    for path in sorted(archive.glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                head = record.rec_headers
                entry: list[Any] = [record.rec_type, head.get_header("WARC-Target-URI")]
                if record.rec_type in ("response", "revisit"):
                    body = record.content_stream().read()
                    entry += [
                        hashlib.sha1(PORT.sub(b"*", body)).hexdigest() if body else None,
                        record.http_headers.get_statuscode() if record.http_headers else None,
                        bool(head.get_header("WARC-Refers-To")),
                    ]
                elif record.rec_type == "metadata":
                    entry.append(_scrub(record.content_stream().read().decode("utf-8")))
                elif record.rec_type == "warcinfo":
                    fields = record.content_stream().read().decode("utf-8").splitlines()
                    entry.append(sorted(_scrub(f) for f in fields))
                out.append(entry)
    return sorted(out, key=lambda e: orjson.dumps(e))


def jsonl(path: Path) -> list[Any]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return [_scrub(orjson.loads(line)) for line in fh if line.strip()]


def fingerprint(out: Path, name: str) -> dict[str, Any]:
    collection = out / "collections" / name
    cdxj = []
    for line in (collection / "indexes" / "index.cdxj").read_text().splitlines():
        key, _ts, blob = line.split(" ", 2)
        fields = _scrub(orjson.loads(blob))
        fields.pop("digest", None)  # of the payload, port included: compared above
        cdxj.append([VOLATILE.sub("*", key), fields])
    corpus = sorted(
        (rec for shard in sorted(out.glob("corpus/**/part-*.jsonl.gz")) for rec in jsonl(shard)),
        key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS),
    )
    reports = [_scrub(orjson.loads(p.read_bytes())) for p in sorted(out.glob("reports/run-*.json"))]
    return {
        "warc": warc_records(collection / "archive"),
        "cdxj": sorted(cdxj, key=lambda e: orjson.dumps(e)),
        "pages": jsonl(out / "pages.jsonl"),
        "corpus": corpus,
        "reports": reports,
    }


def crawl_twice(out: Path) -> dict[str, Any]:
    """A full crawl, the farm grows, an incremental crawl: both runs' outputs."""
    from crawler.samplefarm import start_farm

    def crawl(url: str) -> None:
        cmd = [str(BIN / "autoblog-archive"), "crawl", url, "-o", str(out), "--name", "fp"]
        subprocess.run([*cmd, "--fast"], check=False, capture_output=True, timeout=300)

    with start_farm(autoblogs=3, articles=14, seed=7, fault=["2:shapes"]) as farm:
        crawl(farm.url)
        first = fingerprint(out, "fp")
        farm.grow(n=2)
        crawl(farm.url)
        second = fingerprint(out, "fp")
    return scrub_volatile({"first": first, "second": second})


def scrub_volatile(value: Any) -> Any:
    return orjson.loads(VOLATILE.sub("*", orjson.dumps(value).decode()))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        sys.stdout.write(
            orjson.dumps(crawl_twice(Path(tmp) / "out"), option=orjson.OPT_INDENT_2).decode()
        )
