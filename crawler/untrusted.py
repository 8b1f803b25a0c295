"""Reading folders and state files the tool did not just write itself, without trusting them.

A worker's folder handed to ``merge``, ``processes/deal.json``, a ``summary.json`` read
back: anyone may have put a symbolic link, a FIFO or a device where a file belongs, or a
name with a newline in it. Here nothing is followed: directories are opened one level at
a time relative to their parent's descriptor with ``O_NOFOLLOW`` (a link swapped in
between a check and an open is refused as well), files are opened the same way and taken
only if ``fstat`` says they are regular files, and what is refused is said by name
(:func:`shown`), never printed raw.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from crawler.warc.names import name_problem

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO swapped in after the check must not wait for a writer.
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
STATE_FILE_LIMIT = 16 << 20  # a state file the tool writes is a few KB


class Refused(Exception):
    """An entry that is not what the tool takes in (a link, a device, a bad name)."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{shown(path)}: {why}")
        self.path = path
        self.why = why


def shown(path: str | os.PathLike[str]) -> str:
    """A path as it may be printed: quoted, every control character escaped."""
    return repr(os.fspath(path))


def kind_of(mode: int) -> str:
    """What a ``st_mode`` is, in the words of a refusal."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


@dataclass(frozen=True)
class Entry:
    """One name in a :class:`Folder`, as ``lstat`` saw it (never followed)."""

    name: str
    kind: str
    path: str  # for messages: the folder's path joined with the name


class Folder:
    """A directory opened without following links, read through its descriptor."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Folder:
        """The folder at ``path`` (the operator's own argument: a link there is theirs)."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return cls(fd, os.fspath(path))

    def close(self) -> None:
        """Close the folder's descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _join(self, name: str) -> str:
        return os.path.join(self.path, name)

    def entries(self) -> Iterator[Entry]:
        """Every name in the folder, sorted, with its kind (links are not followed)."""
        with os.scandir(self.fd) as it:
            names = sorted(e.name for e in it)
        for name in names:
            try:
                mode = os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue
            yield Entry(name, kind_of(mode), self._join(name))

    def check(self, name: str) -> str | None:
        """The kind of ``name`` here (None if absent), links not followed."""
        try:
            return kind_of(os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return None

    def folder(self, name: str) -> Folder | None:
        """The sub-folder ``name``: None if absent, :class:`Refused` if it is anything but a
        real directory with a plain name."""
        self._check_name(name)
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError:
            kind = self.check(name)
            if kind is None:
                return None
            raise Refused(self._join(name), f"a {kind}, not a directory") from None
        return Folder(fd, self._join(name))

    def open_file(self, name: str) -> BinaryIO:
        """The regular file ``name``, open for reading; :class:`Refused` for anything else
        (a link, a FIFO, a device, a directory, a name with a control character)."""
        self._check_name(name)
        kind = self.check(name)
        if kind is None:
            raise FileNotFoundError(self._join(name))
        if kind != "file":  # checked first: a device is never even opened
            raise Refused(self._join(name), f"a {kind}, not a regular file")
        try:
            fd = os.open(name, FILE_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            raise
        except OSError:
            kind = self.check(name) or "missing"
            raise Refused(self._join(name), f"a {kind}, not a regular file") from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise Refused(self._join(name), f"a {kind_of(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def make_folder(self, name: str) -> Folder:
        """The sub-folder ``name``, made if absent; :class:`Refused` if a link or anything
        but a real directory is there (a planted ``qa -> /etc`` is never written through)."""
        self._check_name(name)
        try:
            os.mkdir(name, 0o755, dir_fd=self.fd)
        except FileExistsError:
            pass
        folder = self.folder(name)
        if folder is None:
            raise Refused(self._join(name), "removed while it was being made")
        return folder

    def write_file(self, name: str, chunks: Iterable[bytes]) -> None:
        """``name`` written whole or not at all: a new temporary name here (``O_EXCL``,
        never through a link), renamed over ``name`` once every chunk is written."""
        self._check_name(name)
        tmp = f".{name}.{os.getpid()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o644, dir_fd=self.fd)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=self.fd)
            raise

    def _check_name(self, name: str) -> None:
        problem = name_problem(name)
        if problem is not None:
            raise Refused(self._join(name), problem)


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """The regular file at ``path``, its last component not followed (see :class:`Folder`)."""
    path = Path(path)
    with Folder.open(path.parent) as parent:
        return parent.open_file(path.name)


def read_json_object(path: str | os.PathLike[str], limit: int = STATE_FILE_LIMIT) -> Any:
    """A small JSON state file's top-level object, or None: missing, not a regular file,
    larger than ``limit``, not JSON or not an object are all the same "nothing usable"."""
    try:
        with open_regular(path) as fh:
            data = fh.read(limit + 1)
    except (OSError, Refused):
        return None
    if len(data) > limit:
        return None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
