"""Cross-modal retrieval metrics from a similarity matrix (image <-> text models).

``similarity[i, j]`` scores image ``i`` against text ``j`` (any shape (N_img, N_txt)).

direction
    ``"i2t"``: each image (row) is a query ranking all texts (columns);
    ``"t2i"``: each text (column) is a query ranking all images (rows), i.e. ``similarity.T``;
    ``"both"``: a dict ``{"i2t": ..., "t2i": ...}``.
targets
    The index of the true candidate for each query. By default the matrix is square and the
    true pairs sit on the diagonal (query ``q``'s match is candidate ``q``). For non-square
    matrices (several captions per image, a gallery larger than the query set) pass ``targets``
    for one direction.

Rank (1 = best). Ties are counted *pessimistically*: every other candidate scoring at least as
high as the true one is ranked above it,

    rank_q = 1 + #{ j != t_q : s[q, j] >= s[q, t_q] },

so a constant similarity matrix ranks every true item last and cannot fake a good recall.

recall@k = mean(rank <= k); median rank = median(rank); mean reciprocal rank = mean(1 / rank).
"""
from __future__ import annotations

import numbers

import numpy as np

from ._inputs import as_array

DIRECTIONS = ("i2t", "t2i", "both")


def _check_similarity(similarity) -> np.ndarray:
    sim = as_array(similarity, "similarity")
    if sim.ndim != 2:
        raise ValueError(
            f"similarity must be a 2-d (queries, candidates) matrix, got shape {sim.shape}"
        )
    if sim.dtype.kind not in "biuf":
        raise ValueError(f"similarity must be numeric, got dtype {sim.dtype}")
    if sim.shape[0] == 0 or sim.shape[1] == 0:
        raise ValueError(f"similarity is empty (shape {sim.shape})")
    if sim.dtype.kind == "f" and not np.isfinite(sim).all():
        raise ValueError("similarity contains NaN or infinity")
    return sim


def _oriented(sim: np.ndarray, direction: str) -> np.ndarray:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return sim if direction == "i2t" else sim.T


def _ranks(scores: np.ndarray, targets) -> np.ndarray:
    """1-based pessimistic rank of each query's true candidate; scores is (Q, C)."""
    n_queries, n_candidates = scores.shape
    if targets is None:
        if n_queries != n_candidates:
            raise ValueError(
                f"similarity has shape {scores.shape} (queries, candidates): without targets "
                "it must be square with the true pairs on the diagonal; pass targets= (the "
                "true candidate index of each query) for a non-square matrix"
            )
        targets = np.arange(n_queries)
    else:
        targets = as_array(targets, "targets")
        if targets.ndim != 1 or targets.shape[0] != n_queries:
            raise ValueError(
                f"targets must hold one candidate index per query: expected shape "
                f"({n_queries},), got {targets.shape}"
            )
        if targets.dtype.kind not in "iu":
            raise ValueError(f"targets must be integer indices, got dtype {targets.dtype}")
        if targets.size and (targets.min() < 0 or targets.max() >= n_candidates):
            raise ValueError(
                f"targets must lie in [0, {n_candidates}) (number of candidates), got values "
                f"in [{targets.min()}, {targets.max()}]"
            )
    true_scores = scores[np.arange(n_queries), targets][:, None]
    at_least_as_high = (scores >= true_scores).sum(axis=1)  # includes the true item itself
    return at_least_as_high.astype(np.int64)


def retrieval_ranks(similarity, targets=None, *, direction="i2t"):
    """Rank (1 = first) of the true candidate for every query; see the module docstring.

    Returns an int64 array of shape (n_queries,), or for ``direction="both"`` a dict
    ``{"i2t": ranks, "t2i": ranks}`` (square matrix, diagonal pairs, no targets).
    """
    sim = _check_similarity(similarity)
    if direction == "both":
        if targets is not None:
            raise ValueError(
                "targets index the candidates of one direction; with targets choose "
                "direction='i2t' or 't2i'"
            )
        return {d: _ranks(_oriented(sim, d), None) for d in ("i2t", "t2i")}
    return _ranks(_oriented(sim, direction), targets)


def _per_direction(similarity, targets, direction, reduce):
    ranks = retrieval_ranks(similarity, targets, direction=direction)
    if isinstance(ranks, dict):
        return {d: reduce(r, d) for d, r in ranks.items()}
    return reduce(ranks, direction)


def _n_candidates(similarity_shape, direction: str) -> int:
    return similarity_shape[1] if direction == "i2t" else similarity_shape[0]


def recall_at_k(similarity, k, *, direction="i2t", targets=None):
    """Fraction of queries whose true candidate ranks in the top ``k`` (pessimistic ties).

    ``k`` is an int (result: a float) or a sequence of ints (result: ``{k: recall}``); each
    must be in [1, number of candidates]. ``direction="both"`` returns
    ``{"i2t": ..., "t2i": ...}``.
    """
    sim = _check_similarity(similarity)
    ks = [k] if isinstance(k, numbers.Integral) else list(k)
    for kk in ks:
        if not isinstance(kk, numbers.Integral) or isinstance(kk, bool) or kk < 1:
            raise ValueError(f"k must be a positive integer, got {kk!r}")

    def reduce(ranks, d):
        n_candidates = _n_candidates(sim.shape, d)
        for kk in ks:
            if kk > n_candidates:
                raise ValueError(
                    f"k={kk} is larger than the number of candidates ({n_candidates}) "
                    f"for direction '{d}'"
                )
        values = {int(kk): float(np.mean(ranks <= kk)) for kk in ks}
        return values[int(k)] if isinstance(k, numbers.Integral) else values

    return _per_direction(sim, targets, direction, reduce)


def median_rank(similarity, *, direction="i2t", targets=None):
    """Median rank of the true candidate (1 = perfect); a float (a dict for "both")."""
    return _per_direction(
        similarity, targets, direction, lambda ranks, d: float(np.median(ranks))
    )


def mean_reciprocal_rank(similarity, *, direction="i2t", targets=None):
    """Mean of 1 / rank of the true candidate (1 = perfect); a float (a dict for "both")."""
    return _per_direction(
        similarity, targets, direction, lambda ranks, d: float(np.mean(1.0 / ranks))
    )
