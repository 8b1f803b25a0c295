"""The `autoblog-archive` command line: every command's arguments and the module that runs it.

Arguments are declared here (``bench``'s and ``sample-farm``'s beside their defaults, in
``crawler/bench/options.py`` and ``crawler/samplefarm/options.py``); each command's work
lives in the module that owns its concern and is imported only when that command runs,
so ``--help`` loads neither Scrapy nor trafilatura, and no command but the scale-out ones
imports the ``cluster`` extra (Redis, Dask). :mod:`crawler.dispatch` runs the command:
its exit code, one line per error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

Handler = Callable[[argparse.Namespace], int]
DIRECTORY_HELP = "an output folder written by `crawl`"


def _crawl(p: argparse.ArgumentParser) -> None:
    p.add_argument("urls", nargs="*", metavar="URL", help="farm root or autoblog base URL")
    p.add_argument("--config", "-c", help="TOML file with farms, output and politeness")
    p.add_argument("--output", "-o", default=None, help="output folder (default output/crawl)")
    p.add_argument("--name", help="collection name (default: the farm's host)")
    p.add_argument(
        "--fast",
        action="store_true",
        help="no politeness delays (only for your own or loopback farms)",
    )
    p.add_argument("--wacz", action="store_true", help="also write <name>.wacz")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--full",
        action="store_const",
        dest="mode",
        const="full",
        help="a full pass even when the folder already holds a crawl",
    )
    mode.add_argument(
        "--incremental",
        action="store_const",
        dest="mode",
        const="incremental",
        help="only new articles and changed pages (default after the first run)",
    )
    p.add_argument(
        "--autoblogs",
        default="",
        help="comma-separated hidden/disabled autoblog folders to include",
    )
    p.add_argument(
        "--warc-max-size",
        type=int,
        default=None,
        help="roll WARC files over at this many bytes (default 1 GB)",
    )
    p.add_argument(
        "--processes",
        "-p",
        type=int,
        default=None,
        help="crawl processes, the farm's autoblogs dealt out between them (default 1)",
    )
    _output(p)
    _settings(p)


def _output(p: argparse.ArgumentParser) -> None:
    """How much a run prints: quiet like wget by default, Scrapy's log in a file."""
    loud = p.add_mutually_exclusive_group()
    loud.add_argument(
        "--verbose", "-v", action="store_true", help="Scrapy's log on the terminal, not in a file"
    )
    loud.add_argument(
        "--quiet", "-q", action="store_true", help="no progress line, only the final verdict"
    )
    p.add_argument(
        "--log-file",
        default=None,
        help="write Scrapy's log here (default: <output>/logs/crawl-<time>.log)",
    )


def _demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", default="output/demo", help="output folder")
    p.add_argument("--autoblogs", type=int, default=5)
    p.add_argument("--articles", type=int, default=30)
    p.add_argument("--keep", action="store_true", help="keep an earlier demo output")
    _output(p)


def _directory(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", help=DIRECTORY_HELP)


def _settings(p: argparse.ArgumentParser, what: str = "a Scrapy setting") -> None:
    p.add_argument(
        "--set",
        "-s",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"override {what} (repeatable; docs/crawling.md lists them)",
    )


def _read_back(p: argparse.ArgumentParser) -> None:
    """A command that reads an archive back: its bounds are the crawl's settings."""
    _directory(p)
    _settings(p, "a setting, e.g. DOWNLOAD_MAXSIZE")


def _replay(p: argparse.ArgumentParser) -> None:
    _directory(p)
    # Checked by `replay` itself: a bad port is one line and exit 4, like every usage error.
    p.add_argument("--port", default="8090", help="port on 127.0.0.1 (default 8090)")
    p.add_argument(
        "--log-file",
        default=None,
        help="append pywb's output here (default: a private temporary folder, removed at exit)",
    )


def _qa_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sample", type=int, default=None, metavar="N", help="open N pages drawn at random"
    )
    p.add_argument("--seed", type=int, default=0, help="the draw's seed (default 0)")


def _qa(p: argparse.ArgumentParser) -> None:
    _read_back(p)
    _qa_options(p)


