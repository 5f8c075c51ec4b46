"""Determinants, inverses and linear solves with PyTorch's semantics, batched over leading
dims (batch dims broadcast where PyTorch broadcasts them), real float32/float64 only.

Backward formulas (real case):

- det:        Ā = ḡ · adj(A)ᵀ, the adjugate taken from the SVD (A = U S Vᵀ gives
              adj(A)ᵀ = det(U) det(V) U diag(∏_{j≠i} s_j) Vᵀ), so a singular A has a gradient too.
- slogdet:    Ā = ḡ · A⁻ᵀ for log|det A| (the sign has no gradient).
- inv:        Ā = −A⁻ᵀ Ȳ A⁻ᵀ.
- solve:      X = A⁻¹B:  B̄ = A⁻ᵀ X̄,  Ā = −B̄ Xᵀ (each summed over broadcast batch dims).
- triangular: as solve, Ā restricted to the triangle A is read from (strictly, when unit).
- pinv:       with P = A⁺,  Ā = −Pᵀ P̄ Pᵀ + (I − A P) P̄ᵀ P Pᵀ + Pᵀ P P̄ᵀ (I − P A); it
              holds where the rank is locally constant (as PyTorch's).
- matrix_exp: Ā is the upper-right block of exp([[Aᵀ, Ḡ], [0, Aᵀ]]) (the Fréchet derivative).

Composite functions (logdet, lstsq, lu_solve, cholesky_solve, matrix_power, tensorinv, ...) are
written with the differentiable ops above, so their gradients come with them.
"""
from __future__ import annotations

import collections
import math

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import node_output, operand, sum_to
from tinymm.ops._util import DTypeError, ShapeError, unbroadcast, xp_of
from tinymm.ops.convert import as_tensor, clone
from tinymm.ops.decompositions import (
    SVD,
    Cholesky,
    CholeskyNoRaise,
    check_float,
    eye_like,
    info_tensor,
    lapack,
    lu_unpack,
    matrix_arg,
    mT,
)
from tinymm.ops.elementwise import log
from tinymm.ops.layout import movedim
from tinymm.ops.linalg import matmul
from tinymm.ops.shape import reshape
from tinymm.tensor import Tensor

# ----------------------------------------------------------------------------- det, slogdet, logdet


def _adjugate_T(xp, a):
    """adj(A)ᵀ of each matrix, from the SVD (defined for singular matrices too)."""
    n = a.shape[-1]
    if n == 0:
        return xp.zeros_like(a)
    U, S, Vh = xp.linalg.svd(a)
    # ∏_{j≠i} s_j from prefix and suffix products.
    ones = xp.ones(S.shape[:-1] + (1,), S.dtype)
    before = xp.cumprod(xp.concatenate([ones, S[..., :-1]], axis=-1), axis=-1)
    after = xp.flip(xp.cumprod(xp.concatenate([ones, xp.flip(S, -1)[..., :-1]], axis=-1), axis=-1), -1)
    sign = xp.linalg.det(U) * xp.linalg.det(Vh)
    return sign[..., None, None] * (U * (before * after)[..., None, :]) @ Vh


