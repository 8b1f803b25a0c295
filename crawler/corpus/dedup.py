"""Exact and near duplicates: annotated on the records, never dropped (SimHash, Hamming)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from crawler.corpus.text import hamming

NEAR_DUP_DISTANCE = 3  # SimHash bits; 4 blocks of 16 bits make this exact (pigeonhole)

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
    """The ``dup`` field of each record, in turn (one at a time: a corpus streams into its
    shards), from ``(id, text sha256 or None when the text is empty, simhash hex)`` in the
    records' final order (see :func:`annotate_duplicates`)."""
    exact: dict[str, list[int]] = defaultdict(list)
    for i, (_, sha, _) in enumerate(items):
        if sha is not None:
            exact[sha].append(i)
    # near duplicates: union-find over distinct simhashes, candidates via 4 x 16-bit blocks
    values: dict[int, list[int]] = defaultdict(list)
    for i, (_, sha, simhash) in enumerate(items):
        if sha is not None:
            values[int(simhash, 16)].append(i)
    distinct = list(values)
    parent = list(range(len(distinct)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    if max_distance > 0:
        blocks = max_distance + 1
        width = 64 // blocks
        for b in range(blocks):
            shift = b * width
            mask = (1 << width) - 1 if b < blocks - 1 else (1 << (64 - shift)) - 1
            buckets: dict[int, list[int]] = defaultdict(list)
            for j, v in enumerate(distinct):
                buckets[(v >> shift) & mask].append(j)
            for members in buckets.values():
                for a_i in range(len(members)):
                    for b_i in range(a_i + 1, len(members)):
                        a, c = members[a_i], members[b_i]
                        if find(a) != find(c) and hamming(distinct[a], distinct[c]) <= max_distance:
                            parent[find(a)] = find(c)
    clusters: dict[int, list[int]] = defaultdict(list)
    for j, v in enumerate(distinct):
        clusters[find(j)].extend(values[v])
    cluster_of: dict[int, list[int]] = {}
    for members in clusters.values():
        members.sort()
        for i in members:
            cluster_of[i] = members
    for i, (_, sha, _) in enumerate(items):
        group = exact.get(sha, []) if sha is not None else []
        near = cluster_of.get(i, [])
        yield {
            "exact_group": sha if len(group) > 1 else None,
            "exact_group_size": len(group) if len(group) > 1 else 1,
            "exact_canonical_id": items[group[0]][0] if len(group) > 1 else None,
            "near_cluster": items[near[0]][0] if len(near) > 1 else None,
            "near_cluster_size": len(near) if len(near) > 1 else 1,
            "is_canonical": not (
                (len(group) > 1 and group[0] != i) or (len(near) > 1 and near[0] != i)
            ),
        }
