"""Floor 4: ``conv1d`` and ``conv2d`` (the ``tinymm.kernels.conv`` family), PyTorch's signatures.

Both are one ``Function``, ``ConvFn``: a 1-D convolution is a 2-D one with H = 1 and kh = 1,
and an unbatched input gets a batch of one; both are reshapes of the arrays (views), done in
``ConvFn`` so the graph holds one node per convolution. Arguments are checked once, here;
shape problems raise ``ConvError``, which is both a ``RuntimeError`` (what PyTorch raises)
and a ``ValueError``.
"""
from __future__ import annotations

import numbers

from tinymm.autograd import Function
from tinymm.autograd_graph import checked_operand
from tinymm.ops._util import xp_of
from tinymm.ops import as_tensor, pad, stack, where
from tinymm.tensor import Tensor

from tinymm.nn.functional._checks import DTypeNotImplementedError, check_same_device, check_same_dtype
from tinymm.nn.functional.half import computes_in_float32


class ConvError(RuntimeError, ValueError):
    """Bad convolution arguments: the message names the shapes that came and what was expected."""


class ConvFn(Function):
    """y = conv2d(x, w) + bias through ``tinymm.kernels.conv`` on 4-D views of the arrays.

    ``geometry`` = (stride, padding, dilation, groups) in the kernels' form (pairs, and padding
    ((top, bottom), (left, right))); ``x4_shape``/``w4_shape`` the 4-D views; ``out_shape`` the
    shape handed back (3-D for conv1d, unbatched inputs without the batch dim).
    Saves x and w (C-contiguous 4-D views); the kernels rebuild everything else in backward.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, geometry, x4_shape, w4_shape, out_shape):
        from tinymm.kernels import conv as K

        xp = xp_of(x)
        x4 = xp.ascontiguousarray(x).reshape(x4_shape)
        w4 = xp.ascontiguousarray(weight).reshape(w4_shape)
        y = K.forward(x4, w4, bias, *geometry)
        ctx.save_for_backward(x4, w4)
        ctx.meta = (geometry, x.shape, weight.shape, bias is not None, y.shape)
        return y.reshape(out_shape)

    @staticmethod
    def backward(ctx, g):
        from tinymm.kernels import conv as K

        x4, w4 = ctx.saved_arrays
        geometry, x_shape, w_shape, has_bias, y4_shape = ctx.meta
        need_x, need_w, need_b = (list(ctx.needs_input_grad) + [False] * 3)[:3]
        dy = xp_of(g).ascontiguousarray(g).reshape(y4_shape)  # g may be a broadcast view
        dx, dw, db = K.backward(x4, w4, dy, *geometry, has_bias=has_bias and need_b,
                                need_input=need_x, need_weight=need_w)
        return (None if dx is None else dx.reshape(x_shape),
                None if dw is None else dw.reshape(w_shape), db)

    @staticmethod
    def backward_graph(ctx, g):
        """The same gradients as differentiable ops (``create_graph=True``): dx is the
        transposed convolution of g with w (``ConvTransposeFn`` with this geometry), dw the
        weight-gradient op of x and g (``ConvWeightGradFn``), db = Σ g; each of them has a
        differentiable backward in turn, so any order nests."""
        x4, w4 = ctx.saved_arrays
        geometry, x_shape, w_shape, has_bias, y4_shape = ctx.meta
        need_x, need_w, need_b = (list(ctx.needs_input_grad) + [False] * 3)[:3]
        G = g.reshape(y4_shape)
        dx = dw = db = None
        if need_x:
            dx = ConvTransposeFn.apply(G, checked_operand(ctx, 1, w4), None, geometry, y4_shape, w4.shape, x4.shape, x_shape)
        if need_w:
            dw = ConvWeightGradFn.apply(checked_operand(ctx, 0, x4), G, geometry, x4.shape, y4_shape, w4.shape)
            dw = dw.reshape(w_shape)
        if has_bias and need_b:
            db = G.sum(dim=(0, 2, 3))
        return dx, dw, db


class ConvWeightGradFn(Function):
    """dw = the convolution's weight gradient from its input x and output gradient dy, as an op
    of its own: the weight-gradient half of ``ConvFn``'s backward, recorded by
    ``create_graph=True`` so that it can be differentiated again. It is bilinear in (x, dy):
    with gw the gradient of dw, d/dx = conv_transpose(dy, gw) and d/ddy = conv(x, gw), both
    with the convolution's geometry. Saves x and dy (C-contiguous 4-D views)."""

    @staticmethod
    def forward(ctx, x, dy, geometry, x4_shape, y4_shape, w4_shape):
        from tinymm.kernels import conv as K

        xp = xp_of(x)
        x4 = xp.ascontiguousarray(x).reshape(x4_shape)
        dy4 = xp.ascontiguousarray(dy).reshape(y4_shape)
        # the weight's values take no part in its own gradient: only its shape is passed
        _, dw, _ = K.backward(x4, xp.zeros(w4_shape, x.dtype), dy4, *geometry, has_bias=False,
                              need_input=False, need_weight=True)
        ctx.save_for_backward(x4, dy4)
        ctx.meta = (geometry, x.shape, dy.shape)
        return dw

    @staticmethod
    def backward(ctx, gw):
        from tinymm.kernels import conv as K

        x4, dy4 = ctx.saved_arrays
        geometry, x_shape, dy_shape = ctx.meta
        need_x, need_dy = ctx.needs_input_grad[:2]
        gw = xp_of(gw).ascontiguousarray(gw)
        dx = ddy = None
        if need_x:
            dx, _, _ = K.backward(x4, gw, dy4, *geometry, has_bias=False, need_input=True, need_weight=False)
            dx = dx.reshape(x_shape)
        if need_dy:
            ddy = K.forward(x4, gw, None, *geometry).reshape(dy_shape)
        return dx, ddy

    @staticmethod
    def backward_graph(ctx, gw):
        x4, dy4 = ctx.saved_arrays
        geometry, x_shape, dy_shape = ctx.meta
        need_x, need_dy = ctx.needs_input_grad[:2]
        dx = ddy = None
        if need_x:
            dx = ConvTransposeFn.apply(checked_operand(ctx, 1, dy4), gw, None, geometry, dy4.shape, gw.shape, x4.shape,
                                       x_shape)
        if need_dy:
            ddy = ConvFn.apply(checked_operand(ctx, 0, x4), gw, None, geometry, x4.shape, gw.shape, dy_shape)
        return dx, ddy


