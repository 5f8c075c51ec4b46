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
from tinymm.fused_rounding import fma, linspace_values
from tinymm.ops import as_tensor, where
from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor

from tinymm.nn.functional._checks import ShapeError, check_same_device, check_same_dtype


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
    """The n sample positions of one axis in [-1, 1] (pixel centres unless ``align_corners``),
    rounded as PyTorch rounds them: its linspace, then ``* (n - 1)`` and ``/ n`` as two steps in
    the dtype. A position one ulp off a pixel flips which pixels bilinear sampling pairs and so
    the grid's gradient (an identity theta samples exactly on the pixels)."""
    if n == 1:
        return xp.zeros(1, dtype)
    c = linspace_values(xp, -1.0, 1.0, n, dtype)
    if align_corners:
        return c
    return (c * c.dtype.type(n - 1)) / c.dtype.type(n)


def affine_grid(theta, size, align_corners=None):
    """The sampling grid of the affine maps ``theta`` for an output of ``size``: 2-D, theta
    (N, 2, 3) and size (N, C, H, W) give (N, H, W, 2), grid[n, h, w] = theta[n] · (x_w, y_h, 1);
    3-D, theta (N, 3, 4) and size (N, C, D, H, W) give (N, D, H, W, 3) from (x_w, y_h, z_d, 1).
    Coordinates are in [-1, 1] (pixel centres unless ``align_corners``)."""
    fn = "affine_grid"
    t = as_tensor(theta, fn)
    size = tuple(int(s) for s in size)
    if t.dtype.kind != "f":
        raise TypeError(f"{fn}: Expected theta to have floating point type, but got {t.dtype}")
    if len(size) not in (4, 5):
        raise NotImplementedError(f"{fn}: only 4-D (N, C, H, W) and 5-D (N, C, D, H, W) sizes are supported, "
                                  f"got size {size}")
    nd = len(size) - 2
    N, spatial = size[0], size[2:]
    if t.ndim != 3 or tuple(t.shape) != (N, nd, nd + 1):
        raise ShapeError(f"{fn}: Expected a batch of {nd}D affine matrices of shape Nx{nd}x{nd + 1} for size "
                         f"{size}. Got {tuple(t.shape)}.")
    align_corners = bool(align_corners)
    xp = xp_of(t._data)
    # axis k of the coordinates (x, y, z) runs along spatial dim -1 - k
    axes = [_base_coords(n, align_corners, xp, t.dtype) for n in spatial]
    columns = []
    for k in range(nd):
        shape = [1] * nd
        shape[nd - 1 - k] = spatial[nd - 1 - k]
        columns.append(xp.broadcast_to(axes[nd - 1 - k].reshape(shape), spatial))
    columns.append(xp.ones(spatial, t.dtype))
    points = int(np.prod(spatial))
    base = xp.ascontiguousarray(xp.stack(columns, axis=-1).reshape(1, points, nd + 1))
    grid = Tensor._wrap(base) @ t.transpose(1, 2)  # (N, points, nd)
    return grid.reshape(N, *spatial, nd)


def _unnormalize(coord, n, align_corners, fused=False):
    """[-1, 1] → pixel index space of an axis of n pixels. ``fused``: round as PyTorch's
    vectorised 2-D sampler does without align_corners, ``(coord + 1) * (n / 2) - 0.5`` in one
    fused multiply-add (its 3-D sampler rounds ``((coord + 1) * n - 1) / 2`` step by step); the
    last bit decides which side of a pixel a sample on it falls, and so the grid's gradient."""
    if align_corners:
        return (coord + 1) * ((n - 1) / 2)
    if not fused:
        return ((coord + 1) * n - 1) / 2
    shifted = coord + 1
    c = shifted * (n / 2) - 0.5
    exact = fma(shifted._data, n / 2, -0.5, xp_of(shifted._data))
    return c + Tensor._wrap(exact - c._data)  # exact - c is exact, so the sum is ``exact``


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


def _clip_coordinates(c, n):
    """Clamp to [0, n - 1] with PyTorch's grid-sampler gradient: 1 strictly inside, 0 on the
    borders too (its clip_coordinates_set_grad counts a border as outside; Tensor.clamp would
    pass the gradient there)."""
    inside = (c > 0) & (c < n - 1)
    return where(inside, c, c.detach().clamp(0, n - 1))


def _source(coord, n, padding_mode, align_corners, fused):
    c = _unnormalize(coord, n, align_corners, fused)
    if padding_mode == "border":
        c = _clip_coordinates(c, n)
    elif padding_mode == "reflection":
        c = _reflect(c, 0, 2 * (n - 1)) if align_corners else _reflect(c, -1, 2 * n - 1)
        c = _clip_coordinates(c, n)
    return c


class _ZeroGradient(Function):
    """``out`` unchanged, linked to ``grid`` with a zero gradient: nearest sampling is piecewise
    constant in the grid, and PyTorch gives the grid a gradient of zeros (not None)."""

    @staticmethod
    def forward(ctx, out, grid):
        ctx.grid_meta = (grid.shape, grid.dtype)
        return out

    @staticmethod
    def backward(ctx, g):
        shape, dtype = ctx.grid_meta
        return g, xp_of(g).zeros(shape, dtype)


def _cubic_weights(t):
    """Keys' cubic convolution weights (A = -0.75, as PyTorch) of the taps at -1, 0, 1, 2 for
    the fractional offsets t (Tensors, so the grid gets gradients through them)."""
    A = -0.75

    def near(d):
        return ((A + 2) * d - (A + 3)) * d * d + 1

    def far(d):
        return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A

    return far(t + 1), near(t), near(1 - t), far(2 - t)


