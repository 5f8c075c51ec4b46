"""Loss functions with PyTorch's semantics.

``cross_entropy`` is one fused Function over ``tinymm.kernels.softmax``: log-softmax and the
negative log-likelihood in one pass, saving only the per-row log-sum-exp (never the log-probs).
``binary_cross_entropy_with_logits`` is one Function using the overflow-free form
``(1 − t)·x + lw·softplus(−x)`` with ``lw = 1 + (pos_weight − 1)·t``.
"""
from __future__ import annotations

import warnings

import numpy as np

from tinymm import backend
from tinymm.autograd import Function
from tinymm import ops as O
from tinymm.ops import DTypeError, ShapeError, check_pair, contiguous
from tinymm.ops._util import DTypeNotImplementedError, torch_dtype_name, xp_of
from tinymm.tensor import Tensor

from tinymm.nn.functional.activations import logsigmoid, softplus
from tinymm.nn.functional.norm import pairwise_distance
from tinymm.nn.functional.half import computes_in_float32

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
        if reduction != "mean":
            return total
        with np.errstate(invalid="ignore", divide="ignore"):  # every target ignored: NaN, silently as PyTorch
            return (total / denom).astype(logits.dtype)

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
            with np.errstate(invalid="ignore", divide="ignore"):  # denom 0: every row ignored, its gradient 0
                scale = g / denom if reduction == "mean" else g  # a 0-d array (on the GPU for CuPy)
            grad_rows = (xp.ones(n, dtype=logits.dtype) * scale).astype(logits.dtype, copy=False)
        d = K.cross_entropy_backward(logits, target, lse, grad_rows, weight, ignore_index, label_smoothing)
        dt = None
        if ctx.needs_input_grad[1]:
            # A probability target t enters as -Σ_c w_c·t'_c·log p_c with t' = (1 − ε)·t + ε/C:
            # d/dt = −(1 − ε)·w·log p per row, scaled by the row's incoming gradient.
            logp = logits - lse.reshape(-1, 1)
            wl = logp if weight is None else logp * weight
            dt = (-(1.0 - label_smoothing) * grad_rows.reshape(-1, 1) * wl).astype(logits.dtype, copy=False)
        return (d if ctx.needs_input_grad[0] else None), dt, None

    @staticmethod
    def backward_graph(ctx, g):
        """The gradients on Tensors. Every case is loss_i = −Σ_c A_ic·log p_ic with p the row's
        softmax: for class indices A = valid_i·w_c·((1 − ε)·onehot_ic + ε/C), a constant; for
        probabilities A = w_c·((1 − ε)·t_ic + ε/C). So d/dlogits = (Σ_c A_ic·p_ic − A_ic)·gᵢ
        (written ΣA·p − A) and d/dt = −(1 − ε)·w·log p·gᵢ, gᵢ the row's incoming gradient."""
        from tinymm.autograd_graph import operand

        logits, target, _, weight = ctx.saved_arrays
        ignore_index, eps, reduction, denom, _ = ctx.meta
        xp = xp_of(logits)
        n, c = logits.shape
        x = operand(ctx, 0, logits)
        w = 1.0 if weight is None else Tensor._wrap(weight.reshape(1, c))
        if target.dtype.kind == "i":
            valid = target != ignore_index
            onehot = xp.zeros((n, c), logits.dtype)
            onehot[xp.arange(n)[valid], target[valid]] = 1 - eps
            a = Tensor._wrap((onehot + eps / c) * valid.reshape(n, 1).astype(logits.dtype)) * w
        else:
            t = operand(ctx, 1, target)
            a = (t * (1 - eps) + eps / c) * w
        if reduction == "none":
            rows_g = g.reshape(n, 1)
        else:
            rows_g = (g / float(denom) if reduction == "mean" else g).reshape(1, 1)
        dx = (a.sum(dim=1, keepdim=True) * x.softmax(dim=-1) - a) * rows_g if ctx.needs_input_grad[0] else None
        dt = None
        if ctx.needs_input_grad[1]:
            dt = x.log_softmax(dim=-1) * w * rows_g * -(1.0 - eps)
        return dx, dt, None


def _classes_last(x: Tensor):
    """(N, C, d1, ...) → (N·d1·..., C), PyTorch's class-dim-1 layout flattened to rows."""
    if x.ndim == 2:
        return x
    perm = (0,) + tuple(range(2, x.ndim)) + (1,)
    return O.reshape(O.permute(x, perm), -1, x.shape[1])


def _check_index_target(fn, t):
    """Class-index targets are int64 or uint8, as in PyTorch (other integer and bool dtypes
    are a RuntimeError there, not silently converted)."""
    if t.dtype.kind in "iub" and t.dtype not in (np.int64, np.uint8):
        raise DTypeError(f"{fn}: expected target dtype to be Long or Byte (int64 or uint8), but got {t.dtype}")


