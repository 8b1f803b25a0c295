"""The dataset card of ``package``: what each field and flag means, and the corpus's counts
(records, duplicate groups, per site), so a researcher can cite and filter it.

Every value that comes from the pages (an autoblog's name, its URLs) or from the command
line goes through :func:`crawler.escaping.markdown`: it renders as the text it is."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import crawler
from crawler.config import DatasetInfo
from crawler.escaping import markdown
from crawler.layout import CROISSANT_JSON, MANIFEST_JSON, MANIFEST_TXT


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
    """The dataset card's counts: flags, dates, sites, duplicates."""
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
FIELD_MEANINGS = {name: meaning for name, _, meaning in FIELD_ROWS}
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


def _table(header: list[str], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"`{row[0]}`" if "," not in row[0] else row[0], *row[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


FIELDS = _table(["field", "type", "meaning"], FIELD_ROWS)
FLAGS = _table(["flag", "meaning"], FLAG_ROWS)


def _cells(*values: object) -> str:
    """A table row of values from outside, each escaped (``None`` as an empty cell)."""
    return "| " + " | ".join(markdown("" if v is None else v) for v in values) + " |"


# Hugging Face dataset card metadata: ``datasets.load_dataset(FOLDER)`` reads the Parquet
# files this names, and nothing else of the folder (JSONL, WARCs, annotations).
PARQUET_CONFIGS = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: parquet/corpus-*.parquet
---

"""


def dataset_card(
    counts: dict[str, Any], records: list[dict[str, Any]], info: DatasetInfo, parquet: bool
) -> str:
    """The card: Hugging Face metadata (with the Parquet files), then the Markdown."""
    title = info.title
    ext = records[0]["extraction"] if records else {}
    site_rows = "\n".join(
        _cells(url, s["title"], s["source"], s["engine"], s["records"])
        for url, s in sorted(counts["sites"].items())
    )
    flags = ", ".join(f"{markdown(k)} {v}" for k, v in counts["quality_flags"].items()) or "none"
    crawl = [markdown(d) for d in counts["crawl_dates"] or ["?", "?"]]
    dates = [markdown(d) for d in counts["article_dates"] or ["?", "?"]]
    farms = ", ".join(markdown(f) for f in counts["farms"]) or "?"
    front = PARQUET_CONFIGS if parquet else ""
    return f"""{front}# {markdown(title)}

Articles mirrored by Projet Autoblog (VroumVroumBlog) farms, captured as WARC files and
extracted article by article. Every record points back to its raw capture (`warc`).

## What, when, how
- **Farms**: {farms}; **autoblogs**: {counts["autoblogs"]};
  **records**: {counts["records"]} ({counts["words"]} words).
- **Captured** between {crawl[0]} and {crawl[1]} (UTC); article dates {dates[0]} – {dates[1]}.
- **Software**: autoblog-archive {crawler.__version__}; text by {markdown(ext.get("tool"))}
  {markdown(ext.get("version"))} on the article's own content block only (cut with the engine's
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
**This dataset**: {markdown(info.license)} (as its publisher states it, and as
`{CROISSANT_JSON}` says). The texts belong to their original authors and sites (see
`source_url`); they were republished by the autoblogs without an explicit licence
grant. This dataset is for
research use (text and data mining); redistribution of article texts may need the rights
holders' permission. The annotations, counts and this card are free to reuse.

## Files
- `corpus/run-NNNNN/part-*.jsonl.gz`: the records, one folder per crawl run (`extract`
  writes `corpus/part-*.jsonl.gz`); gzip, mtime 0, sorted by `url`, `id`.
- `parquet/corpus-*.parquet`: the same records, explicit schema (dates as strings).
- `annotations/exact_duplicates.jsonl`, `annotations/near_duplicates.jsonl`.
- `counts.json`; `{MANIFEST_TXT}` (`sha256sum -c` format) and `{MANIFEST_JSON}`.
- `{CROISSANT_JSON}`: this dataset in Croissant 1.1 (files and checksums, record sets,
  the crawl's provenance), which `mlcroissant` loads.
"""
