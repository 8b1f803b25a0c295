"""WARC file names: made here, parsed here, checked here, and nowhere else.

The writer names a file ``<prefix>-<YYYYMMDDhhmmssfff>-<serial:05d>-<host>-<pid>.warc.gz``
and adds ``.open`` while it writes it; ``merge`` gives a file whose name is taken
``<name>-<hex>.warc.gz``; the history's rebuild reads the writing process back from a
name when the file's ``warcinfo`` does not say which run wrote it. A name comes from a
folder anyone may have written in: it is parsed by splitting, never with a regex.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

WARC_SUFFIX = ".warc.gz"
OPEN_SUFFIX = ".open"  # a WARC file still being written
# The corpus as WARC conversion records (crawler.corpus.wet) lives in archive/text/; the
# CDXJ index names its files text/<name> (a path relative to archive/, as pywb reads it).
TEXT_DIR = "text"
STAMP_DIGITS = 17  # YYYYMMDDhhmmss + milliseconds
SERIAL_DIGITS = 5
MAX_STEM = 180  # a renamed file's name stays under the 255 bytes a file name may have


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a plain file name the tool takes in, or None.

    A name is written into indexes, manifests and terminal lines, one per line: a newline
    or any other control character in it would forge one of them, a separator would
    point elsewhere. Non-printable characters (``str.isprintable``: control, format,
    line and paragraph separators, undecodable bytes) are refused with them.
    """
    if name in ("", ".", ".."):
        return "not a file name"
    if "/" in name or "\\" in name:
        return "a path separator in its name"
    if not name.isprintable():
        return "a control or non-printable character in its name"
    return None


def warc_name_problem(name: str) -> str | None:
    """Why ``name`` is not the plain name of a closed WARC file, or None."""
    if not name.endswith(WARC_SUFFIX) or name == WARC_SUFFIX:
        return f"not a {WARC_SUFFIX} name"
    return name_problem(name)


def index_name_problem(name: str) -> str | None:
    """Why ``name`` is not the file name of a CDXJ line of ours, or None: a WARC file of
    the archive folder, or ``text/<file>``, one of its text WARC files."""
    if name.startswith(TEXT_DIR + "/"):
        name = name[len(TEXT_DIR) + 1 :]
    return warc_name_problem(name)


def is_open_name(name: str) -> bool:
    """A WARC file still being written (or left by a killed writer)."""
    return name.endswith(WARC_SUFFIX + OPEN_SUFFIX)


def closed_name(name: str) -> str:
    """The name a file has once closed: ``.open`` dropped (corpus pointers, index lines
    name the file as it will stay)."""
    return name[: -len(OPEN_SUFFIX)] if name.endswith(OPEN_SUFFIX) else name


def open_name(name: str) -> str:
    """The name of ``name`` while it is written."""
    return name + OPEN_SUFFIX


def warc_filename(
    prefix: str,
    serial: int,
    when: datetime | None = None,
    host: str | None = None,
    pid: int | None = None,
) -> str:
    """``<prefix>-<YYYYMMDDhhmmssfff>-<serial:05d>-<host>-<pid>.warc.gz``: the writer's name
    for a new file (this machine and process unless told)."""
    when = when or datetime.now(UTC)
    stamp = when.strftime("%Y%m%d%H%M%S") + f"{when.microsecond // 1000:03d}"
    if host is None:
        host = socket.gethostname().split(".")[0] or "localhost"
    pid = os.getpid() if pid is None else pid
    return f"{prefix}-{stamp}-{serial:0{SERIAL_DIGITS}d}-{host}-{pid}{WARC_SUFFIX}"


@dataclass(frozen=True)
class WarcName:
    """A writer's file name read back (:func:`warc_filename`)."""

    prefix: str
    stamp: str
    serial: int
    host: str
    pid: int


def _digits(text: str, size: int | None = None) -> bool:
    return text.isascii() and text.isdigit() and (size is None or len(text) == size)


def parse_warc_filename(name: str) -> WarcName | None:
    """What :func:`warc_filename` put in ``name``, or None for any other name (a file put
    there by hand, a name ``merge`` made). The host may hold dashes: the stamp and the
    serial, fixed widths of digits, mark where it starts."""
    if not name.endswith(WARC_SUFFIX):
        return None
    parts = name[: -len(WARC_SUFFIX)].split("-")
    if len(parts) < 5 or not _digits(parts[-1]) or len(parts[-1]) > 10:
        return None
    # The last stamp-serial pair with a host after it: a prefix may hold one too.
    for at in range(len(parts) - 4, 0, -1):
        if _digits(parts[at], STAMP_DIGITS) and _digits(parts[at + 1], SERIAL_DIGITS):
            host = "-".join(parts[at + 2 : -1])
            if not host:
                return None
            return WarcName(
                "-".join(parts[:at]), parts[at], int(parts[at + 1]), host, int(parts[-1])
            )
    return None


def renamed_warc_name(name: str, identity: str, taken: set[str]) -> str:
    """A free name for a file whose own is taken, made from its first record's id (the
    same file gets the same name in any merge): ``<name>-<12 hex>.warc.gz``, longer hex
    if that is taken too."""
    stem = name[: -len(WARC_SUFFIX)][:MAX_STEM]
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
    for size in range(12, len(digest) + 1, 4):
        candidate = f"{stem}-{digest[:size]}{WARC_SUFFIX}"
        if candidate not in taken and open_name(candidate) not in taken:
            return candidate
    raise ValueError(f"no free name for {name!r}")
