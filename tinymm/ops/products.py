"""Products and statistics of vectors and matrices that PyTorch names on their own: inner,
dist, renorm, addr, addbmm, chain_matmul / multi_dot, vecdot, vander, cov, corrcoef, and
``linalg``'s spellings of cross and diagonal.

Each is composed of differentiable ops (matmul, mul, sum, Norm, ...), so gradients come with
them; the functions here check the arguments as PyTorch does and name the shapes when they
do not fit.
"""
from __future__ import annotations

import numpy as np

from tinymm.ops._util import DTypeError, ShapeError, normalize_dim, torch_dtype_name, xp_of
from tinymm.ops.convert import as_tensor, cast, to_float
from tinymm.ops.elementwise import clamp, mul, sqrt
from tinymm.ops.index import where
from tinymm.ops.layout import diagonal as diagonal_
from tinymm.ops.layout import flip
from tinymm.ops.linalg import bmm, matmul, outer, scaled_sum, tensordot
from tinymm.ops.linalg import cross as cross_
from tinymm.ops.maths import Norm
from tinymm.ops.reduce import sum
from tinymm.ops.shape import broadcast_tensors, reshape, squeeze, stack
from tinymm.tensor import Tensor


def inner(input, other, *, out=None):
    """``torch.inner``: the sum of products over the last dim of both (a product when either
    is 0-d); the result has shape input.shape[:-1] + other.shape[:-1]."""
    a, b = as_tensor(input, "inner"), as_tensor(other, "inner")
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"inner() the last dimension must match on both input tensors but got shapes "
                         f"{list(a.shape)} and {list(b.shape)}")
    return tensordot(a, b, dims=([-1], [-1]))


def dist(input, other, p=2):
    """``torch.dist``: the p-norm of input − other (broadcast), over all elements."""
    a, b = as_tensor(input, "dist"), as_tensor(other, "dist")
    d = to_float(a - b)
    return Norm.apply(d, float(p), None, False)


def renorm(input, p, dim, maxnorm):
    """``torch.renorm``: each slice along ``dim`` whose p-norm exceeds ``maxnorm`` scaled
    down to norm ``maxnorm`` (by maxnorm / (norm + 1e-7), as PyTorch); the others unchanged."""
    x = as_tensor(input, "renorm")
    if x.dtype.kind not in "fc":
        raise DTypeError(f'"renorm" not implemented for \'{torch_dtype_name(x.dtype)}\'')
    if x.ndim <= 1:
        raise ShapeError(f"renorm: input needs at least 2 dimensions, got {x.ndim} dimensions")
    if p <= 0:
        raise ShapeError(f"renorm: non-positive-norm not supported, got p={p}")
    if maxnorm < 0:
        raise ShapeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    d = normalize_dim("renorm", x.ndim, dim)
    others = tuple(i for i in range(x.ndim) if i != d)
    n = Norm.apply(x, float(p), others, True)
    factor = where(n > maxnorm, maxnorm / (n + 1e-7), Tensor._wrap(xp_of(x._data).ones((), x.dtype)))
    return x * factor


