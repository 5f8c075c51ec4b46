"""Floor 4: ``batch_norm`` (the ``tinymm.kernels.batchnorm`` family) with PyTorch's signature.

``input`` is (N, C, *) with at least two dims; statistics are per channel (dim 1) over every
other dim. With ``training`` the batch statistics normalise and, when ``running_mean`` /
``running_var`` are given, those buffers are updated in place (momentum, unbiased variance);
without ``training`` the running statistics normalise. The momentum here is a number: the
``BatchNorm`` modules turn ``momentum=None`` (a cumulative average) into 1 / batches seen.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import checked_operand
from tinymm.ops import as_tensor
from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor

from tinymm.nn.functional._checks import DTypeNotImplementedError, ShapeError, check_same_device, check_same_dtype
from tinymm.nn.functional.half import computes_in_float32


class BatchNormFn(Function):
    """Batch norm of x (N, C, S) through ``tinymm.kernels.batchnorm``.

    Inputs x, weight, bias (Tensors or None); the running statistics come as arrays updated in
    place by the kernel. Saves x, the per-channel mean and 1/std, and the weight; never the
    normalised output.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        from tinymm.kernels import batchnorm as K

        x3 = x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))  # not -1: N may be 0
        y, mean, rstd = K.forward(x3, weight, bias, running_mean, running_var, training, momentum, eps)
        ctx.save_for_backward(x3, mean, rstd, weight)
        ctx.meta = (x.shape, training or running_mean is None, bias is not None)
        ctx.eps = eps
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, gy):
        from tinymm.kernels import batchnorm as K

        x3, mean, rstd, weight = ctx.saved_arrays
        shape, batch_stats, has_bias = ctx.meta
        # dx allocated in the input's shape and filled through a view: a reshaped view returned
        # here would be copied by the engine before it became x.grad (not an array of its own)
        dx, dw, db = K.backward(gy.reshape(x3.shape), x3, mean, rstd, weight, batch_stats,
                                out=xp_of(gy).empty(shape, x3.dtype))
        return dx, (dw if weight is not None else None), (db if has_bias else None)

    @staticmethod
    def backward_graph(ctx, gy):
        """The kernel's formulas (module docstring of ``kernels.batchnorm``) on Tensors, for
        ``create_graph=True``. With batch statistics they are recomputed from x, so that they
        stay differentiable: x̂ = (x − μ)·r, r = 1/√(σ² + eps) per channel, and
        dx = w·r·(g − mean(g) − x̂·mean(g·x̂)); with running statistics μ and r are constants
        and dx = w·r·g. dw = Σ g·x̂, db = Σ g over (N, S)."""
        x3, mean, rstd, weight = ctx.saved_arrays
        shape, batch_stats, has_bias = ctx.meta
        nx, nw, nb = ctx.needs_input_grad[:3]
        X = checked_operand(ctx, 0, x3).reshape(x3.shape)
        C = x3.shape[1]
        g = gy.reshape(x3.shape)
        W = None
        if weight is not None:
            W = (ctx.inputs[1] if nw else Tensor._wrap(weight)).reshape(1, C, 1)
        if batch_stats:
            xc = X - X.mean(dim=(0, 2), keepdim=True)
            r = ((xc * xc).mean(dim=(0, 2), keepdim=True) + ctx.eps).rsqrt()
        else:
            xc, r = X - Tensor._wrap(mean.reshape(1, C, 1)), Tensor._wrap(rstd.reshape(1, C, 1))
        xhat = xc * r
        dx = dw = db = None
        if nx:
            gw = g if W is None else g * W
            if batch_stats:
                gw = gw - gw.mean(dim=(0, 2), keepdim=True) - xhat * (gw * xhat).mean(dim=(0, 2), keepdim=True)
            dx = (r * gw).reshape(shape)
        if nw and weight is not None:
            dw = (g * xhat).sum(dim=(0, 2))
        if nb and has_bias:
            db = g.sum(dim=(0, 2))
        return dx, dw, db


