"""``python -m crawler.samplefarm``: same options as ``autoblog-archive sample-farm``."""

from __future__ import annotations

import argparse
import sys

from .options import add_farm_arguments
from .server import main_from_args


def main(argv: list[str] | None = None) -> int:
    """Serve the sample farm until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m crawler.samplefarm",
        description="Serve a deterministic sample autoblog farm.",
    )
    add_farm_arguments(parser)
    return main_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
