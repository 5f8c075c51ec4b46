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
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np

from ._common import (array_module, numba_cuda, parallel_threshold, blocks_for, check_array, check_float_dtype, check_like, check_same_kind,
                      is_cuda_array, launch_on_cupy_stream, serial_and_parallel)

# Threads per block of the CUDA update kernels, and the most blocks launched (each thread then
# grid-strides over the remaining elements).
CUDA_BLOCK = 256
CUDA_MAX_BLOCKS = 4096

# Parameters of at least this many elements run the parallel CPU loops, smaller ones the serial
# loops. Measured by `python -m benchmarks.kernels` (its crossover table: each call after 5 ms
# idle, float32) on this project's 2-core AMD EPYC, which other jobs share. Quiet machine: the
# parallel AdamW loop pays from about 128K elements (256K: serial 0.30 ms, parallel 0.19; 4M:
# 4.43 vs 1.90); SGD, bound by memory bandwidth, gains little or nothing (4M: 2.13 vs 2.44).
# Busy machine: a parallel call that finds the other core taken waits out a scheduler slice,
# 3-7 ms whatever the size, so the parallel *mean* stays above the serial one up to about 2M
# elements (AdamW 1M: 1.06 vs 8.4 ms; 2M: 2.39 vs 2.43; 4M: 4.0 vs 3.95, medians 4.07 vs 2.29).
# 2M keeps every small and medium parameter, a training step's among them, serial; on a
# dedicated machine 1 << 17 would do.
CPU_PARALLEL_MIN_ELEMENTS = parallel_threshold(1 << 21)  # env TINYMM_PARALLEL_MIN_ELEMENTS overrides

# ``numba.cuda``, bound on first use by _cuda_kernels. It must be a module global (not a local
# of the factory): the CUDA simulator swaps the kernels' global ``cuda`` for its fake module.
cuda = None


# ============================================================================ input checks


def _check_in_place(fn, name, a):
    if not a.flags.c_contiguous:
        raise ValueError(f"{fn}: {name} is not C-contiguous; it is updated in place, so it must be")


def _flat_state(fn, name, a, param):
    """``a`` is a C-contiguous array like ``param``; returns its raveled (aliasing) view."""
    check_like(fn, name, a, param.shape, param.dtype, "param")
    _check_in_place(fn, name, a)
    return a.reshape(-1)


def _check_param(fn, param):
    check_array(fn, "param", param)
    check_float_dtype(fn, "param", param)
    _check_in_place(fn, "param", param)
    if not getattr(param.flags, "writeable", True):  # CuPy arrays have no such flag
        raise ValueError(f"{fn}: param is read-only")
    return param.reshape(-1)


def _check_grad(fn, grad, param):
    check_like(fn, "grad", grad, param.shape, param.dtype, "param")
    return grad.reshape(-1)  # a copy only if grad is not contiguous


def _check_hyper(fn, **values):
    for name, v in values.items():
        if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool):
            raise TypeError(f"{fn}: {name} must be a number, got {type(v).__name__}")
        if not float(v) >= 0.0:
            raise ValueError(f"{fn}: {name} is {v}, expected a number >= 0")


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


# ============================================================================ public API
# sgd_step / adam_step dispatch on the array type; cpu_* / cuda_* force one path (the CUDA path
# also takes NumPy arrays, which is how it runs under NUMBA_ENABLE_CUDASIM=1).


