"""Replaying an output folder in pywb, which lives in its own virtual environment.

pywb pins its own warcio, gevent and redis versions, so it is never imported here:
we find its ``wayback`` executable (``$PYWB_WAYBACK``, ``.venv-pywb/bin/wayback`` in the
repository, or ``wayback`` on PATH) and run it.

An output folder is read from outside, so it is hostile: pywb run in it would load its
``config.yaml`` (with PyYAML's unsafe loader), render Jinja templates from its
``templates/`` and ``collections/<name>/templates/``, read ``metadata.yaml`` and serve its
``static/``. So pywb never runs in it: it runs in a private temporary folder with a
configuration we write, naming only the archive's index files and WARC files, each
checked to be a regular file reached through real folders (no symlink is followed). The
WARC files are named to pywb through a path index (file name to path, exact lookup), so
a CDXJ line naming ``../../elsewhere`` opens nothing. Nothing is written in the archive:
a read-only one replays.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

from crawler.exitcodes import EXIT_FAILED, EXIT_USAGE, UsageError, UserError
from crawler.layout import OutputLayout

REPO_ROOT = Path(__file__).resolve().parent.parent
# What stops `replay` (Ctrl-C, systemd or kill, a closed terminal) stops pywb with it.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# pywb dies at once on SIGTERM; past this it gets SIGKILL, so the port is free within 2 s.
STOP_GRACE = 1.5
START_TIMEOUT = 60.0
TAIL_BYTES = 4000


def find_wayback() -> str | None:
    """The pywb ``wayback`` to run ($PYWB_WAYBACK, .venv-pywb, PATH), or None."""
    candidates = [
        os.environ.get("PYWB_WAYBACK"),
        str(REPO_ROOT / ".venv-pywb" / "bin" / "wayback"),
        shutil.which("wayback"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_port(text: str | int) -> int:
    """``--port`` as a TCP port number, or a one-line usage error before anything starts."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {text}: not a port number (1-65535)")
    return port


def check_port_free(port: int) -> None:
    """Usage error (exit 4) when ``port`` on 127.0.0.1 is taken."""
    with socket.socket() as s:
        # As servers do: a closed connection's TIME_WAIT does not block, a listener does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UsageError(
                f"port {port} is not free ({exc.strerror})", "choose another with --port"
            ) from None


# -- what of an archive pywb may read -----------------------------------------------------


@dataclass
class Collection:
    """A collection pywb may serve: its index and WARC files, all checked regular files."""

    name: str
    index: Path
    warcs: list[Path]


def _is_real(path: Path, kind: int) -> bool:
    """``path`` is a ``kind`` (S_IFDIR, S_IFREG) itself, not a symlink to one."""
    try:
        return stat.S_IFMT(path.lstat().st_mode) == kind
    except OSError:
        return False


def _plain(name: str) -> bool:
    """A name that goes into pywb's configuration, path index and URLs unchanged."""
    # Imported here: `replay` loads nothing heavy before its stop signals are handled.
    from crawler.collection import check_collection_name

    try:
        check_collection_name(name)
        name.encode("utf-8")
    except (UserError, UnicodeEncodeError):
        return False
    return name.isprintable() and "\t" not in name and not name.startswith(("$", "."))


def servable(root: Path) -> tuple[list[Collection], list[Path]]:
    """The collections of ``root`` pywb may serve, and what was skipped (symlinks, odd names).

    Every folder on the way must be a real folder and every file a regular file: a
    symlink planted in an archive would hand pywb a file from anywhere on the machine.
    """
    collections: list[Collection] = []
    skipped: list[Path] = []
    base = root / "collections"
    if not _is_real(base, stat.S_IFDIR):
        return [], [base] if base.is_symlink() else []
    for entry in sorted(base.iterdir()):
        layout = OutputLayout(root, entry.name)
        folders = (layout.collection, layout.archive, layout.cdxj.parent)
        if not _plain(entry.name) or not all(_is_real(f, stat.S_IFDIR) for f in folders):
            skipped.append(entry)
            continue
        if not _is_real(layout.cdxj, stat.S_IFREG):
            if layout.cdxj.is_symlink():
                skipped.append(layout.cdxj)
            continue
        warcs: list[Path] = []
        for warc in layout.warcs():
            (warcs if _plain(warc.name) and _is_real(warc, stat.S_IFREG) else skipped).append(warc)
        collections.append(Collection(entry.name, layout.cdxj, warcs))
    return collections, skipped


def check_replayable(root: Path) -> list[Collection]:
    """A folder pywb can serve: at least one collection with an index."""
    if not root.is_dir():
        raise UsageError(f"{root}: no such folder")
    if any(c in str(root) for c in "\t\n\r"):
        raise UsageError(f"{root!r}: pywb cannot be given a path with tabs or line breaks")
    collections, skipped = servable(root.resolve())
    if skipped:
        print(
            f"replay: skipped {len(skipped)} symlinks or odd entries in the archive "
            f"(the first: {skipped[0]})",
            file=sys.stderr,
        )
    if not collections:
        raise UsageError(
            f"{root}: no collection to replay (no collections/<name>/indexes/index.cdxj)",
            "crawl into this folder first, or give the folder a crawl wrote",
        )
    return collections


