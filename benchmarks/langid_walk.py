"""Proof that the corpus's windowed language-id walk equals py3langid's byte-by-byte walk.

:func:`crawler.corpus.text._windowed_counts` takes the state after each byte to be the one
reached from the root over the last ``depth`` bytes alone. That holds for every text when
the automaton is Aho-Corasick's over the set T of its states' strings (each state's
shortest path from the root, a prefix-closed set): then the walk over any text ends in the
state of L(text), the longest suffix of the text in T, at most ``depth`` bytes long, hence
also the longest in T of the text's last ``depth`` bytes. By induction over the text, it is
enough that every move goes where Aho-Corasick says: from the state of string w on byte b
to the state of L(w + b). This script checks exactly that, for all states and all 256
bytes of the shipped model (27 million moves), and that distinct states have distinct
strings. Run it again when py3langid (its model) changes:

    .venv/bin/python benchmarks/langid_walk.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.corpus.text import _lang_identifier  # noqa: E402

BASE = 257  # byte + 1: strings of up to 7 bytes get distinct integer keys


def main() -> int:
    identifier = _lang_identifier()
    _next_row, nextmove, _output, depth = identifier.tables
    rowbase = np.asarray(identifier._rowbase, dtype=np.int64)
    n_states = len(rowbase)
    # Breadth first: each state's shortest string, as the keys of its suffixes.
    length = np.full(n_states, -1, dtype=np.int64)
    suffix = np.zeros((n_states, depth + 1), dtype=np.int64)  # key of the last m bytes
    length[0], frontier = 0, np.zeros(1, dtype=np.int64)
    while frontier.size:
        parents = np.repeat(frontier, 256)
        letters = np.tile(np.arange(256, dtype=np.int64), frontier.size)
        targets = nextmove[rowbase[parents] + letters].astype(np.int64)
        fresh = length[targets] < 0
        targets, parents, letters = targets[fresh], parents[fresh], letters[fresh]
        targets, first = np.unique(targets, return_index=True)
        parents, letters = parents[first], letters[first]
        length[targets] = length[parents] + 1
        suffix[targets, 1:] = suffix[parents, :-1] * BASE + (letters + 1)[:, None]
        frontier = targets
    if (length < 0).any():
        print(f"{int((length < 0).sum())} states unreachable from the root")
    own = suffix[np.arange(n_states), np.minimum(length, depth)]
    order = np.argsort(own)
    keys = own[order]
    if (np.diff(keys) == 0).any():
        print("two states share a string: not Aho-Corasick")
        return 1
    bad = 0
    for start in range(0, n_states, 2048):
        states = np.arange(start, min(start + 2048, n_states))
        s = np.repeat(states, 256)
        b = np.tile(np.arange(256, dtype=np.int64), states.size)
        expected = np.zeros(s.size, dtype=np.int64)  # the root: no suffix in T
        found = np.zeros(s.size, dtype=bool)
        for j in range(depth + 1, 0, -1):  # longest suffix of w + b first
            usable = ~found & (length[s] >= j - 1)
            candidate = suffix[s, j - 1] * BASE + (b + 1)
            at = np.minimum(np.searchsorted(keys, candidate), keys.size - 1)
            hit = usable & (keys[at] == candidate)
            expected[hit] = order[at[hit]]
            found |= hit
        moved = nextmove[rowbase[s] + b].astype(np.int64)
        bad += int((moved != expected).sum())
    print(f"{n_states} states, depth {depth}, {n_states * 256} moves: {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
