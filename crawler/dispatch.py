"""How a parsed command runs: its exit code, and every error as one escaped line.

A user's mistake (:class:`~crawler.exitcodes.UserError`) is its own line and code, Ctrl-C
says to run the same command again, anything unexpected is one line and exit 2 (never 1,
partial); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; whatever goes wrong is one line and an exit code."""
    from crawler.escaping import terminal
    from crawler.exitcodes import EXIT_FAILED, UserError

    handler: Callable[[argparse.Namespace], int] = args.handler
    debug = bool(getattr(args, "debug", False))
    try:
        return handler(args)
    except UserError as exc:
        if debug:
            raise
        # Messages may name what a folder or an archive holds: one escaped line each.
        print(terminal(f"autoblog-archive {args.command}: {exc}"), file=sys.stderr)
        if exc.hint:
            print(terminal(f"  {exc.hint}"), file=sys.stderr)
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
        print(
            terminal(f"autoblog-archive {args.command}: {type(exc).__name__}: {exc}"),
            file=sys.stderr,
        )
        print("  run it again with --debug for the traceback", file=sys.stderr)
        return EXIT_FAILED
