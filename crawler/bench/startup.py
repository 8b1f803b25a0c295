"""``bench`` section ``startup``: opening a history of a million captures.

Every command that opens ``history.sqlite`` first checks every row of it and runs
SQLite's ``quick_check`` (``crawler/history/validate.py``): the file is read as hostile.
That cost grows with the archive, not with the run, so a farm crawled weekly for years
pays it at every start. The bench grows a copy of the discovery crawl's history to the
target number of captures (each row copied with a new URL and record id, the values
otherwise those the crawl wrote) and times a process that only opens it, against one
that only imports the same module.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

from crawler.bench.measure import Run, measure
from crawler.children import python_command

STARTUP_BUDGET_S = 5.0
_OPEN = "import sys; from crawler.history.store import History; History.open(sys.argv[1])"
_IMPORT = "import sys; from crawler.history.store import History"


def grown_history(kept: Path, captures: int, folder: Path) -> tuple[Path, int]:
    """A copy of ``kept``'s history with ``captures`` capture rows (doubling copies), and
    the rows it holds, counted."""
    from crawler.history.store import CAPTURE_COLUMNS
    from crawler.layout import HISTORY_NAME

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / HISTORY_NAME
    shutil.copyfile(kept / HISTORY_NAME, path)
    conn = sqlite3.connect(path)
    try:
        copied = CAPTURE_COLUMNS.replace("url,", "url || '#' || ?1,", 1).replace(
            "record_id,", "record_id || '-' || ?1,", 1
        )
        round_ = 0
        while (have := conn.execute("SELECT count(*) FROM captures").fetchone()[0]) < captures:
            round_ += 1
            conn.execute(
                f"INSERT INTO captures ({CAPTURE_COLUMNS}) SELECT {copied} FROM captures "
                f"LIMIT {captures - have}",
                (str(round_),),
            )
            conn.commit()
        have = conn.execute("SELECT count(*) FROM captures").fetchone()[0]
    finally:
        conn.close()
    return path, have


def startup_section(kept: Path, captures: int, folder: Path, log_dir: Path) -> dict[str, Any]:
    """Time opening a history of ``captures`` captures, less the import of its module."""
    path, rows = grown_history(kept, captures, folder)
    opened: Run = measure(python_command("-c", _OPEN, str(path)), log_dir / "startup-open.log")
    imported: Run = measure(python_command("-c", _IMPORT), log_dir / "startup-import.log")
    if opened.exit_code != 0:
        raise RuntimeError(f"opening the grown history failed; see {log_dir}/startup-open.log")
    seconds = round(max(0.0, opened.seconds - imported.seconds), 2)
    return {
        "captures": rows,
        "history_mb": round(path.stat().st_size / 1e6, 1),
        "open_seconds": seconds,
        "budget_s": STARTUP_BUDGET_S,
        "within": seconds <= STARTUP_BUDGET_S,
    }
