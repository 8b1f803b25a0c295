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
import os
from pathlib import Path
from typing import Any

import orjson

import crawler
from crawler.config import DatasetInfo
from crawler.corpus.card import corpus_counts, dataset_card, duplicate_groups
from crawler.corpus.croissant import croissant_metadata
from crawler.corpus.dedup import annotate_duplicates
from crawler.corpus.parquet import PARQUET_ROWS, write_parquet
from crawler.corpus.shards import corpus_shards, read_corpus
from crawler.escaping import checksum_line, has_control, safe_json, terminal
from crawler.exitcodes import UsageError
from crawler.layout import CROISSANT_JSON, MANIFEST_JSON, MANIFEST_TXT, is_transient


def manifest_files(directory: Path) -> list[str]:
    """Every regular file below ``directory`` a manifest lists, relative, sorted: not the
    manifests, not what exists only while a run works (:func:`~crawler.layout.is_transient`),
    not symbolic links (never followed: they could point anywhere)."""
    found = []
    for folder, dirs, files in os.walk(directory):
        rel_folder = Path(folder).relative_to(directory)
        dirs[:] = [d for d in dirs if not is_transient((rel_folder / d).as_posix())]
        for name in files:
            path = Path(folder, name)
            rel = (rel_folder / name).as_posix()
            if path.is_symlink() or not path.is_file() or is_transient(rel):
                continue
            if rel not in (MANIFEST_TXT, MANIFEST_JSON):
                found.append(rel)
    return sorted(found)


def check_file_names(directory: Path) -> None:
    """A manifest line cannot carry a control character other than those ``sha256sum``
    escapes (newline, carriage return): such a file is bad usage, before anything is
    written."""
    for rel in manifest_files(directory):
        if has_control(rel.replace("\n", "").replace("\r", "")):
            raise UsageError(
                f"{directory}: the name of {rel} holds a control character; "
                "a manifest cannot list it",
                "rename or remove that file, then package again",
            )


def file_entries(directory: Path, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Path, size and sha256 of every file :func:`manifest_files` lists (or of ``names``)."""
    entries = []
    for rel in manifest_files(directory) if names is None else names:
        path = directory / rel
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        entries.append({"path": rel, "size": path.stat().st_size, "sha256": h.hexdigest()})
    return entries


def write_manifest(directory: Path, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """MANIFEST.sha256 and manifest.json of ``entries`` (:func:`file_entries`)."""
    entries = sorted(entries, key=lambda e: e["path"])
    (directory / MANIFEST_TXT).write_text(
        "".join(checksum_line(e["sha256"], e["path"]) for e in entries), encoding="utf-8"
    )
    manifest = {"files": entries, "generator": f"autoblog-archive {crawler.__version__}"}
    (directory / MANIFEST_JSON).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


def write_croissant(
    base: Path,
    records: list[dict[str, Any]],
    counts: dict[str, Any],
    info: DatasetInfo,
    parquet: bool,
) -> list[dict[str, Any]]:
    """croissant.json, listing every other file with its sha256; returns the entries of
    all files, croissant.json's included, for the manifest (each file is read once)."""
    path = base / CROISSANT_JSON
    path.unlink(missing_ok=True)  # never listed in itself
    entries = file_entries(base)
    metadata = croissant_metadata(base, entries, records, counts, info, parquet)
    path.write_bytes(safe_json(metadata))
    return [*entries, *file_entries(base, [CROISSANT_JSON])]


def check_each_record_once(records: list[dict[str, Any]]) -> None:
    """A record id is one capture's article: twice means two corpora of the same captures
    (an ``extract`` written beside a crawl's corpus before ``extract`` refused that), and a
    dataset that would count every article twice. Bad usage, before anything is written."""
    seen: set[str] = set()
    for record in records:
        if record["id"] in seen:
            raise UsageError(
                f"record {record['id']} is in the corpus twice: the folder holds two corpora "
                "of the same captures (corpus/part-* from `extract`, corpus/run-*/ from a crawl)",
                "keep one: remove the other, or extract again with --force (it replaces corpus/)",
            )
        seen.add(record["id"])


def package_dataset(
    directory: str | os.PathLike[str],
    parquet: bool = True,
    parquet_rows: int = PARQUET_ROWS,
    info: DatasetInfo | None = None,
) -> dict[str, Any]:
    """Write card, counts, annotations, Parquet, croissant.json and manifest into
    ``directory``."""
    info = info or DatasetInfo()
    base = Path(directory)
    if not corpus_shards(base):
        raise UsageError(
            f"{base}: no corpus (corpus/run-*/part-*.jsonl.gz or corpus/part-*.jsonl.gz)",
            "give the output folder of a crawl, or the folder `extract --output` wrote",
        )
    check_file_names(base)
    records = read_corpus(base)
    check_each_record_once(records)
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
    card = dataset_card(counts, records, info, parquet=bool(parquet_files))
    (base / "README.md").write_text(card, encoding="utf-8")
    manifest = write_manifest(
        base, write_croissant(base, records, counts, info, bool(parquet_files))
    )
    return {
        "records": len(records),
        "exact_groups": len(exact),
        "near_clusters": len(near),
        "parquet": [str(p) for p in parquet_files],
        "files": len(manifest["files"]),
    }


def run_package(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive package``."""
    from crawler.runlock import hold_folder

    directory, info = package_options(args)
    if not Path(directory).is_dir():
        raise UsageError(f"{directory}: no such folder")
    lock = hold_folder(directory)  # never beside a crawl writing its corpus
    try:
        result = package_dataset(
            directory,
            parquet=not args.no_parquet,
            parquet_rows=args.parquet_rows or PARQUET_ROWS,
            info=info,
        )
    finally:
        lock.release()
    print(
        terminal(
            f"{result['records']} records, {result['exact_groups']} exact-duplicate groups, "
            f"{result['near_clusters']} near-duplicate clusters; manifest of "
            f"{result['files']} files in {directory}"
        )
    )
    return 0


def package_options(args: argparse.Namespace) -> tuple[str, DatasetInfo]:
    """The folder and what to say of the dataset: the command line's options, else the
    ``[dataset]`` table of ``--config`` (and its ``output`` folder), else the defaults."""
    from crawler.config import command_config, is_http_url

    info, directory = DatasetInfo(), args.directory
    if args.config:
        config = command_config(args.config)
        info, directory = config.dataset, directory or str(config.output)
    if directory is None:
        raise UsageError("give the folder to package (DIR), or --config with its output")
    if args.url is not None and not is_http_url(args.url):
        raise UsageError(f"--url must be an http(s) URL, got {args.url!r}")
    return directory, info.replace(title=args.title, license=args.license, url=args.url)