@computes_in_float32  # revd: float16 layers
def cross_entropy(
    input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None, reduction: str = "mean",
    label_smoothing: float = 0.0
):
    """PyTorch's ``F.cross_entropy``: ``input`` (N, C) or (N, C, d1, ...) logits (or (C,));
    ``target`` class indices (N,) / (N, d1, ...) or class probabilities shaped like ``input``.
    ``weight`` (C,) rescales classes; ``ignore_index`` rows count nowhere (index targets);
    ``label_smoothing`` mixes the target with the uniform distribution.

    Everything is checked here, once (shapes, dtypes, devices, every class index); the
    Function and the kernels trust it.
    """
    reduction = legacy_reduction(size_average, reduce, reduction)  # probe3: PyTorch's legacy arguments
    _check_reduction("cross_entropy", reduction)
    x = O.as_tensor(input, "cross_entropy")
    t = target if isinstance(target, Tensor) else Tensor._of(np.asarray(target))
    if x.dtype not in _KERNEL_DTYPES:
        raise DTypeNotImplementedError(f"cross_entropy: input has dtype {x.dtype}, expected float32 or float64 logits")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"cross_entropy: ignore_index must be an int, got {type(ignore_index).__name__}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float, np.integer, np.floating)):
        raise TypeError(f"cross_entropy: label_smoothing must be a number, got {type(label_smoothing).__name__}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ShapeError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if x.ndim == 1:  # a single sample (C,)
        x = O.unsqueeze(x, 0)
        t = O.unsqueeze(t, 0)  # keeps a probability target's graph
        squeeze_out = True
    else:
        squeeze_out = False
    if x.ndim < 2:
        raise ShapeError(f"cross_entropy: input must be (N, C, ...), got shape {tuple(x.shape)}")
    c = x.shape[1]
    if c < 1:
        raise ShapeError(f"cross_entropy: input has shape {tuple(x.shape)}, expected at least one class")
    _check_index_target("cross_entropy", t)
    is_index = t.dtype.kind in "iu"
    if is_index:
        want = (x.shape[0],) + x.shape[2:]
        if t.shape != want:
            raise ShapeError(f"cross_entropy: target has shape {tuple(t.shape)}, expected {tuple(want)} for input of shape {tuple(x.shape)}")
    elif t.dtype.kind == "f":
        if t.shape != x.shape:
            raise ShapeError(f"cross_entropy: probability target has shape {tuple(t.shape)}, expected {tuple(x.shape)}")
        if t.dtype != x.dtype:
            raise TypeError(f"cross_entropy: probability target is {t.dtype}, input is {x.dtype}")
    else:
        raise TypeError(f"cross_entropy: target must be integer class indices or float probabilities, got {t.dtype}")
    if type(t._data) is not type(x._data):
        raise ValueError(f"cross_entropy: input is on {x.device}, target on {t.device}")
    w = None
    if weight is not None:
        w = O.as_tensor(weight, "cross_entropy")
        if w.shape != (c,):
            raise ShapeError(f"cross_entropy: weight has shape {tuple(w.shape)}, expected ({c},)")
        if type(w._data) is not type(x._data):
            raise ValueError(f"cross_entropy: input is on {x.device}, weight on {w.device}")
        w = xp_of(x._data).ascontiguousarray(w._data, dtype=x.dtype)
    out_shape = (x.shape[0],) + x.shape[2:]
    rows = _classes_last(x)
    xp = xp_of(x._data)
    if is_index:
        tgt = xp.ascontiguousarray(t._data.reshape(-1), dtype=np.int64)
        if tgt.size:
            from tinymm.kernels import softmax as K

            bad = K.first_invalid_target(tgt, c, int(ignore_index))
            if bad >= 0:
                raise TargetIndexError(
                    f"cross_entropy: target {int(tgt[bad])} (at flat position {bad}) is out of bounds: "
                    f"expected a class index in [0, {c}) or ignore_index ({ignore_index})")
    else:  # a Tensor, so a probability target that requires grad gets its gradient
        tgt = contiguous(_classes_last(t))
    logits = rows if rows._data.flags.c_contiguous else O.clone(rows)
    out = CrossEntropyFn.apply(logits, tgt, w, int(ignore_index), float(label_smoothing), reduction, out_shape)
    if squeeze_out and reduction == "none":
        out = O.reshape(out, ())
    return out


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C), (N, C, d1, ...) or (C,)
    at integer ``target`` (N,), (N, d1, ...) or () (PyTorch's layouts, class dim 1)."""
    reduction = legacy_reduction(size_average, reduce, reduction)  # probe3: PyTorch's legacy arguments
    _check_reduction("nll_loss", reduction)
    x = O.as_tensor(input, "nll_loss")
    t = O.as_tensor(target, "nll_loss")
    if x.ndim < 1:
        raise ShapeError(f"nll_loss: input must be (N, C, ...) or (C,) log-probabilities, got shape {tuple(x.shape)}")
    want = () if x.ndim == 1 else (x.shape[0],) + tuple(x.shape[2:])
    _check_index_target("nll_loss", t)
    if t.dtype.kind not in "iu" or tuple(t.shape) != want:
        raise ShapeError(f"nll_loss: target must be integer class indices of shape {want} for input of shape "
                         f"{tuple(x.shape)}, got {t.dtype} {tuple(t.shape)}")
    if x.ndim != 2:  # (C,) and (N, C, d1, ...) as rows of classes; the loss takes target's shape back
        rows = O.unsqueeze(x, 0) if x.ndim == 1 else _classes_last(x)
        flat = O.reshape(t, (-1,))
        loss = nll_loss(rows, flat, weight, ignore_index=ignore_index, reduction=reduction)
        return O.reshape(loss, want) if reduction == "none" else loss
    xp = xp_of(x._data)
    valid = t._data != ignore_index
    safe_t = xp.where(valid, t._data, 0)
    if valid.any() and (int(safe_t.min()) < 0 or int(safe_t.max()) >= x.shape[1]):
        raise IndexError(f"nll_loss: target values must be in [0, {x.shape[1]}) or ignore_index={ignore_index}")
    if weight is not None:
        weight = O.as_tensor(weight, "nll_loss")
        if weight.shape != (x.shape[1],):
            raise ShapeError(f"nll_loss: weight has shape {tuple(weight.shape)}, expected ({x.shape[1]},)")
    w = xp.ones(x.shape[1], x.dtype) if weight is None else weight._data.astype(x.dtype)
    wt = (w[safe_t] * valid).astype(x.dtype)
    picked = O.getitem(x, (xp.arange(x.shape[0]), safe_t))
    loss = -picked * Tensor._wrap(wt)
    if reduction == "mean":
        if not float(wt.sum()):  # every target ignored: NaN, as PyTorch, with zero gradients
            return loss.sum() * 0.0 + float("nan")
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

    @staticmethod
    def backward_graph(ctx, g):
        """The same gradients on Tensors: with sp(z) = softplus(z) = −logsigmoid(−z),
        d/dx = σ(x)·(1 + (pw − 1)·t) − pw·t, d/dt = pw·sp(−x) − sp(x), d/dpw = t·sp(−x)."""
        from tinymm.autograd_graph import operand, sum_to

        x, t, pw, _ = ctx.saved_arrays
        nx, nt, npw = ctx.needs_input_grad[:3]
        X, T = operand(ctx, 0, x), operand(ctx, 1, t)
        PW = 1.0 if pw is None else operand(ctx, 2, pw)
        sp_neg = -logsigmoid(X)
        gx = g * (X.sigmoid() * (1 + (PW - 1) * T) - PW * T) if nx else None
        gt = g * (PW * sp_neg - (sp_neg + X)) if nt else None
        gpw = sum_to(g * T * sp_neg, pw.shape) if npw else None
        return gx, gt, gpw


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None):
    """−[pw·t·log σ(x) + (1 − t)·log(1 − σ(x))]·weight, computed without overflow."""
    reduction = legacy_reduction(size_average, reduce, reduction)  # probe3
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    x = O.as_tensor(input, "binary_cross_entropy_with_logits")
    t = O.as_tensor(target, "binary_cross_entropy_with_logits")
    if t.shape != x.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target has shape {tuple(t.shape)}, input {tuple(x.shape)}")
    if t.dtype.kind not in "fc" and x.dtype.kind in "fc":
        # PyTorch computes (1 - t) * x ... in the target's dtype and refuses to cast the float
        # result back into integers; labels from argmax/one_hot need a .float() first
        raise DTypeError(f"binary_cross_entropy_with_logits: result type {torch_dtype_name(x.dtype)} can't be cast to "
                         f"the desired output type {torch_dtype_name(t.dtype)} (the target must be floating, "
                         f"got {t.dtype}; pass target.float())")
    x, t = O.check_pair("binary_cross_entropy_with_logits", x, t)
    pw = None
    if pos_weight is not None:
        pw = O.as_tensor(pos_weight, "binary_cross_entropy_with_logits")
        try:
            np.broadcast_shapes(pw.shape, x.shape)
        except ValueError:
            raise ShapeError(f"binary_cross_entropy_with_logits: pos_weight of shape {tuple(pw.shape)} does not broadcast to {tuple(x.shape)}") from None
        x, pw = O.check_pair("binary_cross_entropy_with_logits", x, pw)
    loss = BCEWithLogitsFn.apply(x, t, pw)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


