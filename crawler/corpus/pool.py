"""Extraction in worker processes, on pebble's process pool.

trafilatura is CPU bound, not thread-safe, has no timeout and grows in memory, so each
document is extracted in a worker process: one at a time per worker, killed and replaced
past a time limit, recycled after N documents. ``submit`` never blocks, so a Scrapy
reactor thread never waits on extraction; what a worker runs (:func:`process_task`) is
the one extraction function (:func:`crawler.corpus.extraction.extract_facts`, over a page
the worker decodes and parses, or over the spider's own parse at crawl time).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import pebble

from crawler.children import isolate_library_children
from crawler.corpus.extraction import extract_facts, page_facts, text_fields
from crawler.corpus.text import charset_from_content_type

if TYPE_CHECKING:
    from crawler.context import CorpusOptions

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- worker side


def _read_warc_response(path: str, offset: int, limit: int) -> dict[str, Any]:
    """One response record (one gzip member) -> decoded body (at most ``limit`` bytes,
    DOWNLOAD_MAXSIZE) + the headers extraction needs."""
    from crawler.warc.reader import read_record_at

    record = read_record_at(path, offset, limit)
    if not record.complete:
        # A compressed bomb or a giant page: never inflated whole, so never extracted.
        raise ValueError(f"stored body larger than {limit} bytes, not extracted")
    body = record.payload
    # A broken Content-Encoding: the raw bytes are kept, flagged.
    flags: list[str] = [] if record.decoded else ["content_decoding_error"]
    http = record.http_headers
    return {
        "body": body,
        "charset": charset_from_content_type(http.get_header("Content-Type") if http else None),
        "flags": flags,
    }


def process_task(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one extraction task (in a worker process, or inline for debugging)."""
    if "block_html" in payload:  # deferred text of an index block (see CorpusBuilder.close)
        return text_fields(payload["block_html"])
    extra: list[str] = []
    if "facts" in payload:  # the spider's own parse (crawl time; see extraction.reuse_parse)
        facts = payload["facts"]
    elif "warc_path" in payload:
        got = _read_warc_response(payload["warc_path"], payload["offset"], payload["read_limit"])
        facts = page_facts(got["body"], payload["url"], got["charset"])
        extra = got["flags"]
    else:
        facts = page_facts(payload["body"], payload["url"], payload.get("charset"))
    result = extract_facts(facts, payload["url"], payload.get("http_status", 200), index_text=False)
    if extra:
        result["flags"] += extra
        for art in result["articles"]:
            art["quality_flags"] = sorted(set(art["quality_flags"]) | set(extra))
    return result


def _run_batch(payloads: list[dict[str, Any]]) -> tuple[int, list[tuple[bool, Any]]]:
    """The function the workers run: ``(ok, result or reason)`` of each task of a batch,
    and which worker made them (for stats). A task that raises fails alone, said as pebble
    would say it (``ExceptionName: message``); a batch ships one message each way instead
    of one per page (pebble's per-task cost, both sides, was a fifth of the work)."""
    out: list[tuple[bool, Any]] = []
    for payload in payloads:
        try:
            out.append((True, process_task(payload)))
        except Exception as exc:  # noqa: BLE001 - one page's failure is that page's
            out.append((False, f"{type(exc).__name__}: {exc}"))
    return os.getpid(), out


# ---------------------------------------------------------------- pool

BATCH_PAGES = 32  # tasks a worker takes at once, at most (fewer when fewer are waiting)


class _Task(NamedTuple):
    task_id: int
    payload: dict[str, Any]
    alone: bool  # a retry of a failed batch's task: run by itself, under its own limit


def batch_sizes(max_tasks: int) -> tuple[int, int]:
    """``(tasks per batch, batches per worker)``: a worker is still recycled after at most
    ``max_tasks`` documents (CORPUS_MAX_TASKS), pebble counting batches."""
    size = min(BATCH_PAGES, max_tasks)
    return size, max(1, max_tasks // size)


def worker_context() -> mp.context.BaseContext:
    """forkserver: safe next to threads (the reactor's, the pool's), cheap respawns after a
    kill or a recycling; the server preloads the extraction modules and the language model
    (:mod:`crawler.corpus.preload`) once, so a new worker starts warm. ``__main__`` is
    preloaded too: otherwise every new worker runs the main script again (multiprocessing
    re-imports it in each child it starts). The fork server is a ``python -c`` child: it
    must not import from the current directory (:mod:`crawler.children`)."""
    isolate_library_children()
    try:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["__main__", "crawler.corpus.preload"])
        return ctx
    except ValueError:
        return mp.get_context("spawn")


