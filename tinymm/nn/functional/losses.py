"""Loss functions with PyTorch's semantics.

``cross_entropy`` is one fused Function over ``tinymm.kernels.softmax``: log-softmax and the
negative log-likelihood in one pass, saving only the per-row log-sum-exp (never the log-probs).
``binary_cross_entropy_with_logits`` is one Function using the overflow-free form
``(1 − t)·x + lw·softplus(−x)`` with ``lw = 1 + (pos_weight − 1)·t``.
"""
from __future__ import annotations

import numpy as np

from tinymm.autograd import Function
from tinymm import ops as O
from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what the fused kernels take


def _check_reduction(name, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


# ----------------------------------------------------------------------------- cross-entropy


class TargetIndexError(IndexError, ValueError):
    """A class-index target outside [0, C) that is not ``ignore_index`` (PyTorch raises
    IndexError on the CPU; catchable as ValueError too)."""


class CrossEntropyFn(Function):
    """Fused softmax cross-entropy on (rows, C) logits; see ``cross_entropy`` for the contract.

    Trusts its inputs (``cross_entropy`` checked them): C-contiguous float32/float64 logits,
    int64 class indices (each in [0, C) or ``ignore_index``) or probabilities of logits' dtype,
    ``weight`` (C,) of logits' dtype or None. Saves the logits, targets, weight and the per-row
    log-sum-exp; never the log-probabilities.
    """

    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, label_smoothing, reduction, out_shape):
        from tinymm.kernels import softmax as K

        loss, lse = K.cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing)
        if reduction == "mean" and target.dtype.kind == "i":
            # PyTorch divides by the total weight of the non-ignored targets.
            valid = target != ignore_index
            if weight is None:
                denom = logits.dtype.type(valid.sum())
            else:
                denom = (weight[xp_of(target).where(valid, target, 0)] * valid).sum(dtype=logits.dtype)
        elif reduction == "mean":
            denom = logits.dtype.type(target.shape[0])
        else:
            denom = None
        ctx.save_for_backward(logits, target, lse, weight)
        ctx.meta = (ignore_index, label_smoothing, reduction, denom, out_shape)
        if reduction == "none":
            return loss.reshape(out_shape)
        total = loss.sum()
        return (total / denom).astype(logits.dtype) if reduction == "mean" else total

    @staticmethod
    def backward(ctx, g):
        from tinymm.kernels import softmax as K

        logits, target, lse, weight = ctx.saved_arrays
        ignore_index, label_smoothing, reduction, denom, _ = ctx.meta
        xp = xp_of(logits)
        n = logits.shape[0]
        if reduction == "none":
            grad_rows = xp.ascontiguousarray(g.reshape(n))
        else:
            scale = g / denom if reduction == "mean" else g  # a 0-d array (on the GPU for CuPy)
            grad_rows = (xp.ones(n, dtype=logits.dtype) * scale).astype(logits.dtype, copy=False)
        d = K.cross_entropy_backward(logits, target, lse, grad_rows, weight, ignore_index, label_smoothing)
        return d, None, None


def _classes_last(x: Tensor):
    """(N, C, d1, ...) → (N·d1·..., C), PyTorch's class-dim-1 layout flattened to rows."""
    if x.ndim == 2:
        return x
    perm = (0,) + tuple(range(2, x.ndim)) + (1,)
    return O.reshape(O.permute(x, perm), -1, x.shape[1])


