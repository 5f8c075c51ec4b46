"""Floor 4: rearrangements of image tensors, PyTorch's signatures.

- ``pixel_shuffle`` (*, C·r², H, W) → (*, C, H·r, W·r) and ``pixel_unshuffle`` its inverse;
  ``channel_shuffle`` (N, g·k, *) → channels reordered k·g. All three are reshape + permute
  (autograd comes with those ops).
- ``unfold`` (im2col) (N, C, H, W) → (N, C·kh·kw, L): every sliding block as a column, rows
  ordered channel-major then kernel row, kernel column; L = Ho·Wo blocks in row-major order.
  ``fold`` (col2im) is its adjoint: it sums each column back into its block (overlaps add), so
  ``fold(unfold(x))`` is x times the number of blocks covering each pixel. One ``Function``
  each, the other's forward as its backward: both loop over the kh·kw kernel taps, each tap a
  strided view of the padded image (the same views as the convolution reference's).
"""
from __future__ import annotations

import numbers

from tinymm.autograd import Function
from tinymm.ops import as_tensor
from tinymm.ops._util import xp_of

from tinymm.nn.functional._checks import ShapeError


# ----------------------------------------------------------------------------- pixel / channel shuffle


def _factor(fn, name, r):
    if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r <= 0:
        raise ValueError(f"{fn}: {name} must be a positive int, got {r!r}")
    return int(r)