class BCEFn(Function):
    """−[t·log x + (1 − t)·log(1 − x)] with each log clamped at −100 (PyTorch's rule, so
    x = 0 or 1 gives a finite loss). d/dx = (x − t)/max(x(1 − x), 1e-12); d/dt = log(1 − x) − log x
    with the logs unclamped (±inf at x = 0 or 1, as PyTorch)."""

    @staticmethod
    def forward(ctx, x, t):
        xp = xp_of(x)
        with np.errstate(divide="ignore"):
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        ctx.save_for_backward(x, t, log_x, log_1mx)
        return (-(t * log_x + (1 - t) * log_1mx)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, t, log_x, log_1mx = ctx.saved_arrays
        xp = xp_of(x)
        nx, nt = ctx.needs_input_grad
        gx = (g * (x - t) / xp.maximum(x * (1 - x), 1e-12)).astype(x.dtype, copy=False) if nx else None
        gt = None
        if nt:
            with np.errstate(divide="ignore", invalid="ignore"):
                gt = (g * (xp.log1p(-x) - xp.log(x))).astype(x.dtype, copy=False)
        return gx, gt

    @staticmethod
    def backward_graph(ctx, g):
        from tinymm.autograd_graph import operand

        x, t, _, _ = ctx.saved_arrays
        nx, nt = ctx.needs_input_grad
        X, T = operand(ctx, 0, x), operand(ctx, 1, t)
        gx = g * (X - T) / (X * (1 - X)).clamp(min=1e-12) if nx else None
        gt = g * ((-X).log1p() - X.log()) if nt else None
        return gx, gt


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
    """Binary cross-entropy of probabilities ``input`` in [0, 1] against ``target`` (same shape)."""
    reduction = legacy_reduction(size_average, reduce, reduction)  # probe3
    _check_reduction("binary_cross_entropy", reduction)
    x = O.as_tensor(input, "binary_cross_entropy")
    t = O.as_tensor(target, "binary_cross_entropy")
    if t.shape != x.shape:
        raise ShapeError(f"binary_cross_entropy: target has shape {tuple(t.shape)}, input {tuple(x.shape)}; they must match")
    if x.dtype.kind != "f":
        raise DTypeError(f"binary_cross_entropy: input must be floating probabilities, got {x.dtype}")
    if t.dtype != x.dtype:  # PyTorch's kernel takes one dtype: an int or float64 target is refused
        raise DTypeError(f"binary_cross_entropy: Found dtype {torch_dtype_name(t.dtype)} but expected "
                         f"{torch_dtype_name(x.dtype)} (the target must have the input's dtype {x.dtype}; "
                         f"pass target.to(input.dtype))")
    x, t = check_pair("binary_cross_entropy", x, t)
    if x._data.size and (float(x._data.min()) < 0 or float(x._data.max()) > 1):
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 and 1")
    if t._data.size and (float(t._data.min()) < 0 or float(t._data.max()) > 1):
        raise RuntimeError("binary_cross_entropy: all elements of target should be between 0 and 1")
    loss = BCEFn.apply(x, t)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _broadcast_pair(fn, x, t):
    """PyTorch's regression losses with shapes that differ: a warning, then broadcasting (a
    RuntimeError when they do not broadcast)."""
    if x.shape == t.shape:
        return x, t
    warnings.warn(f"{fn}: Using a target size ({tuple(t.shape)}) that is different to the input size "
                  f"({tuple(x.shape)}). This will likely lead to incorrect results due to broadcasting. Please "
                  "ensure they have the same size.", UserWarning, stacklevel=3)
    try:
        return O.broadcast_tensors(x, t)
    except ValueError:
        raise ShapeError(f"{fn}: target has shape {tuple(t.shape)}, input {tuple(x.shape)}; they do not "
                         "broadcast") from None


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None):
    """Mean squared error; ``weight`` (input's shape) weighs each element, and its 'mean' is
    Σ w·(x − t)² / Σ w, as PyTorch's."""
    reduction = legacy_reduction(size_average, reduce, reduction)  # probe3
    _check_reduction("mse_loss", reduction)
    x, t = O.operands("mse_loss", O.as_tensor(input), O.as_tensor(target))
    if x.dtype.kind in "biu" and t.dtype.kind in "biu":  # both integer: PyTorch has no such kernel
        raise DTypeNotImplementedError(f"\"mse_cpu\" not implemented for '{torch_dtype_name(x.dtype)}' (mse_loss of "
                                       f"integer tensors; convert them with .float())")
    x, t = _broadcast_pair("mse_loss", x, t)
    d = x - t
    if weight is not None:  # probe4
        return _weighted_by_sum("mse_loss", d * d, weight, input, reduction)
    return _reduce(d * d, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None):
    """Mean absolute error; ``weight`` as in ``mse_loss`` ('mean' is Σ w·|x − t| / Σ w)."""
    reduction = legacy_reduction(size_average, reduce, reduction)  # probe3
    _check_reduction("l1_loss", reduction)
    x, t = O.operands("l1_loss", O.as_tensor(input), O.as_tensor(target))
    x, t = _broadcast_pair("l1_loss", x, t)
    if weight is not None:  # probe4
        return _weighted_by_sum("l1_loss", (x - t).abs(), weight, input, reduction)
    return _reduce((x - t).abs(), reduction)


