"""Checks and conversions shared by every attention implementation (reference, CPU, CUDA).

Each public entry point calls :func:`check_forward_inputs` or :func:`check_backward_inputs`
first, so bad input is refused with the same message whichever implementation runs, before
anything is computed. The mask is then turned into an *additive bias* of the smallest shape
that broadcasts to ``(B, H, Nq, Nk)`` (:func:`mask_as_bias`): the kernels index it with a
"broadcast" rule instead of ever holding a full ``(B, H, Nq, Nk)`` copy.
"""
import math

import numpy as np

from .._common import array_module, check_same_kind

NAME = "attention"


def _shape(a) -> tuple:
    return tuple(int(n) for n in a.shape)


def check_forward_inputs(q, k, v, mask):
    """Validate q, k, v and mask; returns ``(B, H, Nq, Nk, D, Dv)``.

    q: (B, H, Nq, D), k: (B, H, Nk, D), v: (B, H, Nk, Dv), one floating dtype (float32 or
    float64), one device; mask: None, bool or floating, broadcastable to (B, H, Nq, Nk).
    """
    check_same_kind(NAME, q=q, k=k, v=v, mask=mask)
    for name, a in (("q", q), ("k", k), ("v", v)):
        if a.ndim != 4:
            raise ValueError(f"{NAME}: {name} must be 4-D (B, H, N, D), got shape {_shape(a)}")
    if q.dtype not in (np.float32, np.float64):
        raise TypeError(f"{NAME}: q has dtype {q.dtype}; expected float32 or float64")
    if k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError(
            f"{NAME}: q, k, v must share one dtype, got q {q.dtype}, k {k.dtype}, v {v.dtype}"
        )
    B, H, Nq, D = _shape(q)
    Nk = k.shape[2]
    Dv = v.shape[3]
    if k.shape[3] != D:
        raise ValueError(
            f"{NAME}: q has head dim {D} but k has {k.shape[3]} "
            f"(q {_shape(q)}, k {_shape(k)})"
        )
    if k.shape[:2] != (B, H):
        raise ValueError(
            f"{NAME}: k has batch/heads {_shape(k)[:2]}, q has {(B, H)} "
            f"(q {_shape(q)}, k {_shape(k)})"
        )
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(
            f"{NAME}: v must be (B, H, Nk, Dv) = {(B, H, Nk)} + (Dv,) to match k {_shape(k)}, "
            f"got v {_shape(v)}"
        )
    if D == 0:
        raise ValueError(f"{NAME}: head dim D must be at least 1, got q {_shape(q)}")
    if mask is not None:
        if not (mask.dtype == np.bool_ or np.issubdtype(mask.dtype, np.floating)):
            raise TypeError(
                f"{NAME}: mask has dtype {mask.dtype}; expected bool (True = attend) "
                "or a floating additive bias"
            )
        target = (B, H, Nq, Nk)
        if mask.ndim > 4 or not _broadcasts_to(_shape(mask), target):
            raise ValueError(
                f"{NAME}: mask of shape {_shape(mask)} does not broadcast to (B, H, Nq, Nk) = {target}"
            )
    return B, H, Nq, Nk, D, Dv


def check_backward_inputs(q, k, v, o, lse, do, mask):
    """Validate the backward inputs; returns ``(B, H, Nq, Nk, D, Dv)``."""
    B, H, Nq, Nk, D, Dv = check_forward_inputs(q, k, v, mask)
    check_same_kind(NAME, q=q, o=o, lse=lse, do=do)
    for name, a, want in (("o", o, (B, H, Nq, Dv)), ("do", do, (B, H, Nq, Dv)), ("lse", lse, (B, H, Nq))):
        if _shape(a) != want:
            raise ValueError(f"{NAME}: {name} must have shape {want}, got {_shape(a)}")
        if a.dtype != q.dtype:
            raise TypeError(f"{NAME}: {name} has dtype {a.dtype}, q has {q.dtype}")
    return B, H, Nq, Nk, D, Dv


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    shape = (1,) * (len(target) - len(shape)) + shape
    return all(s in (1, t) for s, t in zip(shape, target))


def resolve_scale(scale, D: int) -> float:
    """The softmax scale: ``1/sqrt(D)`` unless given."""
    return 1.0 / math.sqrt(D) if scale is None else float(scale)


def mask_as_bias(mask, dtype):
    """The mask as an additive bias of dtype ``dtype``, 4-D, in the mask's own (broadcastable) shape.

    bool masks follow PyTorch: True = attend, so True becomes 0 and False becomes -inf.
    Floating masks are added to the scaled scores as they are (cast to ``dtype``).
    Returns None for ``mask=None``. The result is C-contiguous and writable; it has
    at most the mask's number of elements (a bool mask costs 4 or 8 bytes per element here).
    """
    if mask is None:
        return None
    xp = array_module(mask)
    mask = mask.reshape((1,) * (4 - mask.ndim) + tuple(mask.shape))
    dtype = np.dtype(dtype)
    if mask.dtype == np.bool_:
        bias = xp.where(mask, dtype.type(0), dtype.type(-np.inf)).astype(dtype, copy=False)
    else:
        bias = mask.astype(dtype, copy=False)
    return as_c_contiguous(bias)


def as_c_contiguous(a):
    """``a`` as a C-contiguous, writable array (copied only when it is not already)."""
    if a.flags.c_contiguous and getattr(a.flags, "writeable", True):  # CuPy has no writeable flag
        return a
    return array_module(a).array(a, order="C", copy=True)
