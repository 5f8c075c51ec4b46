"""Sampling ops: ``multinomial`` and ``bernoulli``, drawn from tinymm's generator
(``tinymm.manual_seed`` makes them repeatable). No gradients: the results are integers
(multinomial) or 0/1 samples (bernoulli).

multinomial without replacement uses the Gumbel-top-k trick: adding independent Gumbel noise
to log p and taking the k largest gives exactly the distribution of drawing k categories one
after another without putting them back, in one vectorised step.
"""
from __future__ import annotations

import numpy as np

from tinymm import backend
from tinymm.ops._util import ShapeError, xp_of
from tinymm.ops.convert import as_tensor
from tinymm.tensor import Tensor


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None):
    """Category indices drawn with probabilities proportional to the rows of ``input``
    ((C,) or (N, C) non-negative weights): (num_samples,) or (N, num_samples) int64."""
    w = as_tensor(input, "multinomial")
    if w.ndim not in (1, 2):
        raise ShapeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape {tuple(w.shape)}")
    if w.dtype.kind not in "fc":
        raise TypeError(f"multinomial: needs floating probabilities, got {w.dtype}")
    k = int(num_samples)
    if k <= 0:
        raise ShapeError(f"multinomial: num_samples must be positive, got {num_samples}")
    xp = xp_of(w._data)
    p = w._data.astype(np.float64).reshape(-1, w.shape[-1])
    if not bool(xp.isfinite(p).all()) or bool((p < 0).any()):
        raise RuntimeError("multinomial: probability tensor contains either inf, nan or element < 0")
    total = p.sum(axis=1, keepdims=True)
    if bool((total <= 0).any()):
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and k > p.shape[1]:
        raise RuntimeError(f"multinomial: cannot sample n_sample={k} > prob_dist.size(-1)={p.shape[1]} samples without replacement")
    if not replacement and bool(((p > 0).sum(axis=1) < k).any()):
        raise RuntimeError("multinomial: invalid multinomial distribution (with replacement=False, not enough non-negative category to sample)")
    rng = backend.rng(w.device, generator)
    if replacement:
        cdf = xp.cumsum(p / total, axis=1)
        cdf[:, -1] = 1.0
        u = rng.random((p.shape[0], k))
        out = xp.stack([xp.searchsorted(cdf[i], u[i], side="right") for i in range(p.shape[0])])
        out = xp.minimum(out, p.shape[1] - 1)
    else:
        with np.errstate(divide="ignore"):
            keys = xp.log(p) - xp.log(-xp.log(rng.random(p.shape)))
        out = xp.argsort(-keys, axis=1, kind="stable")[:, :k]
    out = out.astype(np.int64)
    return Tensor._wrap(out.reshape(k) if w.ndim == 1 else out)


def bernoulli(input, p=None, *, generator=None):
    """0/1 samples with probabilities ``input`` (or the number ``p``), in input's dtype."""
    x = as_tensor(input, "bernoulli")
    if x.dtype.kind not in "fc":
        raise TypeError(f"bernoulli: needs floating probabilities, got {x.dtype}")
    prob = x._data if p is None else p
    if p is None and (bool((x._data < 0).any()) or bool((x._data > 1).any())):
        raise RuntimeError("bernoulli: expected all probabilities in [0, 1]")
    u = backend.rng(x.device, generator).random(x.shape)
    return Tensor._wrap((u < prob).astype(x.dtype))


def poisson(input, generator=None):
    x = as_tensor(input, "poisson")
    return Tensor._wrap(backend.rng(x.device, generator).poisson(x._data).astype(x.dtype))
