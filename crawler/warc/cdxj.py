"""The CDXJ index of a collection: what pywb and cdxj-indexer read to find a capture.

The sorted index lives in ``collections/<name>/indexes/index.cdxj``. Its lines are made
as the writer writes each record (:class:`CaptureIndex`), else by cdxj-indexer reading a
file back; a scheduled run merges the lines of its new files into the index, sorted in
bounded memory (:class:`LineSorter`).
"""

from __future__ import annotations

import heapq
import importlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import IO, Any, TypedDict

import orjson
from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord

from crawler.layout import OutputLayout
from crawler.warc import WarcPointer
from crawler.warc.names import TEXT_DIR

logger = logging.getLogger(__name__)


def indexer_module() -> ModuleType:
    """``cdxj_indexer.main``, imported where lines are made: the commands that only read
    indexes (verify, report) never pay for it.

    It imports pyamf (for AMF POST bodies), whose adapter registry imports setuptools'
    ``pkg_resources`` only to find pyamf's own folder: 0.17 s of every crawl, and a
    DeprecationWarning. While it is imported, ``pkg_resources`` is made unimportable (a
    ``None`` entry in ``sys.modules``), so pyamf takes its own fallback: the same folder.
    """
    if "cdxj_indexer.main" not in sys.modules and "pkg_resources" not in sys.modules:
        sys.modules["pkg_resources"] = None  # type: ignore[assignment]
        try:
            importlib.import_module("cdxj_indexer.main")
        finally:
            del sys.modules["pkg_resources"]
    return importlib.import_module("cdxj_indexer.main")


