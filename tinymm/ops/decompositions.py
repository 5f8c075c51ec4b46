"""Matrix decompositions with PyTorch's semantics: Cholesky, QR, SVD, the symmetric
eigendecomposition and LU, each batched over leading dims, real float32/float64 only.

Values come from the array module's LAPACK (``numpy.linalg`` / ``cupy.linalg``) except LU,
written here as a batched partial-pivoting elimination (NumPy has no batched LU; the loop runs
over columns, each step vectorised over the batch, so it runs on CuPy arrays unchanged).

Backward formulas (real case; ``Φ(X)`` = lower triangle of X with its diagonal halved):

- Cholesky A = L Lᵀ:  Ā = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹, symmetrised.
- QR (m ≥ n) A = Q R:  M = R R̄ᵀ − Q̄ᵀ Q,  Ā = (Q̄ + Q copyltu(M)) R⁻ᵀ with copyltu(M) the
  symmetric matrix built from M's lower triangle. For m < n, A = Q [X | Y]: the square
  formula on the first m columns with Q̄ + V Ȳᵀ, and Q Ȳ for the rest (V = A's last n − m columns).
- SVD A = U S Vᵀ (k = min(m, n)): with E_jk = s_k² − s_j² and skew(X) = X − Xᵀ,
  Ā = U [(skew(UᵀŪ) S + S skew(VᵀV̄)) / E + diag(S̄)] Vᵀ, plus (I − UUᵀ) Ū S⁻¹ Vᵀ when m > k
  or U S⁻¹ V̄ᵀ (I − VVᵀ) when n > k. With full_matrices the extra columns of U / rows of Vh
  are arbitrary bases and their gradients are ignored (as PyTorch).
- eigh A = V diag(λ) Vᵀ:  Ā = V (diag(λ̄) + (VᵀV̄) / E) Vᵀ with E_ij = λ_j − λ_i, symmetrised.
- LU P A' ... see ``LuFactor``.

Bad input raises at the boundary: ``ShapeError`` for shapes, ``DTypeError`` for integer or
half dtypes, and ``LinAlgError`` (a RuntimeError, as ``torch.linalg.LinAlgError``) when the
factorization fails (a matrix that is not positive-definite), naming the batch element.
"""
from __future__ import annotations

import collections

import numpy as np

from tinymm.autograd import Function, no_grad
from tinymm.ops._util import DTypeError, DTypeNotImplementedError, ShapeError, torch_dtype_name, xp_of
from tinymm.ops.convert import as_tensor
from tinymm.ops.layout import tril, triu
from tinymm.ops.shape import reshape
from tinymm.tensor import Tensor


class LinAlgError(RuntimeError, np.linalg.LinAlgError):
    """A matrix a LAPACK routine cannot handle (singular, not positive-definite): PyTorch's
    ``torch.linalg.LinAlgError`` is a RuntimeError, NumPy's a ValueError; this is both."""


def check_float(name: str, t: Tensor, kernel: str | None = None, complex_ok: bool = False) -> None:
    """float32/float64 only (and complex64/complex128 with ``complex_ok``); half precision is
    refused as PyTorch's CPU does: by the LAPACK ``kernel`` it has no half version of
    (NotImplementedError), else as "low precision"."""
    if t.dtype in (np.float32, np.float64) or (complex_ok and t.dtype in (np.complex64, np.complex128)):
        return
    if t.dtype.kind in "fc" and kernel is not None:
        raise DTypeNotImplementedError(f"\"{kernel}\" not implemented for '{torch_dtype_name(t.dtype)}'")
    if t.dtype.kind in "fc":
        raise DTypeError(f"{name}: Low precision dtypes not supported. Got {torch_dtype_name(t.dtype)}")
    raise DTypeError(f"{name}: Expected a floating point or complex tensor as input. Got {torch_dtype_name(t.dtype)}")


def matrix_arg(name: str, A, *, square: bool = False, arg: str = "A", kernel: str | None = None,
               complex_ok: bool = False) -> Tensor:
    """``A`` as a tensor of (batches of) matrices of float32/float64 (or complex, with
    ``complex_ok``), checked as PyTorch does (``kernel``: see ``check_float``)."""
    A = as_tensor(A, name)
    if A.ndim < 2:
        raise ShapeError(f"{name}: The input tensor {arg} must have at least 2 dimensions.")
    check_float(name, A, kernel, complex_ok)
    if square and A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"{name}: {arg} must be batches of square matrices, but they are "
                         f"{A.shape[-2]} by {A.shape[-1]} matrices")
    return A