def _sgd(fn, use_cuda, param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov, maximize,
         first_step):
    p = _check_param(fn, param)
    g = _check_grad(fn, grad, param)
    _check_hyper(fn, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
    use_momentum = momentum != 0
    if nesterov and (not use_momentum or dampening != 0):
        raise ValueError(f"{fn}: nesterov momentum requires momentum > 0 and dampening = 0, "
                         f"got momentum={momentum}, dampening={dampening}")
    if use_momentum:
        if momentum_buf is None:
            raise ValueError(f"{fn}: momentum_buf is None, expected an array like param when momentum != 0")
        buf = _flat_state(fn, "momentum_buf", momentum_buf, param)
    else:
        buf = array_module(param).empty(0, dtype=param.dtype)
    check_same_kind(fn, param=param, grad=grad, momentum_buf=momentum_buf)
    if p.size == 0:
        return
    dt = param.dtype.type
    args = (p, g, buf, dt(lr), dt(momentum), dt(1 - dampening), dt(weight_decay),
            bool(nesterov), bool(maximize), bool(first_step), use_momentum)
    if is_cuda_array(param) if use_cuda is None else use_cuda:
        _cuda_launch("sgd", p.size, *args)
    else:
        _sgd_cpu.for_work(p.size, CPU_PARALLEL_MIN_ELEMENTS)(*args)


def _adam(fn, use_cuda, param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
          decoupled_weight_decay, amsgrad, max_exp_avg_sq, maximize):
    p = _check_param(fn, param)
    g = _check_grad(fn, grad, param)
    m = _flat_state(fn, "exp_avg", exp_avg, param)
    v = _flat_state(fn, "exp_avg_sq", exp_avg_sq, param)
    _check_hyper(fn, lr=lr, eps=eps, weight_decay=weight_decay)
    for name, beta in (("beta1", beta1), ("beta2", beta2)):
        _check_hyper(fn, **{name: beta})
        if not beta < 1.0:
            raise ValueError(f"{fn}: {name} is {beta}, expected a number in [0, 1)")
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"{fn}: step is {step!r}, expected an int >= 1 (steps count from 1)")
    if amsgrad:
        if max_exp_avg_sq is None:
            raise ValueError(f"{fn}: max_exp_avg_sq is None, expected an array like param when amsgrad=True")
        v_max = _flat_state(fn, "max_exp_avg_sq", max_exp_avg_sq, param)
    else:
        v_max = array_module(param).empty(0, dtype=param.dtype)
    check_same_kind(fn, param=param, grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
                    max_exp_avg_sq=max_exp_avg_sq)
    if p.size == 0:
        return
    dt = param.dtype.type
    args = (p, g, m, v, v_max,
            dt(-lr / (1 - beta1**step)), dt(math.sqrt(1 - beta2**step)), dt(eps),
            dt(1 - beta1), dt(beta2), dt(1 - beta2), dt(weight_decay), dt(1 - lr * weight_decay),
            bool(decoupled_weight_decay), bool(amsgrad), bool(maximize))
    if is_cuda_array(param) if use_cuda is None else use_cuda:
        _cuda_launch("adam", p.size, *args)
    else:
        _adam_cpu.for_work(p.size, CPU_PARALLEL_MIN_ELEMENTS)(*args)


def sgd_step(param, grad, momentum_buf, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False, first_step=False):
    """One ``torch.optim.SGD`` step on ``param`` (and ``momentum_buf``), in place.

    ``momentum_buf`` (like param) is required when ``momentum != 0`` and may be None otherwise;
    pass ``first_step=True`` on the step that should initialise it to the gradient.
    """
    _sgd("sgd_step", None, param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov,
         maximize, first_step)


def adam_step(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps, weight_decay=0.0,
              decoupled_weight_decay=False, amsgrad=False, max_exp_avg_sq=None, maximize=False):
    """One ``torch.optim.Adam`` (or, with ``decoupled_weight_decay=True``, ``AdamW``) step, in place.

    ``step`` is this step's 1-based number (for the bias corrections); the state arrays start
    as zeros. ``max_exp_avg_sq`` (like param) is required when ``amsgrad=True``.
    """
    _adam("adam_step", None, param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
          decoupled_weight_decay, amsgrad, max_exp_avg_sq, maximize)


def cpu_sgd_step(param, grad, momentum_buf, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False, first_step=False):
    _sgd("cpu_sgd_step", False, param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov,
         maximize, first_step)


def cpu_adam_step(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps, weight_decay=0.0,
                  decoupled_weight_decay=False, amsgrad=False, max_exp_avg_sq=None, maximize=False):
    _adam("cpu_adam_step", False, param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
          decoupled_weight_decay, amsgrad, max_exp_avg_sq, maximize)


def cuda_sgd_step(param, grad, momentum_buf, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                  nesterov=False, maximize=False, first_step=False):
    _sgd("cuda_sgd_step", True, param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov,
         maximize, first_step)


def cuda_adam_step(param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps, weight_decay=0.0,
                   decoupled_weight_decay=False, amsgrad=False, max_exp_avg_sq=None, maximize=False):
    _adam("cuda_adam_step", True, param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
          decoupled_weight_decay, amsgrad, max_exp_avg_sq, maximize)
