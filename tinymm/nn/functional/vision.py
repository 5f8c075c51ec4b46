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
- ``affine_grid`` (N, 2, 3) affine maps → (N, H, W, 2) sampling grids; ``grid_sample``
  bilinear or nearest sampling at such a grid (zeros, border or reflection padding),
  composed from gather and elementwise ops so input and grid both get gradients.
"""
from __future__ import annotations

import numbers

import numpy as np

from tinymm.autograd import Function
from tinymm.ops import as_tensor, where
from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor

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

    @staticmethod
    def backward_graph(ctx, g):  # linear: col2im is its adjoint, and the reverse
        return FoldFn.apply(g, *ctx.meta)


class FoldFn(Function):
    """col2im of (N, C·kh·kw, L) into (N, C, H, W); backward is im2col. Saves the geometry."""

    @staticmethod
    def forward(ctx, cols, image_hw, kernel, dilation, padding, stride, out_hw):
        ctx.meta = (kernel, dilation, padding, stride, out_hw)
        return _col2im(cols, image_hw, kernel, dilation, padding, stride, out_hw)

    @staticmethod
    def backward(ctx, g):
        return _im2col(g, *ctx.meta)

    @staticmethod
    def backward_graph(ctx, g):
        return UnfoldFn.apply(g, *ctx.meta)


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


# ----------------------------------------------------------------------------- affine_grid / grid_sample


def _base_coords(n, align_corners, xp, dtype):
    """The n sample positions of one axis in [-1, 1] (pixel centres unless ``align_corners``)."""
    if n == 1:
        return xp.zeros(1, dtype)
    c = xp.linspace(-1.0, 1.0, n, dtype=dtype)
    return c if align_corners else c * ((n - 1) / n)


def affine_grid(theta, size, align_corners=None):
    """The (N, H, W, 2) sampling grid of the 2-D affine maps ``theta`` (N, 2, 3) for an output
    of ``size`` (N, C, H, W): grid[n, h, w] = theta[n] · (x_w, y_h, 1), coordinates in [-1, 1]."""
    fn = "affine_grid"
    t = as_tensor(theta, fn)
    size = tuple(int(s) for s in size)
    if t.dtype.kind != "f":
        raise TypeError(f"{fn}: Expected theta to have floating point type, but got {t.dtype}")
    if len(size) != 4:
        raise NotImplementedError(f"{fn}: only 2-D (4-element size (N, C, H, W)) grids are supported, got size {size}")
    N, _, H, W = size
    if t.ndim != 3 or tuple(t.shape) != (N, 2, 3):
        raise ShapeError(f"{fn}: Expected a batch of 2D affine matrices of shape Nx2x3 for size {size}. Got "
                         f"{tuple(t.shape)}.")
    align_corners = bool(align_corners)
    xp = xp_of(t._data)
    xs = _base_coords(W, align_corners, xp, t.dtype)
    ys = _base_coords(H, align_corners, xp, t.dtype)
    base = xp.stack([xp.broadcast_to(xs[None, :], (H, W)), xp.broadcast_to(ys[:, None], (H, W)),
                     xp.ones((H, W), t.dtype)], axis=-1).reshape(1, H * W, 3)
    grid = Tensor._wrap(xp.ascontiguousarray(base)) @ t.transpose(1, 2)  # (N, H·W, 2)
    return grid.reshape(N, H, W, 2)


def _unnormalize(coord, n, align_corners):
    """[-1, 1] → pixel index space of an axis of n pixels."""
    if align_corners:
        return (coord + 1) * ((n - 1) / 2)
    return ((coord + 1) * n - 1) / 2


def _reflect(coord, twice_low, twice_high):
    """Reflect coordinates into [twice_low/2, twice_high/2] (PyTorch's reflect_coordinates)."""
    if twice_low == twice_high:
        return coord * 0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    d = (coord - low).abs()
    extra = d.fmod(span)
    flips = (d / span).floor().detach()
    even = flips.fmod(2) == 0
    return where(even, extra + low, span - extra + low)


def _source(coord, n, padding_mode, align_corners):
    c = _unnormalize(coord, n, align_corners)
    if padding_mode == "border":
        c = c.clamp(0, n - 1)
    elif padding_mode == "reflection":
        c = _reflect(c, 0, 2 * (n - 1)) if align_corners else _reflect(c, -1, 2 * n - 1)
        c = c.clamp(0, n - 1)
    return c


def grid_sample(input, grid, mode: str = "bilinear", padding_mode: str = "zeros", align_corners=None):
    """Sample (N, C, H, W) ``input`` at the (N, Ho, Wo, 2) ``grid`` of (x, y) coordinates in
    [-1, 1] → (N, C, Ho, Wo). ``mode`` 'bilinear' or 'nearest'; ``padding_mode`` 'zeros'
    (taps outside read 0), 'border' (clamped) or 'reflection'. Composed from gather and
    elementwise ops, so both the input and the grid get gradients."""
    fn = "grid_sample"
    x, g = as_tensor(input, fn), as_tensor(grid, fn)
    if mode not in ("bilinear", "nearest"):
        raise NotImplementedError(f"{fn}: mode must be 'bilinear' or 'nearest' (bicubic is not supported), got {mode!r}")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"{fn}: expected padding_mode to be 'zeros', 'border', or 'reflection', but got: "
                         f"'{padding_mode}'")
    if x.ndim != 4:
        raise NotImplementedError(f"{fn}: only 4-D (N, C, H, W) input is supported, got shape {tuple(x.shape)}")
    if g.ndim != 4 or g.shape[-1] != 2 or g.shape[0] != x.shape[0]:
        raise ShapeError(f"{fn}: grid must be (N, H_out, W_out, 2) with N = {x.shape[0]} for input of shape "
                         f"{tuple(x.shape)}, got {tuple(g.shape)}")
    align_corners = bool(align_corners)
    N, C, H, W = x.shape
    Ho, Wo = g.shape[1], g.shape[2]
    xp = xp_of(x._data)
    ix = _source(g[..., 0].reshape(N, Ho * Wo), W, padding_mode, align_corners)  # (N, P)
    iy = _source(g[..., 1].reshape(N, Ho * Wo), H, padding_mode, align_corners)
    flat = x.reshape(N, C, H * W)

    def tap(cx, cy):
        """(N, C, P) values at integer positions (arrays), zero where outside."""
        inside = (cx >= 0) & (cx <= W - 1) & (cy >= 0) & (cy <= H - 1)
        idx = xp.clip(cy, 0, H - 1).astype(np.int64) * W + xp.clip(cx, 0, W - 1).astype(np.int64)
        idx = xp.ascontiguousarray(xp.broadcast_to(idx[:, None, :], (N, C, idx.shape[-1])))
        vals = flat.gather(2, Tensor._wrap(idx))
        return vals * Tensor._wrap(inside[:, None, :].astype(x.dtype))

    if mode == "nearest":
        out = tap(xp.rint(ix._data), xp.rint(iy._data))
    else:
        x0, y0 = xp.floor(ix._data), xp.floor(iy._data)
        wx1 = ix - Tensor._wrap(x0)
        wy1 = iy - Tensor._wrap(y0)
        wx0, wy0 = 1 - wx1, 1 - wy1
        out = (tap(x0, y0) * (wx0 * wy0).unsqueeze(1) + tap(x0 + 1, y0) * (wx1 * wy0).unsqueeze(1)
               + tap(x0, y0 + 1) * (wx0 * wy1).unsqueeze(1) + tap(x0 + 1, y0 + 1) * (wx1 * wy1).unsqueeze(1))
    return out.reshape(N, C, Ho, Wo)
