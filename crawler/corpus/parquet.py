"""The corpus as Parquet: its one explicit schema, a record's row, the files.

An explicit schema, because type inference turns the date strings into timestamps and
breaks ``datasets`` loading; ``croissant.json``'s record sets are derived from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PARQUET_ROWS = 100_000
# Field metadata of a string column holding an ISO 8601 date-time (croissant.json says
# sc:DateTime of it).
ISO_8601 = {b"format": b"ISO 8601"}


def parquet_schema() -> Any:
    """The Parquet schema: every date is a string (ISO 8601), hashes are hex strings."""
    import pyarrow as pa

    s = pa.string()
    return pa.schema(
        [
            ("id", s),
            ("url", s),
            ("source_url", s),
            ("title", s),
            pa.field("date", s, metadata=ISO_8601),
            ("date_raw", s),
            pa.field("crawl_date", s, metadata=ISO_8601),
            ("lang", s),
            ("text", s),
            ("n_words", pa.int32()),
            (
                "site",
                pa.struct([("url", s), ("title", s), ("source", s), ("engine", s)]),
            ),
            (
                "warc",
                pa.struct(
                    [
                        ("filename", s),
                        ("record_id", s),
                        ("offset", pa.int64()),
                        ("length", pa.int64()),
                        ("payload_digest", s),
                        ("http_status", pa.int32()),
                        ("target_uri", s),
                    ]
                ),
            ),
            (
                "extraction",
                pa.struct(
                    [
                        ("tool", s),
                        ("version", s),
                        ("options_json", s),
                        ("pipeline", s),
                        ("lang_id", s),
                        ("lang_score", pa.float64()),
                        ("self_check_json", s),
                    ]
                ),
            ),
            ("hashes", pa.struct([("text_sha256", s), ("simhash", s)])),
            (
                "dup",
                pa.struct(
                    [
                        ("exact_group", s),
                        ("exact_group_size", pa.int32()),
                        ("exact_canonical_id", s),
                        ("near_cluster", s),
                        ("near_cluster_size", pa.int32()),
                        ("is_canonical", pa.bool_()),
                    ]
                ),
            ),
            ("quality_flags", pa.list_(s)),
        ]
    )


def _row(rec: dict[str, Any]) -> dict[str, Any]:
    """A corpus record shaped for :func:`parquet_schema` (options as JSON text)."""
    ext = rec.get("extraction") or {}
    warc = rec.get("warc") or {}
    return {
        **{k: rec.get(k) for k in ("id", "url", "source_url", "title", "date", "date_raw")},
        **{k: rec.get(k) for k in ("crawl_date", "lang", "text", "n_words")},
        "site": {k: (rec.get("site") or {}).get(k) for k in ("url", "title", "source", "engine")},
        "warc": {
            k: warc.get(k)
            for k in (
                "filename",
                "record_id",
                "offset",
                "length",
                "payload_digest",
                "http_status",
                "target_uri",
            )
        }
        if warc
        else None,
        "extraction": {
            "tool": ext.get("tool"),
            "version": ext.get("version"),
            "options_json": json.dumps(ext.get("options"), sort_keys=True),
            "pipeline": ext.get("pipeline"),
            "lang_id": ext.get("lang_id"),
            "lang_score": ext.get("lang_score"),
            "self_check_json": json.dumps(ext["self_check"], sort_keys=True)
            if ext.get("self_check")
            else None,
        },
        "hashes": rec.get("hashes"),
        "dup": rec.get("dup"),
        "quality_flags": rec.get("quality_flags") or [],
    }


def write_parquet(records: list[dict[str, Any]], directory: Path, rows: int) -> list[Path]:
    """The records as ``corpus-NNNNN.parquet`` files of ``rows`` rows each (the old ones
    replaced), all with :func:`parquet_schema`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("corpus-*.parquet"):
        old.unlink()
    schema = parquet_schema()
    paths = []
    for n, start in enumerate(range(0, max(len(records), 1), rows)):
        table = pa.Table.from_pylist([_row(r) for r in records[start : start + rows]], schema)
        path = directory / f"corpus-{n:05d}.parquet"
        pq.write_table(table, path, compression="zstd")
        paths.append(path)
    return paths
