"""Replaying an output folder in pywb, which lives in its own virtual environment.

pywb pins its own warcio, gevent and redis versions, so it is never imported here:
we find its ``wayback`` executable (``$PYWB_WAYBACK``, ``.venv-pywb/bin/wayback`` in the
repository, or ``wayback`` on PATH) and run it in the output folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from crawler.exitcodes import EXIT_FAILED, EXIT_USAGE, UsageError, UserError
from crawler.layout import OutputLayout

REPO_ROOT = Path(__file__).resolve().parent.parent


def find_wayback() -> str | None:
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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_wayback(root: str | Path, port: int | None = None, timeout: float = 60.0):
    """Start pywb on 127.0.0.1 serving ``root``; returns (process, base URL).

    pywb's own output goes to ``<root>/logs/pywb.log``; if pywb exits before it answers,
    the error says why, in pywb's own last lines.
    """
    wayback = find_wayback()
    if wayback is None:
        raise UserError(
            "pywb not found",
            EXIT_USAGE,
            "python3 -m venv .venv-pywb && .venv-pywb/bin/pip install pywb==2.10.0",
        )
    port = port or free_port()
    log_path = OutputLayout(root).pywb_log
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        [wayback, "-p", str(port), "-b", "127.0.0.1"],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    base = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_bytes()[-2000:].decode("utf-8", "replace").strip()
            last = "\n  ".join(tail.splitlines()[-5:])
            raise UserError(f"pywb exited with code {proc.returncode}:\n  {last}", EXIT_FAILED)
        try:
            with urllib.request.urlopen(base, timeout=2):
                return proc, base
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    proc.wait()
    raise UserError(f"pywb did not answer within {timeout:.0f} s (see {log_path})", EXIT_FAILED)


def check_replayable(root: Path) -> None:
    """A folder pywb can serve: at least one collection with an index."""
    if not root.is_dir():
        raise UsageError(f"{root}: no such folder")
    if not any(layout.cdxj.exists() for layout in OutputLayout.find(root)):
        raise UsageError(
            f"{root}: no collection to replay (no collections/<name>/indexes/index.cdxj)",
            "crawl into this folder first, or give the folder a crawl wrote",
        )


def check_port_free(port: int) -> None:
    with socket.socket() as s:
        # As servers do: a closed connection's TIME_WAIT does not block, a listener does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UsageError(
                f"port {port} is not free ({exc.strerror})", "choose another with --port"
            ) from None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_replay(args: argparse.Namespace) -> int:
    root = Path(args.directory)
    check_replayable(root)
    check_port_free(args.port)
    proc, base = start_wayback(root, args.port)
    names = ", ".join(layout.name for layout in OutputLayout.find(root))
    code = 0
    try:
        # pywb goes when we go: Ctrl-C and SIGTERM (systemd, kill) both stop it, even one
        # that arrives while the line below is being printed.
        signal.signal(signal.SIGTERM, _interrupt)
        print(f"pywb is replaying {root} ({names}) on {base} (Ctrl-C to stop)", flush=True)
        code = proc.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if code:
        raise UserError(f"pywb exited with code {code} (see {root}/logs/pywb.log)", EXIT_FAILED)
    return 0
