"""The history as a service: the archive's memory during one crawl, and the run's lifecycle.

One object per crawl, created once (:func:`crawler.services.open_history`) and handed to
the spider, the downloader middlewares and the pipelines, which ask it what earlier runs
archived and tell it what this run wrote. It is the one writer of ``history.sqlite``:
it takes the folder's run lock, repairs ``.open`` WARC files a killed crawl left, checks
the history against the WARCs, starts the run for the spider's plan (a new run, or the
same seeds' unfinished one), records each capture, closes the run with its report, and
audits it against what the farm declares. It knows nothing of Scrapy's engine: the
extension :class:`crawler.extensions.CrawlState` calls it on the crawl's signals.

:class:`HistoryService` keeps one machine's history in SQLite;
:class:`crawler.history.shared.SharedHistoryService` is the same interface for a worker of
a Redis cluster, whose questions are answered for every worker.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from crawler.config import Incremental
from crawler.counters import Stat
from crawler.history.archive_view import ArchiveView
from crawler.history.audit import (
    Audit,
    AuditBounds,
    AuditScope,
    Missing,
    audit_archive,
    missing_before,
    save_audit,
)
from crawler.history.consistency import Reconciled, check_history, reconcile_with_warcs
from crawler.history.model import FAILED, FINISHED, INTERRUPTED, PARTIAL, Capture
from crawler.history.readback import validators_at
from crawler.history.rebuild import reconcile_files
from crawler.history.report import build_report, write_report
from crawler.history.store import History
from crawler.items import CrawlPlan, PageItem, RunInfo
from crawler.layout import OutputLayout
from crawler.outcome import Finish
from crawler.runlock import RunLock
from crawler.urls import canonical_url, page_number
from crawler.warc import WarcPointer
from crawler.warc.recovery import repair_output

logger = logging.getLogger(__name__)

FULL, INCREMENTAL = "full", "incremental"

Count = Callable[[Stat, int], None]


@dataclass
class RunOutcome:
    """How the run ended, for the command line's summary."""

    status: str | None = None  # finished | partial | interrupted | failed | discarded
    report: str | None = None  # path of report.json
    history_error: str | None = None  # why the history could not start the run
    audit: Audit | None = None  # the audit that closed the run, if one did


@dataclass(frozen=True)
class RunEnd:
    """What the crawl says of its end: why Scrapy closed it, and what it holds."""

    reason: str  # Scrapy's finish reason
    errors: int  # what went wrong (crawler.counters.PARTIAL)
    held: int  # autoblog pages captured or read back (crawler.counters.captures_held)
    bound: str | None = None  # the page bound that refused requests, if one did


def _no_count(stat: Stat, value: int) -> None:
    return None


