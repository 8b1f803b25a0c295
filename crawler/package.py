"""``autoblog-archive package DIR``: turn a corpus folder into a dataset researchers can take.

A dataset handed over must say what it is and prove it is intact: so this writes, next
to ``DIR/corpus/``, a dataset card (README.md), counts, duplicate annotations (exact and
near, across autoblogs and farms: autoblogs are mirrors, the same article is often
mirrored more than once), Parquet with an EXPLICIT schema (type inference turns the date
strings into timestamps and breaks ``datasets`` loading), and last a manifest with the
sha256 of every file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

import crawler
from crawler.corpus import annotate_duplicates, read_corpus
from crawler.exitcodes import UsageError

MANIFEST_TXT = "MANIFEST.sha256"
MANIFEST_JSON = "manifest.json"
PARQUET_ROWS = 100_000


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
            ("date", s),
            ("date_raw", s),
            ("crawl_date", s),
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


def _host(url: str | None) -> str:
    return urlsplit(url or "").netloc


def duplicate_groups(records: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Exact groups and near-duplicate clusters, with the autoblogs and farms they span."""
    exact: dict[str, list[dict]] = defaultdict(list)
    near: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r["dup"]["exact_group"]:
            exact[r["dup"]["exact_group"]].append(r)
        if r["dup"]["near_cluster"]:
            near[r["dup"]["near_cluster"]].append(r)

    def describe(key: str, members: list[dict], kind: str) -> dict[str, Any]:
        sites = sorted({m["site"]["url"] for m in members})
        farms = sorted({_host(m["site"]["url"]) for m in members})
        return {
            "kind": kind,
            "group": key,
            "size": len(members),
            "ids": [m["id"] for m in members],
            "urls": [m["url"] for m in members],
            "titles": sorted({m["title"] for m in members}),
            "sites": sites,
            "farms": farms,
            "cross_site": len(sites) > 1,
            "cross_farm": len(farms) > 1,
        }

    return (
        [describe(k, v, "exact") for k, v in sorted(exact.items())],
        [describe(k, v, "near") for k, v in sorted(near.items())],
    )


def corpus_counts(records: list[dict[str, Any]], exact: list[dict], near: list[dict]) -> dict:
    flags = Counter(f for r in records for f in r["quality_flags"])
    dates = sorted(r["date"] for r in records if r["date"])
    crawl = sorted(r["crawl_date"] for r in records if r["crawl_date"])
    sites: dict[str, dict[str, Any]] = {}
    for r in records:
        s = sites.setdefault(
            r["site"]["url"],
            {"title": r["site"]["title"], "source": r["site"]["source"], "records": 0},
        )
        s["engine"] = r["site"]["engine"]
        s["records"] += 1
    return {
        "records": len(records),
        "words": sum(r["n_words"] for r in records),
        "farms": sorted({_host(u) for u in sites}),
        "autoblogs": len(sites),
        "by_engine": dict(sorted(Counter(r["site"]["engine"] for r in records).items())),
        "by_lang": dict(Counter(r["lang"] for r in records).most_common()),
        "quality_flags": dict(sorted(flags.items())),
        "from_index_only": flags.get("from_index_only", 0),
        "exact_duplicate_groups": len(exact),
        "records_in_exact_groups": sum(g["size"] for g in exact),
        "near_duplicate_clusters": len(near),
        "records_in_near_clusters": sum(g["size"] for g in near),
        "cross_farm_exact_groups": sum(g["cross_farm"] for g in exact),
        "canonical_records": sum(1 for r in records if r["dup"]["is_canonical"]),
        "article_dates": [dates[0], dates[-1]] if dates else None,
        "crawl_dates": [crawl[0], crawl[-1]] if crawl else None,
        "sites": sites,
    }