def _verify(p: argparse.ArgumentParser) -> None:
    _read_back(p)
    p.add_argument(
        "--qa",
        action="store_true",
        help="then replay the pages in headless Chromium (the `qa` command)",
    )
    _qa_options(p)


def _report(p: argparse.ArgumentParser) -> None:
    _directory(p)
    p.add_argument("--run", type=int, default=None, help="run id (default: the latest)")
    p.add_argument("--json", action="store_true", help="print the JSON report")
    p.add_argument("--limit", type=int, default=20, help="URLs listed per category (default 20)")
    p.add_argument(
        "--html",
        action="store_true",
        help="write report.html again from the history (runs over time, coverage)",
    )


def _package(p: argparse.ArgumentParser) -> None:
    from crawler.config import DatasetInfo

    p.add_argument(
        "directory",
        metavar="DIR",
        nargs="?",
        help="output folder of a crawl or of `extract` (has corpus/); default: --config's output",
    )
    p.add_argument("--no-parquet", action="store_true", help="skip the Parquet copy")
    p.add_argument(
        "--parquet-rows", type=int, default=None, help="rows per Parquet file (default 100000)"
    )
    p.add_argument("--config", "-c", help="TOML file: its [dataset] table and output folder")
    p.add_argument(
        "--title", default=None, help=f"the dataset's name (default: {DatasetInfo.title})"
    )
    p.add_argument(
        "--license",
        default=None,
        help=f"the dataset's licence, a URL or an SPDX id (default: {DatasetInfo.license})",
    )
    p.add_argument(
        "--url", default=None, help="where the dataset is published (default: the farm crawled)"
    )


def _extract(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "warcs",
        nargs="+",
        metavar="WARC",
        help="WARC files, or folders searched for *.warc.gz (an output folder will do)",
    )
    p.add_argument("--output", "-o", required=True, help="output folder (gets corpus/)")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a crawl's output folder or over a corpus: its corpus/ is replaced "
        "as a whole once the new one is complete",
    )
    p.add_argument(
        "--warc-text",
        action="store_true",
        help="also write the corpus as WARC conversion records (WET) beside each archive "
        "read (collections/<name>/archive/text/) and into its CDXJ index; every WARC "
        "argument must then be a crawl's output folder",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes, CORPUS_WORKERS (default: one per core); with --dask "
        "local, Dask workers",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per document before its worker is killed, CORPUS_TIMEOUT",
    )
    p.add_argument(
        "--max-tasks-per-worker",
        type=int,
        default=None,
        help="recycle a worker after this many documents, CORPUS_MAX_TASKS",
    )
    _settings(p, "a setting, e.g. CORPUS_MAX_TASKS or DOWNLOAD_MAXSIZE")
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on a Dask scheduler (tcp://host:8786), or 'local' for a LocalCluster of "
        "--workers processes; one task per WARC file, finished files skipped on a rerun",
    )