def parse_cdxj_line(line: str) -> tuple[str, str, dict[str, Any]] | None:
    """(SURT key, timestamp, fields) of a CDXJ line, or None if it is malformed."""
    parts = line.rstrip("\n").split(" ", 2)
    if len(parts) != 3:
        return None
    try:
        fields = orjson.loads(parts[2])
        int(fields["offset"]), int(fields["length"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(fields.get("filename"), str) or not isinstance(fields.get("url"), str):
        return None
    return parts[0], parts[1], fields


def cdxj_pointers(layout: OutputLayout) -> tuple[set[tuple[str, int]], int]:
    """(file, offset) of every CDXJ line, and how many lines are malformed."""
    pointers: set[tuple[str, int]] = set()
    malformed = 0
    if layout.cdxj.exists():
        with open(layout.cdxj, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parsed = parse_cdxj_line(line)
                if parsed is None:
                    malformed += 1
                else:
                    pointers.add((parsed[2]["filename"], int(parsed[2]["offset"])))
    return pointers, malformed


# Index lines sorted in memory at once; a longer index is sorted in runs on disk, then merged.
SORT_RUN_CHARS = 4 << 20


# Temporary files of index lines: any string survives them as it is (lone surrogates too),
# and only "\n" ends a line, as in the lines cdxj-indexer writes.
class TextFileOptions(TypedDict):
    """Keyword arguments of a text file (typed, so ``open(**options)`` is checked)."""

    encoding: str
    errors: str
    newline: str


LINE_FILE: TextFileOptions = {"encoding": "utf-8", "errors": "surrogatepass", "newline": "\n"}


class LineSorter:
    """Sorts any number of text lines in bounded memory, into the order ``sorted`` gives.

    Lines are kept until ``SORT_RUN_CHARS`` of them are held, then sorted and written
    to a temporary file in ``directory`` (a run); :meth:`write_to` merges the runs. An
    index line per capture would otherwise hold the whole collection's index in memory.
    """

    def __init__(self, directory: Path, run_chars: int = SORT_RUN_CHARS) -> None:
        self.directory = directory
        self.run_chars = run_chars
        self._lines: list[str] = []
        self._chars = 0
        self._runs: list[IO[str]] = []

    def add(self, line: str) -> None:
        """Add a line (sorted runs spilled to disk past ``run_chars``)."""
        self._lines.append(line)
        self._chars += len(line)
        if self._chars >= self.run_chars:
            self._spill()

    def _spill(self) -> None:
        self._lines.sort()
        run = tempfile.TemporaryFile("w+", dir=self.directory, prefix="cdxj-run-", **LINE_FILE)
        self._runs.append(run)
        run.writelines(self._lines)
        run.seek(0)
        self._lines, self._chars = [], 0

    def write_to(self, out: IO[str]) -> None:
        """Every line added, in sorted order (equal lines are equal strings: the order of
        ``heapq.merge`` among them cannot show)."""
        self._lines.sort()
        out.writelines(heapq.merge(*self._runs, self._lines))

    def close(self) -> None:
        """Drop the lines held and the runs on disk."""
        for run in self._runs:
            run.close()
        self._runs, self._lines = [], []

    def __enter__(self) -> LineSorter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CLOSED_MARK = "!closed "


class _Located:
    """What cdxj-indexer asks its archive iterator: where the record lies in its file."""

    def __init__(self, pointer: WarcPointer) -> None:
        self.pointer = pointer

    def get_record_offset(self) -> int:
        return self.pointer.offset

    def get_record_length(self) -> int:
        return self.pointer.length


def _plain(text: str) -> bool:
    """Survives serialising and parsing back unchanged: ASCII, no line break, no space at
    either end (a parser strips those)."""
    return text.isascii() and text == text.strip() and "\r" not in text and "\n" not in text


def reads_back_as_built(record: ArcWarcRecord) -> bool:
    """Whether every header of ``record`` reads back from its bytes as it was built, so
    the index line made from the record equals the one made from its bytes."""
    headers = list(record.rec_headers.headers)
    if record.http_headers is not None:
        http = record.http_headers
        headers.extend(http.headers)
        if not (_plain(http.statusline) and _plain(http.protocol or "")):
            return False
    return all(_plain(name) and ":" not in name and _plain(value) for name, value in headers)


class CaptureIndex:
    """CDXJ lines of a crawl's records, made as the writer writes them, so the end of a
    crawl need not read its WARC files back (8% of a crawl's time went there).

    Each line comes from cdxj-indexer's own code, run on the record's bytes as written:
    the same line a re-read would give. A file's lines count only once the writer closed
    the file whole (a ``!closed`` mark follows them); a killed run's files are indexed
    from disk as before. Any failure here only means the files are read back after all.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._indexer = indexer_module().CDXJIndexer(output=None, inputs=[])
        self._fh: io.TextIOWrapper | None = None
        self.failed = False

    def _file(self) -> io.TextIOWrapper:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        return self._fh

    def written(self, record: ArcWarcRecord, data: bytes, pointer: WarcPointer) -> None:
        """Index a record as written."""
        # The indexer's filter reads only the WARC headers: asked of the record as built.
        if self.failed or not self._indexer.filter_record(record):
            return
        try:
            # The indexer's fields (URL, date, status, mime, digest) asked of the record
            # as built, where reading its bytes back would give the same values: parsing
            # each record again cost a fifth of the capture's time. Headers a parse would
            # change (non-ASCII, spaces at the ends, line breaks) take the re-read.
            if not reads_back_as_built(record):
                record = next(iter(ArchiveIterator(io.BytesIO(data), arc2warc=True)))
            self._indexer.curr_filename = pointer.filename
            self._indexer.process_index_entry(
                _Located(pointer), record, pointer.filename, self._file()
            )
        except Exception as exc:  # noqa: BLE001 - the files are indexed from disk instead
            self._fail(exc)

    def closed(self, name: str) -> None:
        """Note in the lines file that ``name`` is closed."""
        if self.failed:
            return
        try:
            self._file().write(CLOSED_MARK + name + "\n")
            self._file().flush()
        except OSError as exc:
            self._fail(exc)

    def finish(self) -> None:
        """The crawl wrote its last record: the lines are on disk for :func:`write_cdxj`."""
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError as exc:
                self._fail(exc)
            self._fh = None

    def _fail(self, exc: BaseException) -> None:
        logger.warning("capture-time index off (%r); the WARCs are indexed from disk", exc)
        self.failed = True


def closed_files(layout: OutputLayout) -> set[str]:
    """The files whose capture-time index lines are whole: their writer closed them."""
    closed: set[str] = set()
    if layout.capture_index.exists():
        with open(layout.capture_index, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(CLOSED_MARK) and line.endswith("\n"):
                    closed.add(line[len(CLOSED_MARK) : -1])
    return closed


def _lines_of(path: Path, names: set[str]) -> Iterator[str]:
    """The whole index lines of ``path`` that point into the WARC files ``names``."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parsed = parse_cdxj_line(line)
            if parsed is not None and line.endswith("\n") and parsed[2]["filename"] in names:
                yield line


def adopt_cdxj_lines(layout: OutputLayout, source: OutputLayout, names: set[str]) -> None:
    """Add ``source``'s index lines of the WARC files ``names``, copied unchanged into
    ``layout``: their offsets hold, so :func:`write_cdxj` need not read them again. Only
    an index written after a file was closed is trusted to cover it whole."""
    if not source.cdxj.exists():
        return
    written = source.cdxj.stat().st_mtime
    trusted = {n for n in names if (source.archive / n).stat().st_mtime <= written}
    if not trusted:
        return
    layout.cdxj.parent.mkdir(parents=True, exist_ok=True)
    with open(layout.cdxj, "a", encoding="utf-8") as out:
        out.writelines(_lines_of(source.cdxj, trusted))


def write_cdxj(
    layout: OutputLayout, rebuild: bool = False, problems: list[str] | None = None
) -> Path:
    """Sorted CDXJ over every WARC of the collection (what pywb and cdxj-indexer read).

    Closed WARC files never change, so a scheduled run only indexes the files that are
    not in the index yet and merges their lines in; ``rebuild`` re-reads every file, and
    so does a damaged index (a malformed line would otherwise hide its record for good).
    Files are indexed one by one: an unreadable one keeps the lines of the records before
    its damage, is noted in ``problems`` (or the log) and the others are indexed all the same.
    Lines go through temporary files (:class:`LineSorter`): memory does not grow with
    the number of captures.
    """
    layout.cdxj.parent.mkdir(parents=True, exist_ok=True)
    # A file whose name is not a plain WARC name (put there by hand: merge refuses them)
    # is left out of the index, as out of the history; `verify` names it. Text WARC files
    # (crawler.corpus.wet) are named text/<file>.
    present = set(layout.index_names())
    indexed: set[str] = set()
    with LineSorter(layout.cdxj.parent) as lines:
        if not rebuild and layout.cdxj.exists():
            with open(layout.cdxj, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    parsed = parse_cdxj_line(line)
                    if parsed is None:
                        logger.warning("%s: malformed line; re-indexing every WARC", layout.cdxj)
                        lines.close()
                        return write_cdxj(layout, rebuild=True, problems=problems)
                    if parsed[2]["filename"] in present:
                        lines.add(line if line.endswith("\n") else line + "\n")
                        indexed.add(parsed[2]["filename"])
        captured = set() if rebuild else closed_files(layout) & (present - indexed)
        if captured:  # closed_files found the file
            for line in _lines_of(layout.capture_index, captured):
                lines.add(line)
        for name in sorted(present - indexed - captured):
            _index_file(layout, name, lines, problems)
        tmp = layout.cdxj.with_suffix(".cdxj.tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            lines.write_to(out)
    os.replace(tmp, layout.cdxj)
    layout.capture_index.unlink(missing_ok=True)
    return layout.cdxj


def _index_file(
    layout: OutputLayout, name: str, lines: LineSorter, problems: list[str] | None
) -> None:
    """One WARC file's index lines (its complete lines only, if it is damaged)."""
    write_cdx_index = indexer_module().write_cdx_index
    with tempfile.TemporaryFile(
        "w+", dir=layout.cdxj.parent, prefix="cdxj-file-", **LINE_FILE
    ) as buffer:
        failure: Exception | None = None
        try:
            options = {"sort": False, "dir_root": str(layout.archive)}
            if name.startswith(TEXT_DIR + "/"):
                options["records"] = "conversion"  # cdxj-indexer leaves them out otherwise
            write_cdx_index(buffer, [str(layout.archive / name)], options)
        except Exception as exc:  # noqa: BLE001 - any damage: keep what was indexed, go on
            failure = exc
        buffer.seek(0)
        done = 0
        for chunk in buffer:
            for line in chunk.splitlines(keepends=True):
                done += 1
                if line.endswith("\n"):
                    lines.add(line)
    if failure is not None:
        message = f"{name}: unreadable after {done} index lines, rest skipped ({failure!r})"
        logger.warning("CDXJ: %s", message)
        if problems is not None:
            problems.append(message)