FIELD_ROWS = [
    ("id", "string", "stable id: WARC-Record-ID of the capture + `#` + block index on the page"),
    ("url", "string", "the autoblog permalink of the article (percent-encoded as requested)"),
    ("source_url", "string", "the ORIGINAL article's URL (as the autoblog links it)"),
    ("title", "string", "title from the autoblog template"),
    ("date", "string", "publication date, ISO 8601 with offset; null when unknown (no guess)"),
    ("date_raw", "string", "the date exactly as the page printed it"),
    ("crawl_date", "string", "WARC-Date of the capture (UTC)"),
    ("lang", "string", "offline language id (py3langid); score in `extraction.lang_score`"),
    ("text", "string", "NFC text, one paragraph per line, footnotes kept, no script/style"),
    ("n_words", "int", "whitespace-separated words of `text`"),
    ("site", "struct", "autoblog `url`, `title`, `source` (mirrored site), `engine` family"),
    (
        "warc",
        "struct",
        "`filename`, `record_id`, `offset`/`length` of the gzip member, `payload_digest`, "
        "`http_status`, `target_uri` (the captured page)",
    ),
    (
        "extraction",
        "struct",
        "`tool`, `version`, options (JSON text in Parquet), lang score, `self_check`",
    ),
    ("hashes", "struct", "`text_sha256`, `simhash` (64-bit, 3-word shingles, hex)"),
    (
        "dup",
        "struct",
        "`exact_group` (shared text sha256), `near_cluster` (id of the cluster's first "
        "record), sizes, `is_canonical`",
    ),
    ("quality_flags", "list", "see below"),
]
FLAG_ROWS = [
    (
        "from_index_only",
        "no capture of the permalink page gave the article (404, empty, timed out, not a "
        "permalink): text from an index page, and `warc.target_uri` is that index page",
    ),
    (
        "permalink_404, permalink_empty_page, permalink_extraction_timeout, "
        "permalink_index_page, permalink_not_captured",
        "why a record is `from_index_only`",
    ),
    ("script_removed", "escaped `<script>`/`<style>` source was cut from the article's HTML"),
    ("date_precision_minute", "the engine prints minutes only: seconds are `00`"),
    ("date_guessed", "date taken from a 0.1 permalink timestamp"),
    ("date_missing, date_unparsed, date_no_time", "no date / unknown format / no time"),
    ("short_text, empty_text", "fewer than 25 words / no text at all"),
    ("charset_fallback", "the declared (or assumed) charset did not decode the page"),
    ("error_trailer", 'the page carried a PHP "Error happened !" trailer (outside the text)'),
    ("extractor_fallback", "trafilatura returned nothing; the block's own text was used"),
    ("code_residue", "the text still looks like code (should never happen)"),
    (
        "text_check_failed",
        "the self-check found the extracted text wrong against the article block's own "
        "visible text and repaired it (`extraction.self_check`: measures, actions)",
    ),
    (
        "repeat_removed, table_recovered, caption_recovered",
        "a repeated tail dropped / a dropped table's rows / a dropped figure caption put back",
    ),
    ("visible_text_fallback", "the text was replaced by the block's visible text"),
]


