"""The crawl history of an output folder, for the duration of one crawl: the one writer of
``history.sqlite``.

Built by Scrapy before anything is fetched: it takes the folder's run lock, repairs
``.open`` WARC files left by a killed crawl and checks the history against the WARCs.
The run starts when the spider sends its plan (``crawl_planned``): a new run, or the same
seeds' unfinished one. During the crawl the capture records each written record here
(:meth:`record_capture`), the spider's pages come in as items (:meth:`note_page`), and
the spider and the capture ask what earlier runs archived. At the end it closes the run
and writes the change report. ``autoblog-archive crawl`` and ``scrapy crawl`` both go
through it.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawler.config import Incremental
from crawler.context import HistoryOptions, RunContext
from crawler.counters import Stat, error_count
from crawler.extensions.lookup import captures_held, page_bound_reached
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
from crawler.items import (
    CrawlPlan,
    PageItem,
    RunInfo,
    crawl_planned,
    run_started,
    warc_files_closed,
)
from crawler.layout import OutputLayout
from crawler.outcome import Finish
from crawler.runlock import RunLock
from crawler.urls import canonical_url, page_number
from crawler.warc import WarcPointer
from crawler.warc.recovery import repair_output

logger = logging.getLogger(__name__)

FULL, INCREMENTAL = "full", "incremental"


@dataclass
class RunOutcome:
    """How the run ended, for the command line's summary."""

    status: str | None = None  # finished | partial | interrupted | failed | discarded
    report: str | None = None  # path of report.json
    history_error: str | None = None  # why the history could not start the run


