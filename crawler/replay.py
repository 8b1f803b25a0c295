"""Replaying an output folder in pywb, which lives in its own virtual environment.

pywb pins its own warcio, gevent and redis versions, so it is never imported here:
we find its ``wayback`` executable (``$PYWB_WAYBACK``, ``.venv-pywb/bin/wayback`` in the
repository, or ``wayback`` on PATH) and run it in the output folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

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
    """Start pywb on 127.0.0.1 serving ``root``; returns (process, base URL)."""
    wayback = find_wayback()
    if wayback is None:
        raise FileNotFoundError(
            "pywb not found: python3 -m venv .venv-pywb && .venv-pywb/bin/pip install pywb==2.10.0"
        )
    port = port or free_port()
    proc = subprocess.Popen(
        [wayback, "-p", str(port), "-b", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pywb exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base, timeout=2):
                return proc, base
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise TimeoutError("pywb did not start")


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="an output folder written by `crawl`")
    parser.add_argument("--port", type=int, default=8090)


def run_replay(args: argparse.Namespace) -> int:
    proc, base = start_wayback(args.directory, args.port)
    print(f"pywb replaying {args.directory} on {base} (Ctrl-C to stop)")
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return 0
