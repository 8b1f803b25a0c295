"""py3langid's shipped model, decompressed once per machine instead of once per run.

The model ships as an LZMA-compressed ``.npz`` (4.5 MB, 70 MB of arrays): decompressing it
and finding its automaton's depth cost about 1.2 s of CPU in every process that detects a
language (every crawl's extraction fork server, every ``extract``). The first process
writes the arrays, uncompressed, to one file of the user's cache folder
(``$XDG_CACHE_HOME/autoblog-archive``, else ``~/.cache/autoblog-archive``), named after
the SHA-256 of the shipped model; later ones map that file (about 40 ms).

The cache is read like anything else from outside (docs/security.md): never unpickled, never
through a symlink, its size and header bounded, every array's dtype, shape and offset checked
against the file, and the automaton's moves checked to stay within the model. A cache that
fails any check is replaced; a cache folder that cannot be written costs only the time.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
import struct
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

FORMAT = b"autoblog-archive langid model 1\n"
HEADER_MAX = 64 * 1024
FILE_MAX = 1 << 30  # the shipped model's arrays are 110 MB
# name: dtype and number of dimensions (np.save's dtype strings, little-endian only)
ARRAYS = {
    "ptc": ("<f2", 2),
    "pc": ("<f4", 1),
    "nextmove": ("<u4", 1),
    "nextmove_row": ("<u4", 1),
    "out_feat": ("<i4", 1),
    "next_row": ("<i4", 1),
}
ALIGN = 64


class CacheError(ValueError):
    """The cache file is not one this module wrote for this model."""


@dataclass(frozen=True)
class LangidModel:
    """What :class:`py3langid.langid.LanguageIdentifier` is built from, plus the two
    tables of :func:`crawler.corpus.text._windowed_counts` (``next_row``, ``depth``)."""

    ptc: np.ndarray
    pc: np.ndarray
    classes: list[str]
    nextmove: np.ndarray
    nextmove_row: np.ndarray
    out_feat: np.ndarray
    next_row: np.ndarray
    depth: int

    def identifier_args(self) -> tuple[tuple[object, ...], dict[str, object]]:
        """Arguments for ``LanguageIdentifier(*args, **kwargs)``, in the types py3langid's
        own loader gives (stdlib arrays and lists), so the identifier is the same object."""
        nextmove = array("I", self.nextmove.tobytes())
        row = array("I", self.nextmove_row.tobytes())
        args = (self.ptc, self.pc, list(self.classes), nextmove, self.out_feat.tolist())
        return args, {"tk_row": row}


def cache_folder() -> Path:
    """The user's cache folder for this program (XDG's rule)."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "autoblog-archive"


def trie_depth(nextmove: np.ndarray, rowbase: np.ndarray) -> int:
    """The greatest number of steps from the root to a state of the tokenizer's automaton
    (its longest n-gram, in bytes), breadth first; states that share a row of moves are
    expanded once."""
    depth = np.full(len(rowbase), -1, dtype=np.int8)
    depth[0], frontier, level = 0, np.zeros(1, dtype=np.int64), 0
    letters = np.arange(256, dtype=np.int64)
    while frontier.size:
        targets = nextmove[(np.unique(rowbase[frontier])[:, None] + letters).ravel()]
        level += 1
        depth[targets[depth[targets] < 0]] = level
        frontier = np.flatnonzero(depth == level)
    return level - 1


def from_source(source: Path) -> LangidModel:
    """Decompress py3langid's model file (its own loader: no pickle) and derive the tables."""
    from py3langid.modelio import load_model

    ptc, pc, classes, nextmove_a, row_a, out = load_model(source)
    nextmove = np.frombuffer(nextmove_a, dtype=nextmove_a.typecode).astype("<u4", copy=False)
    nextmove_row = np.frombuffer(row_a, dtype=row_a.typecode).astype("<u4")
    rowbase = nextmove_row.astype(np.int32) << 8
    return LangidModel(
        ptc=np.ascontiguousarray(ptc, dtype="<f2"),
        pc=np.ascontiguousarray(pc, dtype="<f4"),
        classes=[str(c) for c in classes],
        nextmove=nextmove,
        nextmove_row=nextmove_row,
        out_feat=np.asarray(out, dtype="<i4"),
        next_row=rowbase[nextmove],
        depth=trie_depth(nextmove, rowbase),
    )