class CrawlState:
    """The history of one output folder during one crawl."""

    def __init__(
        self, layout: OutputLayout, options: HistoryOptions, read_limit: int, stats=None
    ) -> None:
        self.layout = layout
        self.requested_mode = options.mode
        self.full_every = options.full_every
        self.margin_pages = options.margin_pages
        self.command = options.command  # what the history and the run lock keep
        self.read_limit = read_limit  # bytes read of one stored payload (DOWNLOAD_MAXSIZE)
        self.stats = stats
        self.crawler: Crawler | None = None
        self.lock: RunLock | None = None
        self.history: History | None = None
        self.reconciled: Reconciled | None = None
        self.run: RunInfo | None = None
        self.outcome = RunOutcome()
        self.captured_this_run: set[str] = set()
        self.has_earlier_captures = False
        self.plan: CrawlPlan | None = None
        # The audit that closes the run (crawler.history.audit): its bounds, its result.
        self.audit_bounds: AuditBounds | None = None
        self.audit: Audit | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlState:
        """Build it from the run context (NotConfigured without a history)."""
        context = RunContext.of(crawler)
        if not context.history.enabled:
            raise NotConfigured
        state = cls(context.layout, context.history, context.bounds.read_limit, crawler.stats)
        state.crawler = crawler
        if context.audit.enabled:
            state.audit_bounds = AuditBounds.of(context)
        state.open()
        crawler.signals.connect(state.crawl_planned, signal=crawl_planned)
        crawler.signals.connect(state.note_page, signal=signals.item_scraped)
        crawler.signals.connect(state.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(state.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(state.engine_stopped, signal=signals.engine_stopped)
        crawler.signals.connect(state.close_with_audit, signal=warc_files_closed)
        return state

    def _count(self, key: Stat, value: int = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(key, count=value)

    # -- the run -----------------------------------------------------------------

    def open(self) -> None:
        """Lock the folder (or raise ``RunLockedError``), check the history (or raise
        :class:`HistoryError` with nothing written), repair the folder, open the history."""
        self.lock = RunLock(self.layout.root, self.command).acquire()
        try:
            check_history(self.layout.root)
            for repair in repair_output(self.layout.root):
                logger.warning("crash recovery: %s", repair.describe())
                self._count(Stat.RECOVERED_FILES)
            self.reconciled = reconcile_with_warcs(self.layout.root, self.read_limit)
            self._count(Stat.HISTORY_FORGOTTEN, len(self.reconciled.forgotten))
            self.history = History.open(self.layout.history)
        except BaseException:
            # No crawl follows (Scrapy gives up on this crawler): the folder is free again.
            self.lock.release()
            raise

    def _mode(self) -> str:
        assert self.history is not None
        if self.requested_mode in (FULL, INCREMENTAL):
            return self.requested_mode
        previous = [r for r in self.history.runs() if r.status in (FINISHED, PARTIAL)]
        if not previous:
            return FULL
        rule = Incremental(full_every=self.full_every, margin_pages=self.margin_pages)
        return FULL if rule.full_pass_due(self.history.runs_since_full()) else INCREMENTAL

    def crawl_planned(self, plan: CrawlPlan) -> None:
        """Start the run for the spider's seeds (or resume the same seeds' unfinished one).
        If that fails, :attr:`run` stays None and the spider stops before its first
        request; the reason goes to the verdict (Scrapy would only log it)."""
        try:
            self._start_run(plan)
        except Exception as exc:
            logger.exception("the history could not start the run")
            self.run = None
            self.outcome.history_error = f"{type(exc).__name__}: {exc}"

    def _start_run(self, plan: CrawlPlan) -> None:
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
        run = history.get_run(run_id)
        assert run is not None
        self.run = RunInfo(run_id, mode, run.started, bool(resumable), self._archive_run(run_id))
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
        if self.crawler is not None:
            self.crawler.signals.send_catch_log(run_started, run=self.run)

    def _archive_run(self, run_id: int) -> int | None:
        """The run number for the WARCs' warcinfo when it is not this history's own."""
        return None

    def _earlier_captures(self, run_id: int) -> bool:
        assert self.history is not None
        return self.history.has_captures_before(run_id)

    def spider_idle(self, spider: Spider) -> None:
        """Commit the history's pending batch while the crawl waits."""
        if self.history is not None:
            self.history.commit()

    def spider_closed(self, spider: Spider, reason: str) -> None:
        """Close the run: discarded when it captured nothing, else finished with its report."""
        if self.run is None or self.history is None or self.crawler is None:
            return
        if not captures_held(self.crawler) and not self.run.resumed:
            # A dead URL or a wrong path must not leave a run later runs build on.
            self.history.discard_run(self.run.id)
            self.outcome.status = "discarded"
            return
        errors = error_count(self.crawler.stats.get_stats())
        bound = page_bound_reached(self.crawler)
        if reason == "shutdown" or (reason == "finished" and bound):
            # A bound stopped it: the next run with the same seeds resumes it (crawler.bounds).
            status = INTERRUPTED
        elif reason != "finished":
            status = FAILED
        else:
            status = PARTIAL if errors else FINISHED
        self.history.commit()
        why = f"bound reached: {bound}" if bound and reason == "finished" else reason
        self.history.finish_run(self.run.id, status, stats={"reason": why, "errors": errors})
        report = build_report(self.history, self.run.id)
        self.outcome.status = status
        self.outcome.report = str(write_report(self.layout, report, self.history))

    def close_with_audit(self, files: list[Path] | None = None) -> None:
        """The audit that closes a run whose spider finished (a bound reached included),
        once its WARC files are closed so their records can be read: what the farm
        declares against what the archive holds. What is missing makes a finished run
        partial (its report counts it) and is kept for the next run to fetch first
        (crawler.history.audit); the summary names it."""
        run, history, plan, bounds = self.run, self.history, self.plan, self.audit_bounds
        if run is None or history is None or plan is None or bounds is None:
            return
        reason = self.stats.get_value(Stat.FINISH_REASON) if self.stats is not None else None
        if Finish.of(reason) is not Finish.FINISHED or self.outcome.report is None:
            return  # interrupted, failed, or discarded: nothing closes yet
        keeps = None
        if plan.share is not None:
            keeps = functools.partial(plan.share.keeps, reason="farm list")
        scope = AuditScope(list(plan.seeds), plan.scope, list(plan.named), keeps)
        view = ArchiveView(history.conn, [self.layout.archive], bounds.read_limit)
        audit = self.audit = audit_archive(view, scope, bounds)
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
        status = self.outcome.status or PARTIAL  # close() set it: the report exists
        history.finish_run(run.id, status, {**stats, "missing": audit.missing_total})
        write_report(self.layout, build_report(history, run.id), history)  # status, gone rule

    def engine_stopped(self) -> None:
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

    def note_page(self, item: object, response=None, spider=None) -> None:
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
        if capture is None or capture.status is None or not 200 <= capture.status < 400:
            return None
        return capture

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
        return article is not None and article["first_seen_run"] < self.run.id

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