def mT(a):
    """The array's matrices transposed (last two axes swapped), a view."""
    return a.swapaxes(-1, -2)


def eye_like(a, n=None):
    xp = xp_of(a)
    n = a.shape[-1] if n is None else n
    return xp.eye(n, dtype=a.dtype)


def lapack(name: str, fn, *args, kind: str = "singular", a=None, **kwargs):
    """``fn(*args)`` with a LAPACK failure turned into ``LinAlgError`` worded as PyTorch's
    (``kind`` "singular" or "not_pd"), naming the first failing batch element of ``a``."""
    xp = xp_of(args[0])
    try:
        if xp is np:
            with np.errstate(all="ignore"):
                return fn(*args, **kwargs)
        import cupyx

        with cupyx.errstate(linalg="raise"):
            return fn(*args, **kwargs)
    except np.linalg.LinAlgError:
        a = args[0] if a is None else a
        batch, info = first_failure(a, kind)
        raise LinAlgError(failure_message(name, a.ndim, batch, info, kind)) from None


def failure_message(name, ndim, batch, info, kind):
    where = f"(Batch element {batch}): " if ndim > 2 else ""
    if kind == "not_pd":
        return (f"{name}: {where}The factorization could not be completed because the input is not "
                f"positive-definite (the leading minor of order {info} is not positive-definite).")
    if name in ("linalg.solve", "linalg.solve_ex"):
        return f"torch.{name}: {where}The solver failed because the input matrix is singular."
    return (f"{name}: {where}The diagonal element {info} is zero, the inversion could not be completed "
            "because the input matrix is singular.")


def lapack_info(a, kind: str) -> np.ndarray:
    """LAPACK's ``info`` for each matrix of ``a`` (host int32 array of the batch shape): for
    "singular" the 1-based index of the first zero pivot of its LU (getrf), for "not_pd" the
    order of the first leading minor that is not positive-definite (potrf); 0 when it succeeds."""
    from scipy.linalg import lapack as sl

    host = a if type(a) is np.ndarray else a.get()
    flat = host.reshape((-1,) + host.shape[-2:])
    info = np.zeros(flat.shape[0], np.int32)
    for i, m in enumerate(flat):
        if kind == "not_pd":
            (potrf,) = sl.get_lapack_funcs(("potrf",), (m,))
            info[i] = potrf(m, lower=True)[1] if m.size else 0
        else:
            (getrf,) = sl.get_lapack_funcs(("getrf",), (m,))
            info[i] = getrf(m)[2] if m.size else 0
    return info.reshape(host.shape[:-2])


def first_failure(a, kind):
    info = lapack_info(a, kind).reshape(-1)
    bad = np.flatnonzero(info > 0)
    i = int(bad[0]) if bad.size else 0
    return i, int(info[i]) if info.size else 0


def info_tensor(xp, a, kind):
    """The ``info`` output of the ``*_ex`` functions: int32, the batch shape of ``a``."""
    return Tensor._wrap(xp.asarray(lapack_info(a, kind)))


# ----------------------------------------------------------------------------- Cholesky


class Cholesky(Function):
    """L (or U = Lᵀ with ``upper``) from the lower triangle of A; saves L."""

    @staticmethod
    def forward(ctx, a, upper, name):
        xp = xp_of(a)
        L = lapack(name, xp.linalg.cholesky, a, kind="not_pd")
        ctx.upper = upper
        ctx.save_for_backward(L)
        return mT(L).copy() if upper else L

    @staticmethod
    def backward(ctx, g):
        (L,) = ctx.saved_arrays
        xp = xp_of(g)
        gL = mT(g) if ctx.upper else g
        P = xp.tril(mT(L) @ gL)
        P = 0.5 * (P + mT(xp.tril(P, -1)))  # symmetric, diagonal halved
        Linv = xp.linalg.inv(L)
        return (mT(Linv) @ P @ Linv).astype(g.dtype, copy=False)


class CholeskyNoRaise(Function):
    """``cholesky_ex``: L where the factorization succeeded; the gradient as ``Cholesky``."""

    @staticmethod
    def forward(ctx, a, upper):
        xp = xp_of(a)
        try:
            with np.errstate(all="ignore"):
                L = xp.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            # Factor the matrices one by one; a failing one is left as NaN.
            flat = a.reshape((-1,) + a.shape[-2:])
            L = xp.full(flat.shape, xp.nan, dtype=a.dtype)
            for i in range(flat.shape[0]):
                try:
                    L[i] = xp.linalg.cholesky(flat[i])
                except np.linalg.LinAlgError:
                    pass
            L = L.reshape(a.shape)
        ctx.upper = upper
        ctx.save_for_backward(L)
        return mT(L).copy() if upper else L

    backward = Cholesky.backward


