"""Exact and near duplicates: annotated on the records, never dropped (SimHash, Hamming).

The groups are computed from two numbers per record (its text's exact-group number and
its SimHash) held in numpy arrays (:func:`group_duplicates`), and each record's ``dup``
field is made as the records stream by in their final order (:class:`Annotator`): a
corpus of any size is annotated with a few machine words per record in memory, not its
ids and hashes as Python strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from crawler.corpus.text import hamming

NEAR_DUP_DISTANCE = 3  # SimHash bits; 4 blocks of 16 bits make this exact (pigeonhole)

# ---------------------------------------------------------------- groups


@dataclass(frozen=True)
class DuplicateGroups:
    """Per record (in final order): the size, first and last member of its exact group
    and of its near-duplicate cluster. A record in no group is a group of one: itself."""

    exact_size: np.ndarray
    exact_first: np.ndarray
    exact_last: np.ndarray
    near_size: np.ndarray
    near_first: np.ndarray
    near_last: np.ndarray


def _members(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(size, first, last) of each record's group; label -1: no group (a group of one)."""
    n = len(labels)
    index = np.arange(n, dtype=np.int64)
    size, first, last = np.ones(n, np.int64), index.copy(), index.copy()
    grouped = labels >= 0
    if grouped.any():
        members, label = index[grouped], labels[grouped]
        count = np.bincount(label)
        low = np.full(len(count), n, np.int64)
        high = np.full(len(count), -1, np.int64)
        np.minimum.at(low, label, members)
        np.maximum.at(high, label, members)
        size[grouped], first[grouped], last[grouped] = count[label], low[label], high[label]
    return size, first, last


def _clusters(values: np.ndarray, max_distance: int) -> np.ndarray:
    """Cluster number of each distinct SimHash: union-find over the pairs within
    ``max_distance`` bits, candidates found through ``max_distance + 1`` bit blocks (two
    such hashes agree on one block at least)."""
    m = len(values)
    parent = list(range(m))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    if max_distance > 0 and m > 1:
        hashes = values.tolist()
        blocks = max_distance + 1
        width = 64 // blocks
        for b in range(blocks):
            shift = b * width
            mask = (1 << width) - 1 if b < blocks - 1 else (1 << (64 - shift)) - 1
            keys = (values >> np.uint64(shift)) & np.uint64(mask)
            order = np.argsort(keys, kind="stable")
            ordered = keys[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            ends = np.r_[starts[1:], m]
            shared = ends - starts > 1  # buckets of one value have no pair to compare
            for start, end in zip(starts[shared].tolist(), ends[shared].tolist(), strict=True):
                members = order[start:end].tolist()
                for a_i, a in enumerate(members):
                    for c in members[a_i + 1 :]:
                        if find(a) != find(c) and hamming(hashes[a], hashes[c]) <= max_distance:
                            parent[find(a)] = find(c)
    return np.fromiter((find(j) for j in range(m)), np.int64, m)


def group_duplicates(
    text_groups: np.ndarray, simhashes: np.ndarray, max_distance: int = NEAR_DUP_DISTANCE
) -> DuplicateGroups:
    """Exact groups and near-duplicate clusters of records in their final order.

    ``text_groups``: per record, a number shared by the records with the same text
    SHA-256 (any numbering), -1 for an empty text (never grouped); ``simhashes``: per
    record, its SimHash as uint64 (ignored for empty texts). A near cluster holds every
    record whose SimHash is within ``max_distance`` bits of another member's.
    """
    text_groups = np.asarray(text_groups, np.int64)
    has_text = text_groups >= 0
    values, inverse = np.unique(np.asarray(simhashes, np.uint64)[has_text], return_inverse=True)
    clusters = np.full(len(text_groups), -1, np.int64)
    clusters[has_text] = _clusters(values, max_distance)[inverse.reshape(-1)]
    return DuplicateGroups(*_members(text_groups), *_members(clusters))


class Annotator:
    """Each record's ``dup`` field, asked in final order: the ids of the groups' first
    members are remembered only while their group still has members to come."""

    def __init__(self, groups: DuplicateGroups) -> None:
        self.groups = groups
        self._first_ids: dict[tuple[str, int], str] = {}

    def _first_id(self, kind: str, i: int, record_id: str, first: int, last: int) -> str:
        key = (kind, first)
        if first == i:
            self._first_ids[key] = record_id
        found = self._first_ids[key]
        if last == i:
            del self._first_ids[key]
        return found

    def __call__(self, i: int, record_id: str, text_sha256: str | None) -> dict[str, Any]:
        """The ``dup`` field of record ``i`` (ids and hashes as written in the record)."""
        g = self.groups
        exact, near = int(g.exact_size[i]), int(g.near_size[i])
        exact_first, near_first = int(g.exact_first[i]), int(g.near_first[i])
        exact_id = near_id = None
        if exact > 1:
            exact_id = self._first_id("exact", i, record_id, exact_first, int(g.exact_last[i]))
        if near > 1:
            near_id = self._first_id("near", i, record_id, near_first, int(g.near_last[i]))
        return {
            "exact_group": text_sha256 if exact > 1 else None,
            "exact_group_size": exact,
            "exact_canonical_id": exact_id,
            "near_cluster": near_id,
            "near_cluster_size": near,
            "is_canonical": not (
                (exact > 1 and exact_first != i) or (near > 1 and near_first != i)
            ),
        }


# ---------------------------------------------------------------- helpers


def annotate_duplicates(
    records: list[dict[str, Any]], max_distance: int = NEAR_DUP_DISTANCE
) -> None:
    """Fill ``dup`` in place: exact groups (same text sha256) and SimHash clusters.

    Records must already be in their final order: the first member of a group is its
    canonical record. Empty texts are never grouped.
    """
    items = [
        (r["id"], r["hashes"]["text_sha256"] if r["text"] else None, r["hashes"]["simhash"])
        for r in records
    ]
    for r, dup in zip(records, duplicate_annotations(items, max_distance), strict=True):
        r["dup"] = dup


def duplicate_annotations(
    items: list[tuple[str, str | None, str]], max_distance: int = NEAR_DUP_DISTANCE
) -> Iterator[dict[str, Any]]:
    """The ``dup`` field of each record, in turn, from ``(id, text sha256 or None when
    the text is empty, simhash hex)`` in the records' final order (see
    :func:`annotate_duplicates`)."""
    numbers: dict[str, int] = {}
    text_groups = np.fromiter(
        (-1 if sha is None else numbers.setdefault(sha, len(numbers)) for _, sha, _ in items),
        np.int64,
        len(items),
    )
    simhashes = np.fromiter(
        (0 if sha is None else int(simhash, 16) for _, sha, simhash in items),
        np.uint64,
        len(items),
    )
    annotate = Annotator(group_duplicates(text_groups, simhashes, max_distance))
    return (annotate(i, rid, sha) for i, (rid, sha, _) in enumerate(items))