# ----------------------------------------------------------------------------- argument checks


def _tuple(fn, name, value, n, minimum):
    """An int or a sequence of n ints, each >= minimum, as an n-tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * n
    try:
        value = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{fn}: {name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(value) != n:
        raise ConvError(f"{fn}: {name} must be an int or a tuple of {n} ints, got {value}")
    if any(v < minimum for v in value):
        raise ConvError(f"{fn}: {name} must be >= {minimum}, got {value}")
    return value


def _padding(fn, padding, n, kernel, stride, dilation):
    """((before, after), ...) per spatial axis from an int, a tuple, "valid" or "same".

    "same" pads d (k - 1) in total along each axis, half before and the rest after (the odd
    extra element of an even kernel goes after, as PyTorch does); it needs stride 1."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ConvError(f"{fn}: padding='same' is not supported for strided convolutions (stride={stride})")
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ConvError(f"{fn}: invalid padding string {padding!r}, expected 'same' or 'valid'")
    return tuple((p, p) for p in _tuple(fn, "padding", padding, n, 0))


def _checked_operands(fn, n, input, weight, bias, groups, weight_dims: str):
    """The checks a convolution and a transposed one share: ranks, float dtypes, one device and
    dtype, groups; returns (x, w, b, unbatched, the input's shape with a batch axis)."""
    x, w = as_tensor(input, fn), as_tensor(weight, fn)
    b = None if bias is None else as_tensor(bias, fn)
    layout = "(B, C, L)" if n == 1 else "(B, C, H, W)"
    if x.ndim not in (n + 1, n + 2):
        raise ConvError(f"{fn}: expected a {n + 2}-D batched {layout} or {n + 1}-D unbatched input, "
                        f"got {x.ndim}-D input of shape {tuple(x.shape)}")
    if w.ndim != n + 2:
        raise ConvError(f"{fn}: weight must be {n + 2}-D ({weight_dims}, "
                        f"{'k' if n == 1 else 'kh, kw'}), got shape {tuple(w.shape)}")
    for name, t in (("input", x), ("weight", w), ("bias", b)):
        if t is not None and t.dtype.kind != "f":
            raise DTypeNotImplementedError(f"{fn}: {name} must be floating (float32 or float64), got {t.dtype}")
    check_same_device(fn, input=x, weight=w, bias=b)
    check_same_dtype(fn, input=x, weight=w, bias=b)
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ConvError(f"{fn}: groups must be a positive int, got {groups!r}")
    unbatched = x.ndim == n + 1
    return x, w, b, unbatched, (1,) + x.shape if unbatched else x.shape


