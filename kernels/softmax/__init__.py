"""Softmax, log-softmax and fused softmax cross-entropy along the last axis.

Every function here takes 2-D ``(M, N)`` arrays and works on each row independently; callers
reshape or move axes first (C-contiguous rows are fastest; any strides work). Outputs are new
C-contiguous arrays of the input's dtype (float32 or float64).

Softmax and log-softmax
-----------------------
For one row ``x`` of length ``N``, with ``m = max_j x_j`` subtracted for stability::

    lse(x)      = m + log(sum_j exp(x_j - m))          log-sum-exp
    softmax(x)  = exp(x - lse)                         y, rows sum to 1
    log_softmax = x - lse                              y

Backward, given the upstream gradient ``gy`` and the saved *output* ``y`` (nothing else)::

    softmax:      gx = y * (gy - sum_j gy_j * y_j)
    log_softmax:  gx = gy - exp(y) * sum_j gy_j

Cross-entropy (fused log-softmax + negative log-likelihood)
-----------------------------------------------------------
``logits`` is ``(N, C)``; ``w`` is the per-class ``weight`` ``(C,)`` (all ones when None);
``eps`` is ``label_smoothing``; ``lse_i`` is row i's log-sum-exp, so ``-log p_ic = lse_i - x_ic``.
The semantics are exactly ``torch.nn.functional.cross_entropy(..., reduction='none')``.

*Class-index targets* ``t`` ``(N,)`` (any integer dtype)::

    loss_i = (1 - eps) * w[t_i] * (lse_i - x_{i,t_i})
             + (eps / C) * sum_c w_c * (lse_i - x_{i,c})
    loss_i = 0                                 for rows with t_i == ignore_index

  Every target must be in ``[0, C)`` or ``ignore_index`` (``first_invalid_target`` is the check
  ``cross_entropy`` runs first; the kernels do not check).
  Gradient (``W = sum_c w_c``, ``g_i`` the upstream gradient of ``loss_i``)::

    dx_ic = g_i * ( p_ic * ((1 - eps) * w[t_i] + (eps / C) * W)
                    - (1 - eps) * w[t_i] * [c == t_i] - (eps / C) * w_c )

*Class-probability targets* ``p`` ``(N, C)`` (same dtype as logits), smoothed to
``q = (1 - eps) * p + eps / C``::

    loss_i = sum_c w_c * q_ic * (lse_i - x_ic)
    dx_ic  = g_i * ( p_ic^softmax * sum_k w_k * q_ik  -  w_c * q_ic )

Forward returns ``(loss (N,), lse (N,))`` and saves only ``lse``: backward recomputes the
softmax ``exp(x - lse)`` from the logits, so log-probabilities are never materialised.

Reduction is the caller's job. PyTorch's ``reduction='mean'`` divides the summed loss by
``sum_i w[t_i]`` over the non-ignored rows for class-index targets (by the number of
non-ignored rows when ``weight`` is None), and by ``N`` for probability targets.

Edge cases: logits of magnitude 1e4 stay finite (the row maximum is subtracted first). A row
that is entirely ``-inf`` gives NaN (softmax, log-softmax, loss and gradient), as in PyTorch;
rows with *some* ``-inf`` entries are fine (those entries get probability 0). A NaN anywhere in
a row makes the whole row NaN.

Where things are::

    reference.py  plain NumPy, the specification
    cpu.py        Numba loops, one row per iteration, serial or parallel by size
    cuda.py       numba.cuda kernels, one block per row (imported on first use)

Every function below takes ``impl=None`` (by array type: CuPy -> "cuda", else "cpu") or
"reference" / "cpu" / "cuda" (tests; the CUDA version runs NumPy arrays under the simulator).
They trust their inputs: the public functions (``tinymm.nn.functional.cross_entropy``,
``Tensor.softmax``) check shapes, dtypes, devices and target values first, once.
"""
from .._common import implementation

__all__ = ["softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
           "cross_entropy_forward", "cross_entropy_backward", "first_invalid_target"]


def softmax_forward(x, impl=None):
    """Softmax of each row of ``x`` (M, N) -> y (M, N). Save ``y`` for backward."""
    return implementation(__name__, impl, x).softmax_forward(x)


def softmax_backward(y, gy, impl=None):
    """gx = y * (gy - sum(gy * y, row)), from the saved output ``y``."""
    return implementation(__name__, impl, y).softmax_backward(y, gy)


def log_softmax_forward(x, impl=None):
    """Log-softmax of each row of ``x`` (M, N) -> y (M, N). Save ``y`` for backward."""
    return implementation(__name__, impl, x).log_softmax_forward(x)


def log_softmax_backward(y, gy, impl=None):
    """gx = gy - exp(y) * sum(gy, row), from the saved output ``y``."""
    return implementation(__name__, impl, y).log_softmax_backward(y, gy)


def cross_entropy_forward(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, impl=None):
    """Per-row cross-entropy of ``logits`` (N, C) -> ``(loss (N,), lse (N,))``; save ``lse``.

    ``target``: class indices (N,) (int32/int64, each in [0, C) or ``ignore_index``) or class
    probabilities (N, C) of logits' dtype; ``weight`` (C,) or None; ``label_smoothing`` in [0, 1].
    """
    return implementation(__name__, impl, logits).cross_entropy_forward(
        logits, target, weight, ignore_index, label_smoothing)


def cross_entropy_backward(logits, target, lse, grad_loss, weight=None, ignore_index=-100,
                           label_smoothing=0.0, impl=None):
    """d(sum_i grad_loss_i * loss_i) / d logits, (N, C), recomputing the softmax from ``lse``."""
    return implementation(__name__, impl, logits).cross_entropy_backward(
        logits, target, lse, grad_loss, weight, ignore_index, label_smoothing)


def first_invalid_target(target, classes, ignore_index, impl=None):
    """Index of the first class-index target outside [0, ``classes``) that is not
    ``ignore_index``, or -1: the check ``cross_entropy`` runs once, before the kernels."""
    return implementation(__name__, impl, target).first_invalid_target(target, classes, ignore_index)
