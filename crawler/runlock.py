"""One run per output folder: an OS file lock on ``<output>/.lock``.

Two crawls writing the same collection would interleave WARC serials, history rows and
corpus shards. ``filelock`` takes an ``flock`` on the file, which the kernel drops when
the holder dies, even by SIGKILL: a stale ``.lock`` left by a killed crawl never blocks
the next one. The holder writes its pid, host, start time and command into the file so
that a refused run can say who holds the folder.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from crawler.exitcodes import UsageError
from crawler.layout import OutputLayout
from crawler.redact import redacted_command
from crawler.untrusted import read_json_object, shown

HOLDER_LIMIT = 1 << 16


class RunLockedError(RuntimeError):
    """Another process holds the output folder."""

    def __init__(self, output: Path, holder: dict | None) -> None:
        self.output = output
        self.holder = holder
        super().__init__(self.describe())

    def describe(self) -> str:
        """Who holds the lock, as one line."""
        if not self.holder:
            who = "another process (it has not written its details yet)"
        else:
            # The file is read back: a value is printed escaped if it is not plain text.
            pid, host, started, command = (
                _plain(self.holder.get(k)) for k in ("pid", "host", "started", "command")
            )
            who = f"pid {pid} on {host}, started {started}"
            if self.holder.get("command"):
                who += f", command: {command}"
        return (
            f"{self.output} is in use by another autoblog-archive run ({who}). "
            "Two runs on one output folder are refused; wait for it to finish or stop it."
        )


def _plain(value: object) -> str:
    text = str(value)
    return text if text.isprintable() else shown(text)


def read_holder(output: str | os.PathLike[str]) -> dict | None:
    """The details the current holder wrote (or a killed one left), or None."""
    return read_json_object(OutputLayout(output).lock, HOLDER_LIMIT)


class RunLock:
    """Exclusive, non-blocking lock of an output folder; use as a context manager."""

    def __init__(self, output: str | os.PathLike[str], command: str | None = None) -> None:
        self.output = Path(output)
        self.path = OutputLayout(self.output).lock
        self.command = command if command is not None else redacted_command()
        self.info: dict | None = None
        self._lock = FileLock(
            self.path,
            timeout=0,
            thread_local=False,
            on_acquired=self._write_holder,
        )

    def _write_holder(self, fd: int) -> None:
        self.info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": self.command,
        }
        data = json.dumps(self.info).encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)

    @property
    def is_locked(self) -> bool:
        """Whether this process holds the lock."""
        return self._lock.is_locked

    def acquire(self) -> RunLock:
        """Take the lock now or raise :class:`RunLockedError` naming the holder."""
        self.output.mkdir(parents=True, exist_ok=True)
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
            # filelock opens and truncates the path: a link would truncate its target.
            raise UsageError(f"{shown(self.path)} is not a regular file: remove it")
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise RunLockedError(self.output, read_holder(self.output)) from None
        return self

    def release(self) -> None:
        """Release; the holder details are cleared first (a crash leaves them, harmlessly)."""
        if self._lock.is_locked:
            try:
                with open(self.path, "r+b") as fh:
                    fh.truncate(0)
            except OSError:
                pass
            self._lock.release(force=True)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def hold_folder(output: str | os.PathLike[str]) -> RunLock:
    """The run lock of ``output``, taken, or a :class:`UserError` (exit 3) naming who holds
    it: for the commands that write into a folder a crawl may be writing."""
    from crawler.exitcodes import EXIT_LOCKED, UserError

    try:
        return RunLock(output).acquire()
    except RunLockedError as exc:
        raise UserError(exc.describe(), EXIT_LOCKED) from None
