"""The history is never trusted over the WARCs.

``history.sqlite`` says what is archived, so a scheduled run does not fetch it again;
if it claims a capture that no WARC holds (a file deleted, a copy cut short), that
page would be missing for good while every check said OK. Before a crawl starts:

- a missing, emptied or unreadable history is rebuilt from the WARCs, with one line
  saying so (a damaged file is kept aside as ``history.sqlite.damaged-<time>``);
- a closed WARC file cut short is cut back to its last complete record group;
- captures the history lists but no WARC holds are forgotten, and the run becomes a full
  pass so that they are fetched again;
- the CDXJ index is rewritten when anything was lost or it has malformed lines.

``verify`` asks the same question (:func:`unheld_captures`) and reports the answer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from crawler.history.files import file_problem
from crawler.history.rebuild import rebuild_from_indexes
from crawler.history.store import History
from crawler.layout import OutputLayout
from crawler.warc.cdxj import cdxj_pointers, write_cdxj
from crawler.warc.recovery import repair_truncated_file

logger = logging.getLogger(__name__)


@dataclass
class Unheld:
    """A capture the history lists that its WARC file does not hold (or the index lacks)."""

    url: str
    run_id: int
    filename: str
    offset: int
    reason: str  # "file missing" | "file cut short" | "not in the index"


@dataclass
class Reconciled:
    """What :func:`reconcile_with_warcs` did before a run."""

    rebuilt: str | None = None  # why the history was rebuilt
    repaired: list[str] = field(default_factory=list)
    forgotten: list[Unheld] = field(default_factory=list)

    def lost_before(self, run_id: int | None) -> bool:
        """Whether runs other than ``run_id`` (the one being resumed) lost captures."""
        return any(u.run_id != run_id for u in self.forgotten)


def history_problem(root: Path) -> str | None:
    """Why the history of ``root`` cannot be trusted as it is, or None."""
    if not any(layout.warcs() for layout in OutputLayout.find(root)):
        return None  # nothing to rebuild from: a new history is the right one
    path = OutputLayout(root).history
    if not path.exists():
        return "missing"
    return file_problem(path)


def check_history(root: Path) -> None:
    """Raise :class:`crawler.history.validate.HistoryError` if a history the next run would
    trust as it is holds a malformed row; a missing, emptied or corrupt one is rebuilt
    from the WARCs instead (:func:`reconcile_with_warcs`)."""
    path = OutputLayout(root).history
    if path.exists() and history_problem(root) is None:
        History.open(path).close()  # every row checked on the way in


def rebuild_history(root: Path, problem: str, read_limit: int) -> str:
    """Put an untrustworthy history aside and rebuild it from the WARCs; one line on it."""
    path = OutputLayout(root).history
    if path.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        os.replace(path, OutputLayout(root).damaged_history(stamp))
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    for layout in OutputLayout.find(root):
        write_cdxj(layout, rebuild=True)
    report = rebuild_from_indexes(root, read_limit)
    return (
        f"history.sqlite was {problem}: rebuilt from {report.files} WARC files "
        f"({report.runs} runs, {report.captures} captures)"
    )


def unheld_captures(
    locations: Iterable[tuple[str, int, str, int, int]], root: Path, check_index: bool = True
) -> list[Unheld]:
    """Captures the history lists (``capture_locations``) that no WARC file holds (and,
    with ``check_index``, that no CDXJ line points at)."""
    sizes: dict[str, int] = {}
    pointers: set[tuple[str, int]] = set()
    for layout in OutputLayout.find(root):
        sizes.update((p.name, p.stat().st_size) for p in layout.warcs())
        if check_index:
            pointers |= cdxj_pointers(layout)[0]
    unheld = []
    for url, run_id, filename, offset, length in locations:
        if filename not in sizes:
            reason = "file missing"
        elif offset + length > sizes[filename]:
            reason = "file cut short"
        elif check_index and (filename, offset) not in pointers:
            reason = "not in the index"
        else:
            continue
        unheld.append(Unheld(url, run_id, filename, offset, reason))
    return unheld


def reconcile_with_warcs(root: Path, read_limit: int) -> Reconciled:
    """Make the history of ``root`` claim nothing its WARCs do not hold (before a run);
    a history rebuilt reads at most ``read_limit`` bytes of a page (DOWNLOAD_MAXSIZE)."""
    done = Reconciled()
    problem = history_problem(root)
    if problem is not None:
        done.rebuilt = rebuild_history(root, problem, read_limit)
        logger.warning("%s", done.rebuilt)
    if not OutputLayout(root).history.exists():
        return done
    with History.open(root) as history:
        # The index is checked at the end of the run, which indexes what it lacks.
        unheld = unheld_captures(history.capture_locations(), root, check_index=False)
        for name in sorted({u.filename for u in unheld if u.reason == "file cut short"}):
            for layout in OutputLayout.find(root):
                if (layout.archive / name).exists():
                    repair = repair_truncated_file(layout.archive / name)
                    done.repaired.append(repair.describe())
                    logger.warning("damaged WARC: %s", repair.describe())
        unheld = unheld_captures(history.capture_locations(), root, check_index=False)
        for lost in unheld:
            history.forget_capture(lost.filename, lost.offset)
        history.commit()
        done.forgotten = unheld
    if unheld:
        files = sorted({u.filename for u in unheld})
        logger.warning(
            "%d captures the history listed are in no WARC (%s): forgotten, fetched again",
            len(unheld),
            ", ".join(files[:3]) + (" ..." if len(files) > 3 else ""),
        )
    if unheld or done.repaired:
        for layout in OutputLayout.find(root):
            if layout.archive.is_dir():
                write_cdxj(layout, rebuild=True)
    return done
