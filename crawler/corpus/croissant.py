"""``croissant.json``: the dataset ``package`` writes, described in Croissant 1.1.

Croissant (mlcommons.org/croissant, JSON-LD over schema.org) is what dataset search
engines and ML loaders read: ``mlcroissant`` loads the records from it with no code of
ours. It says what the files are (a ``FileObject`` per file, with its sha256), what the
records look like (record sets whose fields are derived from :func:`parquet_schema`, the
one explicit list of columns, so they cannot drift from the Parquet and JSONL files),
where the data came from (the crawl as a PROV-O activity: seeds, dates, tool and version,
robots.txt policy, from the history and the WARCs' own ``warcinfo`` records) and under
which licence the operator hands it over.

Text from outside (an autoblog's name, a URL, a warcinfo field, a file name) only ever
becomes a JSON value, never a key: every key here is a literal of this module, and
:func:`crawler.escaping.safe_json` writes every control character of a value escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from crawler.config import DatasetInfo
from crawler.corpus.card import FIELD_MEANINGS
from crawler.corpus.parquet import ISO_8601, parquet_schema
from crawler.corpus.provenance import crawl_activity, extraction_activity, unique, warcinfos
from crawler.history.files import read_runs
from crawler.layout import HISTORY_NAME

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
# The context of the Croissant 1.1 specification (its appendix 1) and mlcroissant's, with
# PROV-O.
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "annotation": "cr:annotation",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "excludes": "cr:excludes",
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "readLines": "cr:readLines",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sdVersion": "cr:sdVersion",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "unArchive": "cr:unArchive",
    "value": "cr:value",
}
# A Parquet column holding as JSON text what the JSONL record holds as an object
# (``extraction.options`` is ``options_json`` in Parquet): Croissant has no type for an
# object of any shape, so the JSONL record set leaves those keys out.
JSON_TEXT_SUFFIX = "_json"
PARQUET_FILES = "parquet/corpus-*.parquet"
JSONL_FILES = ("corpus/part-*.jsonl.gz", "corpus/run-*/part-*.jsonl.gz")
ENCODINGS = (
    (".parquet", "application/x-parquet"),
    (".jsonl.gz", "application/jsonlines"),
    (".jsonl", "application/jsonlines"),
    (".json", "application/json"),
    (".md", "text/markdown"),
    (".warc.gz", "application/warc"),
    (".wacz", "application/wacz"),
    (".sqlite", "application/vnd.sqlite3"),
    (".yaml", "application/yaml"),
)


def _encoding(path: str) -> str:
    return next((kind for end, kind in ENCODINGS if path.endswith(end)), "application/octet-stream")


def file_objects(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ``FileObject`` per file (the manifest's entries: path, size, sha256). A file name
    is percent-encoded in its URL, so no name can read as another IRI (``a:b`` as a
    scheme); the ``@id`` prefix keeps files apart from the record and file sets."""
    return [
        {
            "@type": "cr:FileObject",
            "@id": "files/" + quote(e["path"]),
            "name": e["path"],
            "contentUrl": quote(e["path"]),
            "contentSize": f"{e['size']} B",
            "encodingFormat": _encoding(e["path"]),
            "sha256": e["sha256"],
        }
        for e in entries
    ]


def _data_type(column: Any, kind: Any) -> str:
    import pyarrow.types as t

    if t.is_string(kind):
        return "sc:DateTime" if column.metadata == ISO_8601 else "sc:Text"
    if t.is_integer(kind):
        return "sc:Integer"
    if t.is_floating(kind):
        return "sc:Float"
    if t.is_boolean(kind):
        return "sc:Boolean"
    raise ValueError(f"no Croissant type for the Parquet type {kind}")


def _fields(
    columns: Iterable[Any], set_id: str, file_set: str, path: tuple[str, ...], json_objects: bool
) -> list[dict[str, Any]]:
    """Croissant fields of Parquet columns (structs as sub-fields, lists as arrays)."""
    import pyarrow.types as t

    fields = []
    for column in columns:
        if json_objects and column.name.endswith(JSON_TEXT_SUFFIX):
            continue  # an object in JSONL: see JSON_TEXT_SUFFIX
        where = (*path, column.name)
        field: dict[str, Any] = {
            "@type": "cr:Field",
            "@id": "/".join((set_id, *where)),
            "name": column.name,
        }
        meaning = FIELD_MEANINGS.get(column.name) if not path else None
        if meaning:
            field["description"] = meaning
        kind = column.type
        if t.is_struct(kind):
            field["subField"] = _fields(
                [kind.field(i) for i in range(kind.num_fields)],
                set_id,
                file_set,
                where,
                json_objects,
            )
        else:
            if t.is_list(kind):
                field["isArray"] = True
                field["arrayShape"] = "-1"
                kind = kind.value_type
            field["dataType"] = _data_type(column, kind)
            source: dict[str, Any] = {
                "fileSet": {"@id": file_set},
                "extract": {"column": where[0]},
            }
            if len(where) > 1:
                source["transform"] = {"jsonPath": ".".join(where[1:])}
            field["source"] = source
        fields.append(field)
    return fields


