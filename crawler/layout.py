"""Every path of an output folder, in one place.

The output folder IS a pywb root: WARCs live in ``collections/<name>/archive/`` and the
sorted CDXJ in ``collections/<name>/indexes/index.cdxj``, so ``wayback`` started in the
folder replays the crawl with no import step, and later crawls of the same farm add to
the same collection (which pywb needs to resolve revisit records); ``archive/text/`` holds
the corpus as WARC conversion records (``extract --warc-text``). Beside it::

    history.sqlite          the crawl history (crawler.history)
    report.json, reports/   the change report of the latest run, and of every run
    report.html             the same as a page, with every run plotted
    summary.json, logs/     what the last `crawl` said, and Scrapy's logs
    pages.jsonl, *.wacz     page list for replay tools, optional one-file package
    corpus/run-NNNNN/       the research corpus written by each run
    .lock                   held while a run writes the folder (crawler.runlock)
    .corpus-new-*/          a corpus `extract` is writing, renamed to corpus/ when whole
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from crawler.warc.names import OPEN_SUFFIX, TEXT_DIR, WARC_SUFFIX, index_name_problem

HISTORY_NAME = "history.sqlite"
REPORT_NAME = "report.json"
LOCK_NAME = ".lock"
# Written into the folders the demo creates: the only folders it will ever delete.
DEMO_MARK = ".autoblog-archive-demo"
# A dataset folder written by `package` (crawler.corpus.dataset).
MANIFEST_TXT = "MANIFEST.sha256"
MANIFEST_JSON = "manifest.json"
CROISSANT_JSON = "croissant.json"  # the dataset in Croissant 1.1 (crawler.corpus.croissant)
# Beside corpus/: what `extract` writes before it becomes corpus/, or the corpus it
# replaced until removed (crawler.corpus.output).
CORPUS_NEW_PREFIX = ".corpus-new-"
CORPUS_OLD_PREFIX = ".corpus-old-"
# The corpus as WARC conversion records (crawler.corpus.wet): archive/text/, its files named
# text/<name> in the CDXJ index (a path relative to archive/, as pywb reads it); beside
# it, while `extract --warc-text` puts a new set in place, the new one and the old one.
TEXT_NEW_PREFIX = ".text-new-"
TEXT_OLD_PREFIX = ".text-old-"
# SQLite's files beside an open database (history.sqlite-wal, ...).
SQLITE_SIDE_SUFFIXES = ("-wal", "-shm", "-journal")


def is_transient(relative: str) -> bool:
    """Whether a path (relative to an output folder, ``/``-separated) exists only while a
    run works or because one was killed: the run lock, a WARC still being written,
    SQLite's side files, a corpus being replaced. Never part of a dataset's manifest."""
    top, _, _ = relative.partition("/")
    name = relative.rsplit("/", 1)[-1]
    return (
        name == LOCK_NAME
        or name.endswith(OPEN_SUFFIX)
        or name.endswith(SQLITE_SIDE_SUFFIXES)
        or top.startswith((CORPUS_NEW_PREFIX, CORPUS_OLD_PREFIX))
    )


class OutputLayout:
    """Paths of one output folder (one farm's crawl history) and one of its collections."""

    def __init__(self, root: str | os.PathLike[str], name: str = "") -> None:
        self.root = Path(root)
        self.name = name

    # -- the pywb collection ----------------------------------------------------------

    @property
    def collection(self) -> Path:
        """The collection's folder."""
        return self.root / "collections" / self.name

    @property
    def archive(self) -> Path:
        """The collection's WARC files' folder."""
        return self.collection / "archive"

    @property
    def cdxj(self) -> Path:
        """The collection's CDXJ index."""
        return self.collection / "indexes" / "index.cdxj"

    @property
    def capture_index(self) -> Path:
        """CDXJ lines made while the WARCs were written, until merged into the index."""
        return self.collection / "indexes" / "captured.cdxj.part"

    @property
    def pywb_config(self) -> Path:
        """pywb's config."""
        return self.root / "config.yaml"

    def warcs(self) -> list[Path]:
        """The closed WARC files, by name."""
        return sorted(self.archive.glob("*" + WARC_SUFFIX))

    @property
    def text_archive(self) -> Path:
        """The corpus as WARC conversion records (crawler.corpus.wet)."""
        return self.archive / TEXT_DIR

    def text_warcs(self) -> list[Path]:
        """The text WARC files; none through a symbolic link (the folder or a file)."""
        if self.text_archive.is_symlink():
            return []
        return sorted(p for p in self.text_archive.glob("*" + WARC_SUFFIX) if not p.is_symlink())

    def index_names(self) -> dict[str, Path]:
        """Each WARC file the CDXJ index may name (``text/<file>`` for text files) and its
        path; not the files whose name is not a plain WARC name (`verify` names them)."""
        names = {p.name: p for p in self.warcs()}
        names.update({f"{TEXT_DIR}/{p.name}": p for p in self.text_warcs()})
        return {name: p for name, p in names.items() if index_name_problem(name) is None}

    def open_warcs(self) -> list[Path]:
        """The WARC files still being written (or left by a crash), by name."""
        return sorted(self.archive.glob("*" + WARC_SUFFIX + OPEN_SUFFIX))

    # -- beside it --------------------------------------------------------------------

    @property
    def history(self) -> Path:
        """The crawl history."""
        return self.root / HISTORY_NAME

    def damaged_history(self, stamp: str) -> Path:
        """Where a damaged history is moved aside."""
        return self.root / f"{HISTORY_NAME}.damaged-{stamp}"

    @property
    def report(self) -> Path:
        """The latest run's change report."""
        return self.root / REPORT_NAME

    @property
    def report_html(self) -> Path:
        """The latest run's report as a page (crawler/history/html_report.py)."""
        return self.root / "report.html"

    def run_report(self, run_id: int) -> Path:
        """The change report of run ``run_id``."""
        return self.root / "reports" / f"run-{run_id:05d}.json"

    @property
    def pages(self) -> Path:
        """The pages' list (URL, title, date) for pywb and the WACZ."""
        return self.root / "pages.jsonl"

    @property
    def wacz(self) -> Path:
        """The WACZ file."""
        return self.root / f"{self.name}.wacz"

    @property
    def summary(self) -> Path:
        """The last run's summary."""
        return self.root / "summary.json"

    @property
    def logs(self) -> Path:
        """The crawl logs' folder."""
        return self.root / "logs"

    def crawl_log(self, started: datetime) -> Path:
        """The log of a crawl started at ``started``."""
        return self.logs / f"crawl-{started.strftime('%Y%m%dT%H%M%SZ')}.log"

    @property
    def corpus(self) -> Path:
        """The research corpus."""
        return self.root / "corpus"

    def run_corpus(self, run_id: int | None) -> Path:
        """The corpus of run ``run_id`` (``run`` without one)."""
        return self.corpus / (f"run-{run_id:05d}" if run_id is not None else "run")

    @property
    def lock(self) -> Path:
        """The run lock."""
        return self.root / LOCK_NAME

    @property
    def demo_mark(self) -> Path:
        """The mark of a folder ``demo`` wrote (the only kind it deletes)."""
        return self.root / DEMO_MARK

    @staticmethod
    def find(root: str | os.PathLike[str]) -> list[OutputLayout]:
        """Every collection below an output folder."""
        base = Path(root) / "collections"
        if not base.is_dir():
            return []
        return [OutputLayout(root, p.name) for p in sorted(base.iterdir()) if p.is_dir()]