@dataclass
class HistoryService:
    """The history of one output folder during one crawl (SQLite, one machine)."""

    layout: OutputLayout
    mode: str  # CRAWL_MODE: auto | full | incremental
    full_every: int  # FULL_PASS_EVERY
    margin_pages: int  # INCREMENTAL_MARGIN_PAGES
    command: str  # what the history and the run lock keep as this run's command
    read_limit: int  # bytes read of one stored payload (DOWNLOAD_MAXSIZE)
    audit_bounds: AuditBounds | None = None  # None: no audit closes the run
    count: Count = _no_count  # the crawl's counters
    lock: RunLock | None = field(default=None, init=False)
    history: History | None = field(default=None, init=False)
    reconciled: Reconciled | None = field(default=None, init=False)
    run: RunInfo | None = field(default=None, init=False)
    plan: CrawlPlan | None = field(default=None, init=False)
    outcome: RunOutcome = field(default_factory=RunOutcome, init=False)
    # Canonical URLs this run captured (a resumed run too).
    captured_this_run: set[str] = field(default_factory=set, init=False)
    has_earlier_captures: bool = field(default=False, init=False)

    # -- the run's lifecycle ----------------------------------------------------------

    def open(self) -> Self:
        """Lock the folder (or raise ``RunLockedError``), check the history (or raise
        :class:`HistoryError` with nothing written), repair the folder, open the history."""
        self.lock = RunLock(self.layout.root, self.command).acquire()
        try:
            check_history(self.layout.root)
            for repair in repair_output(self.layout.root):
                logger.warning("crash recovery: %s", repair.describe())
                self.count(Stat.RECOVERED_FILES, 1)
            self.reconciled = reconcile_with_warcs(self.layout.root, self.read_limit)
            self.count(Stat.HISTORY_FORGOTTEN, len(self.reconciled.forgotten))
            self.history = History.open(self.layout.history)
        except BaseException:
            # No crawl follows (Scrapy gives up on this crawler): the folder is free again.
            self.lock.release()
            raise
        return self

    def _mode(self) -> str:
        assert self.history is not None
        if self.mode in (FULL, INCREMENTAL):
            return self.mode
        previous = [r for r in self.history.runs() if r.status in (FINISHED, PARTIAL)]
        if not previous:
            return FULL
        rule = Incremental(full_every=self.full_every, margin_pages=self.margin_pages)
        return FULL if rule.full_pass_due(self.history.runs_since_full()) else INCREMENTAL

    def start_run(self, plan: CrawlPlan) -> RunInfo | None:
        """Start the run for the spider's seeds (or resume the same seeds' unfinished one).
        If that fails, :attr:`run` stays None and the spider stops before its first
        request; the reason goes to the verdict (Scrapy would only log it)."""
        try:
            self.run = self._start_run(plan)
        except Exception as exc:
            logger.exception("the history could not start the run")
            self.run = None
            self.outcome.history_error = f"{type(exc).__name__}: {exc}"
        return self.run

    def _start_run(self, plan: CrawlPlan) -> RunInfo:
        history = self.history
        assert history is not None and self.reconciled is not None
        self.plan = plan
        seeds = list(plan.seeds)
        resumable = history.resumable_run(seeds)
        mode = resumable.mode if resumable else self._mode()
        if mode != FULL and self.reconciled.lost_before(resumable.id if resumable else None):
            logger.warning("captures were lost from the WARCs: this run is a full pass")
            mode = FULL
        elif mode != FULL and self.reconciled.rebuilt:
            # Whether the lost history's last run had finished is written nowhere else.
            logger.warning("the history was rebuilt: this run is a full pass")
            mode = FULL
        run_id = history.start_run(seeds, self.command, mode=mode)
        saved = history.get_run(run_id)
        assert saved is not None
        run = RunInfo(run_id, mode, saved.started, bool(resumable), self._archive_run(run_id))
        reconcile_files(history, self.layout.warcs(), run_id, self.read_limit)
        self.captured_this_run = history.urls_captured_in_run(run_id)
        # A first crawl has nothing to be a revisit of: no lookup per capture.
        self.has_earlier_captures = self._earlier_captures(run_id)
        if resumable:
            logger.info(
                "resuming run %d (%s): %d URLs already captured",
                run_id,
                mode,
                len(self.captured_this_run),
            )
        else:
            logger.info("run %d (%s)", run_id, mode)
        return run

    def _archive_run(self, run_id: int) -> int | None:
        """The run number for the WARCs' warcinfo when it is not this history's own."""
        return None

    def _earlier_captures(self, run_id: int) -> bool:
        assert self.history is not None
        return self.history.has_captures_before(run_id)

    def commit(self) -> None:
        """Commit the pending batch (the crawl waits: nothing is lost if it dies now)."""
        if self.history is not None:
            self.history.commit()

    def end_run(self, end: RunEnd) -> None:
        """Close the run: discarded when it captured nothing, else with its status and report."""
        run, history = self.run, self.history
        if run is None or history is None:
            return
        if not end.held and not run.resumed:
            # A dead URL or a wrong path must not leave a run later runs build on.
            history.discard_run(run.id)
            self.outcome.status = "discarded"
            return
        bound = end.bound
        if end.reason == "shutdown" or (end.reason == "finished" and bound):
            # A bound stopped it: the next run with the same seeds resumes it (crawler.bounds).
            status = INTERRUPTED
        elif end.reason != "finished":
            status = FAILED
        else:
            status = PARTIAL if end.errors else FINISHED
        history.commit()
        why = f"bound reached: {bound}" if bound and end.reason == "finished" else end.reason
        history.finish_run(run.id, status, stats={"reason": why, "errors": end.errors})
        self.outcome.status = status
        self.outcome.report = self._write_report()

    def _write_report(self) -> str:
        assert self.history is not None and self.run is not None
        report = build_report(self.history, self.run.id)
        return str(write_report(self.layout, report, self.history))

    def close_with_audit(self, reason: object) -> None:
        """The audit that closes a run whose spider finished (a bound reached included),
        once its WARC files are closed so their records can be read: what the farm
        declares against what the archive holds. What is missing makes a finished run
        partial (its report counts it) and is kept for the next run to fetch first
        (crawler.history.audit); the summary names it."""
        run, history, plan, bounds = self.run, self.history, self.plan, self.audit_bounds
        if run is None or history is None or plan is None or bounds is None:
            return
        if Finish.of(reason) is not Finish.FINISHED or self.outcome.report is None:
            return  # interrupted, failed, or discarded: nothing closes yet
        keeps = None
        if plan.share is not None:
            keeps = functools.partial(plan.share.keeps, reason="farm list")
        scope = AuditScope(list(plan.seeds), plan.scope, list(plan.named), keeps)
        view = ArchiveView(history.conn, [self.layout.archive], bounds.read_limit)
        audit = self.outcome.audit = audit_archive(view, scope, bounds)
        save_audit(history.conn, run.id, audit)
        logger.info(
            "audit: %d autoblogs, %d declared items checked, %d missing",
            audit.autoblogs,
            audit.checked,
            audit.missing_total,
        )
        if audit.complete:
            return
        if self.outcome.status == FINISHED:
            self.outcome.status = PARTIAL
        saved = history.get_run(run.id)
        stats = saved.stats if saved is not None else {}
        status = self.outcome.status or PARTIAL  # end_run set it: the report exists
        history.finish_run(run.id, status, {**stats, "missing": audit.missing_total})
        self._write_report()  # its status, and the gone rule of a partial run

    def close(self) -> None:
        """Close the history and release the folder's lock."""
        if self.history is not None:
            self.history.close()
        if self.lock is not None:
            self.lock.release()

    # -- what the crawl writes ------------------------------------------------------

    def record_capture(
        self,
        url: str,
        pointer: WarcPointer,
        *,
        warc_date: str,
        status: int,
        payload_digest: str,
        record_type: str,
        refers_to: str | None,
        bytes_written: int,
    ) -> None:
        """A response/revisit record is on disk (called once its group is written, so the
        history never points at records a crash lost)."""
        if self.run is None or self.history is None:
            return
        self.history.record_capture(
            url=url,
            run_id=self.run.id,
            warc_date=warc_date,
            status=status,
            payload_digest=payload_digest,
            record_type=record_type,
            filename=pointer.filename,
            offset=pointer.offset,
            length=pointer.length,
            record_id=pointer.record_id,
            refers_to=refers_to,
            bytes_written=bytes_written,
        )

    def note_page(self, item: object) -> None:
        """A page the spider read: its normalised digest and the articles it shows."""
        if not isinstance(item, PageItem) or item.captured is None:
            return
        if self.run is None or self.history is None:
            return
        # Articles first, the page's digest last: a page with a digest has its articles
        # noted, whichever batch a crash cuts (crawler.history.rebuild.reconcile_files).
        for permalink, digest in item.article_digests:
            self.history.note_article(permalink, item.autoblog or "", self.run.id, digest)
        self.history.set_normalized_digest(item.captured.pointer.record_id, item.digest)

    # -- questions asked during the crawl -------------------------------------------

    @property
    def incremental(self) -> bool:
        """Whether this run is incremental."""
        return self.run is not None and self.run.mode == INCREMENTAL

    def find_original(self, url: str, payload_digest: str) -> Capture | None:
        """The earlier response a new capture with this payload is a revisit of."""
        if self.run is None or self.history is None or not self.has_earlier_captures:
            return None
        return self.history.find_original(url, payload_digest)

    def captured_in_this_run(self, url: str) -> Capture | None:
        """This run's complete capture of ``url`` (a resumed run does not fetch it again)."""
        url_key = canonical_url(url)
        if self.run is None or self.history is None or url_key not in self.captured_this_run:
            return None
        capture = self.history.latest_capture(url)  # a throttled or failed fetch: not one
        if capture is None or capture.run_id != self.run.id:
            return None
        return capture

    def archived_before(self, url: str) -> Capture | None:
        """The newest successful capture of ``url`` from an earlier run (a later throttled
        or failed fetch does not hide it)."""
        if self.run is None or self.history is None:
            return None
        capture = self.history.latest_capture(url, before_run=self.run.id)
        return capture if _successful(capture) else None

    def validators(self, url: str) -> dict[str, str]:
        """Conditional-GET headers from the last capture's ETag / Last-Modified, if any.

        Autoblog pages send neither; static files served by the web server itself
        (``articles.db``, ``vvb.ini``, media) usually do, and a 304 costs no body.
        """
        if self.run is None or self.history is None:
            return {}
        capture = self.history.latest_complete(url, self.run.id)
        if capture is None:
            return {}
        return validators_at(self.layout.archive / capture.filename, capture.offset)

    def article_known_before(self, permalink: str) -> bool:
        """Was this article archived by an earlier run (the incremental stop rule)?"""
        if self.run is None or self.history is None:
            return False
        article = self.history.article(permalink)
        return article is not None and int(article["first_seen_run"]) < self.run.id

    def missing_before(self) -> list[Missing]:
        """What the last run's audit named missing that is still not held: the spider
        fetches it first."""
        if self.run is None or self.history is None or self.audit_bounds is None:
            return []
        return missing_before(self.history.conn)

    def last_numbered_page(self, page: str) -> str | None:
        """The highest-numbered page an earlier run archived among those numbered like
        ``page`` (the same URL up to its trailing number): an engine's old last page."""
        numbered = page_number(canonical_url(page))
        if self.run is None or self.history is None or numbered is None:
            return None
        prefix, best = numbered[0], None
        for url in self.history.urls_starting_with(prefix, self.run.id):
            found = page_number(url)
            if found is not None and found[0] == prefix and (best is None or found[1] > best[1]):
                best = (url, found[1])
        return best[0] if best else None

    def articles_known_before(self) -> set[str]:
        """Permalinks earlier runs saw (the corpus marks what is new in this run)."""
        if self.run is None or self.history is None:
            return set()
        return self.history.articles_known_before(self.run.id)


def _successful(capture: Capture | None) -> bool:
    """A capture a later run may build on: answered 200-399 (not throttled, not failed)."""
    return capture is not None and capture.status is not None and 200 <= capture.status < 400
