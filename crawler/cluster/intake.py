"""What ``merge`` takes from the workers' folders, read as untrusted input.

A worker's folder comes from another machine (rsync) or another process: it is read, never
written, and never followed. Only real directories and regular files with plain names are
taken (:mod:`crawler.untrusted`); a symbolic link, FIFO, device, or a name with a control
character or separator is refused and named in the merge's report. A worker still
running is told by its lock, tested with a shared ``flock`` on its ``.lock`` file (no file
created, nothing written): the merge holds it until it is done, so no worker starts
meanwhile. A killed worker's ``.open`` files are not repaired in place: their complete
groups are copied into a scratch folder inside the merge's own output
(:func:`crawler.warc.recovery.copy_whole_prefix`). Its history is copied there too before
SQLite opens it, so nothing SQLite does (a WAL replayed, a ``-shm`` created) reaches the
worker's folder.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from crawler.layout import HISTORY_NAME, LOCK_NAME
from crawler.untrusted import Folder, Refused, shown
from crawler.warc.names import OPEN_SUFFIX, WARC_SUFFIX, warc_name_problem
from crawler.warc.reader import first_record

logger = logging.getLogger(__name__)

LOCK_DETAILS_LIMIT = 4096
CORPUS_SHARD = ("part-", ".jsonl.gz")
CDXJ = ("indexes", "index.cdxj")


@dataclass
class Source:
    """A WARC file a worker offers: open, checked, and the name it gets in the merge."""

    worker: Worker
    name: str  # its name in the worker's archive (a recovered file: without ``.open``)
    where: str  # its path, for messages
    fh: BinaryIO
    identity: str  # its first record's WARC-Record-ID: the same file under any name
    target: str = ""  # its name in the merged archive (set by the merge)
    new: bool = True  # False: merged before (a file with its identity is there)
    recovered: Path | None = None  # the whole groups of a ``.open`` file, copied out

    @property
    def fd(self) -> int:
        """The open file's descriptor."""
        return self.fh.fileno()

    @property
    def mtime(self) -> float:
        """The open file's modification time."""
        return os.fstat(self.fh.fileno()).st_mtime

    @property
    def renamed(self) -> bool:
        """Whether the file gets another name in the merged folder."""
        return self.target != self.name


@dataclass
class Worker:
    """One worker's folder, open for reading; its collection, archive and index."""

    root: str
    folder: Folder
    lock: BinaryIO | None = None
    collections: list[str] = field(default_factory=list)  # every one it holds (or --name)
    collection: str = ""  # the one merged
    archive: Folder | None = None
    cdxj: BinaryIO | None = None
    sources: list[Source] = field(default_factory=list)

    def close(self) -> None:
        """Close every file held open, the lock last (released on close)."""
        for source in self.sources:
            source.fh.close()
        for fh in (self.cdxj, self.lock):  # the lock last: released on close
            if fh is not None:
                fh.close()
        if self.archive is not None:
            self.archive.close()
        self.folder.close()

    def open_folder(self, *parts: str) -> Folder | None:
        """The real directory at ``parts`` below the worker's root, or None if it is absent;
        :class:`Refused` for a link, a device, a bad name on the way."""
        here: Folder | None = self.folder
        for part in parts:
            assert here is not None
            below = here.folder(part)
            if here is not self.folder:
                here.close()
            if below is None:
                return None
            here = below
        return here

    def open_file(self, *parts: str) -> BinaryIO | None:
        """The regular file at ``parts`` below the worker's root, or None if it is absent;
        :class:`Refused` for a link, a device, a bad name on the way."""
        folder = self.open_folder(*parts[:-1]) if parts[:-1] else self.folder
        if folder is None:
            return None
        try:
            return folder.open_file(parts[-1])
        except FileNotFoundError:
            return None
        finally:
            if folder is not self.folder:
                folder.close()


def first_record_id(fh: BinaryIO) -> str:
    """The WARC-Record-ID of a file's first record (its ``warcinfo``): what makes two files
    of one name two different files, and one file under two names the same file."""
    record = first_record(fh)
    record_id = record.record_id if record is not None else None
    if not record_id:
        raise ValueError("no WARC record at its start")
    return record_id