def write_cache(model: LangidModel, path: Path) -> None:
    """Write ``model`` to ``path`` atomically (a temporary file renamed over it)."""
    arrays = {name: getattr(model, name) for name in ARRAYS}
    entries: list[tuple[str, str, list[int], int]] = []
    offset = 0
    for name, value in arrays.items():
        entries.append((name, ARRAYS[name][0], list(value.shape), offset))
        offset += -(-value.nbytes // ALIGN) * ALIGN
    header = orjson.dumps({"classes": model.classes, "depth": model.depth, "arrays": entries})
    start = -(-(len(FORMAT) + 4 + len(header)) // ALIGN) * ALIGN
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".langid-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(FORMAT + struct.pack("<I", len(header)) + header)
            out.write(b"\0" * (start - out.tell()))
            for (_, _, _, at), value in zip(entries, arrays.values(), strict=True):
                out.seek(start + at)
                out.write(np.ascontiguousarray(value).tobytes())
            out.truncate(start + offset)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_cache(path: Path) -> LangidModel:
    """Map a cache file written by :func:`write_cache`; :class:`CacheError` if it is not
    one (a symlink, not a regular file, too big, a bad header, arrays out of the file or
    moves out of the automaton)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise CacheError(f"cannot open: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or not 0 < info.st_size <= FILE_MAX:
            raise CacheError("not a regular file of a plausible size")
        view = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    size = len(view)
    head = len(FORMAT) + 4
    if size < head or view[: len(FORMAT)] != FORMAT:
        raise CacheError("not a langid cache of this format")
    (length,) = struct.unpack("<I", view[len(FORMAT) : head])
    if length > HEADER_MAX or head + length > size:
        raise CacheError("header out of bounds")
    try:
        header = orjson.loads(view[head : head + length])
        start = -(-(head + length) // ALIGN) * ALIGN
        arrays = _arrays(view, header["arrays"], start)
        classes, depth = header["classes"], header["depth"]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CacheError(f"bad header: {exc}") from None
    if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise CacheError("bad class list")
    if not (isinstance(depth, int) and 0 < depth < 64):
        raise CacheError("bad automaton depth")
    model = LangidModel(classes=classes, depth=depth, **arrays)
    _check_bounds(model)
    return model


def _arrays(view: mmap.mmap, entries: list, start: int) -> dict[str, np.ndarray]:
    """The header's arrays, as read-only views of the mapped file, each checked against
    its declared dtype and the file's size."""
    out: dict[str, np.ndarray] = {}
    for name, dtype, shape, offset in entries:
        if name not in ARRAYS or name in out or ARRAYS[name] != (dtype, len(shape)):
            raise ValueError(f"unexpected array {name!r}")
        if not all(isinstance(n, int) and 0 <= n < FILE_MAX for n in (*shape, offset)):
            raise ValueError(f"bad shape or offset for {name}")
        count = int(np.prod(shape, dtype=np.int64))
        end = start + offset + count * np.dtype(dtype).itemsize
        if end > len(view):
            raise ValueError(f"{name} ends past the file")
        out[name] = np.frombuffer(view, dtype=dtype, count=count, offset=start + offset).reshape(
            shape
        )
    if out.keys() != ARRAYS.keys():
        raise ValueError("arrays missing")
    return out


def _check_bounds(model: LangidModel) -> None:
    """Every index the identifier follows stays inside the table it indexes."""
    states, moves = len(model.nextmove_row), len(model.nextmove)
    features, classes = model.ptc.shape
    checks = (
        moves > 0 and moves % 256 == 0 and states > 0,
        classes == len(model.pc) == len(model.classes),
        len(model.out_feat) == states,
        len(model.next_row) == moves,
        int(model.nextmove.max()) < states,
        int(model.nextmove_row.max()) < moves // 256,
        int(model.out_feat.min()) >= -1 and int(model.out_feat.max()) < features,
        int(model.next_row.min()) >= 0 and int(model.next_row.max()) <= moves - 256,
    )
    if not all(checks):
        raise CacheError("tables out of bounds")


def load(source: Path, folder: Path | None = None) -> LangidModel:
    """The model of ``source`` (py3langid's file), from the cache when it holds a sound
    copy, else decompressed and cached for the next process."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    path = (folder or cache_folder()) / f"langid-{digest[:32]}.bin"
    try:
        return read_cache(path)
    except CacheError:
        pass
    model = from_source(source)
    try:
        write_cache(model, path)
    except OSError:
        pass  # a read-only or full cache folder: the next process decompresses again
    return model
