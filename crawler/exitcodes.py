"""Exit codes of ``autoblog-archive crawl`` for schedulers (cron, systemd timers).

A scheduler can alert on 2, retry later on 3, and treat 1 as "archived, but look".
"""

from __future__ import annotations

EXIT_OK = 0  # the run finished and every fetch succeeded
EXIT_PARTIAL = 1  # the run finished, some fetches failed (what succeeded is archived)
EXIT_FAILED = 2  # the run did not finish or captured nothing (bad config, no network...)
EXIT_LOCKED = 3  # another run holds the output folder; nothing was done

__all__ = ["EXIT_OK", "EXIT_PARTIAL", "EXIT_FAILED", "EXIT_LOCKED"]
