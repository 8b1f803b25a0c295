"""What the farm sends: a response, and the static files every autoblog serves."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .content import Autoblog


@dataclass
class Response:
    """What to send; ``autoblog`` selects the per-autoblog fault settings."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    autoblog: Autoblog | None = None
    # A file the web server serves itself (not PHP): it gets an ETag and answers
    # If-None-Match with 304, as nginx or Apache would.
    static: bool = False


def png_bytes(seed: str, size: int = 8) -> bytes:
    """A real, valid PNG (solid colour derived from ``seed``)."""
    h = zlib.crc32(seed.encode())
    rgb = bytes(((h >> 16) & 255, (h >> 8) & 255, h & 255))

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    raw = b"".join(b"\x00" + rgb * size for _ in range(size))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def svg_bytes(colour: str = "#4a4") -> bytes:
    """A small SVG image (the farm's media)."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
        f'width="15" height="15" viewBox="0 0 15 15"><circle cx="7.5" cy="7.5" r="6" '
        f'fill="{colour}"/></svg>\n'
    ).encode()


RESOURCES = {
    "autoblog.css": (
        b"body{font-family:sans-serif;background:#efefef;color:#333}\n"
        b"section{max-width:70em;margin:1em auto;background:#fff;padding:1em}\n"
        b".clear{clear:both}\n",
        "text/css",
    ),
    "icon-logo.png": (png_bytes("logo", 32), "image/png"),
    "rss.png": (png_bytes("rss", 14), "image/png"),
    "icon-logo.svg": (svg_bytes("#333"), "image/svg+xml"),
    "icon-ok.svg": (svg_bytes("#4a4"), "image/svg+xml"),
    "icon-err.svg": (svg_bytes("#c33"), "image/svg+xml"),
    "icon-mv.svg": (svg_bytes("#fa0"), "image/svg+xml"),
    "icon-generic.svg": (svg_bytes("#36c"), "image/svg+xml"),
    "icon-shaarli.svg": (svg_bytes("#39c"), "image/svg+xml"),
    "icon-microblog.svg": (svg_bytes("#93c"), "image/svg+xml"),
    "icon-youtube.svg": (svg_bytes("#c00"), "image/svg+xml"),
    "icon-twitter.svg": (svg_bytes("#0ae"), "image/svg+xml"),
}