def cholesky(A, *, upper: bool = False, out=None):
    """``torch.linalg.cholesky``: L with A = L Lᵀ (U with A = Uᵀ U when ``upper``), read from
    the lower triangle of A; ``LinAlgError`` when A is not positive-definite."""
    A = matrix_arg("linalg.cholesky", A, square=True, kernel="cholesky_cpu")
    return Cholesky.apply(A, bool(upper), "linalg.cholesky")


def cholesky_ex(A, *, upper: bool = False, check_errors: bool = False, out=None):
    """``torch.linalg.cholesky_ex``: (L, info) without raising unless ``check_errors``;
    info (int32, the batch shape) is the order of the failing leading minor, else 0."""
    A = matrix_arg("linalg.cholesky_ex", A, square=True, kernel="cholesky_cpu")
    if check_errors:
        L = Cholesky.apply(A, bool(upper), "linalg.cholesky_ex")
    else:
        L = CholeskyNoRaise.apply(A, bool(upper))
    xp = xp_of(A._data)
    if xp.isnan(L._data).any():
        info = info_tensor(xp, A._data, "not_pd")
    else:
        info = Tensor._wrap(xp.zeros(A.shape[:-2], np.int32))
    return CholeskyExResult(L, info)


def cholesky_legacy(input, upper: bool = False):
    """``torch.cholesky`` / ``Tensor.cholesky`` (deprecated in PyTorch): as linalg.cholesky."""
    A = matrix_arg("cholesky", input, square=True)
    return Cholesky.apply(A, bool(upper), "cholesky")


CholeskyExResult = collections.namedtuple("CholeskyExResult", ["L", "info"])


# ----------------------------------------------------------------------------- QR

QRResult = collections.namedtuple("QRResult", ["Q", "R"])


def _qr_square_grad(xp, Q, R, gQ, gR):
    """Ā for A = QR with R square (m ≥ n, reduced), see the module docstring."""
    M = R @ mT(gR) - mT(gQ) @ Q
    low = xp.tril(M, -1)
    sym = low + mT(low) + xp.tril(xp.triu(M))  # copyltu(M): lower triangle mirrored
    B = gQ + Q @ sym
    # B R⁻ᵀ = (R⁻¹ Bᵀ)ᵀ
    return mT(xp.linalg.solve(R, mT(B)))


class QR(Function):
    """Q, R of A (``mode`` "reduced" or "complete"); saves both."""

    @staticmethod
    def forward(ctx, a, mode):
        xp = xp_of(a)
        m, n = a.shape[-2:]
        if a.size == 0:
            k = min(m, n) if mode == "reduced" else m
            Q = xp.zeros(a.shape[:-2] + (m, k), a.dtype)
            if m:
                Q[...] = xp.eye(m, k, dtype=a.dtype)
            R = xp.zeros(a.shape[:-2] + (k, n), a.dtype)
        else:
            Q, R = xp.linalg.qr(a, mode=mode)
        ctx.mode = mode
        ctx.save_for_backward(Q, R)
        return Q, R

    @staticmethod
    def backward(ctx, gQ, gR):
        Q, R = ctx.saved_arrays
        xp = xp_of(gQ)
        m, n = Q.shape[-2], R.shape[-1]
        if ctx.mode == "complete" and m > n:
            raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
        if m >= n:
            return _qr_square_grad(xp, Q, R, gQ, gR).astype(gQ.dtype, copy=False)
        # Wide: A = Q [X | Y] with X square; Y = Qᵀ V where V is A's last n − m columns.
        X, Y = R[..., :, :m], R[..., :, m:]
        gX, gY = gR[..., :, :m], gR[..., :, m:]
        V = Q @ Y
        gU = _qr_square_grad(xp, Q, X, gQ + V @ mT(gY), gX)
        return xp.concatenate([gU, Q @ gY], axis=-1).astype(gQ.dtype, copy=False)


