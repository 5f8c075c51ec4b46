"""The two matrix ops the Gaussian distributions need, with gradients, from :mod:`tinymm.linalg`:
the Cholesky factor and the lower-triangular solve (batch dims broadcast; only the lower
triangle of ``L`` is read)."""
from __future__ import annotations

from tinymm import linalg

__all__ = ["cholesky", "solve_triangular_lower"]


def cholesky(a):
    """Lower Cholesky factor of symmetric positive-definite (..., n, n) ``a``; a RuntimeError
    (``tinymm.linalg.LinAlgError``) when the factorisation fails."""
    return linalg.cholesky(a)


def solve_triangular_lower(L, B):
    """X with L·X = B for lower-triangular L (..., n, n) and B (..., n, k), batch dims broadcast."""
    return linalg.solve_triangular(L, B, upper=False)