def _conv(fn, n, input, weight, bias, stride, padding, dilation, groups):
    x, w, b, unbatched, batch_shape = _checked_operands(fn, n, input, weight, bias, groups,
                                                        "out_channels, in_channels / groups")
    B, C, spatial = batch_shape[0], batch_shape[1], batch_shape[2:]
    O, Cg, kernel = w.shape[0], w.shape[1], w.shape[2:]
    if O % groups:
        raise ConvError(f"{fn}: weight has {O} output channels (shape {tuple(w.shape)}), not divisible by groups={groups}")
    if Cg * groups != C:
        raise ConvError(f"{fn}: input has {C} channels (shape {tuple(x.shape)}), weight of shape {tuple(w.shape)} "
                        f"with groups={groups} expects {Cg * groups}")
    if b is not None and b.shape != (O,):
        raise ConvError(f"{fn}: bias has shape {tuple(b.shape)}, expected ({O},) for weight of shape {tuple(w.shape)}")
    if any(k == 0 for k in kernel):
        raise ConvError(f"{fn}: weight has an empty kernel (shape {tuple(w.shape)})")
    stride = _tuple(fn, "stride", stride, n, 1)
    dilation = _tuple(fn, "dilation", dilation, n, 1)
    pads = _padding(fn, padding, n, kernel, stride, dilation)
    padded = tuple(s + p0 + p1 for s, (p0, p1) in zip(spatial, pads))
    effective = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    if any(e > p for e, p in zip(effective, padded)):
        raise ConvError(f"{fn}: kernel of size {tuple(kernel)} (dilated {effective}) is larger than the padded "
                        f"input {padded} (input shape {tuple(x.shape)}, padding {pads})")
    out_spatial = tuple((p - e) // s + 1 for p, e, s in zip(padded, effective, stride))
    out_shape = ((B,) if not unbatched else ()) + (O,) + out_spatial
    if n == 1:  # as 2-D: H = 1, kh = 1
        x4_shape, w4_shape = (B, C, 1) + spatial, (O, Cg, 1) + kernel
        geometry = ((1, stride[0]), ((0, 0), pads[0]), (1, dilation[0]), int(groups))
    else:
        x4_shape, w4_shape = (B, C) + spatial, w.shape
        geometry = (stride, pads, dilation, int(groups))
    return ConvFn.apply(x, w, b, geometry, x4_shape, w4_shape, out_shape)


@computes_in_float32  # revd: float16 layers
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution (cross-correlation) over (B, C, L) or unbatched (C, L) input.

    weight (out_channels, in_channels / groups, k), bias (out_channels,) or None; padding an
    int, a 1-tuple, "valid" or "same" (stride 1 only). Returns (B, out_channels, L_out)."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


@computes_in_float32  # revd: float16 layers
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) over (B, C, H, W) or unbatched (C, H, W) input.

    weight (out_channels, in_channels / groups, kh, kw), bias (out_channels,) or None;
    stride, dilation ints or pairs; padding an int, a pair, "valid" or "same" (stride 1 only;
    an even kernel's extra row and column go at the bottom and right, as in PyTorch).
    Returns (B, out_channels, H_out, W_out)."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


# ----------------------------------------------------------------------------- transposed convolution


class ConvTransposeFn(Function):
    """y = conv_transpose2d(x, w) + bias through ``tinymm.kernels.conv``: the transposed
    convolution is the input-gradient of the convolution with the same weight and geometry,
    so forward is the kernels' backward (input only), and backward is
    dx = conv2d(dy, w) (the kernels' forward), dw = the kernels' weight-gradient with dy in
    the convolution's input role and x in its output-gradient role, db = Σ dy.

    ``geometry`` is the convolution's (stride, padding, dilation, groups); ``y4_shape`` the
    4-D output. Saves x and w (C-contiguous 4-D views).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, geometry, x4_shape, w4_shape, y4_shape, out_shape):
        from tinymm.kernels import conv as K

        xp = xp_of(x)
        x4 = xp.ascontiguousarray(x).reshape(x4_shape)
        w4 = xp.ascontiguousarray(weight).reshape(w4_shape)
        # the convolution's input is only a shape here (its values feed the weight gradient only)
        shape_only = xp.empty(y4_shape, x.dtype)
        y, _, _ = K.backward(shape_only, w4, x4, *geometry, has_bias=False, need_input=True, need_weight=False)
        if bias is not None:
            y += bias.reshape(1, -1, 1, 1)
        ctx.save_for_backward(x4, w4)
        ctx.meta = (geometry, x.shape, weight.shape, bias is not None, y4_shape)
        return y.reshape(out_shape)

    @staticmethod
    def backward(ctx, g):
        from tinymm.kernels import conv as K

        x4, w4 = ctx.saved_arrays
        geometry, x_shape, w_shape, has_bias, y4_shape = ctx.meta
        need_x, need_w, need_b = (list(ctx.needs_input_grad) + [False] * 3)[:3]
        g4 = xp_of(g).ascontiguousarray(g).reshape(y4_shape)
        dx = K.forward(g4, w4, None, *geometry).reshape(x_shape) if need_x else None
        dw = None
        if need_w:
            _, dw, _ = K.backward(g4, w4, x4, *geometry, has_bias=False, need_input=False, need_weight=True)
            dw = dw.reshape(w_shape)
        db = g4.sum(axis=(0, 2, 3)) if (has_bias and need_b) else None
        return dx, dw, db

    @staticmethod
    def backward_graph(ctx, g):
        """The same gradients as differentiable ops: dx = conv2d(g, w) (``ConvFn``), dw the
        weight-gradient op with g in the convolution's input role and x in its output-gradient
        role (``ConvWeightGradFn``), db = Σ g."""
        x4, w4 = ctx.saved_arrays
        geometry, x_shape, w_shape, has_bias, y4_shape = ctx.meta
        need_x, need_w, need_b = (list(ctx.needs_input_grad) + [False] * 3)[:3]
        G = g.reshape(y4_shape)
        dx = dw = db = None
        if need_x:
            dx = ConvFn.apply(G, checked_operand(ctx, 1, w4), None, geometry, y4_shape, w4.shape, x_shape)
        if need_w:
            dw = ConvWeightGradFn.apply(G, checked_operand(ctx, 0, x4), geometry, y4_shape, x4.shape, w4.shape)
            dw = dw.reshape(w_shape)
        if has_bias and need_b:
            db = G.sum(dim=(0, 2, 3))
        return dx, dw, db


def _transposed_output_sizes(fn, batch_shape, w, stride, pads, dilation, out_pads):
    """Output spatial sizes of a transposed convolution, with PyTorch's rules for empty
    tensors: an empty batch is fine (even with an empty output); an empty input plane or an
    empty weight (no input channel, output channel or kernel tap) is an error."""
    B, spatial = batch_shape[0], batch_shape[2:]
    if 0 in w.shape:
        raise ConvError(f"{fn}: weight of shape {tuple(w.shape)} is empty; it needs at least one input channel, "
                        f"output channel and kernel tap")
    if B and 0 in spatial:
        raise ConvError(f"{fn}: only an empty batch can be empty, got input of shape {tuple(batch_shape)}")
    out = tuple((L - 1) * s - 2 * p + d * (k - 1) + op + 1
                for L, s, p, d, k, op in zip(spatial, stride, pads, dilation, w.shape[2:], out_pads))
    if any(o < 0 for o in out) or (B and 0 in out):
        raise ConvError(f"{fn}: the output would have size {out} (input {tuple(batch_shape)}, weight {tuple(w.shape)}, "
                        f"stride {stride}, padding {pads}); it must be positive")
    return out


def _empty_result(shape, *operands):
    """A zero-size result that stays in the graph of its operands (their gradients: zeros)."""
    anchor = sum(t.sum() * 0 for t in operands if t is not None)
    return Tensor._wrap(xp_of(operands[0]._data).zeros(shape, operands[0].dtype)) + anchor


def _conv_transpose(fn, n, input, weight, bias, stride, padding, output_padding, groups, dilation):
    x, w, b, unbatched, batch_shape = _checked_operands(fn, n, input, weight, bias, groups,
                                                        "in_channels, out_channels / groups")
    B, C, spatial = batch_shape[0], batch_shape[1], batch_shape[2:]
    Cin, Og, kernel = w.shape[0], w.shape[1], w.shape[2:]
    if Cin != C:
        raise ConvError(f"{fn}: input has {C} channels (shape {tuple(x.shape)}), weight of shape {tuple(w.shape)} expects {Cin}")
    if Cin % groups:
        raise ConvError(f"{fn}: weight has {Cin} input channels (shape {tuple(w.shape)}), not divisible by groups={groups}")
    O = Og * groups
    if b is not None and b.shape != (O,):
        raise ConvError(f"{fn}: bias has shape {tuple(b.shape)}, expected ({O},) for weight of shape {tuple(w.shape)} "
                        f"with groups={groups}")
    stride = _tuple(fn, "stride", stride, n, 1)
    dilation = _tuple(fn, "dilation", dilation, n, 1)
    pads = _tuple(fn, "padding", padding, n, 0)
    out_pads = _tuple(fn, "output_padding", output_padding, n, 0)
    for op, s, d in zip(out_pads, stride, dilation):
        if op >= max(s, d):
            raise ConvError(f"{fn}: output padding must be smaller than either stride or dilation, got "
                            f"output_padding={out_pads}, stride={stride}, dilation={dilation}")
    out_spatial = _transposed_output_sizes(fn, batch_shape, w, stride, pads, dilation, out_pads)
    if 0 in out_spatial:
        return _empty_result(((B,) if not unbatched else ()) + (O,) + out_spatial, x, w, b)
    # The convolution this is the input-gradient of pads (p, p - op + r) with r in [0, s):
    # then its output is exactly the transposed input, and every tap lands inside the pads.
    # An output_padding beyond p + s - 1 (possible when dilation > stride) only adds positions
    # no tap reaches: those are zeros (plus bias), padded on after the kernel.
    extra = tuple(max(0, op - (p + s - 1)) for p, op, s in zip(pads, out_pads, stride))
    if any(extra):
        inner_pads = tuple(op - e for op, e in zip(out_pads, extra))
        y = _conv_transpose(fn, n, x, w, None, stride, pads, inner_pads, groups, dilation)
        y = pad(y, tuple(v for e in reversed(extra) for v in (0, e)))
        return y if b is None else y + b.reshape((O,) + (1,) * n)
    conv_pads = [(p, p - op + max(0, op - p)) for p, op in zip(pads, out_pads)]
    out_shape = ((B,) if not unbatched else ()) + (O,) + out_spatial
    if n == 1:
        x4_shape, w4_shape, y4_shape = (B, C, 1) + spatial, (Cin, Og, 1) + kernel, (B, O, 1) + out_spatial
        geometry = ((1, stride[0]), ((0, 0), conv_pads[0]), (1, dilation[0]), int(groups))
    else:
        x4_shape, w4_shape, y4_shape = (B, C) + spatial, w.shape, (B, O) + out_spatial
        geometry = (stride, tuple(conv_pads), dilation, int(groups))
    return ConvTransposeFn.apply(x, w, b, geometry, x4_shape, w4_shape, y4_shape, out_shape)


@computes_in_float32  # revd: float16 layers
def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 1-D convolution ("deconvolution") of (B, C_in, L) or (C_in, L) input.

    weight (in_channels, out_channels / groups, k), bias (out_channels,) or None.
    L_out = (L − 1)·stride − 2·padding + dilation·(k − 1) + output_padding + 1."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


@computes_in_float32  # revd: float16 layers
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-D convolution of (B, C_in, H, W) or (C_in, H, W) input: the gradient of
    ``conv2d`` with respect to its input. weight (in_channels, out_channels / groups, kh, kw);
    H_out = (H − 1)·stride − 2·padding + dilation·(kh − 1) + output_padding + 1, W likewise."""
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


# ----------------------------------------------------------------------------- 3-D convolution


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution of (B, C, D, H, W) or unbatched (C, D, H, W) input; weight
    (out_channels, in_channels / groups, kd, kh, kw).

    Built on ``conv2d`` (no kernel of its own): for each depth tap i, the input planes that
    tap reads for every output depth are batched into one conv2d with the weight's i-th
    (kh, kw) slice, and the kd results are summed. Autograd comes with those ops."""
    fn = "conv3d"
    x, w = as_tensor(input, fn), as_tensor(weight, fn)
    if x.ndim not in (4, 5):
        raise ConvError(f"{fn}: expected a 5-D batched (B, C, D, H, W) or 4-D unbatched input, got {x.ndim}-D input "
                        f"of shape {tuple(x.shape)}")
    if w.ndim != 5:
        raise ConvError(f"{fn}: weight must be 5-D (out_channels, in_channels / groups, kd, kh, kw), got shape {tuple(w.shape)}")
    unbatched = x.ndim == 4
    if unbatched:
        x = x.reshape(1, *x.shape)
    B, C, D, H, W = x.shape
    O, Cg, kd, kh, kw = w.shape
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ConvError(f"{fn}: groups must be a positive int, got {groups!r}")
    if Cg * groups != C:
        raise ConvError(f"{fn}: input has {C} channels (shape {tuple(x.shape)}), weight of shape {tuple(w.shape)} with groups={groups} "
                        f"expects {Cg * groups}")
    stride = _tuple(fn, "stride", stride, 3, 1)
    dilation = _tuple(fn, "dilation", dilation, 3, 1)
    pads = _padding(fn, padding, 3, (kd, kh, kw), stride, dilation)
    (pd0, pd1), hw_pads = pads[0], pads[1:]
    span = dilation[0] * (kd - 1) + 1
    if D + pd0 + pd1 < span:
        raise ConvError(f"{fn}: kernel of depth {kd} (dilated {span}) is larger than the padded input depth "
                        f"{D + pd0 + pd1} (input shape {tuple(x.shape)})")
    Do = (D + pd0 + pd1 - span) // stride[0] + 1
    if pd0 or pd1:
        x = pad(x, (0, 0, 0, 0, pd0, pd1))
    if hw_pads[0][0] != hw_pads[0][1] or hw_pads[1][0] != hw_pads[1][1]:
        # an even kernel with padding="same": pad H and W here, asymmetric
        x = pad(x, (hw_pads[1][0], hw_pads[1][1], hw_pads[0][0], hw_pads[0][1], 0, 0))
        hw = (0, 0)
    else:
        hw = (hw_pads[0][0], hw_pads[1][0])
    sd, dd = stride[0], dilation[0]
    total = None
    for i in range(kd):
        planes = x[:, :, i * dd: i * dd + sd * (Do - 1) + 1: sd]  # (B, C, Do, H', W')
        planes = planes.permute(0, 2, 1, 3, 4).reshape(B * Do, C, *planes.shape[3:])
        y = conv2d(planes, w[:, :, i], None, stride[1:], hw, dilation[1:], groups)  # (B·Do, O, Ho, Wo)
        total = y if total is None else total + y
    # contiguous like PyTorch's conv3d output (C3D's x.view(-1, 8192) after the last conv)
    out = total.reshape(B, Do, O, *total.shape[2:]).permute(0, 2, 1, 3, 4).contiguous()
    if bias is not None:
        b = as_tensor(bias, fn)
        if b.shape != (O,):
            raise ConvError(f"{fn}: bias has shape {tuple(b.shape)}, expected ({O},) for weight of shape {tuple(w.shape)}")
        out = out + b.reshape(1, O, 1, 1, 1)
    return out.reshape(*out.shape[1:]) if unbatched else out


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 3-D convolution of (B, C_in, D, H, W) or (C_in, D, H, W) input; weight
    (in_channels, out_channels / groups, kd, kh, kw).

    Built on ``conv_transpose2d``: each depth tap i spreads every input depth slice z to output
    depth z·stride + i·dilation − padding, so each output depth is a sum of a few 2-D
    transposed convolutions of slices (one batched call per tap)."""
    fn = "conv_transpose3d"
    x, w = as_tensor(input, fn), as_tensor(weight, fn)
    if x.ndim not in (4, 5):
        raise ConvError(f"{fn}: expected a 5-D batched (B, C, D, H, W) or 4-D unbatched input, got {x.ndim}-D input "
                        f"of shape {tuple(x.shape)}")
    if w.ndim != 5:
        raise ConvError(f"{fn}: weight must be 5-D (in_channels, out_channels / groups, kd, kh, kw), got shape "
                        f"{tuple(w.shape)}")
    unbatched = x.ndim == 4
    if unbatched:
        x = x.reshape(1, *x.shape)
    B, C, D = x.shape[:3]
    if w.shape[0] != C:
        raise ConvError(f"{fn}: input has {C} channels (shape {tuple(x.shape)}), weight of shape {tuple(w.shape)} expects {w.shape[0]}")
    kd = w.shape[2]
    stride = _tuple(fn, "stride", stride, 3, 1)
    dilation = _tuple(fn, "dilation", dilation, 3, 1)
    pads = _tuple(fn, "padding", padding, 3, 0)
    out_pads = _tuple(fn, "output_padding", output_padding, 3, 0)
    if any(op >= max(s, d) for op, s, d in zip(out_pads, stride, dilation)):
        raise ConvError(f"{fn}: output padding must be smaller than either stride or dilation, got "
                        f"output_padding={out_pads}, stride={stride}, dilation={dilation}")
    Do, Ho, Wo = _transposed_output_sizes(fn, x.shape, w, stride, pads, dilation, out_pads)
    if 0 in (Do, Ho, Wo):
        O = w.shape[1] * groups
        return _empty_result(((B,) if not unbatched else ()) + (O, Do, Ho, Wo), x, w, bias)
    planes = x.permute(0, 2, 1, 3, 4).reshape(B * D, C, *x.shape[3:])
    per_tap = []
    for i in range(kd):
        y = conv_transpose2d(planes, w[:, :, i], None, stride[1:], pads[1:], out_pads[1:], groups, dilation[1:])
        per_tap.append(y.reshape(B, D, *y.shape[1:]))  # (B, D, O, Ho, Wo)
    O, Ho, Wo = per_tap[0].shape[2:]
    xp = xp_of(x._data)
    # a depth no tap reaches is zero; taking it from a tap keeps x's gradient defined (zeros)
    # even when no depth is reached at all
    zero = where(Tensor._wrap(xp.zeros((B, O, Ho, Wo), bool)), per_tap[0][:, 0], 0.0)
    slices = []
    for od in range(Do):
        total = None
        for i in range(kd):
            z, rem = divmod(od + pads[0] - i * dilation[0], stride[0])
            if rem == 0 and 0 <= z < D:
                term = per_tap[i][:, z]
                total = term if total is None else total + term
        slices.append(zero if total is None else total)
    out = stack(slices, 2)
    if bias is not None:
        b = as_tensor(bias, fn)
        if b.shape != (O,):
            raise ConvError(f"{fn}: bias has shape {tuple(b.shape)}, expected ({O},) for weight of shape {tuple(w.shape)} with "
                            f"groups={groups}")
        out = out + b.reshape(1, O, 1, 1, 1)
    return out.reshape(*out.shape[1:]) if unbatched else out
