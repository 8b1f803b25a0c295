"""What the history knows: runs, captures, and the warcinfo fields tying WARC files to runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crawler.warc import WarcPointer

# What the change report says of an article or a page against the run before.
CATEGORIES = ("new", "changed", "unchanged", "gone")

SCHEMA_VERSION = 1
# warcinfo fields naming the run a WARC file belongs to (``crawlRun`` is its id here).
RUN_FIELD = "crawlRun"
RUN_STARTED_FIELD = "crawlRunStarted"
RUN_MODE_FIELD = "crawlRunMode"
CAPTURE_TYPES = ("response", "revisit")
# Run statuses: a run left "running" after its process died is a crashed run.
RUNNING, INTERRUPTED, FINISHED, PARTIAL, FAILED = (
    "running",
    "interrupted",
    "finished",
    "partial",
    "failed",
)
RESUMABLE = (RUNNING, INTERRUPTED)

# 429 Too Many Requests: the farm throttles the crawl (crawler.backoff). Like 408 and any
# 5xx, it says "not now", nothing about the page: such a capture stays in the WARC and the
# history, but is never a page's capture as far as any question about the page goes.
THROTTLED = 429
NOT_NOW = (408, THROTTLED)
# The same rule as SQL, on a captures row.
ANSWERED_SQL = "(status < 500 AND status NOT IN (408, 429))"


def answered(status: int | None) -> bool:
    """Whether a capture with this HTTP status says what the page is (see ``NOT_NOW``)."""
    return status is not None and status < 500 and status not in NOT_NOW


def warcinfo_run_fields(run_id: int, started: str, mode: str = "full") -> dict[str, str]:
    """Fields to add to every ``warcinfo`` of a run so a rebuild can regroup files by run
    (and tell full passes from incremental runs, which the report's "gone" rule needs)."""
    return {RUN_FIELD: str(run_id), RUN_STARTED_FIELD: started, RUN_MODE_FIELD: mode}


@dataclass(frozen=True)
class Capture:
    """One response or revisit record: what was fetched, and where its record lies."""

    url: str
    run_id: int
    warc_date: str
    status: int | None
    payload_digest: str | None
    normalized_digest: str | None
    record_type: str
    filename: str
    offset: int
    length: int
    record_id: str
    refers_to: str | None = None
    autoblog: str | None = None
    bytes_written: int | None = None

    @property
    def pointer(self) -> WarcPointer:
        """Where the capture lies in the archive."""
        return WarcPointer(self.filename, self.offset, self.length, self.record_id)


@dataclass(frozen=True)
class Run:
    """A run of the history: when, how it ended, its seeds, command, mode and counts."""

    id: int
    started: str
    finished: str | None
    status: str
    seeds: list[str]
    command: str | None
    mode: str
    resumed: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