@computes_in_float32(writeback=("running_mean", "running_var"))  # revd: float16 layers
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """Normalise each channel of ``input`` (N, C, *); see the module docstring.

    Shape problems raise ``ShapeError`` (a RuntimeError as PyTorch's, and a ValueError): fewer
    than 2 dims, a parameter or statistic whose length is not C, and, in training, a single
    value per channel (no variance to estimate).
    """
    fn = "batch_norm"
    x = as_tensor(input, fn)
    if x.dtype.kind != "f":
        raise DTypeNotImplementedError(f"{fn}: input must be float32 or float64, got {x.dtype}")
    if x.ndim < 2:
        raise ShapeError(f"{fn}: expected an input of at least 2 dims (N, C, *), got shape {tuple(x.shape)}")
    channels = x.shape[1]
    given = dict(weight=weight, bias=bias, running_mean=running_mean, running_var=running_var)
    # NumPy arrays of one dtype throughout (the common case) need no device or dtype check
    xd = x._data
    uniform = type(xd) is np.ndarray
    for name, t in given.items():
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: {name} must be a Tensor or None, got {type(t).__name__}")
        if t._data.shape != (channels,):
            raise ShapeError(f"{fn}: {name} has shape {tuple(t.shape)}, expected ({channels},) for an input of "
                             f"shape {tuple(x.shape)} ({channels} channels)")
        uniform = uniform and type(t._data) is np.ndarray and t._data.dtype == xd.dtype
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{fn}: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ShapeError(f"{fn}: running_mean and running_var must be given in evaluation mode (training=False)")
    if training and x._data.size // max(channels, 1) == 1:
        raise ShapeError(f"{fn}: expected more than 1 value per channel when training, got an input of shape "
                         f"{tuple(x.shape)}")
    if not isinstance(momentum, numbers.Real):
        raise TypeError(f"{fn}: momentum must be a number, got {momentum!r}")
    if not uniform:
        check_same_device(fn, input=x, **given)
        check_same_dtype(fn, input=x, **given)
    if x._data.size == 0:  # nothing to normalise; PyTorch leaves the running statistics alone
        view = (1, channels) + (1,) * (x.ndim - 2)
        y = x if weight is None else x * weight.reshape(view)
        return y if bias is None else y + bias.reshape(view)
    return BatchNormFn.apply(
        x, weight, bias,
        None if running_mean is None else running_mean._data,
        None if running_var is None else running_var._data,
        bool(training), float(momentum), float(eps),
    )


@computes_in_float32(writeback=("running_mean", "running_var"))  # revd: float16 layers
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5):
    """Normalise each (sample, channel) plane of (N, C, *) over its spatial positions.

    As PyTorch computes it: a batch norm of the input seen as (1, N·C, *), so the batch-norm
    kernel does the work; the running statistics, when given, are updated with the mean over
    the samples of each channel's instance statistics. ``use_input_stats=False`` normalises
    with the running statistics instead (a plain eval-mode batch norm)."""
    fn = "instance_norm"
    x = as_tensor(input, fn)
    if x.ndim < 3:
        raise ShapeError(f"{fn}: expected an input of at least 3 dims (N, C, *), got shape {tuple(x.shape)}")
    N, C = x.shape[0], x.shape[1]
    if not use_input_stats:
        return batch_norm(x, running_mean, running_var, weight, bias, False, momentum, eps)
    for name, t in dict(weight=weight, bias=bias, running_mean=running_mean, running_var=running_var).items():
        if t is not None and tuple(t.shape) != (C,):
            raise ShapeError(f"{fn}: {name} has shape {tuple(t.shape)}, expected ({C},) for an input of shape "
                             f"{tuple(x.shape)} ({C} channels)")
    if int(np.prod(x.shape[2:])) <= 1:
        raise ShapeError(f"{fn}: Expected more than 1 spatial element when training, got input of shape "
                         f"{tuple(x.shape)}")
    rm = rv = None
    if running_mean is not None:
        xp = xp_of(running_mean._data)
        rm, rv = Tensor._of(xp.tile(running_mean._data, N)), Tensor._of(xp.tile(running_var._data, N))
    w = None if weight is None else weight.repeat(N)
    b = None if bias is None else bias.repeat(N)
    y = batch_norm(x.reshape((1, N * C) + tuple(x.shape[2:])), rm, rv, w, b, True, momentum, eps)
    if rm is not None:
        running_mean._data[...] = rm._data.reshape(N, C).mean(axis=0)
        running_var._data[...] = rv._data.reshape(N, C).mean(axis=0)
    return y.reshape(x.shape)
