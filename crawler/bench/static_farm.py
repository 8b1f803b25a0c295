"""The bench farm served as pre-rendered files by nginx, so the farm is not what is measured.

The Python sample farm renders every page per request and serves about 3,000 requests/s
on this project's machine: only about twice the fastest crawler, so a crawler's rate was
partly the farm's. Here every URL a crawl of the farm fetched is fetched once more and
written to a folder; nginx (Debian's package, when installed) then serves that folder on
the same port, with the same status, body and Content-Type. The pages hold absolute links
with the farm's port, hence the same port. Without nginx the bench says so and keeps the
Python farm.
"""

from __future__ import annotations

import http.client
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from crawler.samplefarm import stop_process

NGINX = "nginx"
# nginx's try_files looks for "<path>@<query>.<ext>", one extension per Content-Type seen.
_EXT = "t{}"


def nginx_path() -> str | None:
    """Debian's nginx binary (``/usr/sbin`` is not on every user's PATH), or None."""
    return shutil.which(NGINX) or shutil.which(NGINX, path="/usr/sbin:/usr/local/sbin")


def nginx_version() -> str:
    """ "nginx/1.22.1", as ``nginx -v`` says it (on stderr)."""
    binary = nginx_path()
    if binary is None:
        return "none"
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    return (out.stderr or out.stdout).strip().rsplit(": ", 1)[-1]


def file_for(root: Path, target: str, ext: str) -> Path | None:
    """Where the response to ``target`` (path and query, as requested) is stored; None for a
    target nginx would not map back inside ``root`` (a ``..`` or a control character)."""
    parts = urlsplit(target)
    path = unquote(parts.path)
    name = f"{path}@{parts.query}.{ext}"  # "@" always: nginx sees no extension in "/.t0"
    if not path.startswith("/") or ".." in name or any(ord(c) < 32 for c in name):
        return None
    return root / name.lstrip("/")


@dataclass
class Frozen:
    """What :func:`freeze` wrote: answers stored, answers left out, extension -> type."""

    stored: int
    skipped: int
    types: dict[str, str]


def freeze(port: int, targets: Iterable[str], root: Path) -> Frozen:
    """Fetch each target once from the farm on ``port`` and store the 200 answers under
    ``root``; returns counts and the Content-Type of each extension used."""
    types: dict[str, str] = {}
    stored = skipped = 0
    for target in dict.fromkeys(targets):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", target)
        resp = conn.getresponse()
        body = resp.read()
        ctype = resp.getheader("Content-Type") or "application/octet-stream"
        conn.close()
        if resp.status != 200:
            skipped += 1  # nginx answers 404 for what it does not hold
            continue
        ext = types.setdefault(ctype, _EXT.format(len(types)))
        path = file_for(root, target, ext)
        if path is None:
            skipped += 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        stored += 1
    return Frozen(stored, skipped, {ext: ctype for ctype, ext in types.items()})


def nginx_conf(prefix: Path, root: Path, port: int, types: dict[str, str]) -> str:
    """One worker (the other core is the crawler's), no access log, keep-alive on."""
    type_lines = "\n".join(f'    "{ctype}" {ext};' for ext, ctype in sorted(types.items()))
    tries = " ".join(f"$uri@$args.{ext}" for ext in sorted(types)) + " =404"
    # Run as root, nginx's worker would become "nobody", who cannot enter the bench's
    # private (0700) scratch folder: the worker stays the bench's own user.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  types {{
{type_lines}
  }}
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location / {{ try_files {tries}; }}
  }}
}}
"""


class StaticFarm:
    """nginx serving a frozen farm on a given port, started and stopped by the bench."""

    def __init__(self, folder: Path, port: int, types: dict[str, str]) -> None:
        self.folder = folder
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        conf = folder / "nginx.conf"
        conf.write_text(nginx_conf(folder, folder / "root", port, types))
        binary = nginx_path()
        if binary is None:
            raise RuntimeError("nginx is not installed")
        # -e: nginx 1.19.5+ writes its start-up errors here, not to /var/log/nginx.
        self.proc = subprocess.Popen(
            [binary, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")],
            stdin=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                log = (self.folder / "error.log").read_text(errors="replace")[-500:]
                raise RuntimeError(f"nginx exited ({self.proc.returncode}): {log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.05)  # polling the port, not a pause for the test's sake
        self.stop()
        raise RuntimeError("nginx did not answer within 20 s")

    def stop(self) -> None:
        """Stop nginx (its master takes its worker with it)."""
        stop_process(self.proc)

    def __enter__(self) -> StaticFarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_static(folder: Path, port: int, types: dict[str, str]) -> StaticFarm:
    """nginx on ``port`` over ``folder/root`` (filled by :func:`freeze`)."""
    os.makedirs(folder / "root", exist_ok=True)
    return StaticFarm(folder, port, types)