def cross_entropy(
    input, target, weight=None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0
):
    """PyTorch's ``F.cross_entropy``: ``input`` (N, C) or (N, C, d1, ...) logits (or (C,));
    ``target`` class indices (N,) / (N, d1, ...) or class probabilities shaped like ``input``.
    ``weight`` (C,) rescales classes; ``ignore_index`` rows count nowhere (index targets);
    ``label_smoothing`` mixes the target with the uniform distribution.

    Everything is checked here, once (shapes, dtypes, devices, every class index); the
    Function and the kernels trust it.
    """
    _check_reduction("cross_entropy", reduction)
    x = O.as_tensor(input, "cross_entropy")
    t = target if isinstance(target, Tensor) else Tensor(np.asarray(target))
    if x.dtype not in _KERNEL_DTYPES:
        raise TypeError(f"cross_entropy: input has dtype {x.dtype}, expected float32 or float64 logits")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"cross_entropy: ignore_index must be an int, got {type(ignore_index).__name__}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float, np.integer, np.floating)):
        raise TypeError(f"cross_entropy: label_smoothing must be a number, got {type(label_smoothing).__name__}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if x.ndim == 1:  # a single sample (C,)
        x = O.unsqueeze(x, 0)
        t = Tensor._wrap(t.data[None])
        squeeze_out = True
    else:
        squeeze_out = False
    if x.ndim < 2:
        raise ValueError(f"cross_entropy: input must be (N, C, ...), got shape {x.shape}")
    c = x.shape[1]
    if c < 1:
        raise ValueError(f"cross_entropy: input has shape {x.shape}, expected at least one class")
    is_index = t.dtype.kind in "iu"
    if is_index:
        want = (x.shape[0],) + x.shape[2:]
        if t.shape != want:
            raise ValueError(f"cross_entropy: target has shape {t.shape}, expected {want} for input of shape {x.shape}")
    elif t.dtype.kind == "f":
        if t.shape != x.shape:
            raise ValueError(f"cross_entropy: probability target has shape {t.shape}, expected {x.shape}")
        if t.dtype != x.dtype:
            raise TypeError(f"cross_entropy: probability target is {t.dtype}, input is {x.dtype}")
    else:
        raise TypeError(f"cross_entropy: target must be integer class indices or float probabilities, got {t.dtype}")
    if type(t.data) is not type(x.data):
        raise ValueError(f"cross_entropy: input is on {x.device}, target on {t.device}")
    w = None
    if weight is not None:
        w = O.as_tensor(weight, "cross_entropy")
        if w.shape != (c,):
            raise ValueError(f"cross_entropy: weight has shape {w.shape}, expected ({c},)")
        if type(w.data) is not type(x.data):
            raise ValueError(f"cross_entropy: input is on {x.device}, weight on {w.device}")
        w = xp_of(x.data).ascontiguousarray(w.data, dtype=x.dtype)
    out_shape = (x.shape[0],) + x.shape[2:]
    rows = _classes_last(x)
    xp = xp_of(x.data)
    if is_index:
        tgt = xp.ascontiguousarray(t.data.reshape(-1), dtype=np.int64)
        if tgt.size:
            from tinymm.kernels import softmax as K

            bad = K.first_invalid_target(tgt, c, int(ignore_index))
            if bad >= 0:
                raise TargetIndexError(
                    f"cross_entropy: target {int(tgt[bad])} (at flat position {bad}) is out of bounds: "
                    f"expected a class index in [0, {c}) or ignore_index ({ignore_index})")
    else:
        tgt = xp.ascontiguousarray(_classes_last(t).data)
    logits = rows if rows.data.flags.c_contiguous else O.clone(rows)
    out = CrossEntropyFn.apply(logits, tgt, w, int(ignore_index), float(label_smoothing), reduction, out_shape)
    if squeeze_out and reduction == "none":
        out = O.reshape(out, ())
    return out


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C) at integer ``target`` (N,)."""
    _check_reduction("nll_loss", reduction)
    x = O.as_tensor(input, "nll_loss")
    t = O.as_tensor(target, "nll_loss")
    if x.ndim != 2:
        raise ValueError(f"nll_loss: input must be (N, C) log-probabilities, got shape {x.shape}")
    if t.dtype.kind not in "iu" or t.shape != (x.shape[0],):
        raise ValueError(f"nll_loss: target must be integer class indices of shape ({x.shape[0]},), got {t.dtype} {t.shape}")
    xp = xp_of(x.data)
    valid = t.data != ignore_index
    safe_t = xp.where(valid, t.data, 0)
    if valid.any() and (int(safe_t.min()) < 0 or int(safe_t.max()) >= x.shape[1]):
        raise IndexError(f"nll_loss: target values must be in [0, {x.shape[1]}) or ignore_index={ignore_index}")
    w = xp.ones(x.shape[1], x.dtype) if weight is None else O.as_tensor(weight).data.astype(x.dtype)
    wt = (w[safe_t] * valid).astype(x.dtype)
    picked = O.getitem(x, (xp.arange(x.shape[0]), safe_t))
    loss = -picked * Tensor._wrap(wt)
    if reduction == "mean":
        return loss.sum() / Tensor._wrap(wt.sum())
    return _reduce(loss, reduction)


# ----------------------------------------------------------------------------- binary


class BCEWithLogitsFn(Function):
    @staticmethod
    def forward(ctx, x, t, pos_weight):
        xp = xp_of(x)
        lw = 1 + (pos_weight - 1) * t if pos_weight is not None else 1
        sp_neg = xp.logaddexp(0, -x).astype(x.dtype, copy=False)  # softplus(−x) = −log σ(x)
        ctx.save_for_backward(x, t, pos_weight, sp_neg)
        return ((1 - t) * x + lw * sp_neg).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, t, pw, sp_neg = ctx.saved_arrays
        xp = xp_of(x)
        pw_ = 1 if pw is None else pw
        sig = xp.exp(-sp_neg).astype(x.dtype, copy=False)  # σ(x)
        lw = 1 + (pw_ - 1) * t
        gx = g * (sig * lw - pw_ * t)
        gt = None
        if ctx.needs_input_grad[1]:
            sp_pos = sp_neg + x  # softplus(x) = softplus(−x) + x
            gt = g * (pw_ * sp_neg - sp_pos)
        gpw = None
        if ctx.needs_input_grad[2]:
            from tinymm.ops._util import unbroadcast

            gpw = unbroadcast(g * t * sp_neg, pw.shape)
        return gx, gt, gpw


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean", pos_weight=None):
    """−[pw·t·log σ(x) + (1 − t)·log(1 − σ(x))]·weight, computed without overflow."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    x = O.as_tensor(input, "binary_cross_entropy_with_logits")
    t = O.as_tensor(target, "binary_cross_entropy_with_logits")
    if t.shape != x.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target has shape {t.shape}, input {x.shape}")
    if t.dtype.kind != "f":
        t = O.cast(t, x.dtype)
    x, t = O.check_pair("binary_cross_entropy_with_logits", x, t)
    pw = None
    if pos_weight is not None:
        pw = O.as_tensor(pos_weight, "binary_cross_entropy_with_logits")
        try:
            np.broadcast_shapes(pw.shape, x.shape)
        except ValueError:
            raise ValueError(f"binary_cross_entropy_with_logits: pos_weight of shape {pw.shape} does not broadcast to {x.shape}") from None
        x, pw = O.check_pair("binary_cross_entropy_with_logits", x, pw)
    loss = BCEWithLogitsFn.apply(x, t, pw)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def mse_loss(input, target, reduction: str = "mean"):
    _check_reduction("mse_loss", reduction)
    x, t = O.operands("mse_loss", O.as_tensor(input), O.as_tensor(target))
    if x.shape != t.shape:
        raise ValueError(f"mse_loss: input has shape {x.shape}, target {t.shape}")
    d = x - t
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction: str = "mean"):
    _check_reduction("l1_loss", reduction)
    x, t = O.operands("l1_loss", O.as_tensor(input), O.as_tensor(target))
    if x.shape != t.shape:
        raise ValueError(f"l1_loss: input has shape {x.shape}, target {t.shape}")
    return _reduce((x - t).abs(), reduction)
