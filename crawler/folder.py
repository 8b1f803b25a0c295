"""The output folder as the user handed it over: checked before a run, restored after a
run that fetched nothing.

A scheduled crawl's first mistakes (a wrong path, a dead URL) must not leave a folder
that later runs mistake for a crawl: an output folder is only changed by a run that
captured something. The components write as they go; a run that captured nothing is
undone here by removing exactly what it created, never anything that was there before.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from crawler.exitcodes import UsageError


def check_output_folder(path: str | os.PathLike[str]) -> Path:
    """The output folder, or a :class:`UsageError` before anything is written.

    It may not exist yet (its nearest existing parent must then be a writable folder).
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"output {folder} exists and is not a folder", "choose another --output")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"output {folder}: {existing} is not a folder", "choose another --output")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"output {folder}: {existing} is not writable", "choose another --output")
    return folder


def check_crawl_folder(path: str | os.PathLike[str]) -> Path:
    """A folder a command reads (a crawl's output, a merged folder): it must exist."""
    folder = Path(path)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder", "give the folder a crawl or merge wrote")
    return folder


def check_log_file(path: str | os.PathLike[str] | None) -> Path | None:
    """``--log-file``: a file (new or to append to) in an existing, writable folder; bad
    usage otherwise, said before the crawl starts rather than by Scrapy's logging."""
    if path is None:
        return None
    log = Path(path)
    if log.is_dir():
        raise UsageError(f"--log-file {log} is a folder", "give a file name in it")
    if log.exists() and not log.is_file():
        raise UsageError(f"--log-file {log} is not a regular file")
    folder = log.parent
    if not folder.is_dir():
        raise UsageError(f"--log-file {log}: no such folder {folder}")
    if not os.access(log if log.exists() else folder, os.W_OK):
        raise UsageError(f"--log-file {log} is not writable")
    return log


@dataclass
class FolderSnapshot:
    """What an output folder held before a run (paths only: runs never rewrite old files
    except the history, the indexes and the reports, which a run that captured nothing
    does not write)."""

    root: Path
    existed: bool
    paths: frozenset[str]

    @classmethod
    def take(cls, root: str | os.PathLike[str]) -> FolderSnapshot:
        """The files under ``root`` now (``exists`` False when it is not a folder)."""
        root = Path(root)
        if not root.is_dir():
            return cls(root, False, frozenset())
        paths = set()
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            for name in dirnames + filenames:
                paths.add(os.path.normpath(os.path.join(rel, name)))
        return cls(root, True, frozenset(paths))

    def restore(self) -> None:
        """Remove what appeared since the snapshot (the folder itself if it was not there)."""
        if not self.root.exists():
            return
        if not self.existed:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        for dirpath, dirnames, filenames in os.walk(self.root, topdown=False):
            rel = os.path.relpath(dirpath, self.root)
            for name in filenames:
                if os.path.normpath(os.path.join(rel, name)) not in self.paths:
                    Path(dirpath, name).unlink(missing_ok=True)
            for name in dirnames:
                if os.path.normpath(os.path.join(rel, name)) not in self.paths:
                    shutil.rmtree(Path(dirpath, name), ignore_errors=True)