def start_worker_server() -> None:
    """Start multiprocessing's resource tracker, then the fork server with SIGINT blocked.

    Ctrl-C on a terminal reaches the whole process group. The server is started from
    this thread with SIGINT blocked, as CPython starts its resource tracker: a process
    inherits the blocked mask, so the server never gets a KeyboardInterrupt while it
    preloads the extraction modules (it ignores SIGINT after), nor does any worker it
    forks. The crawl's own handler is never changed: a Ctrl-C pressed meanwhile is
    taken by another thread, or waits until the mask is restored, and is never lost
    (ignoring SIGINT here instead lost a Ctrl-C pressed in that window: the crawl then
    ran to its end). The crawl stops the workers itself (:meth:`ExtractionPool.join`,
    :meth:`ExtractionPool.stop`).
    """
    ctx = worker_context()
    if ctx.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver, resource_tracker

    previous = None
    try:
        # First, and alone: it blocks SIGINT for its own start and unblocks it after,
        # which would undo the block below.
        resource_tracker.ensure_running()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        forkserver.ensure_running()
    except Exception as exc:  # noqa: BLE001 - the pool fails each task, saying why
        logger.warning("corpus: the extraction workers' fork server did not start (%r)", exc)
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class ExtractionPool:
    """Worker processes with a per-document time limit and recycling (pebble's ProcessPool).

    Tasks go to the workers in batches of those waiting (up to :data:`BATCH_PAGES`), at
    most two batches a worker in flight, so batches fill while the workers are busy. A
    batch gets one document's time limit: one that exceeds it or kills its worker is run
    again task by task, each under its own limit, so a document fails (``timeout``,
    ``worker_died``) only by itself, as if never batched; a hung document costs one limit
    more. ``submit`` never blocks (a feeder thread starts the pool and hands tasks to it); results
    (or failures) go to ``on_result(task_id, ok, value)`` from the pool's own thread.
    ``value`` is the result dict, or a reason string (``timeout``, ``worker_died``,
    ``ExceptionName: message``). A document's time limit
    counts from when a worker takes it, so a worker still starting on a busy machine is not
    killed for its start-up time. Workers never see SIGINT (Ctrl-C reaches the whole
    process group: the crawl decides when they stop, :meth:`stop` stops them now) and
    leave quietly when the crawl is gone.
    """

    def __init__(self, on_result: Callable[[int, bool, Any], None], options: CorpusOptions) -> None:
        self.on_result = on_result
        self.n_workers = options.workers  # CORPUS_WORKERS, CORPUS_TIMEOUT, CORPUS_MAX_TASKS
        self.timeout = options.timeout
        self.max_tasks = options.max_tasks
        self._batch, self._batches_per_worker = batch_sizes(self.max_tasks)
        self._slots = threading.Semaphore(2 * self.n_workers)  # batches in flight
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._feeder: threading.Thread | None = None
        self._pending = 0
        self._cond = threading.Condition()
        self._done_by: Counter[int] = Counter()  # worker pid -> batches done
        self._futures: set[Any] = set()  # pebble futures, until settled
        self._stopped = False
        self.stats = {"timeouts": 0, "crashes": 0, "errors": 0, "recycled": 0, "spawned": 0}
        self.stats["batches"] = 0  # tasks handed out together (fewer than the tasks: batched)
        # Chosen here, on the caller's thread: choosing it sets the environment the fork
        # server inherits, which is best not done while other threads may read it.
        self._context = worker_context()

    def submit(self, task_id: int, payload: dict[str, Any]) -> None:
        """Queue a document for extraction; its result comes back by ``task_id``."""
        with self._cond:
            self._pending += 1
            if self._feeder is None:
                start_worker_server()
                self._feeder = threading.Thread(
                    target=self._feed, name="extraction-feeder", daemon=True
                )
                self._feeder.start()
        self._queue.put(_Task(task_id, payload, False))

    @property
    def pending(self) -> int:
        """Documents submitted and not yet done."""
        return self._pending

    def join(self) -> None:
        """Wait until every submitted task has a result, then stop the workers."""
        with self._cond:
            while self._pending:
                self._cond.wait(0.5)
            feeder, self._feeder = self._feeder, None
        if feeder is not None:
            self._queue.put(None)
            feeder.join()

    def stop(self) -> None:
        """Stop now (a crawl stopped by a second Ctrl-C): the workers are terminated, and
        every task not done yet fails, so :meth:`join` returns at once.

        The feeder thread alone stops and joins the pebble pool (two threads joining one
        pool race inside pebble); pebble leaves the futures of a stopped pool unsettled,
        so they are cancelled here."""
        with self._cond:
            self._stopped = True
            feeder = self._feeder
        self._queue.put(None)
        if feeder is not None:
            feeder.join()
        with self._cond:
            futures = list(self._futures)
        for future in futures:
            future.cancel()

    def _feed(self) -> None:
        """Hand the tasks to pebble, in this thread: starting the pool waits for the fork
        server to load the extraction modules, and payloads are pickled here, never on
        the caller's (the Scrapy reactor's) thread."""
        pool: pebble.ProcessPool | None = None
        held: list[_Task | None] = []  # taken from the queue, for the next batch
        try:
            while (first := held.pop() if held else self._queue.get()) is not None:
                # The workers have enough: tasks wait in the queue and batches fill.
                while not (slot := self._slots.acquire(timeout=0.1)) and not self._stopped:
                    pass
                batch = [first]
                while not first.alone and len(batch) < self._batch:
                    try:
                        task = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if task is None or task.alone:
                        held.append(task)  # the end, or a retry that runs alone
                        break
                    batch.append(task)
                try:
                    if self._stopped:
                        raise RuntimeError("extraction stopped")
                    if pool is None:  # started on the first page: no idle workers before
                        pool = pebble.ProcessPool(
                            max_workers=self.n_workers,
                            max_tasks=self._batches_per_worker,
                            context=self._context,
                        )
                    payloads = [task.payload for task in batch]
                    future = pool.schedule(_run_batch, (payloads,), timeout=self.timeout)
                except Exception as exc:  # noqa: BLE001 - a broken pool: fail, never hang
                    if slot:
                        self._slots.release()
                    if not self._stopped:
                        logger.warning("corpus: %d task(s) not scheduled (%r)", len(batch), exc)
                    why = str(exc) or repr(exc.__cause__ or exc.__context__)  # pebble's are bare
                    for task in batch:
                        self.stats["errors"] += 1
                        self._finish(task.task_id, False, f"{type(exc).__name__}: {why}")
                    continue
                self.stats["batches"] += 1
                with self._cond:
                    self._futures.add(future)
                future.add_done_callback(functools.partial(self._done, batch))
        finally:
            if pool is not None:
                if self._stopped:
                    pool.stop()
                else:
                    pool.close()
                pool.join()

    def _done(self, batch: list[_Task], future: Any) -> None:
        """A batch's future settled (in the pool's thread): count it, hand its results on,
        or its tasks back to be run one by one."""
        self._slots.release()
        with self._cond:
            self._futures.discard(future)
        try:
            pid, values = future.result()
        except Exception as exc:  # noqa: BLE001 - report, never kill the run
            if len(batch) > 1 and not self._stopped and not future.cancelled():
                logger.info("corpus: a batch of %d failed (%r); run one by one", len(batch), exc)
                for task in batch:
                    self._queue.put(task._replace(alone=True))
                return
            ok, value = False, self._failure(batch[0].task_id, exc)
            for task in batch:
                self._finish(task.task_id, ok, value)
            return
        with self._cond:
            self._done_by[pid] += 1
            if self._done_by[pid] == 1:
                self.stats["spawned"] += 1
            if self._done_by[pid] == self._batches_per_worker:
                self.stats["recycled"] += 1
        for task, (ok, value) in zip(batch, values, strict=True):
            if not ok:
                self.stats["errors"] += 1
            self._finish(task.task_id, ok, value)

    def _failure(self, task_id: int, exc: BaseException) -> str:
        """Why a task's worker gave no result: counted, and said as ``on_result`` says it."""
        if isinstance(exc, TimeoutError):
            self.stats["timeouts"] += 1
            logger.warning(
                "corpus: extraction of task %s exceeded %.1fs; worker killed", task_id, self.timeout
            )
            return "timeout"
        if isinstance(exc, pebble.ProcessExpired):
            self.stats["crashes"] += 1
            logger.warning("corpus: extraction worker died on task %s (%s)", task_id, exc)
            return "worker_died"
        self.stats["errors"] += 1
        return f"{type(exc).__name__}: {exc}"

    def _finish(self, task_id: int, ok: bool, value: Any) -> None:
        try:
            self.on_result(task_id, ok, value)
        except Exception:  # noqa: BLE001 - a bad result must not stop the pool
            logger.exception("corpus: result handler failed for task %s", task_id)
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()