def record_set(
    set_id: str, file_set: str, schema: Any, description: str, json_objects: bool = False
) -> dict[str, Any]:
    """The records of a file set, one field per column of ``schema`` (the Parquet one)."""
    return {
        "@type": "cr:RecordSet",
        "@id": set_id,
        "name": set_id,
        "description": description,
        "key": {"@id": f"{set_id}/id"},
        "field": _fields(schema, set_id, file_set, (), json_objects),
    }


AUTOBLOG_FIELDS = (
    ("url", "sc:Text", "the autoblog's address on its farm"),
    ("title", "sc:Text", "the autoblog's name, as its pages print it"),
    ("source", "sc:Text", "the site the autoblog mirrors"),
    ("engine", "sc:Text", "the VroumVroumBlog engine family"),
    ("records", "sc:Integer", "records of this autoblog in the corpus"),
)


def autoblogs_record_set(sites: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The autoblogs, inline (``data``): one row each, keyed by field ids, never by the
    autoblog's own name or address."""
    return {
        "@type": "cr:RecordSet",
        "@id": "autoblogs",
        "name": "autoblogs",
        "description": "The autoblogs of the corpus and the sites they mirror.",
        "key": {"@id": "autoblogs/url"},
        "field": [
            {
                "@type": "cr:Field",
                "@id": f"autoblogs/{n}",
                "name": n,
                "dataType": k,
                "description": d,
            }
            for n, k, d in AUTOBLOG_FIELDS
        ],
        "data": [
            {f"autoblogs/{n}": (url if n == "url" else site.get(n)) for n, _, _ in AUTOBLOG_FIELDS}
            for url, site in sorted(sites.items())
        ],
    }


def _farm_root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def croissant_metadata(
    base: Path,
    entries: list[dict[str, Any]],
    records: list[dict[str, Any]],
    counts: dict[str, Any],
    info: DatasetInfo,
    parquet: bool,
) -> dict[str, Any]:
    """The Croissant description of the dataset folder ``base``."""
    runs = [row for _, row in sorted(read_runs(base / HISTORY_NAME).items())]
    infos = warcinfos(base)
    crawl = crawl_activity(runs, infos, records)
    seeds = [e["url"] for e in crawl.get("prov:used", [])]
    sites = sorted(counts["sites"])
    url = info.url or (seeds[0] if seeds else _farm_root(sites[0]) if sites else None)
    farms = ", ".join(counts["farms"]) or "no farm"
    schema = parquet_schema()
    file_sets: list[dict[str, Any]] = [
        {
            "@type": "cr:FileSet",
            "@id": "jsonl-files",
            "name": "jsonl-files",
            "description": "the corpus as written by each crawl run (gzip JSON lines)",
            "encodingFormat": "application/jsonlines",
            "includes": list(JSONL_FILES),
        }
    ]
    record_sets = [
        record_set(
            "corpus_jsonl",
            "jsonl-files",
            schema,
            "The records as each crawl run wrote them. `dup` is as annotated when the run "
            "was written; the Parquet record set's spans everything packaged. In the files, "
            "`extraction.options` and `extraction.self_check` are JSON objects (JSON text in "
            "Parquet) and `extraction.input` says what the extractor was given.",
            json_objects=True,
        ),
        autoblogs_record_set(counts["sites"]),
    ]
    if parquet:
        file_sets.insert(
            0,
            {
                "@type": "cr:FileSet",
                "@id": "parquet-files",
                "name": "parquet-files",
                "description": "the records with an explicit schema (dates as strings)",
                "encodingFormat": "application/x-parquet",
                "includes": PARQUET_FILES,
            },
        )
        record_sets.insert(
            0,
            record_set(
                "corpus",
                "parquet-files",
                schema,
                "One record per article per capture of its permalink page (articles only "
                "seen on index pages: one record flagged `from_index_only`), duplicates "
                "annotated across everything packaged.",
            ),
        )
    metadata: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": info.title,
        "description": (
            f"Articles mirrored by Projet Autoblog (VroumVroumBlog) farms ({farms}), "
            "captured as WARC files and extracted article by article: "
            f"{counts['records']} records from {counts['autoblogs']} autoblogs. Every record "
            "points back to its raw capture (`warc`). See README.md for fields and caveats."
        ),
        "citeAs": (
            f"{info.title}. Articles of Projet Autoblog farms ({farms}), captured "
            f"{crawl.get('prov:startedAtTime', '?')} to {crawl.get('prov:endedAtTime', '?')} "
            f"with autoblog-archive. {url or ''}"
        ).strip(),
        "license": info.license,
        "url": url,
        "keywords": ["web archive", "WARC", "Projet Autoblog", "VroumVroumBlog", "blogs"],
        "inLanguage": [lang for lang in counts["by_lang"] if lang],
        "isLiveDataset": len(runs) > 1,  # a scheduled crawl
        "dateCreated": crawl.get("prov:startedAtTime"),
        "dateModified": crawl.get("prov:endedAtTime"),
        "datePublished": crawl.get("prov:endedAtTime"),
        "prov:wasGeneratedBy": [crawl, extraction_activity(records)],
        "distribution": [*file_objects(entries), *file_sets],
        "recordSet": record_sets,
    }
    operators = unique(i.get("operator") for i in infos)
    if operators:
        metadata["creator"] = [{"@type": "Organization", "name": o} for o in operators]
    return {k: v for k, v in metadata.items() if v is not None}
