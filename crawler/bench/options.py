"""Command-line options of ``autoblog-archive bench`` (declared for ``crawler.cli``).

Kept beside the bench, as the sample farm's are (``crawler.samplefarm.options``): they
show its defaults, and the command line imports them only to build ``bench``'s parser.
"""

from __future__ import annotations

import argparse


def _ints(text: str) -> tuple[int, ...]:
    """``400,4000`` as numbers, or the one-line usage error argparse prints."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers") from None


def _sections(text: str) -> tuple[str, ...]:
    """Section names, each checked against ``SECTIONS``."""
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    from crawler.bench import SECTIONS

    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section {unknown[0]!r}; one of {SECTIONS}")
    return names


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bench``, beside the defaults they show (``crawler.bench``)."""
    from crawler.bench import (
        DEFAULT_ARTICLES,
        DEFAULT_AUTOBLOGS,
        DEFAULT_FARM_SECONDS,
        DEFAULT_REPEAT,
        DEFAULT_SEED,
        SECTIONS,
    )

    parser.add_argument("--quick", action="store_true", help="a small farm: a few minutes")
    parser.add_argument(
        "--autoblogs",
        type=int,
        default=None,
        help=f"autoblogs in the farm (default {DEFAULT_AUTOBLOGS})",
    )
    parser.add_argument(
        "--articles",
        type=int,
        default=None,
        help=f"articles per autoblog (default {DEFAULT_ARTICLES})",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=DEFAULT_REPEAT,
        help=f"alternating runs of each tool (default {DEFAULT_REPEAT})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the farm's seed")
    parser.add_argument(
        "--scale-articles",
        type=_ints,
        default=None,
        help="articles per autoblog of the scale runs (default 400,4000)",
    )
    parser.add_argument(
        "--scale-pages",
        type=_ints,
        default=None,
        help="pages the scale runs aim at (default 10000,50000; alone, e.g. 100000 for a "
        "memory run: 4,000 articles per autoblog past 10,000 pages)",
    )
    parser.add_argument(
        "--farm-seconds",
        type=float,
        default=None,
        help=f"length of the farm's serving-rate check (default {DEFAULT_FARM_SECONDS:g})",
    )
    parser.add_argument(
        "--skip",
        type=_sections,
        default=(),
        help=f"comma-separated sections to leave out: {','.join(SECTIONS)}",
    )
    parser.add_argument(
        "--output",
        "-o",
        default="benchmarks/results",
        help="folder for <version>.json and .md (default benchmarks/results)",
    )
    parser.add_argument(
        "--startup-captures",
        type=int,
        default=None,
        help="captures in the history the startup section opens (default 1000000; --quick 100000)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    parser.add_argument(
        "--python-farm",
        action="store_true",
        help="crawlers fetch from the Python sample farm, not from nginx serving its "
        "pre-rendered pages (the default when nginx is installed)",
    )
    parser.add_argument(
        "--hostile",
        action="store_true",
        help="only the hostile shapes of issue 19 at full size (time and memory against "
        "their budgets; with --quick at a hundredth): <version>-hostile.json and .md",
    )