def qr(A, mode: str = "reduced", *, out=None):
    """``torch.linalg.qr``: A = Q R with Q's columns orthonormal and R upper triangular;
    ``mode`` "reduced" (Q m×k, R k×n, k = min(m, n)), "complete" (Q m×m, R m×n) or "r"
    (R only; Q is an empty tensor, as PyTorch)."""
    A = matrix_arg("linalg.qr", A, kernel="geqrf_cpu")
    if mode not in ("reduced", "complete", "r"):
        raise ShapeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', or 'complete'")
    if mode == "r":
        with no_grad():
            R = QR.apply(A, "reduced")[1]
        return QRResult(Tensor._wrap(xp_of(A._data).zeros((0,), A.dtype)), QrRNoGrad.apply(A, R._data))
    return QRResult(*QR.apply(A, mode))


class QrRNoGrad(Function):
    """R of ``qr(mode='r')``: recorded so that backward raises PyTorch's error."""

    @staticmethod
    def forward(ctx, a, r):
        return r

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. "
                           "Please use linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr.")


def qr_legacy(input, some: bool = True):
    """``torch.qr`` / ``Tensor.qr`` (deprecated in PyTorch): ``some`` True is mode "reduced",
    False is "complete"."""
    return qr(input, "reduced" if some else "complete")


# ----------------------------------------------------------------------------- SVD

SVDResult = collections.namedtuple("SVDResult", ["U", "S", "Vh"])


class SVD(Function):
    """U, S, Vh of A; saves them. ``full`` keeps all m columns of U and n rows of Vh."""

    @staticmethod
    def forward(ctx, a, full):
        xp = xp_of(a)
        m, n = a.shape[-2:]
        k = min(m, n)
        if a.size == 0:
            U = xp.zeros(a.shape[:-2] + (m, m if full else k), a.dtype)
            Vh = xp.zeros(a.shape[:-2] + (n if full else k, n), a.dtype)
            U[...] = xp.eye(*U.shape[-2:], dtype=a.dtype)
            Vh[...] = xp.eye(*Vh.shape[-2:], dtype=a.dtype)
            S = xp.zeros(a.shape[:-2] + (k,), a.dtype)
        else:
            U, S, Vh = lapack("linalg.svd", xp.linalg.svd, a, full_matrices=full)
        ctx.save_for_backward(U, S, Vh)
        return U, S, Vh

    @staticmethod
    def backward(ctx, gU, gS, gVh):
        U, S, Vh = ctx.saved_arrays
        xp = xp_of(gS)
        m, n = U.shape[-2], Vh.shape[-1]
        k = S.shape[-1]
        U, Vh, gU, gVh = U[..., :, :k], Vh[..., :k, :], gU[..., :, :k], gVh[..., :k, :]
        with np.errstate(all="ignore"):
            UtgU = mT(U) @ gU
            VtgV = Vh @ mT(gVh)
            UtgU = UtgU - mT(UtgU)
            VtgV = VtgV - mT(VtgV)
            S2 = S * S
            E = S2[..., None, :] - S2[..., :, None]
            idx = xp.arange(k)
            E[..., idx, idx] = 1
            inner = (UtgU * S[..., None, :] + S[..., :, None] * VtgV) / E
            inner[..., idx, idx] = gS
            if m > k:
                gUSinv = gU / S[..., None, :]
                out = (U @ inner + gUSinv - U @ (mT(U) @ gUSinv)) @ Vh
            elif n > k:
                SinvgVh = gVh / S[..., :, None]
                out = U @ (inner @ Vh + SinvgVh - (SinvgVh @ mT(Vh)) @ Vh)
            else:
                out = U @ inner @ Vh
        return out.astype(gS.dtype, copy=False)

    @staticmethod
    def backward_graph(ctx, gU, gS, gVh):
        """On Tensors (create_graph), the singular values' part only (svdvals, the nuclear and
        spectral norms): gA = U diag(gS) Vh, U and Vh being the op's own outputs. With a gradient
        for U or Vh as well: NotImplemented (first order only)."""
        from tinymm.autograd_graph import node_output

        if any(g.requires_grad or bool(g._data.any()) for g in (gU, gVh)):
            return NotImplemented
        U, S, Vh = ctx.saved_arrays
        k = S.shape[-1]
        Ut, Vt = node_output(ctx, U, 0)[..., :, :k], node_output(ctx, Vh, 2)[..., :k, :]
        return (Ut * gS.unsqueeze(-2)) @ Vt


def svd(A, full_matrices: bool = True, *, driver=None, out=None):
    """``torch.linalg.svd``: A = U diag(S) Vh, S descending; ``full_matrices`` (the default,
    as PyTorch) gives U m×m and Vh n×n, else m×k and k×n."""
    A = matrix_arg("linalg.svd", A, kernel="linalg_svd_cpu")
    return SVDResult(*SVD.apply(A, bool(full_matrices)))


