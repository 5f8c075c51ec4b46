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

Where things are:

    reference.py  the math and a plain NumPy version: the specification
    cpu.py        fused CPU kernels: Numba threads, BLAS block GEMMs, never an (Nq, Nk) matrix
    cuda.py       flash attention in numba.cuda (imported only when first used)
    _inputs.py    the checks every entry point runs first, and mask -> additive bias

Dispatch is by array type: CuPy arrays go to the CUDA kernels, anything else to the CPU ones.
Dropout (``dropout_p`` > 0 with a caller-drawn bool keep-mask ``dropout_mask``) hands off to
the unfused reference, on either device; see ``reference.py``.
"""
from .._common import is_cuda_array
from .cpu import cpu_backward, cpu_forward
from .reference import reference_backward, reference_forward

__all__ = [
    "forward", "backward",
    "reference_forward", "reference_backward",
    "cpu_forward", "cpu_backward",
    "cuda_forward", "cuda_backward",
]


def forward(q, k, v, mask=None, is_causal=False, scale=None, dropout_p=0.0, dropout_mask=None):
    """Attention forward; see the module docstring. Returns ``(o, lse)``."""
    if dropout_p:
        return reference_forward(q, k, v, mask, is_causal, scale, dropout_p, dropout_mask)
    if is_cuda_array(q):
        return cuda_forward(q, k, v, mask, is_causal, scale)
    return cpu_forward(q, k, v, mask, is_causal, scale)


def backward(q, k, v, o, lse, do, mask=None, is_causal=False, scale=None,
             dropout_p=0.0, dropout_mask=None):
    """Attention backward; see the module docstring. Returns ``(dq, dk, dv)``."""
    if dropout_p:
        return reference_backward(q, k, v, o, lse, do, mask, is_causal, scale, dropout_p, dropout_mask)
    if is_cuda_array(q):
        return cuda_backward(q, k, v, o, lse, do, mask, is_causal, scale)
    return cpu_backward(q, k, v, o, lse, do, mask, is_causal, scale)


def cuda_forward(q, k, v, mask=None, is_causal=False, scale=None, **options):
    """Flash-attention forward in numba.cuda (``cuda.py``), imported on first use."""
    from .cuda import cuda_forward as run

    return run(q, k, v, mask, is_causal, scale, **options)


def cuda_backward(q, k, v, o, lse, do, mask=None, is_causal=False, scale=None, **options):
    """Flash-attention backward in numba.cuda (``cuda.py``), imported on first use."""
    from .cuda import cuda_backward as run

    return run(q, k, v, o, lse, do, mask, is_causal, scale, **options)