def _cluster(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis", metavar="URL", help="redis://host:6379/0 ([cluster] redis)")
    p.add_argument("--crawl-id", help="names this distributed crawl in Redis ([cluster] crawl_id)")
    p.add_argument("--config", "-c", help="TOML file: farms, politeness, [cluster]")


def _seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("urls", nargs="*", metavar="URL", help="farm root or autoblog base URL")
    _cluster(p)
    p.add_argument("--name", help="collection name (default: the farm's host)")
    p.add_argument("--autoblogs", default="", help="hidden autoblog folders to include")
    p.add_argument(
        "--full", action="store_true", help="a full pass even after earlier cluster runs"
    )


def _worker(p: argparse.ArgumentParser) -> None:
    _cluster(p)
    p.add_argument("--output", "-o", required=True, help="this worker's output folder")
    p.add_argument(
        "--worker-id", help="in this worker's WARC file names (default: host-folder name)"
    )
    p.add_argument("--fast", action="store_true", help="no politeness delays (loopback)")
    _output(p)
    _settings(p)


def _merge(p: argparse.ArgumentParser) -> None:
    p.add_argument("workers", nargs="+", metavar="WORKER_DIR", help="workers' output folders")
    p.add_argument("--output", "-o", required=True, help="the merged output folder")
    p.add_argument("--name", help="the collection to merge (default: the only one)")
    _settings(p, "a setting, e.g. DOWNLOAD_MAXSIZE")


def _reconcile(p: argparse.ArgumentParser) -> None:
    p.add_argument("merged", metavar="MERGED_DIR", help="the folder `merge` wrote")
    _cluster(p)
    _settings(p, "a setting, e.g. DOWNLOAD_MAXSIZE")


def _bench(parser: argparse.ArgumentParser) -> None:
    from crawler.bench.options import add_bench_arguments

    add_bench_arguments(parser)


# name: (help, arguments, module, function run with the parsed arguments)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], str, str]] = {
    "crawl": ("crawl farms or autoblogs into WARC files and a corpus", _crawl,
              "crawler.run", "run_crawl_command"),
    "verify": ("check an output folder's WARCs and indexes", _verify,
               "crawler.verify", "run_verify"),
    "qa": ("replay the archive and check its pages in headless Chromium", _qa,
           "crawler.qa.command", "run_qa"),
    "demo": ("serve the sample farm, crawl it into output/demo, verify it", _demo,
             "crawler.demo", "run_demo"),
    "replay": ("replay an output folder in pywb (from .venv-pywb)", _replay,
               "crawler.replay", "run_replay"),
    "extract": ("rebuild the research corpus from WARC files alone", _extract,
                "crawler.corpus.extract", "run_extract"),
    "package": ("turn a corpus into a dataset (manifest, card, Parquet)", _package,
                "crawler.corpus.dataset", "run_package"),
    "reindex": ("rebuild history.sqlite from the CDXJ indexes and WARCs", _read_back,
                "crawler.history.reindex", "run_reindex"),
    "report": ("print the change report of the latest run", _report,
               "crawler.history.report", "run_report"),
    "bench": ("measure our crawl against wget and plain Scrapy on a sample farm",
              _bench, "crawler.bench.session", "run_bench"),
    # Scale-out (crawler/cluster/): the shared Redis frontier and its merge.
    "seed": ("start a distributed crawl run: seeds into the shared Redis frontier", _seed,
             "crawler.cluster.commands", "run_seed"),
    "worker": ("crawl from the shared Redis frontier into this worker's output folder",
               _worker, "crawler.cluster.commands", "run_worker"),
    "merge": ("merge workers' output folders into one (WARCs, indexes, history, corpus)",
              _merge, "crawler.cluster.merge", "run_merge"),
    "reconcile": ("queue again what merged pages list but no WARC holds (killed workers)",
                  _reconcile, "crawler.cluster.reconcile", "run_reconcile"),
}  # fmt: skip


class Parser(argparse.ArgumentParser):
    """argparse with the project's exit code for bad usage (4, not argparse's 2)."""

    def error(self, message: str) -> NoReturn:
        """Print the usage and the error, and exit 4 (argparse would exit 2)."""
        from crawler.exitcodes import EXIT_USAGE

        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _lazy(module: str, func: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), func)(args)

    return handler


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command, each bound to the handler that runs it."""
    import crawler
    from crawler.exitcodes import EXIT_CODES_HELP
    from crawler.samplefarm.options import add_farm_arguments

    parser = Parser(
        prog="autoblog-archive",
        description="Archive Projet Autoblog farms into WARC files and a research corpus.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {crawler.__version__}")
    common = Parser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", help="show Python tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            parents=[common],
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    farm = add(
        "sample-farm", "serve a deterministic sample autoblog farm (for demos, tests, benchmarks)"
    )
    add_farm_arguments(farm)
    farm.set_defaults(handler=_lazy("crawler.samplefarm.server", "main_from_args"))
    for name, (help_text, arguments, module, run) in COMMANDS.items():
        cmd = add(name, help_text)
        arguments(cmd)
        cmd.set_defaults(handler=_lazy(module, run))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``autoblog-archive ARGV``; returns the exit code."""
    from crawler.children import isolate_library_children
    from crawler.exitcodes import EXIT_FAILED

    isolate_library_children()  # first, while this process has one thread
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:  # Ctrl-C before anything started: one line, no traceback
        print("autoblog-archive: interrupted", file=sys.stderr)
        return EXIT_FAILED
    from crawler.dispatch import run_command

    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
