"""How a crawl ended, as a typed value: the exit code and the verdict come from it alone.

Built once, when Scrapy has stopped (:func:`crawler.crawl_summary.summarize`), from the
counters (:mod:`crawler.counters`) and the run's results (:mod:`crawler.services`);
nothing here matches a stats key or a message. A scheduler acts on the exit code
(:mod:`crawler.exitcodes`), the operator reads the verdict: both say the same thing
because one function makes both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from crawler.counters import Stat, count, error_count
from crawler.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from crawler.items import BaseFound


class Finish(StrEnum):
    """Why Scrapy closed the spider (its ``finish_reason``), as far as the verdict cares."""

    FINISHED = "finished"
    SHUTDOWN = "shutdown"  # Ctrl-C, or a SIGTERM
    INTERRUPTED = "interrupted"  # the spider was never closed (no finish reason at all)
    HISTORY_ERROR = "history_error"  # the history service could not start the run
    WARC_WRITE_ERROR = "warc_write_error"  # a full disk (WarcCapture)
    OTHER = "other"  # any other reason (a CLOSESPIDER_* bound): stopped early

    @classmethod
    def of(cls, reason: object) -> Finish:
        """How a crawl finished, from Scrapy's finish reason (None: interrupted)."""
        if reason is None:
            return cls.INTERRUPTED
        try:
            return cls(str(reason))
        except ValueError:
            return cls.OTHER

    @property
    def stopped(self) -> bool:
        """Stopped by the operator (or never closed): resumable, nothing to judge yet."""
        return self in (Finish.SHUTDOWN, Finish.INTERRUPTED)


@dataclass(frozen=True)
class Counts:
    """The counters a summary shows and a verdict weighs, read from the stats once."""

    requests: int = 0
    responses: int = 0
    revisits: int = 0
    from_archive: int = 0
    warc_records: int = 0
    payload_bytes: int = 0
    truncated: int = 0
    errors: int = 0  # everything that makes a run partial (crawler.counters.PARTIAL)
    frontier_rejected: int = 0

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> Counts:
        """The counts from Scrapy's stats."""
        return cls(
            requests=count(stats, Stat.REQUESTS),
            responses=count(stats, Stat.RESPONSES),
            revisits=count(stats, Stat.REVISITS),
            from_archive=count(stats, Stat.FROM_ARCHIVE),
            warc_records=count(stats, Stat.RECORDS),
            payload_bytes=count(stats, Stat.PAYLOAD_BYTES),
            truncated=count(stats, Stat.TRUNCATED),
            errors=error_count(stats),
            frontier_rejected=count(stats, Stat.FRONTIER_REJECTED),
        )


