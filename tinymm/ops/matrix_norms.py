"""Vector and matrix norms and the condition number, as ``torch.linalg`` defines them.

- ``vector_norm``: (Σ|x|ᵖ)^(1/p) over ``dim`` (all elements by default); inf/−inf are max/min
  |x|, 0 counts the non-zeros. Its Function is ``maths.Norm`` (one vector norm in tinymm).
- ``matrix_norm`` over two dims: "fro" (the 2-norm of the entries), "nuc" (Σσ), 2/−2 (σ_max,
  σ_min), 1/−1 (max/min column sum of |a|), inf/−inf (max/min row sum).
- ``norm``: the vector or the matrix norm by PyTorch's rule (``dim`` and ``ord`` decide).
- ``cond``: σ_max/σ_min for p = None/2 (σ_min/σ_max for −2), else ‖A‖_p ‖A⁻¹‖_p.

Everything is composed of differentiable ops (``Norm``, ``abs``, ``sum``, ``amax``/``amin``
— ties share the gradient, as PyTorch — and ``svdvals``), so gradients come with them.
"""
from __future__ import annotations

import math

from tinymm.ops._util import ShapeError, normalize_dim, normalize_dims
from tinymm.ops.convert import as_tensor, cast
from tinymm.ops.decompositions import check_float, matrix_arg, svdvals
from tinymm.ops.elementwise import abs
from tinymm.ops.layout import movedim
from tinymm.ops.maths import Norm
from tinymm.ops.matrix_solve import inv
from tinymm.ops.reduce import amax, amin, sum
from tinymm.ops.norm_checks import refuse_empty_without_identity
from tinymm.ops.shape import reshape, unsqueeze


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None, out=None):
    """``torch.linalg.vector_norm``: the ``ord``-norm of the elements over ``dim``."""
    x = as_tensor(x, "linalg.vector_norm")
    if x.dtype.kind not in "fc":
        check_float("linalg.vector_norm", x)
    if dtype is not None:
        x = cast(x, dtype)
    if isinstance(ord, str):
        raise ShapeError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    axes = normalize_dims("linalg.vector_norm", x.ndim, dim)
    refuse_empty_without_identity(x, axes, ord)
    return Norm.apply(x, float(ord), axes, bool(keepdim))


_MATRIX_ORDS = ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None, out=None):
    """``torch.linalg.matrix_norm``: the ``ord`` norm of the matrices spanned by ``dim``."""
    name = "linalg.matrix_norm"
    A = matrix_arg(name, A)
    if dtype is not None:
        A = cast(A, dtype)
    if ord not in _MATRIX_ORDS:
        raise ShapeError(f"{name}: Order {ord} not supported.")
    dim = tuple(dim)
    if len(dim) != 2:
        raise ShapeError(f"{name}: dim must be a 2-tuple. Got {dim}")
    d0, d1 = normalize_dim(name, A.ndim, dim[0]), normalize_dim(name, A.ndim, dim[1])
    if d0 == d1:
        raise ShapeError(f"{name}: dims must be different. Got ({dim[0]}, {dim[1]})")
    if ord == "fro":
        return Norm.apply(A, 2.0, tuple(sorted((d0, d1))), bool(keepdim))
    if ord in ("nuc", 2, -2):
        s = svdvals(movedim(A, (d0, d1), (-2, -1)))
        out = sum(s, -1) if ord == "nuc" else amax(s, -1) if ord == 2 else amin(s, -1)
    else:
        # 1: largest column sum (sum over the row dim d0, then max over d1); inf: the reverse.
        over, then = (d0, d1) if ord in (1, -1) else (d1, d0)
        sums = sum(abs(A), over, keepdim=True)
        out = (amax if ord > 0 else amin)(sums, then, keepdim=True)
        out = reshape(out, tuple(s for i, s in enumerate(out.shape) if i not in (d0, d1)))
    if keepdim:
        for d in sorted((d0, d1)):
            out = unsqueeze(out, d)
    return out


def norm(A, ord=None, dim=None, keepdim: bool = False, *, dtype=None, out=None):
    """``torch.linalg.norm``: a vector norm when ``dim`` is an int or one dim (or when both
    ``dim`` and ``ord`` are None: all elements, 2-norm), a matrix norm when ``dim`` names two
    dims or ``ord`` is a string; with ``ord`` and no ``dim``, A must be 1-D or 2-D."""
    A = as_tensor(A, "linalg.norm")
    check_float("linalg.norm", A)
    if dim is not None:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        if len(dims) == 1:
            return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
        return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if A.ndim not in (1, 2):
        raise ShapeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got {A.ndim}D.")
    if A.ndim == 1:
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)


def cond(A, p=None, *, out=None):
    """``torch.linalg.cond``: the condition number of A in the ``p`` norm (see the module)."""
    A = matrix_arg("linalg.cond", A)
    if p is not None and p not in _MATRIX_ORDS:
        raise ShapeError(f"linalg.cond got an invalid norm type: {p}")
    if p in (None, 2, -2):
        s = svdvals(A)
        ratio = amax(s, -1) / amin(s, -1)
        return 1 / ratio if p == -2 else ratio
    if A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"linalg.cond: A must be batches of square matrices, but they are {A.shape[-2]} by "
                         f"{A.shape[-1]} matrices")
    return matrix_norm(A, p) * matrix_norm(inv(A), p)