def svdvals(A, *, driver=None, out=None):
    """``torch.linalg.svdvals``: the singular values, descending (differentiable)."""
    A = matrix_arg("linalg.svdvals", A, kernel="linalg_svd_cpu")
    return SVD.apply(A, False)[1]


def svd_legacy(input, some: bool = True, compute_uv: bool = True):
    """``torch.svd`` / ``Tensor.svd`` (deprecated in PyTorch): (U, S, V) with V, not Vh;
    ``some`` gives the reduced factors; without ``compute_uv``, U and V are zero matrices of
    shape (m, m) and (n, n)."""
    A = matrix_arg("svd", input)
    xp = xp_of(A._data)
    if not compute_uv:
        S = SVD.apply(A, False)[1]
        m, n = A.shape[-2:]
        return SVDResult(Tensor._wrap(xp.zeros(A.shape[:-2] + (m, m), A.dtype)), S,
                         Tensor._wrap(xp.zeros(A.shape[:-2] + (n, n), A.dtype)))
    U, S, Vh = SVD.apply(A, not some)
    return SVDResult(U, S, Vh.mT)


# ----------------------------------------------------------------------------- eigh

EighResult = collections.namedtuple("EighResult", ["eigenvalues", "eigenvectors"])


class Eigh(Function):
    """Eigenvalues (ascending) and eigenvectors of the symmetric matrix read from ``uplo``."""

    @staticmethod
    def forward(ctx, a, uplo):
        xp = xp_of(a)
        if a.size == 0:
            L, V = xp.zeros(a.shape[:-1], a.dtype), xp.zeros(a.shape, a.dtype)
        else:
            L, V = lapack("linalg.eigh", xp.linalg.eigh, a, UPLO=uplo)
        ctx.save_for_backward(L, V)
        return L, V

    @staticmethod
    def backward(ctx, gL, gV):
        L, V = ctx.saved_arrays
        xp = xp_of(gL)
        n = L.shape[-1]
        idx = xp.arange(n)
        E = L[..., None, :] - L[..., :, None]
        E[..., idx, idx] = 1
        with np.errstate(all="ignore"):
            inner = (mT(V) @ gV) / E
        inner[..., idx, idx] = gL
        gA = V @ inner @ mT(V)
        return (0.5 * (gA + mT(gA))).astype(gL.dtype, copy=False)  # symmetric, as PyTorch's

    @staticmethod
    def backward_graph(ctx, gL, gV):
        """``backward`` on Tensors (create_graph), the eigenpairs being the op's own outputs."""
        from tinymm.autograd_graph import node_output

        L, V = ctx.saved_arrays
        Lt, Vt = node_output(ctx, L, 0), node_output(ctx, V, 1)
        eye = Tensor._wrap(xp_of(L).eye(L.shape[-1], dtype=L.dtype))
        inner = (Lt.unsqueeze(-1) * 0 if gL is None else gL.unsqueeze(-1)) * eye
        if gV is not None:
            gap = Lt.unsqueeze(-2) - Lt.unsqueeze(-1) + eye  # 1 on the diagonal: no 0/0 there
            inner = inner + (Vt.mT @ gV) * (1 / gap) * (1 - eye)
        gA = Vt @ inner @ Vt.mT
        return 0.5 * (gA + gA.mT)


