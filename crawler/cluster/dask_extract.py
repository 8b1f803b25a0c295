"""``autoblog-archive extract --dask ADDRESS`` (or ``--dask local --workers N``): the
corpus rebuilt on a Dask cluster.

One Dask task per WARC file runs the project's one extraction function
(``crawler.corpus.process_task``, what the crawl's worker processes run) on each of its
HTML pages and writes one part per input, ``<output>/corpus-parts/<warc name>.pages.gz``
(written aside, then renamed): a part that exists is done, so a killed job resumes where
it stopped. The parts are then fed to the same ``CorpusBuilder`` as the single-process
``extract``, which decides index-only records and duplicates across files: the corpus is
the same. WARC files must be at the same path on every Dask worker (a shared folder).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from crawler.corpus.from_warcs import queue_pages, scan_warc
from crawler.corpus.output import replaced_corpus

if TYPE_CHECKING:
    from crawler.context import CorpusOptions

PARTS = "corpus-parts"


def _run_task(payload: dict[str, Any]) -> tuple[bool, Any]:
    from crawler.corpus.pool import process_task

    try:
        return True, process_task(payload)
    except Exception as exc:  # noqa: BLE001 - a page that breaks extraction is skipped
        return False, f"{type(exc).__name__}: {exc}"


class _PrecomputedPool:
    """Stands in for ``CorpusBuilder``'s process pool: answers each page from a part
    (``results``), or extracts it inline when a part did not hold it; records what it ran."""

    def __init__(self, on_result: Callable[[int, bool, Any], None], results: dict) -> None:
        self.on_result = on_result
        self.results = results
        self.ran: dict[str, Any] = {}
        self.stats = {"timeouts": 0, "crashes": 0, "errors": 0, "recycled": 0, "spawned": 0}
        self.pending = 0

    @staticmethod
    def key(payload: dict[str, Any]) -> str:
        return f"{Path(payload['warc_path']).name} {payload['offset']}"

    def submit(self, task_id: int, payload: dict[str, Any]) -> None:
        key = self.key(payload) if "warc_path" in payload else None
        if key is not None and key in self.results:
            ok, value = self.results[key]
        else:
            ok, value = _run_task(payload)
            if key is not None:
                self.ran[key] = (ok, value)
        self.on_result(task_id, ok, value)

    def join(self) -> None:
        return None


def _builder(
    output_dir: str | os.PathLike[str],
    results: dict,
    options: CorpusOptions,
    read_limit: int,
    corpus_dir: Path | None = None,
):
    from crawler.corpus.builder import CorpusBuilder

    builder = CorpusBuilder(output_dir, options, read_limit, corpus_dir=corpus_dir)
    builder.pool = _PrecomputedPool(builder._on_result, results)  # type: ignore[assignment]
    return builder


def extract_part(warc: str, part: str, options: CorpusOptions, read_limit: int) -> str:
    """The Dask task: extract every HTML page of one WARC file into ``part``, each read
    up to ``read_limit`` bytes (DOWNLOAD_MAXSIZE)."""
    import tempfile

    entries, problems = scan_warc(warc)
    with tempfile.TemporaryDirectory(prefix="extract-part-") as tmp:
        builder = _builder(tmp, {}, options, read_limit, corpus_dir=Path(tmp))
        queue_pages(builder, entries)
        ran = builder.pool.ran
    data = {"warc": Path(warc).name, "entries": entries, "problems": problems, "results": ran}
    partial = Path(part + ".partial")
    with gzip.open(partial, "wb", compresslevel=6) as fh:
        fh.write(orjson.dumps(data))
    partial.replace(part)
    return part


def part_name(warc: str | os.PathLike[str]) -> str:
    """The name of a WARC file's finished part in ``corpus-parts/``."""
    return Path(warc).name + ".pages.gz"


def extract_on_dask(
    paths: list[str],
    output_dir: str | os.PathLike[str],
    scheduler: str,
    options: CorpusOptions,
    read_limit: int,
) -> dict[str, Any]:
    """``<output_dir>/corpus/`` from WARC files, one Dask task per file not done yet
    (``--dask local``: a LocalCluster of ``CORPUS_WORKERS`` processes)."""
    from dask.distributed import Client, LocalCluster

    from crawler.children import isolate_library_children

    isolate_library_children()  # Dask's worker processes are ``python -c`` children
    files = sorted({str(Path(p).resolve()) for p in paths})
    parts = Path(output_dir) / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    todo = [f for f in files if not (parts / part_name(f)).exists()]
    if todo:
        cluster = None
        if scheduler == "local":
            cluster = LocalCluster(
                n_workers=options.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
        with Client(cluster or scheduler) as client:
            futures = client.map(
                extract_part,
                todo,
                [str(parts / part_name(f)) for f in todo],
                options=options,
                read_limit=read_limit,
                pure=False,
            )
            client.gather(futures)
        if cluster is not None:
            cluster.close()
    with replaced_corpus(output_dir) as corpus_dir:
        builder = _builder(output_dir, {}, options, read_limit, corpus_dir=corpus_dir)
        pages, problems = 0, []
        for f in files:
            with gzip.open(parts / part_name(f)) as fh:
                data = orjson.loads(fh.read())
            builder.pool.results.update({k: tuple(v) for k, v in data["results"].items()})
            pages += queue_pages(builder, data["entries"])
            problems += data["problems"]
        shards = builder.close()
    return {
        "files": len(files),
        "computed": len(todo),
        "pages": pages,
        "records": builder.stats.permalink_records + builder.stats.index_only_records,
        "skipped_pages": builder.stats.failures,
        "problems": problems,
        "shards": [str(Path(output_dir) / "corpus" / p.name) for p in shards],
    }
