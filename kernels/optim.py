"""In-place optimiser updates with PyTorch's exact math (``torch.optim.SGD``, ``Adam``, ``AdamW``).

Every array (parameter, gradient, state) has the parameter's shape and dtype (float32 or
float64); the parameter and the state arrays are updated in place and must be C-contiguous
(the kernels work on their raveled views). The gradient may have any strides. Nothing is
returned. The optimiser (``tinymm.optim``) owns the state arrays and the step counter and calls
one of these per parameter per step.

SGD (``torch.optim.SGD``), with ``g`` the gradient::

    g = -g                        if maximize
    g = g + weight_decay * p      if weight_decay != 0
    if momentum != 0:
        buf = g                                        on the first step (no dampening)
        buf = momentum * buf + (1 - dampening) * g     afterwards
        g = g + momentum * buf    if nesterov  else  g = buf
    p = p - lr * g

Adam (``torch.optim.Adam``) and AdamW (``decoupled_weight_decay=True``, ``torch.optim.AdamW``),
``step`` counting from 1::

    g = -g                                    if maximize
    p = p * (1 - lr * weight_decay)           if weight_decay != 0 and decoupled (AdamW)
    g = g + weight_decay * p                  if weight_decay != 0 and not decoupled (Adam, L2)
    m = m + (1 - beta1) * (g - m)             (torch's lerp)
    v = beta2 * v + (1 - beta2) * g * g
    v_max = max(v_max, v)                     if amsgrad; v_max replaces v below
    denom = sqrt(v) / sqrt(1 - beta2^step) + eps
    p = p - (lr / (1 - beta1^step)) * m / denom

Scalars derived from the hyper-parameters (``lr / (1 - beta1^step)`` and the like) are computed
once in float64 on the host, rounded to the parameter's dtype, and the per-element arithmetic
then runs in that dtype, in the order PyTorch's single-tensor implementation uses. This keeps
float32 results within a few ulps of PyTorch's.

The per-element update is written once, as plain Python (``_sgd_element``, ``_adam_element``),
and compiled for each target: with ``numba.njit`` for the CPU loop (``prange`` over elements)
and with ``numba.cuda.jit(device=True)`` for the CUDA grid-stride kernel. The CPU loop is itself
compiled twice, serial and parallel; parameters of fewer than ``CPU_PARALLEL_MIN_ELEMENTS``
elements take the serial one, as waking the thread pool costs more than it saves there.

The dispatch at the end, ``sgd_step(..., impl=None)`` / ``adam_step(..., impl=None)``, runs the
version for the array type (or the one ``impl`` names: "reference", "cpu", "cuda") and trusts
its inputs: the optimisers in ``tinymm.optim`` check hyper-parameters and state once, when
they are created or loaded, and each gradient's shape, dtype and device before its step.
An optimiser step over many small parameters is dominated by the cost of each call, so the
dispatch does the least it can: the dtype-rounded scalars of one step are computed once per
(step, hyper-parameters) and reused for every parameter (``_adam_scalars``).
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np

from ._common import blocks_for, launch_on_cupy_stream, numba_cuda, parallel_threshold, resolve_impl, serial_and_parallel

# Parameters of at least this many elements run the parallel CPU loops. Measured crossover:
# about 128K elements for AdamW on a quiet machine (SGD, bound by memory bandwidth, gains
# little), about 2M on the shared 2-core one (see benchmarks/RESULTS.md, "When the parallel
# CPU loops pay").
CPU_PARALLEL_MIN_ELEMENTS = parallel_threshold(1 << 21)

# Threads per block of the CUDA update kernels, and the most blocks launched (each thread then
# grid-strides over the remaining elements).
CUDA_BLOCK = 256
CUDA_MAX_BLOCKS = 4096

# ``numba.cuda``, bound on first use by _cuda_kernels. It must be a module global (not a local
# of the factory): the CUDA simulator swaps the kernels' global ``cuda`` for its fake module.
cuda = None


# ============================================================================ reference (NumPy)


def reference_sgd_step(param, grad, momentum_buf, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                       nesterov=False, maximize=False, first_step=False):
    """Whole-array NumPy version of the SGD update (in place, like the kernels)."""
    g = -grad if maximize else grad.copy()
    if weight_decay != 0:
        g = g + weight_decay * param
    if momentum != 0:
        if first_step:
            momentum_buf[...] = g
        else:
            momentum_buf[...] = momentum * momentum_buf + (1 - dampening) * g
        g = g + momentum * momentum_buf if nesterov else momentum_buf
    param -= lr * g


def reference_adam_step(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps, weight_decay=0.0,
                        decoupled_weight_decay=False, amsgrad=False, max_exp_avg_sq=None, maximize=False):
    """Whole-array NumPy version of the Adam/AdamW update (in place, like the kernels)."""
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * param
    exp_avg += (1 - beta1) * (g - exp_avg)
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * g * g
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    else:
        v = exp_avg_sq
    denom = np.sqrt(v) / math.sqrt(1 - beta2**step) + eps
    param -= lr / (1 - beta1**step) * exp_avg / denom


# ============================================================================ per-element math
# Plain Python, compiled for each target. Arguments are scalars of the parameter's dtype (the
# flags are booleans); each returns the new values of the parameter and of its state.


def _sgd_element(p, g, buf, lr, momentum, one_minus_dampening, weight_decay,
                 nesterov, maximize, first_step, use_momentum):
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    if use_momentum:
        if first_step:
            buf = g
        else:
            buf = buf * momentum + one_minus_dampening * g
        if nesterov:
            g = g + momentum * buf
        else:
            g = buf
    return p - lr * g, buf


def _adam_element(p, g, m, v, v_max, neg_step_size, bias_correction2_sqrt, eps, one_minus_beta1,
                  beta2, one_minus_beta2, weight_decay, decay_factor, decoupled, amsgrad, maximize):
    if maximize:
        g = -g
    if weight_decay != 0:
        if decoupled:
            p = p * decay_factor
        else:
            g = g + weight_decay * p
    m = m + one_minus_beta1 * (g - m)
    v = v * beta2 + one_minus_beta2 * g * g
    if amsgrad:
        if v > v_max:
            v_max = v
        denom = math.sqrt(v_max) / bias_correction2_sqrt + eps
    else:
        denom = math.sqrt(v) / bias_correction2_sqrt + eps
    return p + neg_step_size * (m / denom), m, v, v_max


# ============================================================================ CPU (Numba)

_sgd_element_cpu = numba.njit(inline="always")(_sgd_element)
_adam_element_cpu = numba.njit(inline="always")(_adam_element)


@serial_and_parallel()
def _sgd_cpu(p, g, buf, lr, momentum, one_minus_dampening, weight_decay, nesterov, maximize, first_step,
             use_momentum):
    for i in numba.prange(p.size):
        b = buf[i] if use_momentum else p[i]  # buf is empty without momentum
        p[i], b = _sgd_element_cpu(p[i], g[i], b, lr, momentum, one_minus_dampening, weight_decay,
                                   nesterov, maximize, first_step, use_momentum)
        if use_momentum:
            buf[i] = b


@serial_and_parallel()
def _adam_cpu(p, g, m, v, v_max, neg_step_size, bias_correction2_sqrt, eps, one_minus_beta1, beta2,
              one_minus_beta2, weight_decay, decay_factor, decoupled, amsgrad, maximize):
    # Two loops rather than one that tests amsgrad per element: without amsgrad the loop never
    # touches v_max (empty then), and the serial version, which LLVM vectorises only after
    # checking at run time that the arrays do not overlap, has one array fewer to check
    # (with a per-element test it stayed scalar, 6x slower).
    if amsgrad:
        for i in numba.prange(p.size):
            p[i], m[i], v[i], v_max[i] = _adam_element_cpu(
                p[i], g[i], m[i], v[i], v_max[i], neg_step_size, bias_correction2_sqrt, eps, one_minus_beta1,
                beta2, one_minus_beta2, weight_decay, decay_factor, decoupled, True, maximize)
    else:
        for i in numba.prange(p.size):
            p[i], m[i], v[i], _ = _adam_element_cpu(
                p[i], g[i], m[i], v[i], v[i], neg_step_size, bias_correction2_sqrt, eps, one_minus_beta1,
                beta2, one_minus_beta2, weight_decay, decay_factor, decoupled, False, maximize)


# ============================================================================ CUDA (Numba-CUDA)


@functools.lru_cache(maxsize=None)
def _cuda_kernels():
    """Grid-stride CUDA kernels, compiled by Numba on first launch (per argument types).

    ``numba.cuda`` is imported here, so importing this module never touches CUDA.
    """
    global cuda
    cuda = numba_cuda()

    sgd_element = cuda.jit(device=True)(_sgd_element)
    adam_element = cuda.jit(device=True)(_adam_element)

    @cuda.jit
    def sgd(p, g, buf, lr, momentum, one_minus_dampening, weight_decay, nesterov, maximize, first_step,
            use_momentum):
        for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
            b = buf[i] if use_momentum else p[i]
            p[i], b = sgd_element(p[i], g[i], b, lr, momentum, one_minus_dampening, weight_decay,
                                  nesterov, maximize, first_step, use_momentum)
            if use_momentum:
                buf[i] = b

    @cuda.jit
    def adam(p, g, m, v, v_max, neg_step_size, bias_correction2_sqrt, eps, one_minus_beta1, beta2,
             one_minus_beta2, weight_decay, decay_factor, decoupled, amsgrad, maximize):
        for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
            vm = v_max[i] if amsgrad else v[i]
            p[i], m[i], v[i], vm = adam_element(
                p[i], g[i], m[i], v[i], vm, neg_step_size, bias_correction2_sqrt, eps, one_minus_beta1,
                beta2, one_minus_beta2, weight_decay, decay_factor, decoupled, amsgrad, maximize)
            if amsgrad:
                v_max[i] = vm

    return dict(sgd=sgd, adam=adam)


def _cuda_launch(name, n, *args):
    kernel = _cuda_kernels()[name]
    launch_on_cupy_stream(kernel, min(blocks_for(n, CUDA_BLOCK), CUDA_MAX_BLOCKS), CUDA_BLOCK, 0, args)


# ============================================================================ dispatch


@functools.lru_cache(maxsize=256)
def _sgd_scalars(dtype, lr, momentum, dampening, weight_decay):
    dt = dtype.type
    return dt(lr), dt(momentum), dt(1 - dampening), dt(weight_decay)


@functools.lru_cache(maxsize=256)
def _adam_scalars(dtype, step, lr, beta1, beta2, eps, weight_decay):
    """The step's scalars, computed in float64 and rounded to the parameter's dtype once."""
    dt = dtype.type
    return (dt(-lr / (1 - beta1**step)), dt(math.sqrt(1 - beta2**step)), dt(eps), dt(1 - beta1),
            dt(beta2), dt(1 - beta2), dt(weight_decay), dt(1 - lr * weight_decay))


def sgd_step(param, grad, momentum_buf, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False, first_step=False, impl=None):
    """One ``torch.optim.SGD`` step on ``param`` (and ``momentum_buf``), in place.

    ``param`` and ``momentum_buf`` (like param; required when ``momentum != 0``, else None) are
    C-contiguous; ``grad`` is like param, any strides. ``first_step=True`` on the step that
    initialises the buffer to the gradient.
    """
    impl = resolve_impl(impl, param)
    if impl == "reference":
        return reference_sgd_step(param, grad, momentum_buf, lr=lr, momentum=momentum, dampening=dampening,
                                  weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                                  first_step=first_step)
    if param.size == 0:
        return None
    use_momentum = momentum != 0
    p = param.reshape(-1)
    buf = momentum_buf.reshape(-1) if use_momentum else p[:0]  # empty: not touched without momentum
    args = (p, grad.reshape(-1), buf, *_sgd_scalars(param.dtype, lr, momentum, dampening, weight_decay),
            nesterov, maximize, first_step, use_momentum)
    if impl == "cpu":
        _sgd_cpu.for_work(p.size, CPU_PARALLEL_MIN_ELEMENTS)(*args)
    else:
        _cuda_launch("sgd", p.size, *args)
    return None


def adam_step(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps, weight_decay=0.0,
              decoupled_weight_decay=False, amsgrad=False, max_exp_avg_sq=None, maximize=False, impl=None):
    """One ``torch.optim.Adam`` (or, with ``decoupled_weight_decay=True``, ``AdamW``) step, in place.

    ``step`` is this step's 1-based number (for the bias corrections); the state arrays
    (like param, C-contiguous) start as zeros; ``max_exp_avg_sq`` is required when ``amsgrad``.
    """
    impl = resolve_impl(impl, param)
    if impl == "reference":
        return reference_adam_step(param, grad, exp_avg, exp_avg_sq, step=step, lr=lr, beta1=beta1,
                                   beta2=beta2, eps=eps, weight_decay=weight_decay,
                                   decoupled_weight_decay=decoupled_weight_decay, amsgrad=amsgrad,
                                   max_exp_avg_sq=max_exp_avg_sq, maximize=maximize)
    if param.size == 0:
        return None
    p, v = param.reshape(-1), exp_avg_sq.reshape(-1)
    args = (p, grad.reshape(-1), exp_avg.reshape(-1), v, max_exp_avg_sq.reshape(-1) if amsgrad else v[:0],
            *_adam_scalars(param.dtype, step, lr, beta1, beta2, eps, weight_decay),
            decoupled_weight_decay, amsgrad, maximize)
    if impl == "cpu":
        _adam_cpu.for_work(p.size, CPU_PARALLEL_MIN_ELEMENTS)(*args)
    else:
        _cuda_launch("adam", p.size, *args)
    return None
