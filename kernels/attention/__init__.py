"""Scaled dot-product attention kernels: forward and backward, FlashAttention's interface.

    forward(q, k, v, mask=None, is_causal=False, scale=None)            -> (o, lse)
    backward(q, k, v, o, lse, do, mask=None, is_causal=False, scale=None) -> (dq, dk, dv)

    q (B, H, Nq, D), k (B, H, Nk, D), v (B, H, Nk, Dv), one dtype (float32 or float64)
    o (B, H, Nq, Dv), lse (B, H, Nq): the natural-log log-sum-exp of each row of scaled,
    masked scores; -inf for a row whose keys are all masked (its o and gradients are 0).

    mask: None, bool (True = attend, PyTorch's convention) or floating (added to the scores),
    broadcastable to (B, H, Nq, Nk); key padding is a bool mask of shape (B, 1, 1, Nk).
    is_causal: key j visible from query i iff j <= i (PyTorch's top-left alignment, also for
    Nq != Nk); may be combined with mask (PyTorch refuses both together; here both apply).
    scale: defaults to 1/sqrt(D). Forward saves nothing but o and lse; backward recomputes the
    probabilities from lse block by block. No gradient is returned for an additive mask.

    forward(..., keep_probs=True) -> (o, lse, probs); backward(..., probs=probs)
    The CPU kernels may keep the attention matrix P when it is small (at most
    ``cpu.SAVED_PROBS_BYTES``), so that backward skips recomputing it; probs is None
    otherwise (the reference, CUDA, or a large P), and backward then recomputes as above.

Where things are:

    reference.py  the math and a plain NumPy version: the specification
    cpu.py        fused CPU kernels: Numba threads, BLAS block GEMMs; an (Nq, Nk) matrix only
                  when it is small and kept for backward; and (section 7) the same kernels
                  with every block product on Intel AMX tiles, used first where they apply
                  (float32, from 192 keys, 384 causal, on CPUs with AMX:
                  ``cpu.amx_forward``)
    _amx.py       float32 products as six bfloat16 tile products of three-piece splits
                  (float32 accuracy), and the 16-lane passes that write the pieces
    cuda.py       flash attention in numba.cuda (imported only when first used)
    _inputs.py    the checks every entry point runs first, and mask -> additive bias

``forward(..., impl=None)`` / ``backward(..., impl=None)`` dispatch by array type (CuPy arrays
to the CUDA kernels, anything else to the CPU ones) or run the version ``impl`` names:
"reference", "cpu" or "cuda" (tests; the CUDA version runs NumPy arrays under the simulator).
Dropout (``dropout_p`` > 0 with a caller-drawn bool keep-mask ``dropout_mask``) hands off to
the unfused reference, on either device; see ``reference.py``.
"""
from .._common import resolve_impl
from . import cpu
from .reference import reference_backward, reference_forward

__all__ = ["forward", "backward", "reference_forward", "reference_backward"]


def forward(q, k, v, mask=None, is_causal=False, scale=None, dropout_p=0.0, dropout_mask=None,
            impl=None, keep_probs=False):
    """Attention forward; see the module docstring. Returns ``(o, lse)``, or with
    ``keep_probs`` ``(o, lse, probs)`` (probs None unless the CPU kernels kept P)."""
    impl = resolve_impl(impl, q)
    if impl == "cpu" and not dropout_p:
        out = cpu.amx_forward(q, k, v, mask, is_causal, scale)  # None: not for AMX
        if out is not None:
            return out + (None,) if keep_probs else out
        return cpu.cpu_forward(q, k, v, mask, is_causal, scale, keep_probs)
    if dropout_p or impl == "reference":
        out = reference_forward(q, k, v, mask, is_causal, scale, dropout_p, dropout_mask)
    else:
        from .cuda import cuda_forward

        out = cuda_forward(q, k, v, mask, is_causal, scale)
    return out + (None,) if keep_probs else out


def backward(q, k, v, o, lse, do, mask=None, is_causal=False, scale=None,
             dropout_p=0.0, dropout_mask=None, impl=None, probs=None):
    """Attention backward; see the module docstring. Returns ``(dq, dk, dv)``. ``probs``: what
    ``forward(..., keep_probs=True)`` returned for these inputs (None: recompute P)."""
    impl = resolve_impl(impl, q)
    if dropout_p or impl == "reference":
        return reference_backward(q, k, v, o, lse, do, mask, is_causal, scale, dropout_p, dropout_mask)
    if impl == "cuda":
        from .cuda import cuda_backward

        return cuda_backward(q, k, v, o, lse, do, mask, is_causal, scale)
    if probs is None:
        grads = cpu.amx_backward(q, k, v, o, lse, do, mask, is_causal, scale)
        if grads is not None:
            return grads
    return cpu.cpu_backward(q, k, v, o, lse, do, mask, is_causal, scale, probs)