def _check_weight_shape(fn, weight, input):
    if tuple(weight.shape) != tuple(O.as_tensor(input).shape):
        raise ValueError(f"{fn}: Weights and input must have the same size; weight has shape "
                         f"{tuple(weight.shape)}, input {tuple(O.as_tensor(input).shape)}")


def _weighted_by_sum(fn, loss, weight, input, reduction):
    """loss·weight reduced; 'mean' divides by the total weight (mse_loss's and l1_loss's rule)."""
    _check_weight_shape(fn, weight, input)
    loss = loss * weight
    if reduction == "mean":
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


# ----------------------------------------------------------------------------- more losses
#
# Composed from Tensor ops (autograd comes with them). Each follows PyTorch's formula and
# reduction; the legacy ``size_average`` / ``reduce`` arguments are accepted where PyTorch's
# signature has them and mapped to ``reduction`` as PyTorch maps them.


def legacy_reduction(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    out = "none" if not reduce else ("mean" if size_average else "sum")
    # probe3: PyTorch's deprecation warning, word for word
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{out}' instead.",
                  UserWarning, stacklevel=3)
    return out


def _same_shape(fn, input, target, reduction, names=("input", "target"), broadcast=False):
    """The two tensors (target cast to input's float dtype), checked to have one shape (or,
    with ``broadcast``, broadcast to one with PyTorch's warning)."""
    _check_reduction(fn, reduction)
    x, t = O.as_tensor(input, fn), O.as_tensor(target, fn)
    if broadcast:
        x, t = _broadcast_pair(fn, x, t)
    if x.shape != t.shape:
        raise ShapeError(f"{fn}: {names[1]} has shape {tuple(t.shape)}, {names[0]} {tuple(x.shape)}; they must match")
    if x.dtype.kind != "f":
        raise DTypeError(f"{fn}: {names[0]} must be floating, got {x.dtype}")
    if t.dtype.kind != "f":
        t = O.cast(t, x.dtype)
    return check_pair(fn, x, t)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
    """0.5·d²/beta where |d| < beta, else |d| − 0.5·beta (d = input − target); beta = 0 is L1."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    x, t = _same_shape("smooth_l1_loss", input, target, reduction, broadcast=True)
    a = (x - t).abs()
    if beta == 0:
        return _reduce(a, reduction)
    small = a < beta
    s = O.where(small, a, 0.0)  # the quadratic branch never sees an infinite |d| (its slope · 0 is NaN)
    return _reduce(O.where(small, s * s * (0.5 / beta), a - 0.5 * beta), reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None):
    """0.5·d² where |d| < delta, else delta·(|d| − 0.5·delta): smooth_l1 scaled by delta."""
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    x, t = _same_shape("huber_loss", input, target, reduction, broadcast=True)
    a = (x - t).abs()
    small = a < delta
    s = O.where(small, a, 0.0)  # as smooth_l1_loss: an infinite |d| keeps a finite gradient
    loss = O.where(small, s * s * 0.5, (a - 0.5 * delta) * delta)
    if weight is not None:
        _check_weight_shape("huber_loss", weight, input)  # probe4
        loss = loss * weight  # and 'mean' is the plain mean here, as PyTorch's
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
    """Pointwise KL term target·(log target − input) with ``input`` log-probabilities
    (``log_target``: target given as log-probabilities, exp(t)·(t − input)); a zero target
    contributes 0 and a negative one NaN (PyTorch's xlogy). ``reduction='batchmean'`` divides the sum by the batch size (the true KL
    divergence); ``'mean'`` averages over every element, as PyTorch does."""
    fn = "kl_div"
    reduction = legacy_reduction(size_average, reduce, reduction)
    if reduction not in _REDUCTIONS + ("batchmean",):
        raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS + ('batchmean',)}, got {reduction!r}")
    for name, v in (("input", input), ("target", target)):
        if O.as_tensor(v, fn).dtype.kind in "biu":
            raise DTypeError(f"kl_div: Integral inputs not supported (the {name} is {O.as_tensor(v, fn).dtype}; "
                             f"kl_div takes log-probabilities and probabilities)")
    x, t = _same_shape(fn, input, target, "none")
    if log_target:
        loss = O.exp(t) * (t - x)
    else:
        pos = t > 0
        safe = O.where(pos, t, 1.0)
        loss = O.where(pos, t * O.log(safe), O.where(t < 0, float("nan"), 0.0)) - t * x
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction)


def _margin_target(fn, target, like):
    t = O.as_tensor(target, fn)
    if t.dtype.kind != "f":
        t = O.cast(t, like.dtype)
    return t


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, size_average=None, reduce=None,
                        reduction: str = "mean"):
    """max(0, −y·(x1 − x2) + margin) with y = 1 (x1 should rank higher) or −1."""
    fn = "margin_ranking_loss"
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(fn, reduction)
    x1, x2 = O.as_tensor(input1, fn), O.as_tensor(input2, fn)
    y = _margin_target(fn, target, x1)
    if not (x1.shape == x2.shape == y.shape):
        raise ShapeError(f"{fn}: input1 {tuple(x1.shape)}, input2 {tuple(x2.shape)} and target {tuple(y.shape)} "
                         f"must have the same shape")
    return _reduce(O.clamp(-y * (x1 - x2) + margin, min=0.0), reduction)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average=None, reduce=None, reduction: str = "mean"):
    """max(d(a, p) − d(a, n) + margin, 0) with d the p-norm ``pairwise_distance``; ``swap``
    uses min(d(a, n), d(p, n)) as the negative distance."""
    fn = "triplet_margin_loss"
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(fn, reduction)
    if margin <= 0:
        raise ValueError(f"{fn}: margin must be greater than 0, got {margin}")
    a, pos, neg = (O.as_tensor(v, fn) for v in (anchor, positive, negative))
    if not (a.ndim == pos.ndim == neg.ndim) or a.ndim not in (1, 2):
        raise ShapeError(f"{fn}: anchor {tuple(a.shape)}, positive {tuple(pos.shape)} and negative "
                         f"{tuple(neg.shape)} must all be 1-D (D,) or all 2-D (N, D)")
    d_ap = pairwise_distance(a, pos, p, eps)
    d_an = pairwise_distance(a, neg, p, eps)
    if swap:
        d_an = O.minimum(d_an, pairwise_distance(pos, neg, p, eps))
    return _reduce(O.clamp(d_ap - d_an + margin, min=0.0), reduction)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, size_average=None, reduce=None,
                          reduction: str = "mean"):
    """1 − cos(x1, x2) where y = 1, max(0, cos(x1, x2) − margin) where y = −1; inputs (N, D) or (D,)."""
    fn = "cosine_embedding_loss"
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(fn, reduction)
    x1, x2 = O.as_tensor(input1, fn), O.as_tensor(input2, fn)
    y = O.as_tensor(target, fn)
    if x1.shape != x2.shape or x1.ndim not in (1, 2):
        raise ShapeError(f"{fn}: input1 {tuple(x1.shape)} and input2 {tuple(x2.shape)} must have the same shape, "
                         f"(N, D) or (D,)")
    if tuple(y.shape) != tuple(x1.shape[:-1]):
        raise ShapeError(f"{fn}: target has shape {tuple(y.shape)}, expected {tuple(x1.shape[:-1])} for inputs of "
                         f"shape {tuple(x1.shape)}")
    eps = 1e-12  # PyTorch's EPSILON, added to each squared magnitude
    cos = (x1 * x2).sum(dim=-1) / O.sqrt(((x1 * x1).sum(dim=-1) + eps) * ((x2 * x2).sum(dim=-1) + eps))
    loss = O.where(y == 1, 1 - cos, 0.0) + O.where(y == -1, O.clamp(cos - margin, min=0.0), 0.0)
    return _reduce(loss, reduction)


def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean"):
    """x where y = 1, max(0, margin − x) where y = −1."""
    fn = "hinge_embedding_loss"
    reduction = legacy_reduction(size_average, reduce, reduction)
    x, y = _same_shape(fn, input, target, reduction)
    loss = O.where(y != 1, O.clamp(margin - x, min=0.0), 0.0) + O.where(y != -1, x, 0.0)
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction: str = "mean"):
    """log(1 + exp(−y·x)), the two-class logistic loss with y in {1, −1}."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    x, y = _same_shape("soft_margin_loss", input, target, reduction)
    return _reduce(softplus(-y * x, threshold=1e9), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction: str = "mean"):
    """Per sample: −mean_c [y_c·log σ(x_c) + (1 − y_c)·log σ(−x_c)]·weight_c over (N, C)."""
    fn = "multilabel_soft_margin_loss"
    reduction = legacy_reduction(size_average, reduce, reduction)
    x, y = _same_shape(fn, input, target, reduction)
    if x.ndim not in (1, 2):
        raise ShapeError(f"{fn}: expected (N, C) or (C,) input, got shape {tuple(x.shape)}")
    loss = -(y * logsigmoid(x) + (1 - y) * logsigmoid(-x))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss.sum(dim=-1) / x.shape[-1], reduction)


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False, size_average=None,
                     eps: float = 1e-8, reduce=None, reduction: str = "mean"):
    """Poisson negative log-likelihood: exp(x) − t·x for log-rates x (``log_input``), else
    x − t·log(x + eps); ``full`` adds Stirling's t·log t − t + ½·log(2πt) where t > 1."""
    fn = "poisson_nll_loss"
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(fn, reduction)
    x, t = O.as_tensor(input, fn), O.as_tensor(target, fn)
    if t.dtype.kind != "f":
        t = O.cast(t, x.dtype)
    try:
        np.broadcast_shapes(x.shape, t.shape)
    except ValueError:
        raise ShapeError(f"{fn}: input {tuple(x.shape)} and target {tuple(t.shape)} do not broadcast") from None
    loss = O.exp(x) - t * x if log_input else x - t * O.log(x + eps)
    if full:
        big = t > 1
        ts = O.where(big, t, 2.0)
        loss = loss + O.where(big, ts * O.log(ts) - ts + 0.5 * O.log(2 * np.pi * ts), 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
    """½·(log max(var, eps) + (input − target)²/max(var, eps)) (+ ½·log 2π with ``full``).

    ``var`` is shaped like ``input``, or like it with the last dim 1 or missing (one variance
    per sample). As PyTorch, the clamp at eps is not differentiated: var's gradient passes as if
    unclamped."""
    fn = "gaussian_nll_loss"
    _check_reduction(fn, reduction)
    x, t = O.as_tensor(input, fn), O.as_tensor(target, fn)
    v = var if isinstance(var, (int, float)) else O.as_tensor(var, fn)
    if isinstance(v, (int, float)):
        v = Tensor._wrap(xp_of(x._data).full(x.shape, v, dtype=x.dtype))
    if v.shape != x.shape:
        if x.ndim and v.shape == x.shape[:-1]:
            v = O.unsqueeze(v, -1)
        elif not (x.ndim and v.shape == x.shape[:-1] + (1,)):
            raise ShapeError(f"{fn}: var has shape {tuple(v.shape)}, expected {tuple(x.shape)}, "
                             f"{tuple(x.shape[:-1]) + (1,)} or {tuple(x.shape[:-1])} for input of shape {tuple(x.shape)}")
    try:
        np.broadcast_shapes(x.shape, t.shape)
    except ValueError:
        raise ShapeError(f"{fn}: input {tuple(x.shape)} and target {tuple(t.shape)} do not broadcast") from None
    if v._data.size and float(v._data.min()) < 0:
        raise ValueError(f"{fn}: var has negative entry/entries")
    clamped = Tensor._wrap(xp_of(v._data).maximum(v._data, eps).astype(v.dtype))
    v = v + (clamped - v.detach())  # the value clamped, the gradient straight through
    loss = 0.5 * (O.log(v) + (x - t) * (x - t) / v)
    if full:
        loss = loss + 0.5 * float(np.log(2 * np.pi))
    return _reduce(loss, reduction)


def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None, size_average=None, reduce=None,
                      reduction: str = "mean"):
    """Multi-class hinge loss of (N, C) scores at class indices (N,):
    Σ_{i≠y} max(0, margin − x_y + x_i)^p / C, times weight[y]."""
    fn = "multi_margin_loss"
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(fn, reduction)
    if p not in (1, 2):
        raise ValueError(f"{fn}: only p == 1 and p == 2 supported, got {p}")
    x = O.as_tensor(input, fn)
    t = O.as_tensor(target, fn)
    squeeze = x.ndim == 1
    if squeeze:
        x, t = x.reshape(1, -1), t.reshape(1)
    if x.ndim != 2 or t.dtype.kind not in "iu" or tuple(t.shape) != (x.shape[0],):
        raise ShapeError(f"{fn}: expected (N, C) input and (N,) integer target, got input {tuple(x.shape)} and "
                         f"target {tuple(t.shape)} of {t.dtype}")
    C = x.shape[1]
    if t._data.size and (int(t._data.min()) < 0 or int(t._data.max()) >= C):
        raise TargetIndexError(f"{fn}: target values must be in [0, {C}), got [{int(t._data.min())}, {int(t._data.max())}]")
    xp = xp_of(x._data)
    idx = t._data.astype(np.int64).reshape(-1, 1)
    xy = O.gather(x, 1, Tensor._wrap(idx))
    m = O.clamp(x - xy + margin, min=0.0)
    if p == 2:
        m = m * m
    not_target = xp.ones(x.shape, x.dtype)
    xp.put_along_axis(not_target, idx, 0, axis=1)
    m = m * Tensor._wrap(not_target)
    if weight is not None:
        w = O.as_tensor(weight, fn)
        m = m * Tensor._wrap(w._data[idx[:, 0]].reshape(-1, 1).astype(x.dtype))
    loss = m.sum(dim=1) / C
    if squeeze and reduction == "none":
        loss = loss.reshape(())
    return _reduce(loss, reduction)


