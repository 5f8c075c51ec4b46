r"""2-D convolution (cross-correlation, as PyTorch's ``conv2d``) in plain NumPy: the specification.

Shapes
------
    x    (B, C, H, W)              input, C = G * Cg channels in G groups
    w    (O, Cg, kh, kw)           weight, O = G * Og output channels
    bias (O,) or None
    y    (B, O, Ho, Wo)            output

    stride (sh, sw), dilation (dh, dw), padding ((top, bottom), (left, right)): zeros added
    around x. Padding may be asymmetric: PyTorch's ``padding="same"`` with an even kernel
    puts the odd extra row/column at the bottom/right; the public function resolves that.

    Ho = (H + top + bottom - dh (kh - 1) - 1) // sh + 1      (Wo likewise)

Forward: the convolution sum itself. With xp the zero-padded input,
    y[b, o, p, q] = bias[o] + sum_{c, i, j} w[o, c, i, j] * xp[b, g Cg + c, p sh + i dh, q sw + j dw]
where g = o // Og is the group of output channel o (its inputs are channels g Cg ... g Cg + Cg - 1).

Backward, given dy = dL/dy:
    dw[o, c, i, j] = sum_{b, p, q} dy[b, o, p, q] * xp[b, g Cg + c, p sh + i dh, q sw + j dw]
    dxp[b, g Cg + c, p sh + i dh, q sw + j dw] += sum_o w[o, c, i, j] * dy[b, o, p, q]
    dx = dxp without its padding;  dbias[o] = sum_{b, p, q} dy[b, o, p, q]

Forward saves nothing beyond its inputs (x and w): every fast version rebuilds what it needs
(im2col tiles) in backward. 1-D convolution is this with H = 1 and kh = 1.

The reference loops over the kh * kw kernel taps; each tap is one strided view of xp and one
product over channels (``einsum``). It runs on NumPy or CuPy arrays alike.
"""
from .._common import array_module


def output_size(n, k, stride, dilation, pad_before, pad_after):
    """Output length along one axis: (n + pads - dilation (k - 1) - 1) // stride + 1."""
    return (n + pad_before + pad_after - dilation * (k - 1) - 1) // stride + 1


def _geometry(x, w, stride, padding, dilation):
    (sh, sw), (dh, dw) = stride, dilation
    (pt, pb), (pl, pr) = padding
    kh, kw = w.shape[2], w.shape[3]
    Ho = output_size(x.shape[2], kh, sh, dh, pt, pb)
    Wo = output_size(x.shape[3], kw, sw, dw, pl, pr)
    return kh, kw, Ho, Wo


def _tap(xp_pad, i, j, Ho, Wo, stride, dilation):
    """The (B, C, Ho, Wo) strided view of the padded input that kernel tap (i, j) multiplies."""
    (sh, sw), (dh, dw) = stride, dilation
    return xp_pad[:, :, i * dh : i * dh + sh * (Ho - 1) + 1 : sh, j * dw : j * dw + sw * (Wo - 1) + 1 : sw]


def reference_forward(x, w, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """y = conv2d(x, w) + bias; see the module docstring for shapes and arguments."""
    xp = array_module(x)
    B, C = x.shape[:2]
    O, Cg = w.shape[:2]
    G, Og = groups, O // groups
    kh, kw, Ho, Wo = _geometry(x, w, stride, padding, dilation)
    (pt, pb), (pl, pr) = padding
    x_pad = xp.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    wg = w.reshape(G, Og, Cg, kh, kw)
    y = xp.zeros((B, G, Og, Ho, Wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = _tap(x_pad, i, j, Ho, Wo, stride, dilation).reshape(B, G, Cg, Ho, Wo)
            y += xp.einsum("bgchw,goc->bgohw", patch, wg[:, :, :, i, j])
    y = y.reshape(B, O, Ho, Wo)
    if bias is not None:
        y += bias.reshape(1, O, 1, 1)
    return y


def reference_backward(x, w, dy, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
                       has_bias=True):
    """(dx, dw, dbias) of conv2d; dbias is None when ``has_bias`` is false."""
    xp = array_module(x)
    B, C, H, W = x.shape
    O, Cg = w.shape[:2]
    G, Og = groups, O // groups
    kh, kw, Ho, Wo = _geometry(x, w, stride, padding, dilation)
    (pt, pb), (pl, pr) = padding
    x_pad = xp.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    dx_pad = xp.zeros_like(x_pad)
    wg = w.reshape(G, Og, Cg, kh, kw)
    dyg = dy.reshape(B, G, Og, Ho, Wo)
    dw = xp.zeros((G, Og, Cg, kh, kw), x.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = _tap(x_pad, i, j, Ho, Wo, stride, dilation).reshape(B, G, Cg, Ho, Wo)
            dw[:, :, :, i, j] = xp.einsum("bgohw,bgchw->goc", dyg, patch)
            # the same view of dx_pad receives the gradient of that tap (views overlap: add)
            dtap = _tap(dx_pad, i, j, Ho, Wo, stride, dilation)
            dtap += xp.einsum("bgohw,goc->bgchw", dyg, wg[:, :, :, i, j]).reshape(B, C, Ho, Wo)
    dx = dx_pad[:, :, pt : pt + H, pl : pl + W]
    db = dy.sum(axis=(0, 2, 3)) if has_bias else None
    return xp.ascontiguousarray(dx), dw.reshape(w.shape), db
