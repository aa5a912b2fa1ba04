"""Betweenness centrality of the interaction graph, fast enough for a 5,000-member course.

networkx computes betweenness one source at a time in pure Python (about two seconds for 500
members). This is the same algorithm (Brandes 2001: breadth-first search from every source,
then dependencies accumulated backwards) run for a batch of sources at once on numpy arrays:
one level of every search is one gather over the adjacency list. The result equals
``networkx.betweenness_centrality(G, normalized=True)`` on an undirected, unweighted graph
(tests check it), and with ``k`` it is estimated from ``k`` sources drawn with a fixed seed,
like networkx's ``k``/``seed`` arguments.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import numpy as np

#: Sources searched together; memory is about 8 * batch * (2 * edges) bytes per level.
BATCH = 32


def betweenness(
    edges: Iterable[tuple[str, str]], *, k: int | None = None, seed: int = 0
) -> dict[str, float]:
    """Normalised betweenness of every node of the undirected graph given by ``edges``.

    Only nodes that appear in an edge are part of the graph. With ``k`` smaller than the
    number of nodes, ``k`` sources are sampled (``random.Random(seed)``) and the sums are
    scaled up by ``n / k``.
    """
    sources_of, targets_of = [], []
    for u, v in edges:
        sources_of.append(u)
        targets_of.append(v)
    if not sources_of:
        return {}
    # Integer ids through one sort of the names, then each undirected pair once.
    nodes, codes = np.unique(np.array(sources_of + targets_of, dtype=str), return_inverse=True)
    m = len(sources_of)
    u, v = codes[:m].astype(np.int64), codes[m:].astype(np.int64)
    keep = u != v
    low, high = np.minimum(u, v)[keep], np.maximum(u, v)[keep]
    n = len(nodes)
    unique = np.unique(low * n + high)
    low, high = unique // n, unique % n
    present = np.zeros(n, dtype=bool)
    present[low] = present[high] = True
    if not present.all():
        # Nodes only seen in self-loops are not part of the graph.
        remap = np.cumsum(present) - 1
        nodes, low, high = nodes[present], remap[low], remap[high]
        n = len(nodes)
    if n < 3:
        return {str(node): 0.0 for node in nodes}
    rows = np.concatenate([low, high])
    cols = np.concatenate([high, low])
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]

    def spread(values: np.ndarray, active: np.ndarray) -> np.ndarray:
        """For every node, the sum of ``values`` over its neighbours (column by column).

        Only edges from ``active`` nodes (rows of ``values`` that are not all zero) are
        gathered: a search level touches a small part of the graph, so this skips most of
        the work of a full sparse product.
        """
        mask = active[cols]
        if not mask.any():
            return np.zeros_like(values)
        r, c = rows[mask], cols[mask]
        first = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        out = np.zeros_like(values)
        out[r[first]] = np.add.reduceat(values[c], first, axis=0)
        return out

    if k is None or k >= n:
        sources = list(range(n))
    else:
        sources = sorted(random.Random(seed).sample(range(n), k))
    # Exact runs (small graphs) in float64 so they match networkx to the last digit; sampled
    # runs are estimates anyway, and float32 halves the memory traffic of every level.
    dtype = np.float64 if len(sources) == n else np.float32
    total = np.zeros(n)
    for first in range(0, len(sources), BATCH):
        chunk = np.array(sources[first : first + BATCH], dtype=np.int64)
        width = np.arange(len(chunk))
        dist = np.full((n, len(chunk)), -1, dtype=np.int32)
        dist[chunk, width] = 0
        sigma = np.zeros((n, len(chunk)), dtype=dtype)
        sigma[chunk, width] = 1.0
        frontier = sigma.copy()
        depth = 0
        while True:  # breadth-first, all sources of the batch in step
            reach = spread(frontier, frontier.any(axis=1))
            new = (dist < 0) & (reach > 0)
            if not new.any():
                break
            depth += 1
            dist[new] = depth
            sigma[new] = reach[new]
            frontier = np.where(new, sigma, dtype(0.0))
        delta = np.zeros_like(sigma)
        for level in range(depth, 0, -1):  # dependencies, deepest level first
            at = dist == level
            share = np.where(at, (1 + delta) / np.where(at, sigma, 1), 0).astype(dtype)
            delta += np.where(dist == level - 1, sigma * spread(share, at.any(axis=1)), 0)
        delta[chunk, width] = 0.0  # a source is not between itself and others
        total += delta.sum(axis=1, dtype=np.float64)
    scale = 1.0 / ((n - 1) * (n - 2))
    if len(sources) < n:
        scale *= n / len(sources)
    return {str(node): float(value) for node, value in zip(nodes, total * scale, strict=True)}
