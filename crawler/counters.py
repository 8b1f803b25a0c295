"""The crawl's counters: every Scrapy stats key the project writes or reads, declared once.

Scrapy's stats are a dictionary of strings; a key spelled two ways is two counters, and a
verdict that matched strings would miss the one it did not spell. So each key the project
uses as data is a :class:`Stat` member, and the counts that make a run partial are named
by :data:`PARTIAL`, from which :func:`crawler.outcome.Counts` reads them once at the end.
Families of keys (``skipped/<why>``, ``errors/<reason>``) are built by their helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Stat(StrEnum):
    """One stats key (Scrapy's own, where the project reads it, or ours)."""

    # Scrapy's
    FINISH_REASON = "finish_reason"
    REQUESTS = "downloader/request_count"
    ROBOTS_FORBIDDEN = "robotstxt/forbidden"
    SPIDER_EXCEPTIONS = "spider_exceptions/count"
    # the capture (pipelines.warc_capture)
    RESPONSES = "warc/responses"
    REVISITS = "warc/revisits"
    RECORDS = "warc/records"
    PAYLOAD_BYTES = "warc/payload_bytes"
    TRUNCATED = "warc/truncated"
    WARC_WRITE_ERRORS = "warc/write_errors"
    NOT_WRITTEN_AFTER_ERROR = "warc/not_written_after_error"
    # what went wrong (each makes the run partial: PARTIAL)
    FETCH_ERRORS = "errors/fetch"
    LINKS_CUT = "errors/links_cut"
    READ_IN_PART = "errors/read_in_part"
    FRONTIER_REJECTED = "frontier/rejected"
    THROTTLED_GAVE_UP = "backoff/gave_up"  # pages still throttled after their last retry
    NOT_ARCHIVED = "autoblogs/not_archived"
    CORPUS_SHORTFALL = "corpus/shortfall"
    # what the crawl found and did
    ARTICLES_FOUND = "articles/found"
    # Autoblog pages the crawl holds, captured or read back (crawler.extensions.RunSummary)
    AUTOBLOG_PAGES = "autoblogs/pages_held"
    BOUND_REACHED = "bounds/reached"  # the page bound that refused a request (its name)
    FROM_ARCHIVE = "resume/from_archive"
    RECOVERED_FILES = "recovery/files"
    HISTORY_FORGOTTEN = "history/forgotten"
    ALREADY_ARCHIVED = "incremental/already_archived"
    UNCHANGED_AUTOBLOGS = "incremental/unchanged_autoblogs"
    UNARCHIVED_PAGES = "incremental/unarchived_pages"
    WALKS_STOPPED = "incremental/walks_stopped"
    OLD_LAST_PAGES = "incremental/old_last_pages"
    CORPUS_QUEUED = "corpus/pages_queued"
    CORPUS_IGNORED = "corpus/pages_ignored"
    CORPUS_UNCHANGED = "corpus/pages_unchanged"
    CORPUS_WITHOUT_WARC = "corpus/pages_without_warc"
    CORPUS_PARSES_REUSED = "corpus/parses_reused"
    CORPUS_PROCESSES = "corpus/extraction_processes"  # that took documents (CORPUS_MAX_TASKS)
    THROTTLED = "backoff/throttled"  # answers that asked the crawl to slow down
    CLUSTER_RUN = "cluster/run"
    CLUSTER_POLITENESS_WAITS = "cluster/politeness_waits"

    def __repr__(self) -> str:  # Scrapy's stats dump shows the key, not the member
        return repr(self.value)


# Counts that make a run partial: failed fetches and WARC writes, spider exceptions (a
# RecursionError in a callback), links left out and pages or robots.txt files read in part
# (each named under "skipped"), frontier entries dropped (what they stood for may be
# missing), autoblog bases that gave no autoblog page, a corpus far short of the pages,
# pages still throttled after their last retry (crawler.backoff).
PARTIAL = (
    Stat.FETCH_ERRORS,
    Stat.THROTTLED_GAVE_UP,
    Stat.LINKS_CUT,
    Stat.READ_IN_PART,
    Stat.WARC_WRITE_ERRORS,
    Stat.SPIDER_EXCEPTIONS,
    Stat.FRONTIER_REJECTED,
    Stat.NOT_ARCHIVED,
    Stat.CORPUS_SHORTFALL,
)

# Families: a prefix and what follows it (a reason, a status, a kind, a host).
SKIPPED = "skipped/"  # requests refused or links left out, by why
ERROR_REASON = "errors/"  # failed fetches, by reason (beside the counters above)
STATUS = "downloader/response_status_count/"  # Scrapy's, by HTTP status
PAGES = "pages/"  # pages parsed, by kind
CRAWL_DELAY = "robotstxt/crawl_delay/"  # a host's robots.txt Crawl-delay
BACKOFF_DELAY = "backoff/delay/"  # a host's least delay since it throttled the crawl


def skipped(why: str) -> str:
    """The stats key counting requests skipped for ``why``."""
    return SKIPPED + why


def bound_skipped(bound: str) -> str:
    """The key of what a bound refused (``MAX_PAGES_PER_RUN=20000``)."""
    return skipped(f"bound: {bound}")


def error_reason(reason: str) -> str:
    """The stats key counting failed fetches for ``reason``."""
    return ERROR_REASON + reason


def count(stats: Mapping[str, Any], stat: Stat) -> int:
    """A counter's value (0 when never counted)."""
    return int(stats.get(stat, 0) or 0)


def family(stats: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The keys of one family, by what follows the prefix; declared counters left out."""
    declared = {str(s) for s in Stat}
    return {
        key[len(prefix) :]: value
        for key, value in stats.items()
        if key.startswith(prefix) and key not in declared
    }


def error_count(stats: Mapping[str, Any]) -> int:
    """Everything that went wrong in a run (:data:`PARTIAL`)."""
    return sum(count(stats, stat) for stat in PARTIAL)


def captures_held(stats: Mapping[str, Any], cluster: bool = False) -> int:
    """What makes this crawl a run: the autoblog pages it holds (captured now, or read back
    in a resumed run).

    Zero means the run found nothing worth keeping (a dead URL, a plain web site, a farm
    whose autoblogs all failed): nothing it did may stay behind, or the next crawl into
    the folder would run as incremental on top of it. A cluster worker keeps every
    capture: the shared queue gave that request to no other worker.
    """
    if not cluster:
        return count(stats, Stat.AUTOBLOG_PAGES)
    return sum(count(stats, s) for s in (Stat.RESPONSES, Stat.REVISITS, Stat.FROM_ARCHIVE))


def bound_reached(stats: Mapping[str, Any]) -> str | None:
    """The page bound that refused requests in this crawl (``MAX_PAGES_PER_RUN=20000``)."""
    bound = stats.get(Stat.BOUND_REACHED)
    return str(bound) if bound else None