def write_private_root(private: Path, collections: list[Collection]) -> Path:
    """pywb's root in ``private``: our ``config.yaml`` and one path index per collection.

    The configuration is JSON (which YAML reads): names and paths from the archive cannot
    add keys to it. The collections root pywb routes with is an empty private folder, so
    there are no auto collections and no per-collection templates, static files or
    metadata: pywb's own templates are the only ones.
    """
    root = private / "collections"
    root.mkdir()
    config: dict[str, object] = {
        "collections_root": str(root),
        "enable_auto_colls": False,
        "framed_replay": False,
        "collections": {},
    }
    for i, collection in enumerate(collections):
        # pywb looks a CDXJ line's file name up exactly (binary search: sorted lines).
        path_index = private / f"paths-{i}.txt"
        lines = sorted(w.name.encode() + b"\t" + os.fsencode(w) + b"\n" for w in collection.warcs)
        path_index.write_bytes(b"".join(lines))
        config["collections"][collection.name] = {  # type: ignore[index]
            "index_paths": str(collection.index),
            "archive_paths": str(path_index),
        }
    path = private / "config.yaml"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


# -- pywb, and what stops it --------------------------------------------------------------


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP noted, never raised: whatever `replay` is doing when one
    arrives (spawning pywb included) finishes, and the wait that follows sees it at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._previous = {sig: signal.signal(sig, self._note) for sig in STOP_SIGNALS}
        return self

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a stop signal; whether one came."""
        if self.received is None:
            select.select([self._read], [], [], seconds)
            with contextlib.suppress(BlockingIOError):
                os.read(self._read, 512)
        return self.received is not None

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._previous_fd)
        os.close(self._read)
        os.close(self._write)


class Wayback:
    """pywb serving an output folder on 127.0.0.1 from a private root, in its own session.

    pywb's output goes to ``log_file`` or to the private folder (never into the archive);
    its last lines are in the error when it dies. ``stop`` ends pywb's whole process group
    and removes the private folder. In a ``with``: started, ready, and stopped at the end.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        port: int | None = None,
        log_file: str | os.PathLike[str] | None = None,
        collections: list[Collection] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}/"
        self.collections = collections
        self.log_file = Path(log_file) if log_file else None
        self.private: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        """Start pywb on the collections."""
        wayback = find_wayback()
        if wayback is None:
            raise UserError(
                "pywb not found",
                EXIT_USAGE,
                "python3 -m venv .venv-pywb && .venv-pywb/bin/pip install pywb==2.10.0",
            )
        collections = self.collections or check_replayable(self.root)
        self.private = Path(tempfile.mkdtemp(prefix="autoblog-replay-"))
        config = write_private_root(self.private, collections)
        log_path = self.log_path
        try:
            log = open(log_path, "ab")
        except OSError as exc:
            raise UsageError(f"--log-file {log_path}: {exc.strerror}") from None
        # pywb reads $PYWB_CONFIG_FILE, else ./config.yaml: both point at ours.
        env = {**os.environ, "PYWB_CONFIG_FILE": str(config)}
        with log:
            self.process = subprocess.Popen(
                [wayback, "-p", str(self.port), "-b", "127.0.0.1"],
                cwd=self.private,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def log_path(self) -> Path:
        """Where pywb's output goes."""
        assert self.private is not None
        return self.log_file or self.private / "pywb.log"

    def last_lines(self, count: int = 5) -> str:
        """pywb's last lines, read from the end of its log (bounded)."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(max(0, fh.seek(0, os.SEEK_END) - TAIL_BYTES))
                tail = fh.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return "\n  ".join(tail.splitlines()[-count:])

    def check_alive(self) -> None:
        """A UserError (exit 2) with pywb's last lines if pywb has exited."""
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            where = f" (log: {self.log_file})" if self.log_file else ""
            raise UserError(
                f"pywb exited with code {code}{where}:\n  {self.last_lines()}", EXIT_FAILED
            )

    def wait_ready(self, stop: StopSignals | None = None, timeout: float = START_TIMEOUT) -> bool:
        """Wait until pywb listens; False if a stop signal came first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                # pywb loads its configuration and collections before it listens.
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                pass
            if stop is not None:
                if stop.wait(0.1):
                    return False
            else:
                time.sleep(0.1)
        raise UserError(f"pywb did not answer within {timeout:.0f} s", EXIT_FAILED)

    def stop(self) -> None:
        """End pywb's process group (SIGTERM, then SIGKILL) and remove the private folder."""
        process, self.process = self.process, None
        if process is not None:
            # Its own session: the process group id is its pid, which stays ours until
            # it is reaped below.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_GRACE)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if self.private is not None:
            shutil.rmtree(self.private, ignore_errors=True)
            self.private = None

    def __enter__(self) -> str:
        try:
            self.spawn()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.base

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_replay(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive replay``: serve the folder in pywb until stopped."""
    port = check_port(args.port)
    with StopSignals() as stop:
        root = Path(args.directory)
        collections = check_replayable(root)
        check_port_free(port)
        server = Wayback(root, port, args.log_file, collections)
        try:
            if stop.received is not None:
                return 0
            server.spawn()
            if not server.wait_ready(stop):
                return 0
            names = ", ".join(c.name for c in collections)
            print(
                f"pywb is replaying {root} ({names}) on {server.base} (Ctrl-C to stop)",
                flush=True,
            )
            while not stop.wait(0.5):
                server.check_alive()
        finally:
            server.stop()
    return 0