def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """``torch.addr``: beta · input + alpha · outer(vec1, vec2)."""
    v1, v2 = as_tensor(vec1, "addr"), as_tensor(vec2, "addr")
    if v1.ndim != 1 or v2.ndim != 1:
        raise ShapeError(f"addr: Expected 1-D argument vec1 and vec2, but got vec1 of shape {tuple(v1.shape)} "
                         f"and vec2 of shape {tuple(v2.shape)}")
    return scaled_sum("addr", input, outer(v1, v2), beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``torch.addbmm``: beta · input + alpha · Σ_b batch1[b] @ batch2[b]."""
    return scaled_sum("addbmm", input, sum(bmm(batch1, batch2), 0), beta, alpha)


def chain_matmul(*matrices, out=None):
    """``torch.chain_matmul`` (deprecated in PyTorch): the product of 2-D matrices, in order."""
    if len(matrices) == 1 and isinstance(matrices[0], (list, tuple)):
        matrices = tuple(matrices[0])
    if not matrices:
        raise ShapeError("chain_matmul(): Expected one or more matrices")
    ms = [as_tensor(m, "chain_matmul") for m in matrices]
    for i, m in enumerate(ms):
        if m.ndim != 2:
            raise ShapeError(f"chain_matmul(): Tensor {i} must be 2D but got {m.ndim}D")
    if len(ms) == 1:
        return ms[0] * 1
    return multi_dot(ms)


def multi_dot(tensors, *, out=None):
    """``torch.linalg.multi_dot``: the product of 2-D matrices; the first may be a row vector
    and the last a column vector (1-D), whose dims are removed from the result."""
    ts = [as_tensor(t, "linalg.multi_dot") for t in tensors]
    if len(ts) < 2:
        raise ShapeError(f"multi_dot(): expected at least 2 tensors but got {len(ts)}")
    for i, t in enumerate(ts):
        allowed = (1, 2) if i in (0, len(ts) - 1) else (2,)
        if t.ndim not in allowed:
            where_ = "first" if i == 0 else "last" if i == len(ts) - 1 else f"tensor {i}"
            raise ShapeError(f"multi_dot(): the {where_} tensor must be {' or '.join(f'{d}D' for d in allowed)} "
                             f"but got {t.ndim}D")
        if t.dtype != ts[0].dtype:
            raise DTypeError(f"multi_dot(): all tensors must have be the same dtype but tensor 0 is "
                             f"{ts[0].dtype} and tensor {i} {t.dtype}")
    for i in range(len(ts) - 1):
        left = ts[i].shape[-1]
        right = ts[i + 1].shape[0]
        if left != right:
            raise ShapeError(f"multi_dot(): tensors {i} and {i + 1} with shapes {tuple(ts[i].shape)} and "
                             f"{tuple(ts[i + 1].shape)} cannot be multiplied")
    out = ts[0]
    for t in ts[1:]:
        out = matmul(out, t)
    return out


def vecdot(x, y, *, dim=-1, out=None):
    """``torch.linalg.vecdot``: Σ x·y over ``dim`` (the operands broadcast)."""
    x, y = as_tensor(x, "linalg.vecdot"), as_tensor(y, "linalg.vecdot")
    if x.dtype != y.dtype:
        raise DTypeError(f"linalg.vecdot: Expected x and y to have the same dtype, but found x of type "
                         f"{torch_dtype_name(x.dtype)} and y of type {torch_dtype_name(y.dtype)} instead")
    x, y = broadcast_tensors(x, y)
    d = normalize_dim("linalg.vecdot", x.ndim, dim)
    return sum(x * y, d)


def linalg_cross(input, other, *, dim=-1, out=None):
    """``torch.linalg.cross``: the cross product of 3-vectors along ``dim`` (default the last);
    the operands have the same number of dims and broadcast."""
    a, b = as_tensor(input, "linalg.cross"), as_tensor(other, "linalg.cross")
    if a.ndim != b.ndim:
        raise ShapeError("linalg.cross: inputs must have the same number of dimensions.")
    d = normalize_dim("linalg.cross", a.ndim, dim)
    if a.shape[d] != 3 or b.shape[d] != 3:
        raise ShapeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {a.shape[d]} and {b.shape[d]}")
    a, b = broadcast_tensors(a, b)
    return cross_(a, b, d)


def linalg_diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1):
    """``torch.linalg.diagonal``: ``torch.diagonal`` with the last two dims as default."""
    return diagonal_(A, offset, dim1, dim2)


def _powers(name, x, N):
    """x⁰, x¹, …, x^(N−1) stacked on a new last dim (products, so x = 0 has a gradient)."""
    xp = xp_of(x._data)
    cols = [Tensor._wrap(xp.ones(x.shape, x.dtype))]
    for _ in range(1, N):
        cols.append(cols[-1] * x)
    return stack(cols[:N], -1) if N else Tensor._wrap(xp.zeros(tuple(x.shape) + (0,), x.dtype))


def linalg_vander(x, *, N=None):
    """``torch.linalg.vander``: the Vandermonde matrix (…, n, N) of increasing powers of x."""
    x = as_tensor(x, "linalg.vander")
    if x.ndim == 0:
        raise ShapeError("linalg.vander: x must have at least one dimension")
    N = x.shape[-1] if N is None else int(N)
    if N <= 1:
        raise ShapeError(f"N must be greater than 1. Got {N}")
    if x.dtype.kind == "b":
        x = cast(x, np.int64)
    return _powers("linalg.vander", x, N)


def vander(x, N=None, increasing: bool = False):
    """``torch.vander``: the Vandermonde matrix (n, N) of a 1-D x, decreasing powers unless
    ``increasing``."""
    x = as_tensor(x, "vander")
    if x.ndim != 1:
        raise ShapeError(f"x must be a one-dimensional tensor, got shape {tuple(x.shape)}")
    N = x.shape[0] if N is None else int(N)
    if N < 0:
        raise ShapeError("N must be non-negative.")
    if x.dtype.kind == "b":
        x = cast(x, np.int64)
    out = _powers("vander", x, N)
    return out if increasing or N == 0 else flip(out, -1)


def cov(input, *, correction: int = 1, fweights=None, aweights=None):
    """``torch.cov``: the covariance matrix of the variables in the rows of ``input`` (one
    variable, a 1-D input or a single row, gives a 0-d result), observations in the columns; ``fweights`` (integer
    repeat counts) and ``aweights`` (observation weights) as NumPy's ``cov``."""
    x = as_tensor(input, "cov")
    if x.ndim > 2:
        raise ShapeError(f"cov(): expected input to have two or fewer dimensions but got an input with {x.ndim} dimensions")
    x = to_float(x)
    if x.ndim < 2:
        x = reshape(x, (1, -1) if x.ndim else (1, 1))
    n_obs = x.shape[1]
    w = None
    if fweights is not None:
        fw = as_tensor(fweights, "cov")
        if fw.ndim > 1 or fw.numel() != n_obs:
            raise ShapeError(f"cov(): expected fweights to have one or fewer dimensions and the same number of "
                             f"elements as observations ({n_obs}), got shape {tuple(fw.shape)}")
        if fw.dtype.kind not in "iu":
            raise DTypeError(f"cov(): expected fweights to have integral dtype but got fweights with {fw.dtype} dtype")
        if (fw._data < 0).any():
            raise ShapeError("cov(): fweights cannot be negative")
        w = cast(reshape(fw, (-1,)), x.dtype)
    if aweights is not None:
        aw = as_tensor(aweights, "cov")
        if aw.ndim > 1 or aw.numel() != n_obs:
            raise ShapeError(f"cov(): expected aweights to have one or fewer dimensions and the same number of "
                             f"elements as observations ({n_obs}), got shape {tuple(aw.shape)}")
        if aw.dtype.kind not in "fc":
            raise DTypeError(f"cov(): expected aweights to have floating point dtype but got aweights with {aw.dtype} dtype")
        if (aw._data < 0).any():
            raise ShapeError("cov(): aweights cannot be negative")
        aw = cast(reshape(aw, (-1,)), x.dtype)
        w = aw if w is None else w * aw
    if w is None:
        w_sum = float(n_obs)
        avg = sum(x, 1, keepdim=True) / max(n_obs, 1) if n_obs else sum(x, 1, keepdim=True) * np.nan
        norm_factor = w_sum - correction
    else:
        w_sum = sum(w)
        avg = sum(x * w, 1, keepdim=True) / w_sum
        if aweights is None:
            norm_factor = w_sum - correction
        else:
            norm_factor = w_sum - correction * sum(w * aw) / w_sum
    if isinstance(norm_factor, Tensor):
        norm_factor = clamp(norm_factor, min=0)
    else:
        norm_factor = max(norm_factor, 0)
    xm = x - avg
    xw = xm if w is None else xm * w
    with np.errstate(all="ignore"):
        c = matmul(xw, xm.mT) / norm_factor
    return squeeze(c)  # one variable: a 0-d result, as PyTorch


def corrcoef(input):
    """``torch.corrcoef``: Pearson correlation coefficients of the rows of ``input`` (clipped to
    [−1, 1]); cov(input) normalised by the standard deviations."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = sqrt(diagonal_(c, 0, 0, 1))
    with np.errstate(all="ignore"):
        c = c / reshape(d, (-1, 1))
        c = c / reshape(d, (1, -1))
    return clamp(c, -1, 1)