def grid_sample(input, grid, mode: str = "bilinear", padding_mode: str = "zeros", align_corners=None):
    """Sample ``input`` at the ``grid``'s coordinates in [-1, 1]: 4-D input (N, C, H, W) with a
    (N, Ho, Wo, 2) grid of (x, y) gives (N, C, Ho, Wo); 5-D input (N, C, D, H, W) with a
    (N, Do, Ho, Wo, 3) grid of (x, y, z) gives (N, C, Do, Ho, Wo). ``mode`` 'bilinear'
    (trilinear for 5-D), 'nearest' or 'bicubic' (4-D only; Keys' cubic, A = -0.75);
    ``padding_mode`` 'zeros' (taps outside read 0), 'border' (clamped) or 'reflection'.
    Composed from gather and elementwise ops, so both the input and the grid get gradients."""
    fn = "grid_sample"
    x, g = as_tensor(input, fn), as_tensor(grid, fn)
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"{fn}: expected mode to be 'bilinear', 'nearest' or 'bicubic', but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"{fn}: expected padding_mode to be 'zeros', 'border', or 'reflection', but got: "
                         f"'{padding_mode}'")
    if x.ndim not in (4, 5):
        raise ShapeError(f"{fn}: expected 4D or 5D input, got shape {tuple(x.shape)}")
    nd = x.ndim - 2
    if g.ndim != x.ndim or g.shape[-1] != nd or g.shape[0] != x.shape[0]:
        raise ShapeError(f"{fn}: grid must be (N, {', '.join(['*_out'] * nd)}, {nd}) with N = {x.shape[0]} for input "
                         f"of shape {tuple(x.shape)}, got {tuple(g.shape)}")
    if mode == "bicubic" and nd != 2:
        raise ShapeError(f"{fn}: bicubic interpolation only supports 4D input")
    check_same_device(fn, input=x, grid=g)
    check_same_dtype(fn, input=x, grid=g)
    align_corners = bool(align_corners)
    N, C = x.shape[:2]
    spatial = tuple(x.shape[2:])
    out_spatial = tuple(g.shape[1:-1])
    P = int(np.prod(out_spatial))
    xp = xp_of(x._data)
    sizes = spatial[::-1]  # the size of the axis each coordinate (x, y, z) runs along
    steps = [int(np.prod(spatial[nd - k:])) for k in range(nd)]  # flat stride of that axis
    coords = [g[..., k].reshape(N, P) for k in range(nd)]
    flat = x.reshape(N, C, int(np.prod(spatial)))

    def tap(cs):
        """(N, C, P) values at the integer positions cs (arrays, one per coordinate), zero
        where outside."""
        inside = None
        idx = 0
        for c, n, step in zip(cs, sizes, steps):
            ok = (c >= 0) & (c <= n - 1)
            inside = ok if inside is None else inside & ok
            idx = idx + xp.clip(c, 0, n - 1).astype(np.int64) * step
        idx = xp.ascontiguousarray(xp.broadcast_to(idx[:, None, :], (N, C, P)))
        vals = flat.gather(2, Tensor._wrap(idx))
        return vals * Tensor._wrap(inside[:, None, :].astype(x.dtype))

    if mode == "nearest":
        src = [_source(c, n, padding_mode, align_corners, nd == 2) for c, n in zip(coords, sizes)]
        out = _ZeroGradient.apply(tap([xp.rint(c._data) for c in src]), g)
    elif mode == "bilinear":
        src = [_source(c, n, padding_mode, align_corners, nd == 2) for c, n in zip(coords, sizes)]
        low = [xp.floor(c._data) for c in src]
        frac = [c - Tensor._wrap(f) for c, f in zip(src, low)]
        out = 0
        for corner in range(2 ** nd):
            bits = [(corner >> k) & 1 for k in range(nd)]
            weight = 1
            for b, f in zip(bits, frac):
                weight = weight * (f if b else 1 - f)
            out = out + tap([lo + b for lo, b in zip(low, bits)]) * weight.unsqueeze(1)
    else:  # bicubic: taps around floor(unnormalised coordinate), each tap padded on its own
        ix, iy = (_unnormalize(c, n, align_corners, fused=True) for c, n in zip(coords, sizes))
        x0, y0 = xp.floor(ix._data), xp.floor(iy._data)
        wx = _cubic_weights(ix - Tensor._wrap(x0))
        wy = _cubic_weights(iy - Tensor._wrap(y0))
        out = 0
        for j in range(4):
            cy = _pad_tap(y0 + (j - 1), sizes[1], padding_mode, align_corners, xp)
            row = 0
            for i in range(4):
                cx = _pad_tap(x0 + (i - 1), sizes[0], padding_mode, align_corners, xp)
                row = row + tap([cx, cy]) * wx[i].unsqueeze(1)
            out = out + row * wy[j].unsqueeze(1)
    return out.reshape(N, C, *out_spatial)


def _pad_tap(c, n, padding_mode, align_corners, xp):
    """A bicubic tap's integer coordinates (array) under the padding mode: 'zeros' leaves them
    (taps outside read 0), 'border' clamps, 'reflection' reflects then clamps."""
    if padding_mode == "border":
        return xp.clip(c, 0, n - 1)
    if padding_mode == "reflection":
        low, high = (0, 2 * (n - 1)) if align_corners else (-1, 2 * n - 1)
        return xp.clip(_reflect(Tensor._wrap(c), low, high)._data, 0, n - 1)
    return c