class Intake:
    """The worker folders of one merge, opened; what was refused, by name."""

    def __init__(self, scratch: Path, read_limit: int) -> None:
        self.scratch = scratch  # inside the merge's output folder, removed by the caller
        self.read_limit = read_limit  # DOWNLOAD_MAXSIZE: no record of ours is larger
        self.workers: list[Worker] = []
        self.refused: list[str] = []
        self.recovered: list[str] = []

    def refuse(self, what: str, why: str) -> None:
        """Note a worker file refused, with why (the merge prints each)."""
        message = f"{shown(what)}: {why}"
        logger.info("merge refused %s", message)  # the merge prints every refusal
        self.refused.append(message)

    def close(self) -> None:
        """Close every worker folder's files."""
        for worker in self.workers:
            worker.close()
        self.workers = []

    # -- opening the folders -------------------------------------------------------------

    def open_worker(self, root: str, name: str | None) -> Worker | None:
        """The worker at ``root``: its lock tested and held, the collections it holds
        (``name`` only, if given), and if that is one, its archive and index opened; None
        if it has no ``collections`` folder to take (refusals noted)."""
        from crawler.exitcodes import UsageError

        worker = Worker(root, Folder.open(root))
        self.workers.append(worker)
        try:
            worker.lock = _hold_lock(worker)
        except Refused as exc:
            self.refuse(exc.path, exc.why)
        except BlockingIOError:
            raise UsageError(f"{root}: a worker is still running ({_holder(worker)})") from None
        try:
            collections = worker.folder.folder("collections")
        except Refused as exc:
            self.refuse(exc.path, exc.why)
            return None
        if collections is None:
            return None
        with collections:
            for entry in collections.entries():
                if name is not None and entry.name != name:
                    continue
                if entry.kind != "directory":
                    self.refuse(entry.path, f"a {entry.kind}, not a collection folder")
                    continue
                try:
                    collection = collections.folder(entry.name)
                except Refused as exc:
                    self.refuse(exc.path, exc.why)
                    continue
                if collection is not None:
                    collection.close()
                    worker.collections.append(entry.name)
            if len(worker.collections) != 1:
                return worker  # none, or several: the caller refuses the merge
            worker.collection = worker.collections[0]
            try:
                worker.archive = worker.open_folder("collections", worker.collection, "archive")
            except Refused as exc:
                self.refuse(exc.path, exc.why)
            try:
                worker.cdxj = worker.open_file("collections", worker.collection, *CDXJ)
            except Refused as exc:
                self.refuse(exc.path, f"{exc.why} (its files are indexed again)")
        return worker

    # -- the WARC files -------------------------------------------------------------------

    def find_sources(self, worker: Worker) -> None:
        """Every WARC file of the worker's archive, checked and opened; the complete
        groups of each ``.open`` file copied to the scratch folder."""
        if worker.archive is None:
            return
        entries = list(worker.archive.entries())
        closed = {e.name for e in entries}
        for entry in entries:
            if entry.name.endswith(WARC_SUFFIX + OPEN_SUFFIX):
                base = entry.name[: -len(OPEN_SUFFIX)]
                if base in closed:
                    continue  # closed already: the .open is a leftover of nothing
                self._recover(worker, entry.name, base, entry.path)
            elif entry.name.endswith(WARC_SUFFIX):
                self._take(worker, entry.name, entry.path)

    def _open_warc(self, worker: Worker, name: str, where: str) -> BinaryIO | None:
        problem = warc_name_problem(name.removesuffix(OPEN_SUFFIX))
        if problem is not None:
            self.refuse(where, problem)
            return None
        assert worker.archive is not None
        try:
            return worker.archive.open_file(name)
        except Refused as exc:
            self.refuse(exc.path, exc.why)
        except OSError as exc:
            self.refuse(where, f"unreadable ({exc.strerror})")
        return None

    def _take(self, worker: Worker, name: str, where: str) -> None:
        fh = self._open_warc(worker, name, where)
        if fh is None:
            return
        try:
            identity = first_record_id(fh)
        except Exception as exc:  # noqa: BLE001 - any unreadable start: not a WARC to take
            fh.close()
            self.refuse(where, f"not a readable WARC file ({type(exc).__name__})")
            return
        worker.sources.append(Source(worker, name, where, fh, identity))

    def _recover(self, worker: Worker, name: str, base: str, where: str) -> None:
        from crawler.warc.recovery import copy_whole_prefix

        fh = self._open_warc(worker, name, where)
        if fh is None:
            return
        with fh:
            folder = Path(tempfile.mkdtemp(prefix="recovered-", dir=self.scratch))
            try:
                repair = copy_whole_prefix(fh, name, folder / base, self.read_limit)
            except Exception as exc:  # noqa: BLE001 - a file that cannot be cut back: refused
                self.refuse(where, f"unfinished and not recoverable ({type(exc).__name__})")
                return
        if repair.result is None:
            logger.warning("%s: unfinished, no whole capture in it: left out", shown(where))
            return
        self.recovered.append(
            f"{shown(where)}: unfinished, its {repair.kept_records} whole records "
            f"({repair.kept_captures} captures) taken, {repair.cut_bytes} bytes left out"
        )
        recovered = open(repair.result, "rb")  # noqa: SIM115 - closed with the worker
        identity = first_record_id(recovered)
        worker.sources.append(
            Source(worker, base, where, recovered, identity, recovered=repair.result)
        )

    # -- the rest of a worker's folder ----------------------------------------------------

    def open_optional(self, worker: Worker, *parts: str) -> BinaryIO | None:
        """A file the merge can do without (``pages.jsonl``): None if absent or refused."""
        try:
            return worker.open_file(*parts)
        except Refused as exc:
            self.refuse(exc.path, exc.why)
            return None

    def copy_history(self, worker: Worker, number: int) -> Path | None:
        """The worker's history (and its WAL) copied into the scratch folder, or None."""
        target = Path(self.scratch, f"history-{number}", HISTORY_NAME)
        for suffix in ("", "-wal"):
            try:
                fh = worker.open_file(HISTORY_NAME + suffix)
            except Refused as exc:
                self.refuse(exc.path, exc.why)
                return None
            if fh is None:
                if suffix:
                    continue
                return None
            target.parent.mkdir(exist_ok=True)
            with fh, open(target.with_name(HISTORY_NAME + suffix), "xb") as out:
                shutil.copyfileobj(fh, out, 1 << 20)
        return target

    def corpus_shards(self, worker: Worker) -> Iterator[tuple[str, BinaryIO]]:
        """(path for messages, open file) of every shard of the worker's corpus, in the
        order of their paths, as :func:`crawler.corpus.shards.corpus_shards` finds them
        (its walk skips links silently; this one names them)."""
        try:
            corpus = worker.folder.folder("corpus")
        except Refused as exc:
            self.refuse(exc.path, exc.why)
            return
        if corpus is not None:
            yield from self._shards(corpus, 1)

    def _shards(self, folder: Folder, depth: int) -> Iterator[tuple[str, BinaryIO]]:
        """The shards ``corpus_shards`` would read: ``part-*`` here and ``depth`` levels
        of folders below (``corpus/run-NNNNN/part-*``)."""
        with folder:
            for entry in folder.entries():
                if entry.kind == "directory":
                    if not depth:
                        continue
                    try:
                        below = folder.folder(entry.name)
                    except Refused as exc:
                        self.refuse(exc.path, exc.why)
                        continue
                    if below is not None:
                        yield from self._shards(below, depth - 1)
                    continue
                if entry.kind != "file":  # a link (to a file or a folder), a FIFO, ...
                    self.refuse(entry.path, f"a {entry.kind} in the corpus, not read")
                    continue
                if not (
                    entry.name.startswith(CORPUS_SHARD[0]) and entry.name.endswith(CORPUS_SHARD[1])
                ):
                    continue
                try:
                    fh = folder.open_file(entry.name)
                except Refused as exc:
                    self.refuse(exc.path, exc.why)
                    continue
                except OSError:
                    continue
                with fh:
                    yield entry.path, fh


def _hold_lock(worker: Worker) -> BinaryIO | None:
    """The worker's ``.lock`` open with a shared ``flock`` (BlockingIOError: a run holds it);
    None if it has none (no run ever locked it)."""
    try:
        fh = worker.folder.open_file(LOCK_NAME)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        worker.lock = fh  # closed with the worker; read for the message first
        raise
    return fh


def _holder(worker: Worker) -> str:
    """Who holds a worker's lock, as its ``.lock`` says (read through the open file)."""
    import orjson

    if worker.lock is None:
        return "another process"
    worker.lock.seek(0)
    try:
        data = orjson.loads(worker.lock.read(LOCK_DETAILS_LIMIT))
        return f"pid {int(data['pid'])}, command {shown(str(data.get('command', '')))}"
    except (ValueError, TypeError, KeyError):
        return "another process"
