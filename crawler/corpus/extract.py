"""``autoblog-archive extract WARC... --output DIR``: the one entry point of extraction.

The corpus is rebuilt from WARC files alone on one of two engines, both feeding the same
corpus builder: this machine's worker processes (:mod:`crawler.corpus.from_warcs`) or a
Dask cluster (``--dask``, :mod:`crawler.cluster.dask_extract`). What is the same on
both lives here: the inputs and the output checked before anything is written, the
output folder held, the problems and the counts said, the exit code.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.corpus.output import check_extract_output, remove_leftovers
from crawler.escaping import TerminalFormatter, terminal
from crawler.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, UsageError, UserError
from crawler.layout import TEXT_DIR, OutputLayout

if TYPE_CHECKING:
    from crawler.context import RunContext


def warc_paths(given: Iterable[str]) -> list[str]:
    """The WARC files given: files as they are, folders searched for ``*.warc.gz`` (but
    the text WARC files of an output folder: they hold the corpus, no capture)."""
    paths: list[str] = []
    for w in given:
        p = Path(w)
        if p.is_dir():
            # A folder: its WARCs, or an output folder's (collections/*/archive/).
            found = sorted(x for x in p.rglob("*.warc.gz") if not _text_warc(x))
            if not found:
                raise UsageError(f"{w}: no .warc.gz file in this folder or below it")
            paths.extend(str(x) for x in found)
        elif not p.exists():
            raise UsageError(f"{w}: no such file or folder")
        else:
            paths.append(w)
    return paths


def _text_warc(path: Path) -> bool:
    return path.parent.name == TEXT_DIR and path.parent.parent.name == "archive"


def text_collections(given: Iterable[str]) -> dict[str, OutputLayout]:
    """``extract --warc-text``: the collections the text goes into, by the name of each
    of their WARC files. The text is written beside the archive it was read from, so
    every input must be a crawl's output folder (a :class:`UsageError` otherwise)."""
    found: dict[str, OutputLayout] = {}
    for w in given:
        layouts = OutputLayout.find(w) if Path(w).is_dir() else []
        if not layouts:
            raise UsageError(
                f"--warc-text: {w} is not a crawl's output folder",
                "the text goes beside the archive it was read from: give the output folder",
            )
        for layout in layouts:
            found.update({p.name: layout for p in layout.warcs()})
    return found


def log_to_terminal() -> None:
    """``extract`` prints its own lines; warnings (a page skipped) go to stderr, escaped,
    and nothing less (the counts are in the last line)."""
    handler = logging.StreamHandler()
    handler.setFormatter(TerminalFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)


def extract_into(
    args: argparse.Namespace, work: Callable[[list[str], Path], dict], context: RunContext
) -> dict:
    """What ``extract`` does around its work, on one engine or the other: the inputs and
    the output checked before anything is written, the output folder held (one run at a
    time), what a killed run left removed, and a failure to write as one line (exit 2).
    ``--warc-text`` files roll over as the crawl's WARC files do (WARC_MAX_SIZE)."""
    from crawler.runlock import hold_folder

    paths = warc_paths(args.warcs)
    collections = text_collections(args.warcs) if args.warc_text else {}
    output = check_extract_output(args.output, args.force)
    locks = [hold_folder(output)]
    try:
        # The text goes into the archives read: no crawl may write them meanwhile.
        roots = {layout.root.resolve() for layout in collections.values()}
        for root in sorted(roots - {output.resolve()}):
            locks.append(hold_folder(root))
        remove_leftovers(output)
        result = work(paths, output)
        if collections:
            from crawler.corpus.shards import corpus_shards
            from crawler.corpus.wet import write_corpus_text

            shards = corpus_shards(output)
            result["text"] = write_corpus_text(shards, collections, context.warc.max_size)
        return result
    except (OSError, sqlite3.Error) as exc:
        full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UserError(
            f"writing the corpus into {output} failed ({why}); its corpus/ was left as it "
            f"was; {'free space and ' if full else ''}run the same command again",
            EXIT_FAILED,
        ) from None
    finally:
        for lock in reversed(locks):
            lock.release()


def print_text(result: dict) -> None:
    """What ``--warc-text`` wrote, in one line (and any record it could not place)."""
    text = result.get("text")
    if text is None:
        return
    if text["unplaced"]:
        print(terminal(f"PROBLEM  {text['unplaced']} records name no capture of the archive"))
        result["problems"].append("records without a capture")
    folders = sorted({str(Path(f).parent) for f in text["files"]})
    print(
        terminal(
            f"WET: {text['records']} conversion records in {len(text['files'])} text WARC "
            f"files -> {', '.join(folders) or 'nowhere (no record)'}"
        )
    )


def extract_context(args: argparse.Namespace) -> RunContext:
    """``extract``'s settings: the crawl's, then its options (each the setting it names;
    one worker per core unless ``--workers`` or ``--set CORPUS_WORKERS`` says otherwise),
    then ``--set``, checked like a crawl's (exit 4)."""
    from crawler.context import command_context

    given: dict[str, Any] = {"CORPUS_WORKERS": args.workers or os.cpu_count() or 2}
    if args.timeout is not None:
        given["CORPUS_TIMEOUT"] = args.timeout
    if args.max_tasks_per_worker is not None:
        given["CORPUS_MAX_TASKS"] = args.max_tasks_per_worker
    return command_context(args.set, given)


def run_extract(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive extract``: the one entry point, on this machine's
    worker processes or, with ``--dask``, on a Dask cluster
    (:mod:`crawler.cluster.dask_extract`); both feed the same corpus builder, each page
    read up to DOWNLOAD_MAXSIZE."""
    if args.dask:
        from crawler.cluster import DASK_MODULES, require_cluster_extra

        require_cluster_extra(DASK_MODULES, "--dask")
    context = extract_context(args)
    options, read_limit = context.corpus, context.bounds.read_limit
    log_to_terminal()
    if args.dask:
        from crawler.cluster.dask_extract import extract_on_dask

        result = extract_into(
            args,
            lambda paths, output: extract_on_dask(paths, output, args.dask, options, read_limit),
            context,
        )
        said = (
            f"{result['records']} records from {result['pages']} pages in {result['files']} "
            f"WARC files ({result['computed']} extracted now, the rest done before), "
            f"{result['skipped_pages']} skipped -> {args.output}/corpus/"
        )
    else:
        from crawler.corpus.from_warcs import extract_warcs

        result = extract_into(
            args, lambda paths, output: extract_warcs(paths, output, options, read_limit), context
        )
        said = (
            f"{result['records']} records ({result['index_only_records']} from index pages "
            f"only) from {result['pages']} pages in {result['files']} WARC files, "
            f"{result['skipped_pages']} skipped, {result['pool']['spawned']} extraction "
            f"processes, {result['seconds']}s -> {args.output}/corpus/"
        )
    for problem in result["problems"]:
        print(terminal(f"PROBLEM  {problem}"))
    print(terminal(said))
    print_text(result)
    if result.get("unreadable_files") == result["files"]:
        return EXIT_FAILED  # nothing readable at all (not a WARC file, say): said above
    # Partial: something in the archive could not be read or extracted (said above).
    return EXIT_PARTIAL if result["problems"] or result["skipped_pages"] else EXIT_OK