def _uplo(name, UPLO):
    if UPLO not in ("L", "U"):
        raise ShapeError(f"{name}: Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return UPLO


def eigh(A, UPLO: str = "L", *, out=None):
    """``torch.linalg.eigh``: (eigenvalues ascending, eigenvectors as columns) of the
    symmetric matrix whose lower (``UPLO='L'``) or upper triangle A holds."""
    A = matrix_arg("linalg.eigh", A, square=True, kernel="linalg_eigh_cpu")
    return EighResult(*Eigh.apply(A, _uplo("linalg.eigh", UPLO)))


def eigvalsh(A, UPLO: str = "L", *, out=None):
    """``torch.linalg.eigvalsh``: the eigenvalues of ``eigh``, ascending (differentiable)."""
    A = matrix_arg("linalg.eigvalsh", A, square=True, kernel="linalg_eigh_cpu")
    return Eigh.apply(A, _uplo("linalg.eigvalsh", UPLO))[0]


# ----------------------------------------------------------------------------- LU

LUFactorResult = collections.namedtuple("LUFactorResult", ["LU", "pivots"])
LUFactorExResult = collections.namedtuple("LUFactorExResult", ["LU", "pivots", "info"])
LUResult = collections.namedtuple("LUResult", ["P", "L", "U"])


def lu_packed(a):
    """Partial-pivoting LU of each matrix of ``a`` (…, m, n), as LAPACK's getrf: the packed
    factors (L below the diagonal, its unit diagonal implied; U on and above), the 1-based
    row swaps (int32, …, k) and info (the first exactly zero pivot, 1-based, else 0)."""
    xp = xp_of(a)
    m, n = a.shape[-2:]
    k = min(m, n)
    lu = a.copy()
    batch = a.shape[:-2]
    piv = xp.zeros(batch + (k,), np.int32)
    info = xp.zeros(batch, np.int32)
    flat = lu.reshape((-1, m, n))
    fpiv = piv.reshape((-1, k))
    finfo = info.reshape(-1)
    rows = xp.arange(flat.shape[0])
    for j in range(k):
        p = j + xp.argmax(xp.abs(flat[:, j:, j]), axis=1)  # the first largest |pivot|, as idamax
        fpiv[:, j] = p + 1
        top, best = flat[rows, j].copy(), flat[rows, p].copy()
        flat[rows, p] = top
        flat[rows, j] = best
        pivot = flat[:, j, j]
        zero = pivot == 0
        finfo[:] = xp.where(zero & (finfo == 0), j + 1, finfo)
        with np.errstate(all="ignore"):
            # A zero pivot leaves its column as it is (LAPACK skips the scaling there).
            scale = xp.where(zero, 0, 1 / xp.where(zero, 1, pivot))
        flat[:, j + 1:, j] *= scale[:, None]
        flat[:, j + 1:, j + 1:] -= flat[:, j + 1:, j, None] * flat[:, j, None, j + 1:]
    return lu, piv, info


def permutation_of(xp, piv, m):
    """The row order (…, m) that LAPACK's sequential swaps ``piv`` (1-based) produce: row i of
    P⁻¹A = row perm[i] of A."""
    batch = piv.shape[:-1]
    perm = xp.broadcast_to(xp.arange(m), batch + (m,)).copy()
    fperm = perm.reshape((-1, m))
    fpiv = piv.reshape((-1, piv.shape[-1])).astype(np.int64) - 1
    rows = xp.arange(fperm.shape[0])
    for j in range(piv.shape[-1]):
        p = fpiv[:, j]
        a, b = fperm[rows, j].copy(), fperm[rows, p].copy()
        fperm[rows, j] = b
        fperm[rows, p] = a
    return perm


def permutation_matrix(xp, perm, dtype):
    """P with A = P L U, from the row order ``perm`` (P⁻¹A = A[perm]): P[perm[i], i] = 1."""
    m = perm.shape[-1]
    return (perm[..., None, :] == xp.arange(m)[:, None]).astype(dtype)


def _lu_square_grad(xp, L, U, gL, gU):
    """Ā' for A' = L U (L unit lower, U upper, both square): L⁻ᵀ (tril(LᵀL̄, −1) + triu(ŪUᵀ)) U⁻ᵀ."""
    M = xp.tril(mT(L) @ gL, -1) + xp.triu(gU @ mT(U))
    X = xp.linalg.solve(mT(L), M)  # L⁻ᵀ M
    return mT(xp.linalg.solve(U, mT(X)))  # (L⁻ᵀ M) U⁻ᵀ


class LuFactor(Function):
    """(LU, pivots) of A; saves the packed factors and the row order. Backward, with
    A' = P⁻¹A = L U and k = min(m, n): square, Ā' = L⁻ᵀ (tril(LᵀL̄, −1) + triu(ŪUᵀ)) U⁻ᵀ;
    wide (m < n, U = [U₁ | U₂]): the square formula with L̄ − L⁻ᵀ Ū₂ U₂ᵀ, and L⁻ᵀ Ū₂ for
    the last columns; tall (m > n, L = [L₁; L₂]): the square formula with Ū − L₂ᵀ L̄₂ U⁻ᵀ,
    and L̄₂ U⁻ᵀ for the last rows. Then Ā = P Ā'."""

    @staticmethod
    def forward(ctx, a, lu, piv):
        ctx.save_for_backward(lu, permutation_of(xp_of(a), piv, a.shape[-2]))
        return lu, piv

    @staticmethod
    def backward(ctx, g, _gpiv):
        lu, perm = ctx.saved_arrays
        xp = xp_of(g)
        m, n = lu.shape[-2:]
        k = min(m, n)
        L = xp.tril(lu[..., :, :k], -1) + xp.eye(m, k, dtype=lu.dtype)
        U = xp.triu(lu[..., :k, :])
        gL = xp.tril(g[..., :, :k], -1)
        gU = xp.triu(g[..., :k, :])
        with np.errstate(all="ignore"):
            if m == n:
                gA = _lu_square_grad(xp, L, U, gL, gU)
            elif m < n:
                U1, U2, gU1, gU2 = U[..., :, :m], U[..., :, m:], gU[..., :, :m], gU[..., :, m:]
                LtgU2 = xp.linalg.solve(mT(L), gU2)  # L⁻ᵀ Ū₂
                gA1 = _lu_square_grad(xp, L, U1, gL - LtgU2 @ mT(U2), gU1)
                gA = xp.concatenate([gA1, LtgU2], axis=-1)
            else:
                L1, L2, gL1, gL2 = L[..., :n, :], L[..., n:, :], gL[..., :n, :], gL[..., n:, :]
                gL2Uinv = mT(xp.linalg.solve(U, mT(gL2)))  # L̄₂ U⁻ᵀ
                gA1 = _lu_square_grad(xp, L1, U, gL1, gU - mT(L2) @ gL2Uinv)
                gA = xp.concatenate([gA1, gL2Uinv], axis=-2)
        # A' = A[perm]: row perm[i] of Ā is row i of Ā'.
        back = xp.argsort(perm, axis=-1)
        return xp.take_along_axis(gA, back[..., :, None], axis=-2).astype(g.dtype, copy=False)


def _no_pivot(name, pivot):
    if not pivot:
        raise RuntimeError(f"{name}: LU without pivoting is not implemented on the CPU")


def lu_factor(A, *, pivot: bool = True, out=None):
    """``torch.linalg.lu_factor``: (LU, pivots): L (unit diagonal implied) and U packed in one
    matrix, and the 1-based row swaps (int32), as LAPACK's getrf; ``LinAlgError`` when a
    pivot is exactly zero (a singular matrix), as PyTorch."""
    A = matrix_arg("linalg.lu_factor", A, kernel="lu_cpu")
    _no_pivot("linalg.lu_factor", pivot)
    lu_, piv, info = lu_packed(A._data)
    host = (info if type(info) is np.ndarray else info.get()).reshape(-1)
    if (host > 0).any():
        b = int(np.flatnonzero(host)[0])
        where = f"(Batch element {b}): " if A.ndim > 2 else ""
        raise LinAlgError(f"torch.linalg.lu_factor: {where}U[{host[b]},{host[b]}] is zero and using it on lu_solve "
                          "would result in a division by zero. If you still want to perform the factorization, "
                          "consider calling linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")
    return LUFactorResult(*LuFactor.apply(A, lu_, piv))


def lu_factor_ex(A, *, pivot: bool = True, check_errors: bool = False, out=None):
    """``torch.linalg.lu_factor_ex``: (LU, pivots, info) without raising on a zero pivot."""
    A = matrix_arg("linalg.lu_factor_ex", A, kernel="lu_cpu")
    _no_pivot("linalg.lu_factor_ex", pivot)
    if check_errors:
        LU, piv = lu_factor(A)
        return LUFactorExResult(LU, piv, Tensor._wrap(xp_of(A._data).zeros(A.shape[:-2], np.int32)))
    lu_, piv, info = lu_packed(A._data)
    LU, piv = LuFactor.apply(A, lu_, piv)
    return LUFactorExResult(LU, piv, Tensor._wrap(info))


def lu_unpack(LU_data, LU_pivots, unpack_data: bool = True, unpack_pivots: bool = True, *, out=None):
    """``torch.lu_unpack``: (P, L, U) from ``lu_factor``'s packed output (differentiable in
    LU_data); a part not asked for is an empty tensor."""
    LU = matrix_arg("lu_unpack", LU_data)
    piv = as_tensor(LU_pivots, "lu_unpack")
    xp = xp_of(LU._data)
    m, n = LU.shape[-2:]
    k = min(m, n)
    if piv.dtype != np.int32:
        raise DTypeError(f"lu_unpack: LU_pivots is expected to be a contiguous tensor of torch.int32 dtype, got {piv.dtype}")
    if tuple(piv.shape) != tuple(LU.shape[:-2]) + (k,):
        raise ShapeError(f"lu_unpack: LU_pivots of shape {tuple(piv.shape)} does not fit LU_data of shape {tuple(LU.shape)}")
    empty = Tensor._wrap(xp.zeros((0,), LU.dtype))
    if unpack_data:
        L = tril(LU[..., :, :k], -1) + Tensor._wrap(xp.eye(m, k, dtype=LU.dtype))
        U = triu(LU[..., :k, :])
    else:
        L = U = empty
    P = Tensor._wrap(permutation_matrix(xp, permutation_of(xp, piv._data, m), LU.dtype)) if unpack_pivots else empty
    return LUResult(P, L, U)


def lu(A, *, pivot: bool = True, out=None):
    """``torch.linalg.lu``: A = P L U with P a permutation, L unit lower triangular (m×k) and U
    upper triangular (k×n); differentiable (a singular matrix is factored, not refused)."""
    A = matrix_arg("linalg.lu", A, kernel="lu_cpu")
    _no_pivot("linalg.lu", pivot)
    lu_, piv, _ = lu_packed(A._data)
    return lu_unpack(*LuFactor.apply(A, lu_, piv))


def lu_legacy(A, pivot: bool = True, get_infos: bool = False):
    """``torch.lu`` (deprecated in PyTorch): (LU, pivots), and info with ``get_infos``."""
    res = lu_factor_ex(A, pivot=pivot)
    return (res.LU, res.pivots, res.info) if get_infos else (res.LU, res.pivots)


# ----------------------------------------------------------------------------- Householder


def householder_product(A, tau, *, out=None):
    """``torch.linalg.householder_product``: the first n columns of H₁ H₂ ⋯ H_k with
    Hᵢ = I − τᵢ vᵢ vᵢᵀ, vᵢ the i-th column of A below the diagonal with a 1 on it
    (LAPACK's orgqr); built from differentiable ops."""
    A = matrix_arg("linalg.householder_product", A, arg="input")
    tau = as_tensor(tau, "linalg.householder_product")
    m, n = A.shape[-2:]
    k = tau.shape[-1] if tau.ndim else 0
    if n > m:
        raise ShapeError(f"torch.linalg.householder_product: input.shape[-2] must be greater than or equal to "
                         f"input.shape[-1], got {m} and {n}")
    if tau.ndim != A.ndim - 1 or k > n or tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise ShapeError(f"torch.linalg.householder_product: tau of shape {tuple(tau.shape)} does not fit input "
                         f"of shape {tuple(A.shape)} (expected (*, k) with k <= {n})")
    if tau.dtype != A.dtype:
        raise DTypeError(f"torch.linalg.householder_product: tau dtype {tau.dtype} does not match input dtype {A.dtype}")
    xp = xp_of(A._data)
    V = tril(A, -1) + Tensor._wrap(xp.eye(m, n, dtype=A.dtype))  # the reflectors' vectors, as columns
    Q = Tensor._wrap(xp.broadcast_to(xp.eye(m, n, dtype=A.dtype), A.shape).copy())
    # Q = H₁ ⋯ H_k [I; 0], applied right to left: Q ← Q − τᵢ vᵢ (vᵢᵀ Q).
    for i in reversed(range(k)):
        v = V[..., :, i:i + 1]  # (…, m, 1)
        Q = Q - (v * reshape(tau[..., i], tuple(tau.shape[:-1]) + (1, 1))) @ (v.mT @ Q)
    return Q


# ----------------------------------------------------------------------------- geqrf (lead)

GeqrfResult = collections.namedtuple("GeqrfResult", ["a", "tau"])


def geqrf(input, *, out=None):
    """``torch.geqrf``: LAPACK's QR in Householder form. ``a`` holds R on and above the
    diagonal and the reflectors' vectors below it (their leading 1 implied), ``tau`` their
    scales; ``linalg.householder_product(a, tau)`` rebuilds Q. Batched; not differentiable
    (nor is PyTorch's)."""
    A = matrix_arg("geqrf", input, kernel="geqrf_cpu")
    xp = xp_of(A._data)
    if A._data.size == 0:
        k = min(A.shape[-2], A.shape[-1])
        return GeqrfResult(Tensor._wrap(A._data.copy()), Tensor._wrap(xp.zeros(A.shape[:-2] + (k,), A._data.dtype)))
    h, tau = lapack("geqrf", xp.linalg.qr, A._data, mode="raw")
    return GeqrfResult(Tensor._wrap(xp.ascontiguousarray(mT(h))), Tensor._wrap(tau))
