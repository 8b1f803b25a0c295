"""The `autoblog-archive` command line.

Each subcommand lives in the module that owns its concern; this file only wires
arguments to those modules, importing them lazily so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

Handler = Callable[[argparse.Namespace], int]


def _sample_farm(args: argparse.Namespace) -> int:
    from crawler.samplefarm.server import main_from_args

    return main_from_args(args)


def _lazy(module: str, func: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), func)(args)

    return handler


# name: (help, module, add-arguments function, run function)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "crawl": ("crawl farms or autoblogs into WARC files and a corpus", "crawler.run",
              "add_crawl_arguments", "run_crawl_command"),
    "verify": ("check an output folder's WARCs and indexes", "crawler.verify",
               "add_verify_arguments", "run_verify"),
    "demo": ("serve the sample farm, crawl it into output/demo, verify it", "crawler.demo",
             "add_demo_arguments", "run_demo"),
    "replay": ("replay an output folder in pywb (from .venv-pywb)", "crawler.replay",
               "add_replay_arguments", "run_replay"),
    # crawler.cluster.extract adds --dask to crawler.offline's extract (issue 13).
    "extract": ("rebuild the research corpus from WARC files alone", "crawler.cluster.extract",
                "add_extract_arguments", "run_extract"),
    "package": ("turn a corpus into a dataset (manifest, card, Parquet)", "crawler.package",
                "add_package_arguments", "run_package"),
    "reindex": ("rebuild history.sqlite from the CDXJ indexes and WARCs", "crawler.history",
                "add_reindex_arguments", "run_reindex"),
    "report": ("print the change report of the latest run", "crawler.report",
               "add_report_arguments", "run_report"),
    "bench": ("measure our crawl against wget and plain Scrapy on a sample farm",
              "crawler.bench", "add_bench_arguments", "run_bench"),
    # Scale-out (issue 13): crawler/cluster/, the shared Redis frontier and its merge.
    "seed": ("start a distributed crawl run: seeds into the shared Redis frontier",
             "crawler.cluster.commands", "add_seed_arguments", "run_seed"),
    "worker": ("crawl from the shared Redis frontier into this worker's output folder",
               "crawler.cluster.commands", "add_worker_arguments", "run_worker"),
    "merge": ("merge workers' output folders into one (WARCs, indexes, history, corpus)",
              "crawler.cluster.merge", "add_merge_arguments", "run_merge"),
    "reconcile": ("queue again what merged pages list but no WARC holds (killed workers)",
                  "crawler.cluster.reconcile", "add_reconcile_arguments", "run_reconcile"),
}  # fmt: skip


class Parser(argparse.ArgumentParser):
    """argparse with the project's exit code for bad usage (4, not argparse's 2)."""

    def error(self, message: str) -> NoReturn:
        from crawler.exitcodes import EXIT_USAGE

        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    import crawler
    from crawler.exitcodes import EXIT_CODES_HELP

    parser = Parser(
        prog="autoblog-archive",
        description="Archive Projet Autoblog farms into WARC files and a research corpus.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {crawler.__version__}")
    common = argparse.ArgumentParser(add_help=False)
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
    from crawler.samplefarm.options import add_farm_arguments

    add_farm_arguments(farm)
    farm.set_defaults(handler=_sample_farm)
    import importlib

    for name, (help_text, module, add_args, run) in COMMANDS.items():
        cmd = add(name, help_text)
        getattr(importlib.import_module(module), add_args)(cmd)
        cmd.set_defaults(handler=_lazy(module, run))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from crawler.exitcodes import EXIT_FAILED, UserError

    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    debug = bool(getattr(args, "debug", False))
    try:
        return handler(args)
    except UserError as exc:
        if debug:
            raise
        print(f"autoblog-archive {args.command}: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"  {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            f"autoblog-archive {args.command}: interrupted; run the same command again",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except Exception as exc:
        # Not an expected condition: still one line and a failure code, never 1 (partial).
        if debug:
            raise
        print(f"autoblog-archive {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("  run it again with --debug for the traceback", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
