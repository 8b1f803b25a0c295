"""The language model's cache (crawler/corpus/langid_model.py): the same identifier as
py3langid's own loader, read from the cache by the next process, and a cache file that is
not the one written (a symlink, a FIFO, cut, a header or a table out of bounds) refused
and replaced, never trusted."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import orjson
import pytest
from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

from crawler.corpus import langid_model
from crawler.corpus.langid_model import FORMAT, CacheError, load, read_cache

SOURCE = MODEL_DIR / MODEL_FILE
TEXTS = [
    "",
    "Le chat dort sur le tapis, «\xa0tranquille\xa0» ce soir.",
    "Der schnelle braune Fuchs springt über den faulen Hund. " * 40,
    "Быстрая коричневая лиса прыгает через ленивую собаку. 素早い茶色の狐。" * 9,
    "The quick brown fox jumps over the lazy dog.",
    "ok",
]


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache file written by a first load, and that load's model."""
    folder = tmp_path_factory.mktemp("langid-cache")
    load(SOURCE, folder)
    (path,) = folder.glob("langid-*.bin")
    return path


def identifier(model: langid_model.LangidModel) -> LanguageIdentifier:
    args, kwargs = model.identifier_args()
    return LanguageIdentifier(*args, norm_probs=True, **kwargs)


def test_the_cached_model_is_the_shipped_model_and_the_next_load_reads_it(
    cached: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decompression(source: Path) -> None:
        raise AssertionError("the model was decompressed again")

    monkeypatch.setattr(langid_model, "from_source", no_decompression)
    model = load(SOURCE, cached.parent)
    assert not model.ptc.flags.writeable  # mapped from the file, not decompressed
    plain = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ours = identifier(model)
    assert ours.nb_classes == plain.nb_classes
    assert ours.tk_nextmove == plain.tk_nextmove
    assert list(ours.tk_row) == list(plain.tk_row)
    assert ours.tk_output == plain.tk_output
    assert np.array_equal(ours.nb_ptc, plain.nb_ptc)
    for text in TEXTS:
        assert ours.classify(text) == plain.classify(text)
    rowbase = np.asarray(plain._rowbase, dtype=np.int64)
    assert model.depth == langid_model.trie_depth(model.nextmove, rowbase)


def corrupt(cached: Path, tmp_path: Path, change) -> Path:
    """A copy of the cache with ``change(bytearray)`` applied."""
    data = bytearray(cached.read_bytes())
    change(data)
    bad = tmp_path / cached.name
    bad.write_bytes(bytes(data))
    return bad


def header_end(data: bytearray) -> int:
    (length,) = struct.unpack("<I", data[len(FORMAT) : len(FORMAT) + 4])
    return len(FORMAT) + 4 + length


def retitle(data: bytearray, old: bytes, new: bytes) -> None:
    """Change the header's text, keeping its length (the arrays stay where they are)."""
    end = header_end(data)
    at = data.index(old, 0, end)
    assert len(old) == len(new)
    data[at : at + len(old)] = new


def last_move_out_of_the_automaton(data: bytearray) -> None:
    """The last entry of ``next_row`` now points past every row of the automaton."""
    end = header_end(data)
    header = orjson.loads(bytes(data[len(FORMAT) + 4 : end]))
    ((_, _, (count,), offset),) = [a for a in header["arrays"] if a[0] == "next_row"]
    at = -(-end // langid_model.ALIGN) * langid_model.ALIGN + offset + 4 * (count - 1)
    data[at : at + 4] = struct.pack("<i", 1 << 30)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d.__delitem__(slice(len(d) // 2, None)), id="cut in half"),
        pytest.param(lambda d: d.__setitem__(slice(0, 9), b"not-cache"), id="another format"),
        pytest.param(
            lambda d: d.__setitem__(slice(len(FORMAT), len(FORMAT) + 4), b"\xff" * 4),
            id="header length huge",
        ),
        pytest.param(lambda d: retitle(d, b'"depth":', b'"dxpth":'), id="header key missing"),
        pytest.param(lambda d: retitle(d, b'"<u4"', b'"|O8"'), id="object dtype"),
        pytest.param(lambda d: retitle(d, b'"nextmove"', b'"nextmovf"'), id="unknown array"),
        pytest.param(last_move_out_of_the_automaton, id="move out of bounds"),
    ],
)
def test_a_cache_that_is_not_the_one_written_is_refused(
    cached: Path, tmp_path: Path, change
) -> None:
    with pytest.raises(CacheError):
        read_cache(corrupt(cached, tmp_path, change))


def test_a_refused_cache_is_replaced_by_a_sound_one(cached: Path, tmp_path: Path) -> None:
    bad = corrupt(cached, tmp_path, last_move_out_of_the_automaton)
    load(SOURCE, tmp_path)  # decompresses and writes a sound cache over it
    assert bad.read_bytes() == cached.read_bytes()


def test_a_symlink_or_a_fifo_is_never_followed_nor_waited_on(cached: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.bin"
    link.symlink_to(cached)
    with pytest.raises(CacheError, match="cannot open"):
        read_cache(link)
    fifo = tmp_path / "fifo.bin"
    os.mkfifo(fifo)
    with pytest.raises(CacheError, match="regular file"):
        read_cache(fifo)  # returns at once: opened without waiting for a writer
    planted = tmp_path / cached.name
    planted.symlink_to(cached)
    load(SOURCE, tmp_path)
    assert not planted.is_symlink()  # replaced by a file of its own


def test_a_cache_folder_that_cannot_be_written_costs_only_time(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("")
    model = load(SOURCE, blocked)
    assert identifier(model).classify(TEXTS[1])[0] == "fr"