def pixel_shuffle(input, upscale_factor: int):
    """(*, C·r², H, W) → (*, C, H·r, W·r): each group of r² channels becomes an r×r block."""
    fn = "pixel_shuffle"
    x = as_tensor(input, fn)
    r = _factor(fn, "upscale_factor", upscale_factor)
    if x.ndim < 3:
        raise ShapeError(f"{fn}: expected an input of at least 3 dims (*, C, H, W), got shape {tuple(x.shape)}")
    *lead, C, H, W = x.shape
    if C % (r * r):
        raise ShapeError(f"{fn}: expects its input's 'channel' dimension to be divisible by the square of "
                         f"upscale_factor, but input.size(-3)={C} is not divisible by {r * r}")
    k = len(lead)
    y = x.reshape(*lead, C // (r * r), r, r, H, W)
    y = y.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)  # (*, c, H, r, W, r)
    return y.reshape(*lead, C // (r * r), H * r, W * r)


def pixel_unshuffle(input, downscale_factor: int):
    """(*, C, H·r, W·r) → (*, C·r², H, W), the inverse of ``pixel_shuffle``."""
    fn = "pixel_unshuffle"
    x = as_tensor(input, fn)
    r = _factor(fn, "downscale_factor", downscale_factor)
    if x.ndim < 3:
        raise ShapeError(f"{fn}: expected an input of at least 3 dims (*, C, H, W), got shape {tuple(x.shape)}")
    *lead, C, H, W = x.shape
    if H % r or W % r:
        raise ShapeError(f"{fn}: expects height and width to be divisible by downscale_factor={r}, got input of "
                         f"shape {tuple(x.shape)}")
    k = len(lead)
    y = x.reshape(*lead, C, H // r, r, W // r, r)
    y = y.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)  # (*, C, r, r, h, w)
    return y.reshape(*lead, C * r * r, H // r, W // r)


def channel_shuffle(input, groups: int):
    """(N, g·k, *) → channels in the order (k, g): ShuffleNet's mixing of grouped channels."""
    fn = "channel_shuffle"
    x = as_tensor(input, fn)
    g = _factor(fn, "groups", groups)
    if x.ndim < 3:
        raise ShapeError(f"{fn}: expected an input of at least 3 dims (N, C, *), got shape {tuple(x.shape)}")
    N, C, *rest = x.shape
    if C % g:
        raise ShapeError(f"{fn}: number of channels must be divisible by groups. Got {C} channels and {g} groups.")
    y = x.reshape(N, g, C // g, *rest).transpose(1, 2)
    return y.reshape(N, C, *rest)


# ----------------------------------------------------------------------------- unfold / fold


def _tap(padded, i, j, Ho, Wo, stride, dilation):
    """The (N, C, Ho, Wo) strided view of the padded image that kernel tap (i, j) reads."""
    (sh, sw), (dh, dw) = stride, dilation
    return padded[:, :, i * dh: i * dh + sh * (Ho - 1) + 1: sh, j * dw: j * dw + sw * (Wo - 1) + 1: sw]


def _im2col(x, kernel, dilation, padding, stride, out_hw):
    """(N, C, H, W) → (N, C·kh·kw, Ho·Wo)."""
    xp = xp_of(x)
    (kh, kw), (ph, pw), (Ho, Wo) = kernel, padding, out_hw
    N, C = x.shape[:2]
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = xp.empty((N, C, kh, kw, Ho, Wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = _tap(padded, i, j, Ho, Wo, stride, dilation)
    return cols.reshape(N, C * kh * kw, Ho * Wo)


def _col2im(cols, image_hw, kernel, dilation, padding, stride, out_hw):
    """(N, C·kh·kw, Ho·Wo) → (N, C, H, W), overlapping blocks summed."""
    xp = xp_of(cols)
    (kh, kw), (ph, pw), (Ho, Wo), (H, W) = kernel, padding, out_hw, image_hw
    N = cols.shape[0]
    C = cols.shape[1] // (kh * kw)
    c6 = cols.reshape(N, C, kh, kw, Ho, Wo)
    padded = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            view = _tap(padded, i, j, Ho, Wo, stride, dilation)
            view += c6[:, :, i, j]
    return xp.ascontiguousarray(padded[:, :, ph: ph + H, pw: pw + W])


class UnfoldFn(Function):
    """im2col of (N, C, H, W); backward is col2im. Saves nothing but the geometry."""

    @staticmethod
    def forward(ctx, x, kernel, dilation, padding, stride, out_hw):
        ctx.meta = (x.shape[2:], kernel, dilation, padding, stride, out_hw)
        return _im2col(x, kernel, dilation, padding, stride, out_hw)

    @staticmethod
    def backward(ctx, g):
        return _col2im(g, *ctx.meta)


class FoldFn(Function):
    """col2im of (N, C·kh·kw, L) into (N, C, H, W); backward is im2col. Saves the geometry."""

    @staticmethod
    def forward(ctx, cols, image_hw, kernel, dilation, padding, stride, out_hw):
        ctx.meta = (kernel, dilation, padding, stride, out_hw)
        return _col2im(cols, image_hw, kernel, dilation, padding, stride, out_hw)

    @staticmethod
    def backward(ctx, g):
        return _im2col(g, *ctx.meta)


def _pair(fn, name, value, minimum):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value),) * 2
    try:
        value = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}") from None
    if len(value) != 2:
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in value):
        raise ShapeError(f"{fn}: {name} must be >= {minimum}, got {value}")
    return value


def _blocks(fn, image_hw, kernel, dilation, padding, stride):
    """(Ho, Wo): how many blocks fit along each axis; refuses a kernel larger than the padded image."""
    out = []
    for n, k, d, p, s in zip(image_hw, kernel, dilation, padding, stride):
        span = d * (k - 1) + 1
        if n + 2 * p < span:
            raise ShapeError(f"{fn}: kernel {kernel} with dilation {dilation} does not fit the image of size "
                             f"{tuple(image_hw)} padded by {padding}")
        out.append((n + 2 * p - span) // s + 1)
    return tuple(out)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding blocks of (N, C, H, W) (or unbatched (C, H, W)) as columns:
    (N, C·kh·kw, L) with L = Ho·Wo; see the module docstring for the order."""
    fn = "unfold"
    x = as_tensor(input, fn)
    if x.ndim not in (3, 4):
        raise ShapeError(f"{fn}: Input Error: Only 3D or 4D input Tensors are supported (got {x.ndim}D, shape "
                         f"{tuple(x.shape)})")
    kernel = _pair(fn, "kernel_size", kernel_size, 1)
    dilation, stride = _pair(fn, "dilation", dilation, 1), _pair(fn, "stride", stride, 1)
    padding = _pair(fn, "padding", padding, 0)
    unbatched = x.ndim == 3
    x4 = x.reshape(1, *x.shape) if unbatched else x
    out_hw = _blocks(fn, x4.shape[2:], kernel, dilation, padding, stride)
    y = UnfoldFn.apply(x4, kernel, dilation, padding, stride, out_hw)
    return y.reshape(*y.shape[1:]) if unbatched else y


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum columns (N, C·kh·kw, L) (or unbatched (C·kh·kw, L)) back into an image
    (N, C, *output_size); L must equal the number of blocks that fit in ``output_size``."""
    fn = "fold"
    x = as_tensor(input, fn)
    if x.ndim not in (2, 3):
        raise ShapeError(f"{fn}: Input Error: Only unbatched (2D) or batched (3D) input Tensors are supported "
                         f"(got {x.ndim}D, shape {tuple(x.shape)})")
    image_hw = _pair(fn, "output_size", output_size, 1)
    kernel = _pair(fn, "kernel_size", kernel_size, 1)
    dilation, stride = _pair(fn, "dilation", dilation, 1), _pair(fn, "stride", stride, 1)
    padding = _pair(fn, "padding", padding, 0)
    unbatched = x.ndim == 2
    x3 = x.reshape(1, *x.shape) if unbatched else x
    kk = kernel[0] * kernel[1]
    if x3.shape[1] % kk:
        raise ShapeError(f"{fn}: Expected size of input's dimension 1 to be divisible by the product of "
                         f"kernel_size, but got input.size(1)={x3.shape[1]} and kernel_size={kernel}")
    out_hw = _blocks(fn, image_hw, kernel, dilation, padding, stride)
    if x3.shape[2] != out_hw[0] * out_hw[1]:
        raise ShapeError(f"{fn}: Given output_size={image_hw}, kernel_size={kernel}, dilation={dilation}, "
                         f"padding={padding}, stride={stride}, expected size of input's dimension 2 to match the "
                         f"calculated number of sliding blocks {out_hw[0]} * {out_hw[1]} = {out_hw[0] * out_hw[1]}, "
                         f"but got input.size(2)={x3.shape[2]}")
    y = FoldFn.apply(x3, image_hw, kernel, dilation, padding, stride, out_hw)
    return y.reshape(*y.shape[1:]) if unbatched else y
