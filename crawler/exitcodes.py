"""Exit codes of every ``autoblog-archive`` command, and the error that carries one.

Scheduled preservation means nobody watches the run: the exit code is what a cron
job or a systemd unit acts on. One table for every command, printed by ``--help``.
"""

from __future__ import annotations

import shlex
import sys

EXIT_OK = 0  # complete: every fetch (or check) succeeded
EXIT_PARTIAL = 1  # partial: some fetches failed or items are missing; the fetched are kept
EXIT_FAILED = 2  # failed or interrupted: run the same command again to resume
EXIT_LOCKED = 3  # another run holds the output folder; nothing was done
EXIT_USAGE = 4  # bad usage or configuration, found before anything was written

EXIT_CODES_HELP = """exit codes:
  0  complete
  1  partial: some fetches failed, or the farm declares items the archive lacks (named;
     the next run fetches them first); everything fetched is archived (verify: defects
     or missing items found)
  2  failed or interrupted: run the same command again to resume
  3  another run holds the output folder; nothing was done
  4  bad usage or configuration (no farm or autoblog at the URL included), found before
     anything was written"""


class UserError(Exception):
    """An expected condition, told to the user in one line (no traceback) with its exit code.

    ``hint`` is a second line saying what to do about it.
    """

    def __init__(self, message: str, exit_code: int = EXIT_USAGE, hint: str | None = None):
        super().__init__(message)
        self.exit_code = exit_code
        self.hint = hint


class UsageError(UserError):
    """Bad arguments or configuration: exit 4, before anything is written."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message, EXIT_USAGE, hint)


__all__ = [
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_FAILED",
    "EXIT_LOCKED",
    "EXIT_USAGE",
    "EXIT_CODES_HELP",
    "UserError",
    "UsageError",
]


def resume_line() -> str:
    """Exit 2 is "run the same command again": the command, as it was typed."""
    program = sys.argv[0] if sys.argv[0].endswith("autoblog-archive") else "autoblog-archive"
    return "Resume: " + shlex.join([program, *sys.argv[1:]])
