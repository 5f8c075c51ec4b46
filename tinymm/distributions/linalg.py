"""The two matrix ops MultivariateNormal needs, with gradients: Cholesky factorisation and
the lower-triangular solve. Kept here, small and private to distributions, so that this
package needs nothing from a general ``tinymm.linalg``.

cholesky: A = L·Lᵀ (A symmetric positive definite, batched (..., n, n)). Given L̄,
    P = Φ(Lᵀ·L̄) (Φ: lower triangle with the diagonal halved), S = L⁻ᵀ·P·L⁻¹,
    Ā = (S + Sᵀ)/2 — symmetric, as PyTorch's gradient (Murray 2016, "Differentiation of the
    Cholesky decomposition"). Saves L.
solve_triangular_lower: X = L⁻¹·B for lower-triangular L (..., n, n) and B (..., n, k),
    batch dims broadcast. B̄ = L⁻ᵀ·X̄ and L̄ = −tril(B̄·Xᵀ) (only L's lower triangle is read).
    Saves L and X.
"""
from __future__ import annotations

import numpy as np

from tinymm.autograd import Function
from tinymm.ops._util import unbroadcast, xp_of

__all__ = ["cholesky", "solve_triangular_lower"]


def _solve(A, B):
    """A⁻¹·B with batch dims broadcast. A is triangular here; a general LU solve of a
    triangular matrix is exact up to rounding, and batches where scipy's triangular solver
    does not."""
    xp = xp_of(A)
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    return xp.linalg.solve(xp.broadcast_to(A, batch + A.shape[-2:]), xp.broadcast_to(B, batch + B.shape[-2:]))


class Cholesky(Function):
    @staticmethod
    def forward(ctx, a):
        xp = xp_of(a)
        try:
            L = xp.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            raise RuntimeError(
                "linalg.cholesky: The factorization could not be completed because the input is not positive-definite."
            ) from None
        ctx.save_for_backward(L)
        return L

    @staticmethod
    def backward(ctx, g):
        (L,) = ctx.saved_arrays
        xp = xp_of(L)
        P = xp.tril(xp.swapaxes(L, -1, -2) @ xp.tril(g))
        P = P - 0.5 * xp.einsum("...ii->...i", P)[..., None] * xp.eye(L.shape[-1], dtype=L.dtype)
        Linv = xp.linalg.inv(L)
        S = xp.swapaxes(Linv, -1, -2) @ P @ Linv
        return (0.5 * (S + xp.swapaxes(S, -1, -2))).astype(g.dtype, copy=False)


class SolveTriangularLower(Function):
    @staticmethod
    def forward(ctx, L, B):
        X = _solve(xp_of(L).tril(L), B)
        ctx.shapes = (L.shape, B.shape)
        ctx.save_for_backward(L, X)
        return X

    @staticmethod
    def backward(ctx, g):
        L, X = ctx.saved_arrays
        xp = xp_of(L)
        l_shape, b_shape = ctx.shapes
        gB = _solve(xp.swapaxes(xp.tril(L), -1, -2), g)
        gL = -xp.tril(gB @ xp.swapaxes(X, -1, -2))
        return unbroadcast(gL, l_shape), unbroadcast(gB, b_shape)


def cholesky(a):
    """Lower Cholesky factor of symmetric positive-definite (..., n, n) ``a``; RuntimeError
    when the factorisation fails."""
    return Cholesky.apply(a)


def solve_triangular_lower(L, B):
    """X with L·X = B for lower-triangular L (..., n, n) and B (..., n, k), batch dims broadcast."""
    return SolveTriangularLower.apply(L, B)
