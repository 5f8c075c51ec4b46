"""Softmax, log-softmax and cross-entropy in plain NumPy: the specification (see ``__init__``).

Written for reading, not speed. Each function has the same signature as its CPU and CUDA
twins; rows are independent and the arrays are 2-D.
"""
import numpy as np

from .._common import array_module


def logsumexp(x):
    """Row-wise log-sum-exp of ``x`` (M, N) -> (M,), with the row maximum subtracted first."""
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


def softmax_forward(x):
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(y, gy):
    return y * (gy - (gy * y).sum(axis=1, keepdims=True))


def log_softmax_forward(x):
    return x - logsumexp(x)[:, None]


def log_softmax_backward(y, gy):
    return gy - np.exp(y) * gy.sum(axis=1, keepdims=True)


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    """Cross-entropy through explicit log-probabilities. Returns ``(loss (N,), lse (N,))``."""
    n, c = logits.shape
    eps = label_smoothing
    w = np.ones(c, dtype=logits.dtype) if weight is None else weight
    lse = logsumexp(logits)
    neg_logp = lse[:, None] - logits  # (N, C): -log p_ic
    if target.dtype.kind == "f":  # class probabilities
        q = (1 - eps) * target + eps / c
        loss = (w * q * neg_logp).sum(axis=1)
    else:  # class indices
        keep = target != ignore_index
        t = np.where(keep, target, 0)
        nll = w[t] * neg_logp[np.arange(n), t]
        smooth = (w * neg_logp).sum(axis=1) / c
        loss = np.where(keep, (1 - eps) * nll + eps * smooth, 0)
    return loss.astype(logits.dtype), lse.astype(logits.dtype)


def cross_entropy_backward(logits, target, lse, grad_loss, weight, ignore_index, label_smoothing):
    """d(sum_i grad_loss_i * loss_i) / d logits (N, C), the softmax recomputed from ``lse``."""
    n, c = logits.shape
    eps = label_smoothing
    w = np.ones(c, dtype=logits.dtype) if weight is None else weight
    p = np.exp(logits - lse[:, None])
    if target.dtype.kind == "f":
        q = (1 - eps) * target + eps / c
        d = p * (w * q).sum(axis=1, keepdims=True) - w * q
        return (grad_loss[:, None] * d).astype(logits.dtype)
    keep = target != ignore_index
    t = np.where(keep, target, 0)
    onehot = np.zeros_like(logits)
    onehot[np.arange(n), t] = 1
    wt = w[t][:, None]  # (N, 1)
    d = p * ((1 - eps) * wt + eps / c * w.sum()) - (1 - eps) * wt * onehot - eps / c * w
    return np.where(keep[:, None], grad_loss[:, None] * d, 0).astype(logits.dtype)


def loop_constants(logits, weight, label_smoothing):
    """What the fast versions hand their cross-entropy loops: the class weights (ones when
    None), ``keep = 1 - eps`` and ``smooth = eps / C``, in logits' dtype."""
    c = logits.shape[1]
    dt = logits.dtype.type
    w = array_module(logits).ones(c, dtype=logits.dtype) if weight is None else weight
    return w, dt(1.0 - label_smoothing), dt(label_smoothing / c)


def first_invalid_target(target, classes, ignore_index):
    """Index of the first class-index target outside ``[0, classes)`` that is not
    ``ignore_index``; -1 when every target is valid. What callers check before a kernel runs;
    on CuPy arrays (the CUDA version) it synchronises once."""
    bad = (target != ignore_index) & ((target < 0) | (target >= classes))
    return int(array_module(bad).argmax(bad)) if bool(bad.any()) else -1