# ----------------------------------------------------------------------------- CTC


def _logsumexp3(a, b, c):
    m = np.maximum(np.maximum(a, b), c)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return safe + np.log(np.exp(a - safe) + np.exp(b - safe) + np.exp(c - safe))


def _ctc_one(lp, labels, blank):
    """(nll, d nll / d lp) of one sequence: lp (T, C) float64 log-probabilities, labels (S,).

    The forward (α) and backward (β) recursions over the blank-extended labels l′ in log
    space; d nll / d lp[t, c] = −Σ_{s: l′_s = c} exp(α_t(s) + β_t(s) − lp[t, c] + nll),
    the expected number of times frame t emits c (the true gradient; CTCLossFn adds exp(lp)
    to make it PyTorch's)."""
    T, C = lp.shape
    ext = np.full(2 * len(labels) + 1, blank, np.int64)
    ext[1::2] = labels
    L = ext.shape[0]
    em = lp[:, ext]  # (T, L)
    skip = np.zeros(L, bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])  # may jump s-2 → s
    ninf = -np.inf
    alpha = np.full((T, L), ninf)
    alpha[0, 0] = em[0, 0]
    if L > 1:
        alpha[0, 1] = em[0, 1]
    for t in range(1, T):
        prev = alpha[t - 1]
        one = np.concatenate([[ninf], prev[:-1]])
        two = np.where(skip, np.concatenate([[ninf, ninf], prev[:-2]])[:L], ninf)  # [:L]: an empty target
        alpha[t] = _logsumexp3(prev, one, two) + em[t]
    end = alpha[T - 1, L - 1] if L == 1 else np.logaddexp(alpha[T - 1, L - 1], alpha[T - 1, L - 2])
    nll = -end
    if not np.isfinite(nll):
        return np.inf, np.zeros_like(lp)
    beta = np.full((T, L), ninf)
    beta[T - 1, L - 1] = em[T - 1, L - 1]
    if L > 1:
        beta[T - 1, L - 2] = em[T - 1, L - 2]
    skip_next = np.zeros(L, bool)
    skip_next[:-2] = skip[2:]  # may jump s → s+2
    for t in range(T - 2, -1, -1):
        nxt = beta[t + 1]
        one = np.concatenate([nxt[1:], [ninf]])
        two = np.where(skip_next, np.concatenate([nxt[2:], [ninf, ninf]])[:L], ninf)
        beta[t] = _logsumexp3(nxt, one, two) + em[t]
    occupancy = np.exp(alpha + beta - em + nll)  # (T, L): posterior of being at s at time t
    grad = np.zeros_like(lp)
    np.add.at(grad.T, ext, -occupancy.T)
    return nll, grad