class Det(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp_of(a).linalg.det(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_arrays
        return (g[..., None, None] * _adjugate_T(xp_of(g), a)).astype(g.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, g):
        """g·det(A)·A⁻ᵀ, recorded (det this op's own output); a singular A (where the
        adjugate is not det·A⁻ᵀ) gives its first-order gradient only."""
        (a,) = ctx.saved_arrays
        inv_t = _recorded_inv_t(ctx, a)
        if inv_t is NotImplemented:
            return NotImplemented
        d = node_output(ctx, xp_of(a).linalg.det(a).astype(a.dtype, copy=False))
        return (g * d)[..., None, None] * inv_t


def det(A, *, out=None):
    """``torch.linalg.det``: the determinant of each square matrix (1 for a 0×0 matrix)."""
    A = matrix_arg("linalg.det", A, square=True, kernel="lu_cpu")
    return Det.apply(A)


def _inv_T(xp, a):
    """A⁻ᵀ, NaN for a matrix that has no inverse (its gradient is undefined there)."""
    try:
        with np.errstate(all="ignore"):
            return mT(xp.linalg.inv(a))
    except np.linalg.LinAlgError:
        flat = a.reshape((-1,) + a.shape[-2:])
        out = xp.full(flat.shape, xp.nan, a.dtype)
        for i in range(flat.shape[0]):
            try:
                out[i] = mT(xp.linalg.inv(flat[i]))
            except np.linalg.LinAlgError:
                pass
        return out.reshape(a.shape)


class Slogdet(Function):
    """(sign, log|det A|); only the second carries a gradient, A⁻ᵀ."""

    @staticmethod
    def forward(ctx, a):
        sign, logabs = xp_of(a).linalg.slogdet(a)
        ctx.save_for_backward(a)
        ctx.mark_non_differentiable(0)
        return sign.astype(a.dtype, copy=False), logabs.astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, _gsign, g):
        (a,) = ctx.saved_arrays
        return (g[..., None, None] * _inv_T(xp_of(g), a)).astype(g.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, _gsign, g):
        (a,) = ctx.saved_arrays
        inv_t = _recorded_inv_t(ctx, a)
        return inv_t if inv_t is NotImplemented else g[..., None, None] * inv_t


def _recorded_inv_t(ctx, a):
    """A⁻ᵀ of ``ctx``'s input 0 as a recorded ``Inv``, or NotImplemented when A is singular."""
    if not xp_of(a).isfinite(_inv_T(xp_of(a), a)).all():
        return NotImplemented
    return Inv.apply(operand(ctx, 0, a), "linalg.inv").transpose(-2, -1)


SlogdetResult = collections.namedtuple("SlogdetResult", ["sign", "logabsdet"])


def slogdet(A, *, out=None):
    """``torch.linalg.slogdet``: (sign, log|det A|) of each square matrix."""
    A = matrix_arg("linalg.slogdet", A, square=True)
    return SlogdetResult(*Slogdet.apply(A))


def slogdet_legacy(input):
    """``torch.slogdet`` / ``Tensor.slogdet``: as linalg.slogdet, named ``slogdet`` in errors."""
    A = matrix_arg("slogdet", input, square=True)
    return SlogdetResult(*Slogdet.apply(A))


def logdet(input):
    """``torch.logdet``: log det A; NaN where det A < 0 and −inf where it is 0."""
    A = matrix_arg("logdet", input, square=True)
    sign, logabs = Slogdet.apply(A)
    with np.errstate(all="ignore"):
        return logabs + log(sign)


# ----------------------------------------------------------------------------- inverse


class Inv(Function):
    @staticmethod
    def forward(ctx, a, name):
        out = lapack(name, xp_of(a).linalg.inv, a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_arrays
        yt = mT(y)
        return -(yt @ g @ yt)

    @staticmethod
    def backward_graph(ctx, g):
        (y,) = ctx.saved_arrays
        yt = node_output(ctx, y).transpose(-2, -1)
        return -(yt @ g @ yt)


def inv(A, *, out=None):
    """``torch.linalg.inv``: A⁻¹; ``LinAlgError`` naming the batch element and the zero pivot
    when a matrix is singular."""
    A = matrix_arg("linalg.inv", A, square=True)
    return Inv.apply(A, "linalg.inv")


def inverse(input):
    """``torch.inverse`` / ``Tensor.inverse``: as linalg.inv."""
    return inv(input)


InvExResult = collections.namedtuple("InvExResult", ["inverse", "info"])


def _per_matrix(xp, fn, a, *rest):
    """``fn`` matrix by matrix (NaN where it fails) after the batched call failed."""
    flat = [x.reshape((-1,) + x.shape[-2:]) for x in (a,) + rest]
    first = None
    outs = []
    for i in range(flat[0].shape[0]):
        try:
            with np.errstate(all="ignore"):
                r = fn(*[f[i] for f in flat])
        except np.linalg.LinAlgError:
            r = None
        outs.append(r)
        first = r if first is None else first
    shape = first.shape if first is not None else rest[0].shape[-2:] if rest else a.shape[-2:]
    out = xp.full((len(outs),) + tuple(shape), xp.nan, a.dtype)
    for i, r in enumerate(outs):
        if r is not None:
            out[i] = r
    return out.reshape(a.shape[:-2] + tuple(shape))


class InvNoRaise(Function):
    @staticmethod
    def forward(ctx, a):
        xp = xp_of(a)
        try:
            with np.errstate(all="ignore"):
                out = xp.linalg.inv(a)
        except np.linalg.LinAlgError:
            out = _per_matrix(xp, xp.linalg.inv, a)
        ctx.save_for_backward(out)
        return out

    backward = Inv.backward


def inv_ex(A, *, check_errors: bool = False, out=None):
    """``torch.linalg.inv_ex``: (inverse, info) without raising unless ``check_errors``; info
    (int32, the batch shape) is LAPACK's: the 1-based index of the zero pivot, else 0."""
    A = matrix_arg("linalg.inv_ex", A, square=True)
    xp = xp_of(A._data)
    if check_errors:
        return InvExResult(Inv.apply(A, "linalg.inv_ex"), Tensor._wrap(xp.zeros(A.shape[:-2], np.int32)))
    Y = InvNoRaise.apply(A)
    info = info_tensor(xp, A._data, "singular") if xp.isnan(Y._data).any() else Tensor._wrap(xp.zeros(A.shape[:-2], np.int32))
    return InvExResult(Y, info)


# ----------------------------------------------------------------------------- solve


class Solve(Function):
    """X = A⁻¹B for matrices B (…, n, k); A's and B's batch dims broadcast. Saves A and X."""

    @staticmethod
    def forward(ctx, a, b, name, raise_errors):
        xp = xp_of(a)
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        ab = xp.broadcast_to(a, batch + a.shape[-2:])
        bb = xp.broadcast_to(b, batch + b.shape[-2:])
        if raise_errors:
            x = lapack(name, xp.linalg.solve, ab, bb)
        else:
            try:
                with np.errstate(all="ignore"):
                    x = xp.linalg.solve(ab, bb)
            except np.linalg.LinAlgError:
                x = _per_matrix(xp, xp.linalg.solve, ab, bb)
        ctx.shapes = (a.shape, b.shape)
        ctx.save_for_backward(a, x)
        return x

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_arrays
        xp = xp_of(g)
        sa, sb = ctx.shapes
        batch = g.shape[:-2]
        gb = xp.linalg.solve(xp.broadcast_to(mT(a), batch + sa[-2:]), g)
        na, nb = ctx.needs_input_grad[:2]
        ga = unbroadcast(-(gb @ mT(x)), sa) if na else None
        return ga, (unbroadcast(gb, sb) if nb else None)

    @staticmethod
    def backward_graph(ctx, g):
        """gB = A⁻ᵀ·g (a recorded solve), gA = −gB·Xᵀ with X this op's own output."""
        a, x = ctx.saved_arrays
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad[:2]
        gb = Solve.apply(operand(ctx, 0, a).transpose(-2, -1), g, "linalg.solve", False)
        ga = sum_to(-(gb @ node_output(ctx, x).transpose(-2, -1)), sa) if na else None
        return ga, (sum_to(gb, sb) if nb else None)


def _is_vector_rhs(A, B) -> bool:
    """PyTorch's rule: B is a (batch of) vector(s) when it is 1-D or has A's shape minus the last dim."""
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def _solve(name, A, B, left, raise_errors):
    A = matrix_arg(name, A, square=True, kernel="lu_cpu")
    B = as_tensor(B, name)
    check_float(name, B)
    if A.dtype != B.dtype:
        raise DTypeError(f"{name}: Expected A and B to have the same dtype, but found A of type "
                         f"{A.dtype} and B of type {B.dtype} instead")
    vector = _is_vector_rhs(A, B)
    B2 = reshape(B, tuple(B.shape) + (1,)) if vector else B
    if B2.ndim < 2:
        raise ShapeError(f"{name}: The input tensor B must have at least 2 dimensions.")
    n = A.shape[-1]
    # (a vector B with left=False is a column (n, 1) too, which XA = B refuses, as PyTorch)
    if left and B2.shape[-2] != n or not left and B2.shape[-1] != n:
        raise ShapeError(f"{name}: Incompatible shapes of A and B for the equation {'AX = B' if left else 'XA = B'} "
                         f"({A.shape[-2]}x{n} and {B2.shape[-2]}x{B2.shape[-1]})")
    try:
        np.broadcast_shapes(A.shape[:-2], B2.shape[:-2])
    except ValueError:
        raise ShapeError(f"{name}: batch dimensions of A {tuple(A.shape)} and B {tuple(B.shape)} do not broadcast") from None
    if left:
        X = Solve.apply(A, B2, name, raise_errors)
    else:
        X = Solve.apply(A.mT, B2.mT, name, raise_errors).mT
    return reshape(X, tuple(X.shape[:-1])) if vector else X


def solve(A, B, *, left: bool = True, out=None):
    """``torch.linalg.solve``: X with A X = B (``left``) or X A = B; B is a matrix (…, n, k) or
    a vector (…, n) by PyTorch's rule, batch dims broadcast; ``LinAlgError`` for a singular A."""
    return _solve("linalg.solve", A, B, left, True)


SolveExResult = collections.namedtuple("SolveExResult", ["result", "info"])


def solve_ex(A, B, *, left: bool = True, check_errors: bool = False, out=None):
    """``torch.linalg.solve_ex``: (result, info) without raising unless ``check_errors``."""
    X = _solve("linalg.solve_ex", A, B, left, bool(check_errors))
    xp = xp_of(X._data)
    A = as_tensor(A, "linalg.solve_ex")
    info = info_tensor(xp, A._data, "singular") if xp.isnan(X._data).any() else Tensor._wrap(xp.zeros(A.shape[:-2], np.int32))
    return SolveExResult(X, info)


def _triangle(xp, a, upper, unit):
    t = xp.triu(a) if upper else xp.tril(a)
    if unit:
        idx = xp.arange(a.shape[-1])
        t = t.copy()
        t[..., idx, idx] = 1
    return t


class SolveTriangular(Function):
    """X = T⁻¹B with T the upper or lower triangle of A (unit diagonal with ``unit``)."""

    @staticmethod
    def forward(ctx, a, b, upper, unit):
        xp = xp_of(a)
        t = _triangle(xp, a, upper, unit)
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        x = lapack("linalg.solve_triangular", xp.linalg.solve, xp.broadcast_to(t, batch + t.shape[-2:]),
                   xp.broadcast_to(b, batch + b.shape[-2:]))
        ctx.meta = (upper, unit, a.shape, b.shape)
        ctx.save_for_backward(t, x)
        return x

    @staticmethod
    def backward(ctx, g):
        t, x = ctx.saved_arrays
        upper, unit, sa, sb = ctx.meta
        xp = xp_of(g)
        gb = xp.linalg.solve(xp.broadcast_to(mT(t), g.shape[:-2] + sa[-2:]), g)
        na, nb = ctx.needs_input_grad[:2]
        ga = None
        if na:
            ga = -(gb @ mT(x))
            ga = xp.triu(ga, 1 if unit else 0) if upper else xp.tril(ga, -1 if unit else 0)
            ga = unbroadcast(ga, sa)
        return ga, (unbroadcast(gb, sb) if nb else None)

    @staticmethod
    def backward_graph(ctx, g):
        """``backward``'s formulas on Tensors (create_graph): gB = T⁻ᵀ g, gA = −gB Xᵀ on T's triangle."""
        t, x = ctx.saved_arrays
        upper, unit, sa, sb = ctx.meta
        na, nb = ctx.needs_input_grad[:2]
        A = ctx.inputs[0]
        if A is None:  # A is a constant: its triangle as forward used it
            T = Tensor._wrap(t)
        else:
            T = A.triu(1 if unit else 0) if upper else A.tril(-1 if unit else 0)
            if unit:
                T = T + Tensor._wrap(eye_like(t))
        gb = solve_triangular(T.mT, g, upper=not upper, unitriangular=unit)
        ga = None
        if na:
            ga = -(gb @ node_output(ctx, x).mT)
            ga = sum_to(ga.triu(1 if unit else 0) if upper else ga.tril(-1 if unit else 0), sa)
        return ga, (sum_to(gb, sb) if nb else None)


def _cholesky_backward_graph(ctx, g):
    """``Cholesky.backward`` on Tensors (create_graph): gA = L⁻ᵀ Φ(Lᵀ gL) L⁻¹, Φ keeping the
    lower triangle, symmetrised with the diagonal halved; L is the op's own output, so the
    formula's dependence on A is recorded. (Set here: it needs ``solve_triangular``.)"""
    (L,) = ctx.saved_arrays
    out = node_output(ctx, mT(L).copy() if ctx.upper else L)
    Lt = out.mT if ctx.upper else out
    gL = g.mT if ctx.upper else g
    P = (Lt.mT @ gL).tril()
    P = 0.5 * (P + P.tril(-1).mT)
    Y = solve_triangular(Lt.mT, P, upper=True)
    return solve_triangular(Lt, Y, upper=False, left=False)


Cholesky.backward_graph = staticmethod(_cholesky_backward_graph)
CholeskyNoRaise.backward_graph = staticmethod(_cholesky_backward_graph)


def solve_triangular(A, B, *, upper: bool, left: bool = True, unitriangular: bool = False, out=None):
    """``torch.linalg.solve_triangular``: X with T X = B (or X T = B) for T the upper or lower
    triangle of A (the other half is not read); B is a matrix (…, n, k), batch dims broadcast."""
    name = "linalg.solve_triangular"
    A = matrix_arg(name, A, square=True)
    B = matrix_arg(name, B, arg="B")
    if A.dtype != B.dtype:
        raise DTypeError(f"{name}: Expected A and B to have the same dtype, but found A of type {A.dtype} "
                         f"and B of type {B.dtype} instead")
    n = A.shape[-1]
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise ShapeError(f"{name}: Incompatible shapes of A and B for the equation {'AX = B' if left else 'XA = B'} "
                         f"({A.shape[-2]}x{n} and {B.shape[-2]}x{B.shape[-1]})")
    try:
        np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    except ValueError:
        raise ShapeError(f"{name}: batch dimensions of A {tuple(A.shape)} and B {tuple(B.shape)} do not broadcast") from None
    if left:
        return SolveTriangular.apply(A, B, bool(upper), bool(unitriangular))
    return SolveTriangular.apply(A.mT, B.mT, not upper, bool(unitriangular)).mT


TriangularSolveResult = collections.namedtuple("TriangularSolveResult", ["solution", "cloned_coefficient"])


def triangular_solve(b, A, upper: bool = True, transpose: bool = False, unitriangular: bool = False):
    """``torch.triangular_solve`` (deprecated in PyTorch): (X, A.clone()) with T X = b, or
    Tᵀ X = b with ``transpose``; T the upper (default) or lower triangle of A."""
    A = matrix_arg("triangular_solve", A, square=True)
    if transpose:
        X = solve_triangular(A.mT, b, upper=not upper, unitriangular=unitriangular)
    else:
        X = solve_triangular(A, b, upper=upper, unitriangular=unitriangular)
    return TriangularSolveResult(X, clone(A))


def cholesky_solve(B, L, upper: bool = False):
    """``torch.cholesky_solve``: X with (L Lᴴ) X = B (or (Uᴴ U) X = B with ``upper``), given the
    Cholesky factor; differentiable in B and L (see ``CholeskySolve``)."""
    L = matrix_arg("cholesky_solve", L, square=True)
    B = matrix_arg("cholesky_solve", B, arg="B")
    return CholeskySolve.apply(B, L, bool(upper))


def _solve_with_factor(B, L, upper: bool):
    """(L Lᴴ)⁻¹ B by two triangular solves: only L's triangle is read."""
    if upper:
        return solve_triangular(L, solve_triangular(L.mH, B, upper=False), upper=True)
    return solve_triangular(L.mH, solve_triangular(L, B, upper=False), upper=True)


class CholeskySolve(Function):
    """X = (L Lᴴ)⁻¹ B. The values read only L's triangle, but the gradient is PyTorch's: that of
    A = L Lᴴ with L taken whole, so the factor's gradient fills the whole matrix (the other
    triangle too) rather than being the triangle-only derivative of two triangular solves:
    dB = (L Lᴴ)⁻¹ dX, dL = -(C L) (lower) or -(L C) (upper) with C = dB Xᴴ + X dBᴴ."""

    on_tensors = True  # written on Tensors: create_graph differentiates the backward too

    @staticmethod
    def forward(ctx, B, L, upper):
        X = _solve_with_factor(B, L, upper)
        ctx.upper, ctx.shapes = upper, (tuple(B.shape), tuple(L.shape))
        ctx.save_for_backward(L, X)
        return X

    @staticmethod
    def backward(ctx, dX):
        L, X = ctx.saved_tensors
        dB = _solve_with_factor(dX, L, ctx.upper)
        common = matmul(dB, X.mH)
        common = common + common.mH
        dL = -matmul(L, common) if ctx.upper else -matmul(common, L)
        B_shape, L_shape = ctx.shapes
        return sum_to(dB, B_shape), sum_to(dL, L_shape), None


def cholesky_inverse(L, upper: bool = False, *, out=None):
    """``torch.cholesky_inverse``: (L Lᵀ)⁻¹ (or (Uᵀ U)⁻¹) from the Cholesky factor."""
    L = matrix_arg("cholesky_inverse", L, square=True)
    eye = Tensor._wrap(xp_of(L._data).broadcast_to(eye_like(L._data), L.shape).copy())
    return cholesky_solve(eye, L, upper)


def lu_solve(LU, pivots, B, *, left: bool = True, adjoint: bool = False, out=None):
    """``torch.linalg.lu_solve``: X with A X = B given ``lu_factor(A)`` (Aᵀ with ``adjoint``;
    X A = B when not ``left``); differentiable in LU and B."""
    name = "linalg.lu_solve"
    LU = matrix_arg(name, LU, square=True, arg="LU")
    B = matrix_arg(name, B, arg="B")
    n = LU.shape[-1]
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise ShapeError(f"{name}: Incompatible shapes of A and B for the equation {'AX = B' if left else 'XA = B'} "
                         f"({n}x{n} and {B.shape[-2]}x{B.shape[-1]})")
    if B.dtype != LU.dtype:
        raise DTypeError(f"{name}: Expected LU and B to have the same dtype, but found LU of type {LU.dtype} "
                         f"and B of type {B.dtype} instead")
    P, L, U = lu_unpack(LU, pivots)
    if not left:  # X A = B  ⇔  Aᵀ Xᵀ = Bᵀ
        return lu_solve(LU, pivots, B.mT, adjoint=not adjoint).mT
    if not adjoint:  # L U X = Pᵀ B
        Y = solve_triangular(L, matmul(P.mT, B), upper=False, unitriangular=True)
        return solve_triangular(U, Y, upper=True)
    Z = solve_triangular(U.mT, B, upper=False)  # Uᵀ Lᵀ Pᵀ X = B
    return matmul(P, solve_triangular(L.mT, Z, upper=True, unitriangular=True))


def lu_solve_legacy(b, LU_data, LU_pivots, *, out=None):
    """``torch.lu_solve(b, LU_data, LU_pivots)`` / ``b.lu_solve(LU_data, LU_pivots)``."""
    return lu_solve(LU_data, LU_pivots, b)


# ----------------------------------------------------------------------------- pinv, lstsq, rank


def _tolerance(xp, name, s_max, atol, rtol, m, n, dtype):
    """max(atol, rtol · σ_max) per matrix, with PyTorch's defaults: rtol = ε·max(m, n) when
    neither is given, 0 when only atol is."""
    def arr(v):
        return v._data if isinstance(v, Tensor) else v

    if atol is None and rtol is None:
        rtol = np.finfo(dtype).eps * max(m, n)
    elif rtol is None:
        rtol = 0.0
    if atol is None:
        atol = 0.0
    return xp.maximum(xp.asarray(arr(atol), dtype=dtype), xp.asarray(arr(rtol), dtype=dtype) * s_max)


class Pinv(Function):
    """P = A⁺ from the SVD (eigh when ``hermitian``), singular values ≤ tol dropped.
    Ā = −Pᵀ P̄ Pᵀ + (I − A P) P̄ᵀ P Pᵀ... precisely:
    Ā = −Pᵀ P̄ Pᵀ + (I − A P)ᵀ-free form below, valid where the rank is locally constant."""

    @staticmethod
    def forward(ctx, a, atol, rtol, hermitian):
        xp = xp_of(a)
        m, n = a.shape[-2:]
        if a.size == 0:
            p = xp.zeros(a.shape[:-2] + (n, m), a.dtype)
        elif hermitian:
            w, V = xp.linalg.eigh(a)
            aw = xp.abs(w)
            tol = _tolerance(xp, "linalg.pinv", aw.max(-1), atol, rtol, m, n, a.dtype)
            with np.errstate(all="ignore"):
                winv = xp.where(aw > tol[..., None], 1 / w, 0)
            p = (V * winv[..., None, :]) @ mT(V)
        else:
            U, S, Vh = xp.linalg.svd(a, full_matrices=False)
            tol = _tolerance(xp, "linalg.pinv", S[..., 0], atol, rtol, m, n, a.dtype)
            with np.errstate(all="ignore"):
                sinv = xp.where(S > tol[..., None], 1 / S, 0)
            p = (mT(Vh) * sinv[..., None, :]) @ mT(U)
        p = p.astype(a.dtype, copy=False)
        ctx.save_for_backward(a, p)
        return p

    @staticmethod
    def backward(ctx, g):
        a, p = ctx.saved_arrays
        pt = mT(p)
        # dP = −P dA P + P Pᵀ dAᵀ (I − A P) + (I − P A) dAᵀ Pᵀ P, each term transposed onto dA:
        term1 = -(pt @ g @ pt)
        term2 = (mT(g) - (a @ p) @ mT(g)) @ (p @ pt)  # (I − A P) Ḡᵀ P Pᵀ
        term3 = (pt @ p) @ (mT(g) - mT(g) @ (p @ a))  # Pᵀ P Ḡᵀ (I − P A)
        return (term1 + term2 + term3).astype(g.dtype, copy=False)


def pinv(A, *, atol=None, rtol=None, hermitian: bool = False, out=None):
    """``torch.linalg.pinv``: the Moore–Penrose pseudo-inverse (n×m); singular values (or
    |eigenvalues| with ``hermitian``) ≤ max(atol, rtol·σ_max) are treated as zero."""
    A = matrix_arg("linalg.pinv", A, square=bool(hermitian))
    return Pinv.apply(A, atol, rtol, bool(hermitian))


def pinverse(input, rcond: float = 1e-15):
    """``torch.pinverse`` / ``Tensor.pinverse``: pinv with a relative cutoff ``rcond``."""
    A = matrix_arg("pinverse", input)
    return Pinv.apply(A, None, float(rcond), False)


def matrix_rank(A, tol=None, hermitian: bool = False, *, atol=None, rtol=None, out=None):
    """``torch.linalg.matrix_rank``: how many singular values (|eigenvalues| with
    ``hermitian``) exceed max(atol, rtol·σ_max) (int64); ``tol`` is the legacy spelling of atol
    (with rtol 0)."""
    A = matrix_arg("linalg.matrix_rank", A, square=bool(hermitian))
    if tol is not None:
        if atol is not None or rtol is not None:
            raise ShapeError("linalg.matrix_rank: give tol, or atol/rtol, not both")
        atol, rtol = tol, 0.0
    xp = xp_of(A._data)
    m, n = A.shape[-2:]
    if A.numel() == 0:
        return Tensor._wrap(xp.zeros(A.shape[:-2], np.int64))
    if hermitian:
        s = xp.abs(xp.linalg.eigvalsh(A._data))
    else:
        s = xp.linalg.svd(A._data, compute_uv=False)
    tol_ = _tolerance(xp, "linalg.matrix_rank", s.max(-1), atol, rtol, m, n, A.dtype)
    return Tensor._wrap((s > tol_[..., None]).sum(-1).astype(np.int64))


LstsqResult = collections.namedtuple("LstsqResult", ["solution", "residuals", "rank", "singular_values"])
_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(A, B, rcond=None, *, driver=None):
    """``torch.linalg.lstsq``: the least-squares solution X minimising ‖A X − B‖ (the
    minimum-norm one when A is rank-deficient), with PyTorch's other fields by driver (CPU
    default "gelsy"): residuals ‖A X − B‖² per column when m > n, every matrix has full rank
    and the driver is not gelsy (else empty); rank (not for gels); singular values (gelsd,
    gelss). Singular values ≤ rcond·σ_max (default ε·max(m, n)) are treated as zero."""
    name = "torch.linalg.lstsq"
    A = matrix_arg(name, A)
    B = as_tensor(B, name)
    check_float(name, B)
    driver = "gelsy" if driver is None else driver
    if driver not in _DRIVERS:
        raise ShapeError(f"{name}: parameter `driver` should be one of (gels, gelsy, gelsd, gelss)")
    if A.dtype != B.dtype:
        raise DTypeError(f"{name}: Expected input and other to have the same dtype, but got input's dtype "
                         f"{A.dtype} and other's dtype {B.dtype}")
    vector = B.ndim == A.ndim - 1
    B2 = reshape(B, tuple(B.shape) + (1,)) if vector else B
    if B2.ndim < 2 or B2.shape[-2] != A.shape[-2]:
        raise ShapeError(f"{name}: input.size(-2) should match other.size(-2), got shapes {tuple(A.shape)} and {tuple(B.shape)}")
    xp = xp_of(A._data)
    m, n = A.shape[-2:]
    eps_rcond = np.finfo(A.dtype).eps * max(m, n) if rcond is None or rcond <= 0 else float(rcond)
    X = matmul(Pinv.apply(A, None, eps_rcond, False), B2)
    empty_int = Tensor._wrap(xp.zeros((0,), np.int64))
    empty = Tensor._wrap(xp.zeros((0,), A.dtype))
    s = SVD.apply(A, False)[1]  # the singular values, differentiable (gelsd and gelss return them)
    if A.numel():
        rank_arr = (s._data > eps_rcond * s._data[..., :1]).sum(-1).astype(np.int64)
    else:
        rank_arr = xp.zeros(A.shape[:-2], np.int64)
    rank = empty_int if driver == "gels" else Tensor._wrap(rank_arr)
    sv = s if driver in ("gelsd", "gelss") else empty
    residuals = empty
    if m > n and driver != "gelsy" and bool((rank_arr == n).all()):
        r = matmul(A, X) - B2
        residuals = (r * r).sum(-2)  # (…, k); (…, 1) for a vector B, as PyTorch
    if vector:
        X = reshape(X, tuple(X.shape[:-1]))
    return LstsqResult(X, residuals, rank, sv)


# ----------------------------------------------------------------------------- powers and exp


def matrix_power(A, n: int, *, out=None):
    """``torch.linalg.matrix_power``: Aⁿ for an integer n (n < 0: (A⁻¹)^|n|; n = 0: I), by
    repeated squaring with differentiable products."""
    A = as_tensor(A, "linalg.matrix_power")
    if A.ndim < 2:
        raise ShapeError("linalg.matrix_power: The input tensor A must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"linalg.matrix_power: A must be batches of square matrices, but they are "
                         f"{A.shape[-2]} by {A.shape[-1]} matrices")
    if isinstance(n, Tensor) or not float(n).is_integer():
        raise TypeError(f"linalg.matrix_power: n must be an int, got {n!r}")
    n = int(n)
    xp = xp_of(A._data)
    if n == 0:
        return Tensor._wrap(xp.broadcast_to(xp.eye(A.shape[-1], dtype=A.dtype), A.shape).copy())
    base = inv(A) if n < 0 else A
    n = abs(n)
    result = None
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


def expm_array(a):
    """exp(A) of each matrix by scaling and squaring: A/2ˢ with ‖A/2ˢ‖₁ ≤ ½ (one s for the whole
    batch), a degree-18 Taylor polynomial in Horner form (error below 1e-22 relative), then s
    squarings."""
    xp = xp_of(a)
    n = a.shape[-1]
    eye = xp.eye(n, dtype=a.dtype)
    if a.size == 0:
        return xp.broadcast_to(eye, a.shape).copy()
    norm = float(xp.abs(a).sum(-2).max())
    s = max(0, int(math.ceil(math.log2(norm / 0.5)))) if norm > 0.5 else 0
    x = a / (2.0 ** s)
    result = xp.broadcast_to(eye, a.shape).copy()
    for k in range(18, 0, -1):
        result = eye + (x @ result) / k
    for _ in range(s):
        result = result @ result
    return result


class MatrixExp(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return expm_array(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_arrays
        xp = xp_of(g)
        n = a.shape[-1]
        at = mT(a)
        block = xp.zeros(a.shape[:-2] + (2 * n, 2 * n), a.dtype)
        block[..., :n, :n] = at
        block[..., n:, n:] = at
        block[..., :n, n:] = g
        return expm_array(block)[..., :n, n:].astype(g.dtype, copy=False)


def matrix_exp(A):
    """``torch.linalg.matrix_exp`` / ``torch.matrix_exp``: the matrix exponential Σ Aᵏ/k!."""
    A = matrix_arg("linalg.matrix_exp", A, square=True)
    return MatrixExp.apply(A)


# ----------------------------------------------------------------------------- tensor forms


def tensorinv(A, ind: int = 2, *, out=None):
    """``torch.linalg.tensorinv``: the inverse of A seen as a matrix of its first ``ind`` dims
    by the rest; the result has shape A.shape[ind:] + A.shape[:ind]."""
    A = as_tensor(A, "linalg.tensorinv")
    if int(ind) <= 0:
        raise ShapeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    ind = int(ind)
    rows = int(np.prod(A.shape[:ind]))
    cols = int(np.prod(A.shape[ind:]))
    if rows != cols:
        raise ShapeError(f"Expected self to satisfy the requirement prod(self.shape[ind:]) == prod(self.shape[:ind]), "
                         f"but got {cols} != {rows}")
    return reshape(inv(reshape(A, (rows, cols))), tuple(A.shape[ind:]) + tuple(A.shape[:ind]))


def tensorsolve(A, B, dims=None, *, out=None):
    """``torch.linalg.tensorsolve``: X with tensordot(A, X, X.ndim) = B; ``dims`` (dims of A)
    are moved to the end first. X has shape A.shape[B.ndim:]."""
    A = as_tensor(A, "linalg.tensorsolve")
    B = as_tensor(B, "linalg.tensorsolve")
    if dims is not None:
        dims = [dims] if isinstance(dims, int) else list(dims)
        A = movedim(A, dims, list(range(A.ndim - len(dims), A.ndim)))
    rest = tuple(A.shape[B.ndim:])
    rows, cols = int(np.prod(B.shape)), int(np.prod(rest))
    if tuple(A.shape[:B.ndim]) != tuple(B.shape) or rows != cols:
        raise ShapeError(f"Expected self to satisfy the requirement prod(result_shape) == prod(other.shape), but got "
                         f"{cols} != {rows} (A of shape {tuple(A.shape)}, B of shape {tuple(B.shape)})")
    return reshape(solve(reshape(A, (rows, cols)), reshape(B, (rows,))), rest)