@dataclass(frozen=True)
class CrawlOutcome:
    """Everything the exit code depends on."""

    finish: Finish
    reason: str  # Scrapy's finish reason, as said (for OTHER)
    seeds: tuple[str, ...]
    held: int  # captures the run holds, written or read back
    counts: Counts
    autoblogs: int  # autoblogs identified (an engine, or pages)
    capped: str | None = None  # the page bound reached (MAX_PAGES_PER_RUN=20000)
    problems: tuple[str, ...] = ()  # what a run that holds pages failed to archive
    missing: int = 0  # items the farm declares that the archive lacks (the audit)
    seeds_found: tuple[BaseFound, ...] = ()
    not_archived: tuple[BaseFound, ...] = ()
    first_failure: str | None = None
    history_error: str | None = None
    warc_write_error: str | None = None
    index_error: str | None = None
    share: str | None = None  # "process 1/2", "worker w1": one share of a crawl

    def verdict(self) -> tuple[int, str]:
        """The exit code and the one sentence an operator reads first."""
        code, sentence = self._verdict()
        if self.share is not None and code == EXIT_FAILED:
            return self._share_verdict(code, sentence)
        return code, sentence

    def _verdict(self) -> tuple[int, str]:
        seeds = ", ".join(self.seeds)
        if self.finish is Finish.HISTORY_ERROR:
            why = self.history_error or "see the log"
            return EXIT_FAILED, (
                f"the crawl history could not start a run ({why}): nothing was fetched"
            )
        if not self.held:
            if self.finish.stopped:
                return EXIT_FAILED, (
                    "interrupted before anything was captured; the folder is unchanged"
                )
            return self._nothing_captured(self.first_failure or f"{seeds} did not answer")
        if self.finish.stopped:
            return EXIT_FAILED, "interrupted: run the same command again to resume"
        if self.finish is Finish.WARC_WRITE_ERROR:
            return EXIT_FAILED, (
                f"stopped: writing the WARC failed ({self.warc_write_error or 'disk full?'}); "
                "everything written before is kept; free space and run the same command again"
            )
        if self.index_error:
            return EXIT_FAILED, (
                f"writing the indexes failed ({self.index_error}); the WARCs are "
                "kept; run the same command again"
            )
        if self.finish is not Finish.FINISHED:
            return EXIT_FAILED, (
                f"stopped early ({self.reason}): run the same command again to resume"
            )
        if not self.autoblogs:
            return EXIT_FAILED, (
                f"no autoblog found at {seeds}: is it a Projet Autoblog farm root or an "
                "autoblog's base URL (ending in /)?"
            )
        return self._judged()

    def _judged(self) -> tuple[int, str]:
        """A finished run that holds autoblog pages: complete, or partial and why."""
        if self.capped:
            return EXIT_PARTIAL, (
                f"partial: the bound {self.capped} was reached; run the same command "
                "again to continue where this run stopped"
            )
        if self.counts.frontier_rejected:
            return EXIT_PARTIAL, (
                f"partial: {self.counts.frontier_rejected} entries of the shared frontier were "
                "no request of this crawl and were dropped (named in the log): who else "
                "writes to this Redis?"
            )
        if self.problems:
            more = f" (and {len(self.problems) - 1} more, below)" if len(self.problems) > 1 else ""
            return EXIT_PARTIAL, f"partial: {self.problems[0]}{more}"
        if self.counts.errors:
            return EXIT_PARTIAL, (
                f"partial: {self.counts.errors} fetches failed, everything fetched is archived; "
                "the next run fetches them again"
            )
        if self.missing:
            return EXIT_PARTIAL, (
                f"partial: {self.missing} items the farm declares are not in the archive (listed "
                "below and in summary.json); the next run fetches them first"
            )
        return EXIT_OK, "complete"

    def _nothing_captured(self, fallback: str) -> tuple[int, str]:
        """No autoblog page: a seed that answered with something else is a wrong URL (exit
        4, fix the command); one that did not answer, or a farm none of whose autoblogs
        gave a page, is a failure (exit 2, try again)."""
        left = "the output folder was left as it was"
        wrong = [f"{f.url} {f.why}" for f in self.seeds_found if f.kind == "not_autoblog"]
        if wrong:
            return EXIT_USAGE, f"{'; '.join(wrong)}; nothing was captured, {left}"
        why = [f"{f.url} {f.why}" for f in self.seeds_found if f.kind == "failed"]
        farm = next((f.url for f in self.seeds_found if f.kind == "farm"), None)
        if not why and farm is not None:
            bases = self.not_archived
            first = f" (first: {bases[0].url} {bases[0].why})" if bases else ""
            why = [f"{farm} is an autoblog farm, but no autoblog of it gave a page{first}"]
            if not bases:
                why = [f"{farm} is an autoblog farm listing no autoblog (name hidden ones with "
                       "--autoblogs)"]  # fmt: skip
        return EXIT_FAILED, f"nothing was captured ({'; '.join(why) or fallback}); {left}"

    def _share_verdict(self, code: int, sentence: str) -> tuple[int, str]:
        """One share of a crawl (a cluster worker, a ``--processes`` process) that found
        no autoblog of its own is no failure: the others had them."""
        who = self.share
        if not self.counts.responses and not self.counts.errors:
            return EXIT_OK, f"{who}: the others took every request, nothing left for this one"
        if self.finish is Finish.FINISHED and not self.autoblogs:
            code, said = (EXIT_PARTIAL, "partial") if self.counts.errors else (EXIT_OK, "complete")
            return code, f"{said}: {who}'s share held no autoblog page"
        return code, sentence


def problem_lines(
    not_archived: tuple[BaseFound, ...],
    shortfall: Mapping[str, Any] | None,
    throttled: Mapping[str, Any] | None = None,
) -> list[str]:
    """What a run that holds pages failed to archive, each named (each makes it partial):
    seeds and autoblog bases that gave no autoblog page, pages the farm still throttled
    after their last retry (``Backoff.summary``), a corpus far short of the pages."""
    lines = [f"not archived: {p.url} ({p.asked_as}) {p.why}" for p in not_archived]
    throttled = throttled or {}
    lines += [
        f"throttled: {p['url']} answered {p['status']} on each of {p['attempts']} attempts; "
        "the next run fetches it first"
        for p in throttled.get("pages", [])
    ]
    unnamed = throttled.get("pages_total", 0) - len(throttled.get("pages", []))
    if unnamed > 0:
        lines.append(f"throttled: {unnamed} more pages (AUDIT_MAX_MISSING)")
    if shortfall:
        lines.append(
            f"corpus short: {shortfall['records']} records for the {shortfall['article_pages']} "
            f"article pages captured ({shortfall['why']}); the WARCs hold every page: rebuild "
            "it with `autoblog-archive extract`"
        )
    return lines
