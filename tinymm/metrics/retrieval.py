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

relevant
    Instead of one true candidate per query, a boolean matrix of the similarity's shape
    (N_img, N_txt): ``relevant[i, j]`` says that image ``i`` and text ``j`` count as a match
    (for ``"t2i"`` it is read transposed, like the similarity). A query is then ranked by its
    best-scoring relevant candidate, ties again counted against it,

        rank_q = 1 + #{ j not relevant to q : s[q, j] >= max_{r relevant to q} s[q, r] },

    which is the formula above when each query has exactly one relevant candidate. The usual
    use: a gallery of captions where several are the same string, so an image's caption can
    be retrieved as any of its copies (:func:`same_string_relevance` builds that matrix and
    :func:`count_duplicates` says how many there are).
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
            f"similarity must be a 2-d (queries, candidates) matrix, got shape {tuple(sim.shape)}"
        )
    if sim.dtype.kind not in "biuf":
        raise ValueError(f"similarity must be numeric, got dtype {sim.dtype}")
    if sim.shape[0] == 0 or sim.shape[1] == 0:
        raise ValueError(f"similarity is empty (shape {tuple(sim.shape)})")
    if sim.dtype.kind == "f" and not np.isfinite(sim).all():
        raise ValueError("similarity contains NaN or infinity")
    return sim


def _oriented(sim: np.ndarray, direction: str) -> np.ndarray:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return sim if direction == "i2t" else sim.T


def _check_relevant(relevant, shape) -> np.ndarray:
    rel = as_array(relevant, "relevant")
    if rel.shape != shape:
        raise ValueError(f"relevant must have the similarity's shape {shape}, got {tuple(rel.shape)}")
    if rel.dtype.kind != "b":
        raise ValueError(f"relevant must be a boolean matrix, got dtype {rel.dtype}")
    return rel


def _ranks_relevant(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Pessimistic rank of each query's best relevant candidate; scores and relevant are (Q, C)."""
    empty = np.flatnonzero(~relevant.any(axis=1))
    if empty.size:
        raise ValueError(f"relevant marks no candidate for query {int(empty[0])} "
                         f"({empty.size} queries have none): every query needs at least one match")
    best = np.where(relevant, scores, -np.inf).max(axis=1)[:, None]
    ahead = ((scores >= best) & ~relevant).sum(axis=1)
    return (1 + ahead).astype(np.int64)


def _ranks(scores: np.ndarray, targets, relevant=None) -> np.ndarray:
    """1-based pessimistic rank of each query's true candidate; scores is (Q, C)."""
    n_queries, n_candidates = scores.shape
    if relevant is not None:
        return _ranks_relevant(scores, relevant)
    if targets is None:
        if n_queries != n_candidates:
            raise ValueError(
                f"similarity has shape {tuple(scores.shape)} (queries, candidates): without targets "
                "it must be square with the true pairs on the diagonal; pass targets= (the "
                "true candidate index of each query) for a non-square matrix"
            )
        targets = np.arange(n_queries)
    else:
        targets = as_array(targets, "targets")
        if targets.ndim != 1 or targets.shape[0] != n_queries:
            raise ValueError(
                f"targets must hold one candidate index per query: expected shape "
                f"({n_queries},), got {tuple(targets.shape)}"
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


def retrieval_ranks(similarity, targets=None, *, direction="i2t", relevant=None):
    """Rank (1 = first) of the true candidate for every query; see the module docstring.

    Returns an int64 array of shape (n_queries,), or for ``direction="both"`` a dict
    ``{"i2t": ranks, "t2i": ranks}`` (square matrix, diagonal pairs, no targets).
    ``relevant`` (a boolean matrix shaped like ``similarity``) replaces ``targets``: a query
    is ranked by its best relevant candidate.
    """
    sim = _check_similarity(similarity)
    if relevant is not None:
        if targets is not None:
            raise ValueError("pass either targets or relevant, not both")
        relevant = _check_relevant(relevant, sim.shape)
    if direction == "both":
        if targets is not None:
            raise ValueError(
                "targets index the candidates of one direction; with targets choose "
                "direction='i2t' or 't2i'"
            )
        return {d: _ranks(_oriented(sim, d), None, None if relevant is None else _oriented(relevant, d))
                for d in ("i2t", "t2i")}
    return _ranks(_oriented(sim, direction), targets, None if relevant is None else _oriented(relevant, direction))


def _per_direction(similarity, targets, direction, reduce, relevant=None):
    ranks = retrieval_ranks(similarity, targets, direction=direction, relevant=relevant)
    if isinstance(ranks, dict):
        return {d: reduce(r, d) for d, r in ranks.items()}
    return reduce(ranks, direction)


def _n_candidates(similarity_shape, direction: str) -> int:
    return similarity_shape[1] if direction == "i2t" else similarity_shape[0]


def recall_at_k(similarity, k, *, direction="i2t", targets=None, relevant=None):
    """Fraction of queries whose true candidate ranks in the top ``k`` (pessimistic ties).

    ``k`` is an int (result: a float) or a sequence of ints (result: ``{k: recall}``); each
    must be in [1, number of candidates]. ``direction="both"`` returns
    ``{"i2t": ..., "t2i": ...}``. With ``relevant`` a query is a hit when any of its relevant
    candidates is in the top ``k``.
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

    return _per_direction(sim, targets, direction, reduce, relevant)


def median_rank(similarity, *, direction="i2t", targets=None, relevant=None):
    """Median rank of the true candidate (1 = perfect); a float (a dict for "both")."""
    return _per_direction(
        similarity, targets, direction, lambda ranks, d: float(np.median(ranks)), relevant
    )


def mean_reciprocal_rank(similarity, *, direction="i2t", targets=None, relevant=None):
    """Mean of 1 / rank of the true candidate (1 = perfect); a float (a dict for "both")."""
    return _per_direction(
        similarity, targets, direction, lambda ranks, d: float(np.mean(1.0 / ranks)), relevant
    )


def same_string_relevance(texts, other=None) -> np.ndarray:
    """Boolean (N, M) matrix ``texts[i] == other[j]`` (``other`` defaults to ``texts``).

    With a gallery of (image, caption) pairs, ``same_string_relevance(captions)`` is the
    ``relevant`` matrix in which an image's caption is found as any caption that is the same
    string, and a caption finds any image whose caption is that string.
    """
    a = [str(t) for t in texts]
    b = a if other is None else [str(t) for t in other]
    ids: dict[str, int] = {}
    ia = np.array([ids.setdefault(t, len(ids)) for t in a], dtype=np.int64)
    ib = np.array([ids.setdefault(t, len(ids)) for t in b], dtype=np.int64)
    return ia[:, None] == ib[None, :]


def count_duplicates(texts) -> dict:
    """How many strings of ``texts`` repeat: ``{"items", "distinct", "duplicated", "groups"}``.

    ``duplicated`` counts the items that equal at least one other item, ``groups`` the
    distinct strings that occur more than once.
    """
    counts: dict[str, int] = {}
    for t in texts:
        counts[str(t)] = counts.get(str(t), 0) + 1
    repeated = [c for c in counts.values() if c > 1]
    return {"items": sum(counts.values()), "distinct": len(counts), "duplicated": sum(repeated),
            "groups": len(repeated)}