class CTCLossFn(Function):
    """Per-sequence CTC negative log-likelihoods (N,) of log_probs (T, N, C). Computed on the
    host in float64 (the recursions are sequential in time); saves the gradient.

    The gradient is PyTorch's, exp(lp) − occupancy on each sample's first input_length frames
    and 0 after them: the gradient for the logits of a log_softmax, which log_softmax's backward
    passes through unchanged (its rows sum to 0), so training through ``log_softmax`` gets the
    true gradient while a gradient read at ``log_probs`` itself (a leaf, a hook, retain_grad)
    is PyTorch's number, not d nll / d lp. An infinite loss (no alignment) has a nan gradient
    on its frames, or 0 with zero_infinity, as in PyTorch."""

    @staticmethod
    def forward(ctx, log_probs, targets, input_lengths, target_lengths, blank, zero_infinity):
        device = backend.device_of(log_probs)
        lp = np.asarray(backend.to_device(log_probs, "cpu"), np.float64)
        T, N, C = lp.shape
        nll = np.zeros(N)
        grad = np.zeros_like(lp)
        for n in range(N):
            Tn, labels = int(input_lengths[n]), targets[n]
            loss, g = _ctc_one(lp[:Tn, n], labels, blank)
            if not np.isfinite(loss):
                # PyTorch: exp(lp) − exp(−inf + inf) is nan; zero_infinity zeroes loss and gradient
                g = g if zero_infinity else np.full_like(g, np.nan)
                loss = 0.0 if zero_infinity else loss
            else:
                # PyTorch's gradient folds log_softmax in: exp(lp) − occupancy (module docstring)
                g = g + np.exp(lp[:Tn, n])
            nll[n] = loss
            grad[:Tn, n] = g
        ctx.save_for_backward(backend.to_device(grad.astype(log_probs.dtype), device))
        return backend.to_device(nll.astype(log_probs.dtype), device)

    @staticmethod
    def backward(ctx, g):
        (grad,) = ctx.saved_arrays
        return grad * g.reshape(1, -1, 1)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank: int = 0, reduction: str = "mean",
             zero_infinity: bool = False):
    """Connectionist Temporal Classification loss of ``log_probs`` (T, N, C) (log_softmax
    outputs; or unbatched (T, C)) against ``targets``: padded (N, S) or concatenated 1-D
    (Σ target_lengths), with per-sample ``input_lengths`` and ``target_lengths``.
    ``reduction='mean'`` divides each loss by its target length, then averages over the batch."""
    fn = "ctc_loss"
    _check_reduction(fn, reduction)
    lp = O.as_tensor(log_probs, fn)
    unbatched = lp.ndim == 2
    if unbatched:
        lp = lp.reshape(lp.shape[0], 1, lp.shape[1])
    if lp.ndim != 3 or lp.dtype.kind != "f":
        raise ShapeError(f"{fn}: log_probs must be float (T, N, C) or (T, C), got {lp.dtype} {tuple(lp.shape)}")
    T, N, C = lp.shape

    def host_ints(v):
        return np.asarray(backend.to_device(v._data, "cpu") if isinstance(v, Tensor) else v).astype(np.int64).reshape(-1)

    in_len, tg_len = host_ints(input_lengths), host_ints(target_lengths)
    if in_len.shape[0] != N or tg_len.shape[0] != N:
        raise ShapeError(f"{fn}: input_lengths and target_lengths must have {N} entries (the batch), got "
                         f"{in_len.shape[0]} and {tg_len.shape[0]}")
    if (in_len > T).any() or (in_len < 1).any():
        raise ShapeError(f"{fn}: input_lengths must be in [1, {T}], got {in_len.tolist()}")
    tg = np.asarray(backend.to_device(targets._data, "cpu") if isinstance(targets, Tensor) else targets)
    if unbatched and tg.ndim == 1 and tg_len.shape[0] == 1 and tg.shape[0] != tg_len[0]:
        tg = tg.reshape(1, -1)
    if tg.ndim == 2:
        if tg.shape[0] != N or (tg_len > tg.shape[1]).any():
            raise ShapeError(f"{fn}: padded targets {tuple(tg.shape)} do not hold target_lengths {tg_len.tolist()} for a "
                             f"batch of {N}")
        seqs = [tg[n, :tg_len[n]] for n in range(N)]
    else:
        if tg.shape[0] != tg_len.sum():
            raise ShapeError(f"{fn}: concatenated targets have {tg.shape[0]} labels, target_lengths sum to "
                             f"{int(tg_len.sum())}")
        seqs = np.split(tg, np.cumsum(tg_len)[:-1])
    for n, s in enumerate(seqs):
        if s.size and (s.min() < 0 or s.max() >= C or (s == blank).any()):
            raise ValueError(f"{fn}: targets of sample {n} must be class indices in [0, {C}) other than blank={blank}, "
                             f"got {s.tolist()}")
    nll = CTCLossFn.apply(lp, [s.astype(np.int64) for s in seqs], in_len, tg_len, int(blank), bool(zero_infinity))
    if reduction == "none":
        return nll.reshape(()) if unbatched else nll
    if reduction == "sum":
        return nll.sum()
    denom = Tensor._wrap(backend.to_device(np.maximum(tg_len, 1).astype(lp.dtype), lp.device))
    return (nll / denom).mean()


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction: str = "mean"):
    """Multi-label hinge loss of (N, C) scores: ``target`` (N, C) lists each sample's classes,
    ended by the first −1; loss = Σ_{j target} Σ_{i not target} max(0, 1 − (x_j − x_i)) / C."""
    fn = "multilabel_margin_loss"
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(fn, reduction)
    x, t = O.as_tensor(input, fn), O.as_tensor(target, fn)
    squeeze = x.ndim == 1
    if squeeze:
        x, t = x.reshape(1, -1), t.reshape(1, -1)
    if x.ndim != 2 or tuple(t.shape) != tuple(x.shape) or t.dtype.kind not in "iu":
        raise ShapeError(f"{fn}: expected (N, C) or (C,) input and an integer target of the same shape, got input "
                         f"{tuple(x.shape)} and target {t.dtype} {tuple(t.shape)}")
    N, C = x.shape
    xp = xp_of(x._data)
    tg = t._data.astype(np.int64)
    valid = xp.cumprod(tg >= 0, axis=1).astype(bool)  # entries before the first -1
    if (tg[valid] >= C).any():
        raise TargetIndexError(f"{fn}: target values must be in [0, {C}) or -1, got {tg.max()}")
    safe = xp.where(valid, tg, 0)
    is_target = xp.zeros((N, C), bool)
    rows = xp.repeat(xp.arange(N)[:, None], C, axis=1)
    is_target[rows[valid], safe[valid]] = True
    picked = O.gather(x, 1, Tensor._wrap(safe))  # (N, J): x at each listed target
    hinge = O.clamp(1 - picked.unsqueeze(2) + x.unsqueeze(1), min=0.0)  # (N, J, C)
    mask = (valid[:, :, None] & ~is_target[:, None, :]).astype(x.dtype)
    loss = (hinge * Tensor._wrap(mask)).sum(dim=(1, 2)) / C
    if squeeze and reduction == "none":
        loss = loss.reshape(())
    return _reduce(loss, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean"):
    """``triplet_margin_loss`` with any ``distance_function(x1, x2)`` (default: pairwise_distance)."""
    fn = "triplet_margin_with_distance_loss"
    _check_reduction(fn, reduction)
    if margin <= 0:
        raise ValueError(f"{fn}: margin must be greater than 0, got {margin}")
    dist = distance_function if distance_function is not None else pairwise_distance
    d_ap, d_an = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_an = O.minimum(d_an, dist(positive, negative))
    return _reduce(O.clamp(d_ap - d_an + margin, min=0.0), reduction)