def _table(header: list[str], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"`{row[0]}`" if "," not in row[0] else row[0], *row[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


FIELDS = _table(["field", "type", "meaning"], FIELD_ROWS)
FLAGS = _table(["flag", "meaning"], FLAG_ROWS)


def dataset_card(counts: dict[str, Any], records: list[dict[str, Any]], title: str) -> str:
    ext = records[0]["extraction"] if records else {}
    site_rows = "\n".join(
        f"| {url} | {s['title'] or ''} | {s['source'] or ''} | {s['engine']} | {s['records']} |"
        for url, s in sorted(counts["sites"].items())
    )
    flags = ", ".join(f"`{k}` {v}" for k, v in counts["quality_flags"].items()) or "none"
    crawl = counts["crawl_dates"] or ["?", "?"]
    dates = counts["article_dates"] or ["?", "?"]
    return f"""# {title}

Articles mirrored by Projet Autoblog (VroumVroumBlog) farms, captured as WARC files and
extracted article by article. Every record points back to its raw capture (`warc`).

## What, when, how
- **Farms**: {", ".join(counts["farms"]) or "?"}; **autoblogs**: {counts["autoblogs"]};
  **records**: {counts["records"]} ({counts["words"]} words).
- **Captured** between {crawl[0]} and {crawl[1]} (UTC); article dates {dates[0]} – {dates[1]}.
- **Software**: autoblog-archive {crawler.__version__}; text by {ext.get("tool")}
  {ext.get("version")} on the article's own content block only (cut with the engine's
  template; `deduplicate` off), options in `extraction`. Title, date, permalink and source
  URL come from the autoblog template, not from trafilatura.
- **One record per article per capture** of its permalink page; articles only ever seen on
  index pages get one record flagged `from_index_only`.

## Autoblogs
| autoblog | title | mirrored site | engine | records |
|---|---|---|---|---|
{site_rows}

## Fields
{FIELDS}
## Quality flags
{FLAGS}
Counts in this release: {flags}.

## Duplicates (annotated, never dropped)
- {counts["exact_duplicate_groups"]} exact groups ({counts["records_in_exact_groups"]} records,
  {counts["cross_farm_exact_groups"]} spanning farms) and {counts["near_duplicate_clusters"]}
  near-duplicate clusters ({counts["records_in_near_clusters"]} records, SimHash Hamming
  distance <= 3). `annotations/*.jsonl` lists them; `dup.is_canonical` keeps one per group.

## Known caveats
- **Mirrored copies**: every text is a copy of another site's article (see `source_url`);
  the same article is often mirrored by several autoblogs or farms: use the duplicate
  annotations before counting.
- **[Update] duplicates**: when the source blog edits an article, the feed re-publishes it
  and the autoblog stores it again (often titled with "[Update]" or a date-prefixed
  permalink): near-identical records with distinct permalinks.
- **Dates**: 0.2–0.3.4 engines print minutes only (`date_precision_minute`), in the farm's
  local time, read as Europe/Paris; 0.1 prints RFC 822, the 2025 engine ISO 8601.
- **Index-only records** carry what an index page showed (the same block markup) but no
  capture of the permalink page itself.
- **Language** is an automatic guess (`extraction.lang_score`); short texts are unreliable.
- **Text** is plain: images, videos and embeds are dropped; links become their text.

## Licence
The texts belong to their original authors and sites (see `source_url`); they were
republished by the autoblogs without an explicit licence grant. This dataset is for
research use (text and data mining); redistribution of article texts may need the rights
holders' permission. The annotations, counts and this card are free to reuse.

## Files
- `corpus/run-NNNNN/part-*.jsonl.gz`: the records, one folder per crawl run (`extract`
  writes `corpus/part-*.jsonl.gz`); gzip, mtime 0, sorted by `url`, `id`.
- `parquet/corpus-*.parquet`: the same records, explicit schema (dates as strings).
- `annotations/exact_duplicates.jsonl`, `annotations/near_duplicates.jsonl`.
- `counts.json`; `{MANIFEST_TXT}` (`sha256sum -c` format) and `{MANIFEST_JSON}`.
"""


def write_manifest(directory: Path) -> dict[str, Any]:
    """sha256 and size of every file under ``directory`` (the manifests excepted)."""
    entries = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel in (MANIFEST_TXT, MANIFEST_JSON) or rel.endswith(".open"):
            continue
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        entries.append({"path": rel, "size": path.stat().st_size, "sha256": h.hexdigest()})
    (directory / MANIFEST_TXT).write_text(
        "".join(f"{e['sha256']}  {e['path']}\n" for e in entries), encoding="utf-8"
    )
    manifest = {"files": entries, "generator": f"autoblog-archive {crawler.__version__}"}
    (directory / MANIFEST_JSON).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


def package_dataset(
    directory: str | os.PathLike[str],
    parquet: bool = True,
    parquet_rows: int = PARQUET_ROWS,
    title: str = "Projet Autoblog corpus",
) -> dict[str, Any]:
    """Write card, counts, annotations, Parquet and manifest into ``directory``."""
    base = Path(directory)
    records = read_corpus(base)
    if not records and not list(base.glob("corpus/**/part-*.jsonl.gz")):
        raise UsageError(
            f"{base}: no corpus (corpus/run-*/part-*.jsonl.gz or corpus/part-*.jsonl.gz)",
            "give the output folder of a crawl, or the folder `extract --output` wrote",
        )
    records.sort(key=lambda r: (r["url"], r["id"]))
    annotate_duplicates(records)  # across everything packaged (several crawls, farms)
    exact, near = duplicate_groups(records)
    ann = base / "annotations"
    ann.mkdir(exist_ok=True)
    for name, groups in (("exact_duplicates", exact), ("near_duplicates", near)):
        with open(ann / f"{name}.jsonl", "wb") as fh:
            for g in groups:
                fh.write(orjson.dumps(g, option=orjson.OPT_APPEND_NEWLINE))
    counts = corpus_counts(records, exact, near)
    (base / "counts.json").write_bytes(
        orjson.dumps(counts, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    )
    parquet_files = write_parquet(records, base / "parquet", parquet_rows) if parquet else []
    (base / "README.md").write_text(dataset_card(counts, records, title), encoding="utf-8")
    manifest = write_manifest(base)
    return {
        "records": len(records),
        "exact_groups": len(exact),
        "near_clusters": len(near),
        "parquet": [str(p) for p in parquet_files],
        "files": len(manifest["files"]),
    }


def run_package(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive package``."""
    if not Path(args.directory).is_dir():
        raise UsageError(f"{args.directory}: no such folder")
    result = package_dataset(
        args.directory,
        parquet=not args.no_parquet,
        parquet_rows=args.parquet_rows or PARQUET_ROWS,
        title=args.title,
    )
    print(
        f"{result['records']} records, {result['exact_groups']} exact-duplicate groups, "
        f"{result['near_clusters']} near-duplicate clusters; manifest of {result['files']} "
        f"files in {args.directory}"
    )
    return 0
