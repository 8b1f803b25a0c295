"""The crawl's scheduler: Scrapy's own, its pending requests past a bound on disk.

Every index page of an autoblog links every page number, so the first page of an
autoblog of P pages queues P requests, and a farm holds about one pending request per
index page it has not fetched yet: ~2 KB of Python objects each (request, headers, meta,
cached fingerprint), a queue that grows with the farm. Scrapy keeps pending requests in
pickled disk queues when it has a ``JOBDIR``; without one, this scheduler makes itself a
private temporary folder for them, deleted when the crawl closes it. Up to
``SCHEDULER_MEMORY_REQUESTS`` pending requests wait in memory first (serialising every
request cost ~5% of a crawl's CPU); only past that bound do they go to disk, so memory
stays bounded however big the farm. Requests in memory are served first, then those on
disk; within each, the order is Scrapy's (LIFO). The dupe filter
stays in memory (a 20-byte fingerprint per request), and a request that cannot be pickled
waits in memory, as Scrapy does. A crawl killed outright cannot remove its folder: the
next crawl removes the folders of processes that no longer exist.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Self

from scrapy import Request
from scrapy.core.scheduler import Scheduler
from scrapy.crawler import Crawler

from crawler.context import RunContext

PREFIX = "autoblog-archive-queue-"  # then the owner's process id and a random part


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_orphans(base: Path) -> None:
    """Remove the queue folders of crawls that were killed (their process is gone)."""
    for folder in base.glob(PREFIX + "*"):
        owner = folder.name[len(PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)


class SpillingScheduler(Scheduler):
    """Scrapy's scheduler, given a throwaway ``JOBDIR`` for its queues when none is set,
    holding up to ``memory_requests`` pending requests in memory before it uses them."""

    scratch: Path | None = None  # the folder this scheduler made, removed at close
    memory_requests = 0  # pending requests kept in memory before spilling to disk

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        """Scrapy's scheduler, its disk queues in a private temporary folder."""
        scheduler = super().from_crawler(crawler)
        if scheduler.dqdir is None:
            # A JOBDIR of the user's keeps every pending request on disk, to resume from.
            scheduler.memory_requests = RunContext.of(crawler).bounds.memory_requests
            base = Path(tempfile.gettempdir())
            remove_orphans(base)
            prefix = f"{PREFIX}{os.getpid()}-"
            scheduler.scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
            scheduler.dqdir = scheduler._dqdir(str(scheduler.scratch))
        return scheduler

    def _dqpush(self, request: Request) -> bool:
        """To disk only once ``memory_requests`` wait in memory (False: Scrapy keeps it
        in memory, as it keeps a request it cannot serialise)."""
        if len(self.mqs) < self.memory_requests:
            return False
        return super()._dqpush(request)

    def close(self, reason: str) -> Any:
        """Close the scheduler and remove its scratch files."""
        try:
            return super().close(reason)
        finally:
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)
