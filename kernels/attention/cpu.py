r"""Fused attention on the CPU: Numba threads over heads and query blocks, BLAS for every block GEMM.

The math is the reference's (see ``reference.py``); this file computes it without holding the
(Nq, Nk) score matrix (unless it is small and kept for backward: see below). Work is cut into
*query blocks* of rows, and each block walks the keys in *tiles*. Each worker first copies the
head's keys (and, backward, values) transposed into a (D, Nk) buffer, kt and vt, so that every
score product is a plain NN GEMM. For one block of one head:

forward (FlashAttention-2's online softmax; m, l: each row's running maximum and sum)::

    for each key tile j:
        S   = (scale * log2 e) * q_blk @ kt[:, j]   (rows, tile) scores, base 2, stay in cache
        S  += log2 e * bias;  causal keys -> -inf
        m'  = max(m, rowmax S);  o_blk *= 2**(m - m');  l = l * 2**(m - m') + rowsum 2**(S - m')
        o_blk += 2**(S - m') @ v[j]
    o_blk /= l;  lse = ln 2 * (m + log2 l)

backward (``lse`` gives P back without any running maximum)::

    for each key tile j:
        P   = 2**(S - log2 e * lse)              S recomputed as forward
        dP  = dO_blk @ vt[:, j]
        dS  = P * (dP - rowsum(dO_blk * o_blk))
        dq_blk += scale * dS @ k[j]
        dk[j]  += scale * dS^T @ q_blk
        dv[j]  += P^T @ dO_blk

When the attention matrix is small (``keep_probs``, at most SAVED_PROBS_BYTES for the whole
call), forward keeps it for backward instead: each query block of 128 rows takes whole key
rows, S = q_blk @ kt written straight into the kept (B, H, Nq, Nk+pad) array, the softmax of
each row in place (max, 2**(s - max), divide by the sum: no running statistics), then o = P v; and
backward reads P from it (``_backward_block_saved``): no score GEMM, no exponential, and no
transposed keys. (Up to 64 MiB, e.g. B4 H4 N1024: the array's memory is reused from the last
call's P once nothing references that, ``_kept_probs_array``, because faulting in 64 MiB of fresh
pages on every call cost as much as keeping P saved.)::

    for each key tile j:
        dP  = dO_blk @ vt[:, j];  dS = P[:, j] * (dP - rowsum(dO_blk * o_blk))
        dq_blk += scale * dS @ k[j];  dk[j] += scale * dS^T @ q_blk;  dv[j] += P[:, j]^T @ dO_blk

Why it is fast
--------------
* **Every product is a BLAS sgemm/dgemm** on a block: forward 256 x 512 x 64 for D = 64,
  backward 256 x 256 x 64, 128-row blocks under a causal mask (``FORWARD_BLOCK``,
  ``BACKWARD_BLOCK``). They are called from inside Numba with ``alpha`` and ``beta``: the
  softmax scale is folded into alpha, and o, dq, dk, dv are accumulated in place with beta = 1
  instead of adding temporaries. The BLAS is NumPy's own OpenBLAS, reached through its CBLAS
  symbols (section 1: 14% faster on one machine than the older copy inside SciPy that Numba's
  ``np.dot`` uses), linked by name so that the compiled kernels can still be cached on disk.
  The score products are NN against kt, vt: on an AVX-512 Xeon, OpenBLAS ran the NT form
  (q @ k^T, repacking k every call) at ~60% of its peak; on an AVX2 Zen 3 both forms run
  alike, ~84 GF/s of a 90 GF/s single-thread sgemm, and ~75 GF/s inside the kernel.
* **One thread pool.** Numba's threads take (head, query-block) work items from a shared
  atomic counter, and BLAS runs single-threaded inside them (``_parallel_region``); two pools
  fighting for the same cores ran ~3x slower. Taking items, rather than being dealt them, keeps
  both cores busy to the end when the OS preempts one (a shared machine) or causal items differ
  in cost. When there are fewer than 2 heads per thread, the query blocks of each head are dealt
  out to several items instead, each with its own dk/dv partial sums.
* **The elementwise work vectorises**: ``np.exp`` in ``@njit`` is a scalar libm call, so
  ``_exp2`` is 2**n times a polynomial, with 2**n built from the float's exponent bits (3 G/s
  against 0.26 G/s); the row maximum is taken over integer keys that sort like the floats
  (6-10 G/s; a float max reduction does not vectorise, 1.3 G/s). Base 2 turns the scale and
  e**x into one multiply, folded into alpha. Forward divides the (rows, Dv) o block by l once
  instead of normalising the (rows, tile) probabilities. Rows are always taken from
  C-contiguous buffers so Numba knows they are contiguous (a strided row ran the loops 3-6x
  slower).
* **Score rows never sit 4 KiB apart** (``_padded``): that aliasing made GEMMs 2x slower at N1024.
* **Causal blocks skip the masked triangle**: no key past the block's last row is touched, and
  across the diagonal the key tiles narrow to ``DIAGONAL_TILE`` and start at the first row that
  sees them (``_key_tiles``).
* **Padded keys are skipped**: when the mask is a key-padding mask (the same for every head and
  query of a batch element) that masks a run of trailing keys, those keys are never visited
  (``_key_lengths``): at B8 H12 N256 D32 with lengths drawn in [N/2, N], forward ran 14% faster.

Memory beyond inputs and outputs, per call: the kept P when forward keeps it (at most
SAVED_PROBS_BYTES, 64 MiB, plus row padding, held from forward to backward; its memory is then
kept for the next call's P, at most KEPT_POOL_BYTES in all); per Numba thread: kt (and
backward vt), D x Nk each; one (rows, tile) score buffer forward, two backward, and per-row
vectors; and, only when the query blocks of a head are split across items, a dk/dv partial sum
per split. At B1 H4 N4096 D64, float32, 2 threads: 3 MiB forward, 5.5 MiB backward
(tracemalloc). All scratch arrays are allocated in Python (``cpu_forward``/``cpu_backward``)
and handed to the kernels, so the budget is visible in one place (and tracemalloc sees it).

``NUMBA_DISABLE_JIT=1`` runs this file as plain Python (``gemm`` falls back to ``numpy.matmul``,
``_exp2`` to ``numpy.exp2``, the atomic counter to ``+= 1``): slow, but a debugger can step
through every line.
"""
import contextlib
import sys
import threading

import numba
import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .._common import one_blas_thread
from . import _amx
from ._amx import (
    aligned_empty, amx_gemm, exp_sum_split, fit_for_tiles, probs_grad_pair, split_pairs, split_rows,
    split_transposed_pairs, split_transposed_rows, transpose_into,
)
from ._inputs import (
    as_c_contiguous,
    check_backward_inputs,
    check_forward_inputs,
    mask_as_bias,
    resolve_scale,
)

# Block shapes, (query rows, keys per step), measured at D = 64: forward 256 x 512 and
# backward 256 x 256 without a causal mask; with one, 128-row blocks (a 256-row block spends
# 8 narrow diagonal tiles on the masked triangle, and ran 10-20% slower at N256).
FORWARD_BLOCK = (256, 512)
FORWARD_BLOCK_CAUSAL = (128, 512)
BACKWARD_BLOCK = (256, 256)
BACKWARD_BLOCK_CAUSAL = (128, 256)
BLOCK_Q, TILE_K = BACKWARD_BLOCK  # backward's widest blocks (tests size their inputs from these)
DIAGONAL_TILE = 32  # keys per GEMM slice across the causal diagonal (see _key_tiles)

# What bounds B4 H4 N1024 D64 (P kept), one thread of a Zen 3 whose sgemm runs at 87 GF/s:
# the six block products, at ~79 GF/s each inside the kernel (dV ~68: it reads P from memory),
# are ~85% of fwd+bwd; the forward's max/exp passes take ~8 ms of ~65; Python outside the
# kernels ~0.2 ms; reading the whole kept P back ~3 ms. Tried there and not kept, each within
# +-2% of fwd+bwd in paired runs: other block shapes (backward 128-512 rows x 128-1024 keys,
# forward 64-256 rows with P kept); whole-head GEMMs (no faster than 256-wide blocks here);
# filling C in the kernels to pass beta = 1 (OpenBLAS's clearing pass for beta = 0 costs 6-10%
# of a K = 64 product, but a vectorised fill costs the same: both are store-bound); P kept
# unnormalised with 1 / sum folded into backward (forward -2%, backward +-2%); backward in
# reverse head order (to find the last heads' P still in L3); dV before dQ, dK.
# Tried in the fifth session and not kept (ABBA-interleaved fwd+bwd runs, one thread, same
# machine): every block product through a register-blocked packed-panel micro-kernel (the
# recurrent family's LLVM-IR 6 x 16 tile, given a transposed left operand, alpha and panel
# ranges; K^T, V^T, K, Q, dO packed once per head): 8-15% faster than OpenBLAS on each block
# shape called repeatedly on hot data, yet fwd+bwd ran 4-10% slower inside the kernel, where
# the operands arrive cold; copying each P tile into a contiguous buffer during the dS pass
# for dV (+2%); S into an L2-sized scratch with P written out by the scale pass (+1%).
# Measured per product inside backward (N1024, P kept): dP 74-83 GF/s, dQ 80-84, dK 77-83,
# dV 58 (P^T read from the kept array), the dS pass ~10 ms; forward: S 59-61, P v 63-67,
# the softmax passes ~13 ms.
# Tried in the ninth session and not kept (benchmarks/RESULTS.md): whole-head backward products
# with dS written over the kept P (1024 x 64 x 1024 GEMMs: +7% backward, the head's 4 MiB dS
# leaves L2 between its pass and its products); a 128 x 128-tile backward with every product
# through the register-tile kernel, which runs 86-89 GF/s alone when C stays small, but inside
# the kernel its four products took as long as OpenBLAS's and packing cost 30 ms more.

# Forward may keep the attention matrix P for backward (``keep_probs``), which then skips the
# score GEMM and the exponentials (1/5 of its GEMM work): 12-17% less fwd+bwd time at
# B8 H4 N256 D64 (8 MiB), one thread. Only while P takes at most this many bytes per call
# (B1 H4 N4096 takes 256 MiB: recomputed). At B4 H4 N1024 (64 MiB) keeping P paid only once
# its memory was reused across calls (KEPT_POOL_BYTES): fresh pages cost ~9 ms to fault in
# per call, which ate the gain (fwd+bwd, one thread: -15% with reuse, -7% without).
SAVED_PROBS_BYTES = 64 * 2**20
# Memory of kept P arrays is handed out again once nothing references the last one that
# used it (``_kept_probs_array``), so a training loop does not fault in fresh pages for it on
# every step. At most this many bytes are held that way (one P of SAVED_PROBS_BYTES plus its
# row padding); larger demands, or more P's alive at once, get plain new arrays.
KEPT_POOL_BYTES = 80 * 2**20
SAVED_PROBS_BLOCK = 128  # query rows per forward block when P is kept (whole key rows each)

LOG2E = 1.4426950408889634  # log2(e): exp(x) = 2**(x * log2 e)
LN2 = 0.6931471805599453    # ln(2):   log(x) = ln 2 * log2(x)

# Flags for the elementwise loops: reassociation lets sums vectorise; no "no-NaN/no-inf"
# assumption, because masked scores are -inf on purpose.
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


# ---------------------------------------------------------------------------------------------
# 1. BLAS from inside Numba
# ---------------------------------------------------------------------------------------------

# Compiled code calls two CBLAS functions by name:
#
#     void tinymm_cblas_?gemm(int order, int trans_a, int trans_b, int64 m, int64 n, int64 k,
#                             T alpha, const T *a, int64 lda, const T *b, int64 ldb,
#                             T beta, T *c, int64 ldc)
#
# ``_bind_blas`` binds the names once per process, at import, to NumPy's own OpenBLAS (NumPy's
# wheels bundle it with 64-bit integers as ``scipy_cblas_?gemm64_``): it ran these block shapes
# 14% faster than the older OpenBLAS inside SciPy. Where NumPy has no such symbols, the names
# are bound to small shims over SciPy's ``cython_blas`` instead. Linking by name, as Numba's
# own helpers do, keeps the compiled kernels cacheable on disk; a function address baked into
# the code would be wrong in the next process.

_ROW_MAJOR, _NO_TRANS, _TRANS = np.int32(101), np.int32(111), np.int32(112)  # CBLAS enums


def _cblas_gemm_signature(t):
    i32, i64, ptr = types.int32, types.int64, types.voidptr
    return types.void(i32, i32, i32, i64, i64, i64, t, ptr, i64, ptr, i64, t, ptr, i64)


_cblas_sgemm = types.ExternalFunction("tinymm_cblas_sgemm", _cblas_gemm_signature(types.float32))
_cblas_dgemm = types.ExternalFunction("tinymm_cblas_dgemm", _cblas_gemm_signature(types.float64))


@intrinsic
def _data_pointer(typingctx, array):
    """The address of ``array``'s first element, as ``void*``."""

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.bitcast(ary.data, cgutils.voidptr_t)

    return types.voidptr(array), codegen


def gemm(alpha, a, b, beta, c, trans_a=False, trans_b=False):
    """``c = alpha * op(a) @ op(b) + beta * c`` in place, op(x) = x.T when trans_x.

    a, b, c are 2-D views whose rows are contiguous (any row stride): slices of bigger arrays
    are fine. With beta = 0, c's old contents are ignored (NaN included), as in BLAS.
    This plain version is what ``NUMBA_DISABLE_JIT=1`` runs; compiled code calls BLAS (below).
    """
    product = alpha * ((a.T if trans_a else a) @ (b.T if trans_b else b))
    if beta == 0:
        c[...] = product
    else:
        c[...] = product + beta * c


@overload(gemm)
def _gemm_blas(alpha, a, b, beta, c, trans_a=False, trans_b=False):
    cblas_gemm = _cblas_sgemm if c.dtype == types.float32 else _cblas_dgemm

    def impl(alpha, a, b, beta, c, trans_a=False, trans_b=False):
        m, n = c.shape
        if m == 0 or n == 0:
            return
        k = a.shape[0] if trans_a else a.shape[1]
        size = c.itemsize
        cblas_gemm(
            _ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS,
            m, n, k,
            c.dtype.type(alpha), _data_pointer(a), max(a.strides[0] // size, a.shape[1], 1),
            _data_pointer(b), max(b.strides[0] // size, b.shape[1], 1),
            c.dtype.type(beta), _data_pointer(c), max(c.strides[0] // size, n, 1),
        )

    return impl


def _bind_blas(prefer_numpy=True):
    """Bind ``tinymm_cblas_?gemm`` for compiled code. Returns the BLAS they now call."""
    import ctypes

    import llvmlite.binding

    addresses = None
    if prefer_numpy:
        try:
            from numpy._core import _multiarray_umath
        except ImportError:  # NumPy 1.x
            from numpy.core import _multiarray_umath
        try:
            # dlsym on NumPy's extension module also searches the libraries it links: its BLAS.
            library = ctypes.CDLL(_multiarray_umath.__file__)
            addresses = {
                kind: ctypes.cast(getattr(library, f"scipy_cblas_{kind}gemm64_"), ctypes.c_void_p).value
                for kind in "sd"
            }
            source = "numpy's OpenBLAS"
        except (OSError, AttributeError):  # another NumPy build: no such symbols
            pass
    if addresses is None:
        addresses = {kind: _scipy_gemm_shim(kind) for kind in "sd"}
        source = "scipy.linalg.cython_blas"
    for kind, address in addresses.items():
        llvmlite.binding.add_symbol(f"tinymm_cblas_{kind}gemm", address)
    return source


_shims = []  # compiled shims stay alive as long as their addresses are bound


def _scipy_gemm_shim(kind):
    """The address of a compiled C function with the CBLAS ?gemm signature above that calls
    SciPy's cython_blas ?gemm (through ``numba_xxgemm``, the helper behind Numba's np.dot)."""
    from numba import cfunc

    # int numba_xxgemm(char kind, char transa, char transb, intp m, n, k, void *alpha,
    #                  void *a, intp lda, void *b, intp ldb, void *beta, void *c, intp ldc)
    xxgemm = types.ExternalFunction("numba_xxgemm", types.intc(
        types.char, types.char, types.char, types.intp, types.intp, types.intp,
        types.voidptr, types.voidptr, types.intp, types.voidptr, types.intp,
        types.voidptr, types.voidptr, types.intp,
    ))
    code = ord(kind)
    dtype = types.float32 if kind == "s" else types.float64

    @cfunc(_cblas_gemm_signature(dtype))
    def shim(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        # Fortran BLAS is column-major, where a row-major (m, n) array reads as its (n, m)
        # transpose: c = op(a) op(b) is computed as c^T = op(b)^T op(a)^T.
        alpha_slot = np.full(1, alpha)
        beta_slot = np.full(1, beta)
        xxgemm(code, ord("T") if trans_b == _TRANS else ord("N"),
               ord("T") if trans_a == _TRANS else ord("N"), n, m, k,
               _data_pointer(alpha_slot), b, ldb, a, lda, _data_pointer(beta_slot), c, ldc)

    _shims.append(shim)
    return shim.address


_BLAS = _bind_blas()  # which library the compiled GEMMs call (see above)


# ---------------------------------------------------------------------------------------------
# 2. Vectorisable exp2 and row maximum
# ---------------------------------------------------------------------------------------------

@intrinsic
def _float_to_bits(typingctx, x):
    """Reinterpret a float32 as int32 (float64 as int64), bit for bit."""
    int_type = types.int32 if x == types.float32 else types.int64

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(int_type))

    return int_type(x), codegen


@intrinsic
def _bits_to_float(typingctx, n, like):
    """Reinterpret the integer n as a float of ``like``'s type (float32 or float64), bit for bit.
    n is first cast to the integer of that width (Numba widens int32 arithmetic to int64)."""
    float_type = like
    int_type = types.int32 if like == types.float32 else types.int64

    def codegen(context, builder, signature, args):
        as_int = context.cast(builder, args[0], signature.args[0], int_type)
        return builder.bitcast(as_int, context.get_value_type(float_type))

    return float_type(n, like), codegen


# 2**f on [-1/2, 1/2] as c0 + c1 f + c2 f^2 + ...: Chebyshev interpolants, max relative error
# 9.5e-8 (float32, degree 6) and 2.1e-16 (float64, degree 11).
_C32 = tuple(np.float32(c) for c in (
    1.0, 0.6931472067028326, 0.24022650922288757, 0.05550327226670302,
    0.009618056678524637, 0.0013400428177615838, 0.0001546144469856913,
))
_C64 = (
    1.0, 0.6931471805599453, 0.24022650695910158, 0.055504108664821625, 0.009618129107587256,
    0.001333355814640647, 0.00015403530463724353, 1.5252733841556773e-05, 1.3215432535912375e-06,
    1.0178057087733941e-07, 7.074194297288521e-09, 4.4558179083360645e-10,
)


def _exp2(x):
    """2**x for x <= 0 (tiny positive x is fine too); 0 below the smallest normal float, and for -inf."""
    return np.exp2(x)


@njit(fastmath=_FASTMATH, cache=True)
def _exp2_f32(x):
    # 2**x = 2**n * 2**f with n = round(x), f = x - n in [-1/2, 1/2]. 2**n is a float whose
    # exponent field is n + 127; below n = -126 that field is 0, which reads as 0.0.
    x = max(x, np.float32(-127.0))
    n = np.floor(x + np.float32(0.5))
    f = x - n
    p = _C32[6]
    for i in range(5, -1, -1):
        p = p * f + _C32[i]
    return p * _bits_to_float((np.int32(n) + 127) << 23, x)


@njit(fastmath=_FASTMATH, cache=True)
def _exp2_f64(x):
    x = max(x, -1023.0)
    n = np.floor(x + 0.5)
    f = x - n
    p = _C64[11]
    for i in range(10, -1, -1):
        p = p * f + _C64[i]
    return p * _bits_to_float((np.int64(n) + 1023) << 52, x)


@overload(_exp2)
def _exp2_compiled(x):
    if x == types.float32:
        return lambda x: _exp2_f32(x)
    if x == types.float64:
        return lambda x: _exp2_f64(x)


def _row_max(row):
    """max(row) of a non-empty 1-D float array."""
    return row.max()


@njit(fastmath=_FASTMATH, cache=True)
def _row_max_f32(row):
    # A float's bits read as a signed integer b sort like the float when it is >= 0. Negative
    # floats are sign + magnitude, so their magnitude bits count the wrong way: flipping them
    # (b ^ 0x7fffffff) gives a key that sorts like the float everywhere, -inf included. The
    # flip is its own inverse. An integer max vectorises; a float max reduction does not.
    flip = np.int32(0x7FFFFFFF)
    bits = _float_to_bits(row[0])
    best = np.int32(bits ^ ((bits >> 31) & flip))
    for j in range(1, row.shape[0]):
        bits = _float_to_bits(row[j])
        best = max(best, np.int32(bits ^ ((bits >> 31) & flip)))
    return _bits_to_float(best ^ ((best >> 31) & flip), row[0])


@njit(cache=True)
def _row_max_f64(row):
    best = row[0]
    for j in range(1, row.shape[0]):
        if row[j] > best:
            best = row[j]
    return best


@overload(_row_max)
def _row_max_compiled(row):
    if row.dtype == types.float32:
        return lambda row: _row_max_f32(row)
    return lambda row: _row_max_f64(row)


# ---------------------------------------------------------------------------------------------
# 3. Row operations (vectorised loops over the keys of one query row)
# ---------------------------------------------------------------------------------------------

@njit(cache=True)
def _bias_row(bias, b, h, i, j0, j1):
    """Keys [j0, j1) of row i of head (b, h) of a bias shaped (Bm, Hm, Qm, Km), each dim 1 or
    full: a dim of 1 is broadcast by reading index 0 (never copied). Km = 1 gives a length-1
    row (one value for every key), else length j1 - j0."""
    row = bias[min(b, bias.shape[0] - 1), min(h, bias.shape[1] - 1), min(i, bias.shape[2] - 1)]
    return row if row.shape[0] == 1 else row[j0:j1]


@njit(fastmath=_FASTMATH, cache=True)
def _add_bias(row, bias_row):
    """row += log2(e) * bias (the scores are in base 2; so must the bias be)."""
    log2e = row.dtype.type(LOG2E)
    if bias_row.shape[0] == 1:
        shift = log2e * bias_row[0]
        for j in range(row.shape[0]):
            row[j] += shift
    else:
        for j in range(row.shape[0]):
            row[j] += log2e * bias_row[j]


@njit(fastmath=_FASTMATH, cache=True)
def _exp_and_sum(row, shift):
    """In place: row <- 2**(row - shift). Returns the sum of the new row."""
    total = row.dtype.type(0)
    for j in range(row.shape[0]):
        e = _exp2(row[j] - shift)
        row[j] = e
        total += e
    return total


@njit(fastmath=_FASTMATH, cache=True)
def _scale(row, factor):
    for j in range(row.shape[0]):
        row[j] *= factor


@njit(fastmath=_FASTMATH, cache=True)
def _probs_and_grad(p, dp, shift, delta):
    """In place, in one pass: p <- 2**(p - shift), the probabilities again, and
    dp <- p * (dp - delta), the gradient of the scores (delta = rowsum(dO * o))."""
    for j in range(p.shape[0]):
        e = _exp2(p[j] - shift)
        p[j] = e
        dp[j] = e * (dp[j] - delta)


@njit(fastmath=_FASTMATH, cache=True)
def _grad_from_probs(p, dp, delta):
    """In place: dp <- p * (dp - delta), the gradient of the scores from saved probabilities."""
    for j in range(p.shape[0]):
        dp[j] = p[j] * (dp[j] - delta)


@njit(fastmath=_FASTMATH, cache=True)
def _dot(x, y):
    total = x.dtype.type(0)
    for j in range(x.shape[0]):
        total += x[j] * y[j]
    return total


# ---------------------------------------------------------------------------------------------
# 4. One query block of one head
# ---------------------------------------------------------------------------------------------

@njit(cache=True)
def _visible_keys(causal, n_keys, i):
    """How many leading keys query row i sees: causal masking is top-left aligned (key j <= i)."""
    return min(n_keys, i + 1) if causal else n_keys


@njit(cache=True)
def _key_tiles(i0, n_keys, causal, tile, diagonal_tile):
    """The key tiles (j0, j1, r0) of the query block starting at row i0: keys [j0, j1), needed
    by the block's rows r0, r0 + 1, ... only.

    Tiles are ``tile`` keys wide. With causal masking, keys j >= i0 are seen by rows i >= j
    only: there the tiles are DIAGONAL_TILE keys wide and start at the first row that sees
    them, so the block skips most of the masked triangle instead of computing it. The first
    tile always starts at key 0 and row 0."""
    tiles = []
    j0 = 0
    while j0 < n_keys:
        if causal and j0 >= i0:  # across the diagonal: only rows i >= j0 see key j0
            tiles.append((j0, min(j0 + diagonal_tile, n_keys), j0 - i0))
        else:  # seen by every row of the block
            tiles.append((j0, min(j0 + tile, n_keys, i0 if causal else n_keys), 0))
        j0 = tiles[-1][1]
    return tiles


def _transpose(a, out):
    """out[:, :n] = a.T for a (n, d): a head's keys or values, key index last. Float32 goes
    through ``_amx.transpose_into`` (16 x 16 blocks in vector registers: 0.27 ns a value
    against 0.57 for this loop); this loop is float64's, and NUMBA_DISABLE_JIT's."""
    n, d = a.shape
    for j in range(n):
        for c in range(d):
            out[c, j] = a[j, c]


@overload(_transpose)
def _transpose_compiled(a, out):
    if a.dtype == types.float32 and out.dtype == types.float32:
        return lambda a, out: transpose_into(a, out)
    # (reading a's rows in order and scattering into out's ran 2.5x faster than blocked loops)
    return _transpose


# In the two functions below, a row is always taken as buffer[r, :n] from a C-contiguous 2-D
# buffer: Numba then knows it is contiguous and vectorises the row loops. (A row of a 2-D
# *slice* buffer[:m, :n] is typed as strided, and its loops run 3-6x slower.)

@njit(cache=True)
def _forward_block(q, kt, v, n_keys, bias, use_bias, b, h, causal, scale, i0, i1, o, lse,
                   s, row_max, row_sum, tile, diagonal_tile):
    """o[i0:i1] and lse[i0:i1] of head (b, h): q, v, o, lse are that head's 2-D/1-D views,
    kt its keys transposed, (D, >= n_keys). s: a (block rows, >= tile) scratch buffer;
    row_max, row_sum: (block rows,). tile, diagonal_tile: key tile widths (see _key_tiles).

    Online softmax over key tiles: each row keeps its running maximum m (base 2) and sum l
    of 2**(s - m); o accumulates the unnormalised P v, rescaled by 2**(m_old - m_new) when
    a tile raises the maximum, and is divided by l at the end."""
    rows = i1 - i0
    n_keys = _visible_keys(causal, n_keys, i1 - 1)  # keys the block's last row sees
    minus_inf = s.dtype.type(-np.inf)
    for r in range(rows):
        row_max[r] = minus_inf
        row_sum[r] = 0
    for j0, j1, r0 in _key_tiles(i0, n_keys, causal, tile, diagonal_tile):
        width = j1 - j0
        # scores, base 2: s = (scale * log2 e) q k^T, a plain NN product against kt
        gemm(scale * LOG2E, q[i0 + r0 : i1], kt[:, j0:j1], 0.0, s[r0:rows, :width])
        for r in range(r0, rows):
            i = i0 + r
            visible = min(max(_visible_keys(causal, j1, i) - j0, 0), width)
            if use_bias:
                _add_bias(s[r, :visible], _bias_row(bias, b, h, i, j0, j0 + visible))
            s[r, visible:width] = 0
            old = row_max[r]
            new = max(old, _row_max(s[r, :visible])) if visible > 0 else old
            if new == minus_inf:  # no visible key so far: no probability
                s[r, :visible] = 0
                continue
            if new != old:
                factor = _exp2(old - new)  # 0 when old = -inf
                row_sum[r] *= factor
                if j0 > 0:  # o holds earlier tiles' sums (the first tile writes o fresh)
                    _scale(o[i], factor)
                row_max[r] = new
            row_sum[r] += _exp_and_sum(s[r, :visible], new)
        # o += P v; the first tile (j0 = 0, r0 = 0) initialises every row
        gemm(1.0, s[r0:rows, :width], v[j0:j1], 0.0 if j0 == 0 else 1.0, o[i0 + r0 : i1])
    for r in range(rows):
        i = i0 + r
        if row_sum[r] == 0:  # every key masked: o = 0, lse = -inf
            o[i, :] = 0
            lse[i] = minus_inf
        else:
            _scale(o[i], s.dtype.type(1) / row_sum[r])
            lse[i] = LN2 * (row_max[r] + np.log2(row_sum[r]))


@njit(cache=True)
def _backward_block(q, k, kt, vt, o, lse, do, n_keys, bias, use_bias, b, h, causal, scale,
                    i0, i1, dq, dk, dv, p, ds, delta, tile, diagonal_tile):
    """dq[i0:i1] of head (b, h), and this block's share of dk, dv (accumulated into them).
    kt, vt: the head's keys and values transposed, (D, >= n_keys) and (Dv, >= n_keys).

    Unlike forward, backward needs no running statistics (lse already normalises P): it
    walks the key tiles, and p and ds, (block rows, >= tile) scratch buffers, stay in cache
    between the GEMMs that write them and the GEMMs that read them. delta: (block rows,).
    """
    rows = i1 - i0
    n_keys = _visible_keys(causal, n_keys, i1 - 1)
    for r in range(rows):
        delta[r] = _dot(do[i0 + r], o[i0 + r])  # Di = rowsum(dO * o)
    for j0, j1, r0 in _key_tiles(i0, n_keys, causal, tile, diagonal_tile):
        width = j1 - j0
        # The scores of this tile again (base 2), and dP = dO v^T: NN products against kt, vt.
        gemm(scale * LOG2E, q[i0 + r0 : i1], kt[:, j0:j1], 0.0, p[r0:rows, :width])
        gemm(1.0, do[i0 + r0 : i1], vt[:, j0:j1], 0.0, ds[r0:rows, :width])
        for r in range(r0, rows):
            i = i0 + r
            visible = min(max(_visible_keys(causal, j1, i) - j0, 0), width)
            if lse[i] == -np.inf:  # every key masked: no probability, no gradient
                visible = 0
            elif use_bias:
                _add_bias(p[r, :visible], _bias_row(bias, b, h, i, j0, j0 + visible))
            shift = p.dtype.type(LOG2E * lse[i])
            _probs_and_grad(p[r, :visible], ds[r, :visible], shift, delta[r])
            p[r, visible:width] = 0
            ds[r, visible:width] = 0
        # dq = scale dS k (the first tile, j0 = 0, initialises every row), dk += scale dS^T q,
        # dv += P^T dO.
        gemm(scale, ds[r0:rows, :width], k[j0:j1], 0.0 if j0 == 0 else 1.0, dq[i0 + r0 : i1])
        gemm(scale, ds[r0:rows, :width], q[i0 + r0 : i1], 1.0, dk[j0:j1], trans_a=True)
        gemm(1.0, p[r0:rows, :width], do[i0 + r0 : i1], 1.0, dv[j0:j1], trans_a=True)


@njit(cache=True)
def _forward_block_saved(q, kt, v, n_keys, bias, use_bias, b, h, causal, scale, i0, i1, o, lse,
                         p, diagonal_tile):
    """As ``_forward_block``, but the block's probabilities are kept: p is the head's
    (Nq, >= Nk) probability matrix, and rows i0:i1 of it are written, P itself (normalised),
    for backward to reuse. Each row is whole here, so its softmax needs no running maximum:
    S = q k^T over every key the block sees, then per row 2**(s - max) / sum, then o = P v.
    Past each row's visible keys (up to the block's last visible key) p holds zeros."""
    rows = i1 - i0
    n_keys = _visible_keys(causal, n_keys, i1 - 1)
    minus_inf = p.dtype.type(-np.inf)
    tiles = _key_tiles(i0, n_keys, causal, n_keys, diagonal_tile)
    for j0, j1, r0 in tiles:
        gemm(scale * LOG2E, q[i0 + r0 : i1], kt[:, j0:j1], 0.0, p[i0 + r0 : i1, j0:j1])
    for r in range(rows):
        i = i0 + r
        visible = _visible_keys(causal, n_keys, i)
        row = p[i, :visible]
        if use_bias:
            _add_bias(row, _bias_row(bias, b, h, i, 0, visible))
        top = _row_max(row) if visible > 0 else minus_inf
        if top == minus_inf:  # every key masked: P = 0, o = 0, lse = -inf
            p[i, :n_keys] = 0
            lse[i] = minus_inf
            continue
        total = _exp_and_sum(row, top)
        _scale(row, p.dtype.type(1) / total)
        p[i, visible:n_keys] = 0
        lse[i] = LN2 * (top + np.log2(total))
    for j0, j1, r0 in tiles:  # o = P v; the first tile (j0 = 0, r0 = 0) initialises every row
        gemm(1.0, p[i0 + r0 : i1, j0:j1], v[j0:j1], 0.0 if j0 == 0 else 1.0, o[i0 + r0 : i1])


@njit(cache=True)
def _backward_block_saved(q, k, vt, o, lse, do, p, n_keys, causal, scale, i0, i1, dq, dk, dv,
                          ds, delta, tile, diagonal_tile):
    """As ``_backward_block``, with P read from p, the head's probabilities that
    ``_forward_block_saved`` kept: no score GEMM and no exponential. p's entries past a row's
    visible keys inside a tile are set to 0 here (forward zeroed them only up to its own
    block's keys), so that the dv product may read whole tiles."""
    rows = i1 - i0
    n_keys = _visible_keys(causal, n_keys, i1 - 1)
    for r in range(rows):
        delta[r] = _dot(do[i0 + r], o[i0 + r])
    for j0, j1, r0 in _key_tiles(i0, n_keys, causal, tile, diagonal_tile):
        width = j1 - j0
        gemm(1.0, do[i0 + r0 : i1], vt[:, j0:j1], 0.0, ds[r0:rows, :width])
        for r in range(r0, rows):
            i = i0 + r
            visible = min(max(_visible_keys(causal, j1, i) - j0, 0), width)
            if lse[i] == -np.inf:
                visible = 0
            _grad_from_probs(p[i, j0 : j0 + visible], ds[r, :visible], delta[r])
            p[i, j0 + visible : j1] = 0
            ds[r, visible:width] = 0
        gemm(scale, ds[r0:rows, :width], k[j0:j1], 0.0 if j0 == 0 else 1.0, dq[i0 + r0 : i1])
        gemm(scale, ds[r0:rows, :width], q[i0 + r0 : i1], 1.0, dk[j0:j1], trans_a=True)
        gemm(1.0, p[i0 + r0 : i1, j0:j1], do[i0 + r0 : i1], 1.0, dv[j0:j1], trans_a=True)


# ---------------------------------------------------------------------------------------------
# 5. The parallel kernels: Numba's threads take (head, split) work items from a shared counter
# ---------------------------------------------------------------------------------------------
# Work item `item` is head `item // n_split` and, within it, the query blocks
# part, part + n_split, part + 2 n_split, ... (part = item % n_split: interleaved, so causal
# blocks, cheap near the top and dear near the bottom, are shared fairly). Each worker takes
# the next untaken item until none is left (an atomic counter), so a thread that the OS
# preempts, or that drew cheap items, does not leave the others waiting at the end. Worker w
# uses scratch buffers [w]; item `item` writes only its own rows of o / dq and its own
# dk_parts[part], so no two threads ever write the same memory, and the sums are the same
# whichever thread runs an item.

def _next_item(counter):
    """Atomically ``counter[0] += 1``; returns the value before (the item to work on)."""
    item = counter[0]
    counter[0] += 1
    return item


@intrinsic
def _atomic_increment(typingctx, counter):
    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        one = context.get_constant(types.int64, 1)
        return builder.atomic_rmw("add", ary.data, one, "monotonic")

    return types.int64(counter), codegen


@overload(_next_item)
def _next_item_compiled(counter):
    return lambda counter: _atomic_increment(counter)


@njit(inline="always")
def _queue_layout(q, k, scratch, n_split):
    """(H, Nq, Nk, n_workers, block_q, n_blocks, n_items) of a work-queue kernel: scratch is
    (n_workers, block_q, ...), sized by the caller, so its rows are the rows per query block."""
    B, H, Nq, _ = q.shape
    n_workers, block_q = scratch.shape[0], scratch.shape[1]
    return H, Nq, k.shape[2], n_workers, block_q, (Nq + block_q - 1) // block_q, B * H * n_split


@njit(inline="always")
def _claim(counter, H, n_split, n_items):
    """Takes the next item off the shared queue as (head, part, b, h); head is -1 once the
    queue is empty (head = b * H + h, part = which of its n_split block sets)."""
    item = _next_item(counter)
    if item >= n_items:
        return -1, 0, 0, 0
    head, part = divmod(item, n_split)
    b, h = divmod(head, H)
    return head, part, b, h


@njit(parallel=True, nogil=True, cache=True)
def _forward_kernel(q, k, v, bias, use_bias, key_len, causal, scale, n_split, o, lse, probs,
                    keep_probs, scores, keys_t, stats, counter, tile, diagonal_tile):
    H, Nq, _, n_workers, block_q, n_blocks, n_items = _queue_layout(q, k, scores, n_split)
    for worker in prange(n_workers):
        transposed = -1  # the head whose keys keys_t[worker] holds
        head, part, b, h = _claim(counter, H, n_split, n_items)
        while head >= 0:
            Nk = key_len[b]  # keys past it are masked for every query of batch b: skipped
            if head != transposed:
                _transpose(k[b, h, :Nk], keys_t[worker])
                transposed = head
            for block in range(part, n_blocks, n_split):
                i0 = block * block_q
                i1 = min(i0 + block_q, Nq)
                if keep_probs:
                    _forward_block_saved(q[b, h], keys_t[worker], v[b, h], Nk, bias, use_bias, b, h,
                                         causal, scale, i0, i1, o[b, h], lse[b, h], probs[b, h],
                                         diagonal_tile)
                else:
                    _forward_block(q[b, h], keys_t[worker], v[b, h], Nk, bias, use_bias, b, h, causal,
                                   scale, i0, i1, o[b, h], lse[b, h], scores[worker],
                                   stats[worker, 0], stats[worker, 1], tile, diagonal_tile)
            head, part, b, h = _claim(counter, H, n_split, n_items)


@njit(parallel=True, nogil=True, cache=True)
def _backward_kernel(q, k, v, o, lse, do, bias, use_bias, key_len, causal, scale, n_split,
                     dq, dk_parts, dv_parts, saved, use_saved, keys_t, values_t, probs, dprobs,
                     deltas, counter, tile, diagonal_tile):
    H, Nq, _, n_workers, block_q, n_blocks, n_items = _queue_layout(q, k, dprobs, n_split)
    for worker in prange(n_workers):
        transposed = -1
        head, part, b, h = _claim(counter, H, n_split, n_items)
        while head >= 0:
            # This item's dk, dv partial sums start at 0 here, in parallel, and stay in cache
            # for the first block (np.zeros would have filled them serially before the kernel).
            dk_parts[part, b, h] = 0
            dv_parts[part, b, h] = 0
            Nk = key_len[b]  # keys past it are masked for every query: their dk, dv stay 0
            if head != transposed:
                if not use_saved:  # saved probabilities need no scores, so no keys transposed
                    _transpose(k[b, h, :Nk], keys_t[worker])
                _transpose(v[b, h, :Nk], values_t[worker])
                transposed = head
            for block in range(part, n_blocks, n_split):
                i0 = block * block_q
                i1 = min(i0 + block_q, Nq)
                if use_saved:
                    _backward_block_saved(q[b, h], k[b, h], values_t[worker], o[b, h], lse[b, h],
                                          do[b, h], saved[b, h], Nk, causal, scale, i0, i1,
                                          dq[b, h], dk_parts[part, b, h], dv_parts[part, b, h],
                                          dprobs[worker], deltas[worker], tile, diagonal_tile)
                else:
                    _backward_block(q[b, h], k[b, h], keys_t[worker], values_t[worker], o[b, h],
                                    lse[b, h], do[b, h], Nk, bias, use_bias, b, h, causal, scale,
                                    i0, i1, dq[b, h], dk_parts[part, b, h], dv_parts[part, b, h],
                                    probs[worker], dprobs[worker], deltas[worker],
                                    tile, diagonal_tile)
            head, part, b, h = _claim(counter, H, n_split, n_items)


# ---------------------------------------------------------------------------------------------
# 6. Entry points
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _parallel_region():
    """Yields how many Numba workers to use, with BLAS held to one thread meanwhile
    (``_common.one_blas_thread``; one worker when BLAS cannot be held)."""
    with one_blas_thread() as held:
        yield numba.get_num_threads() if held else 1


def _query_splits(n_heads, n_blocks, n_workers):
    """How many parts each head's query blocks are dealt into: 1 when there are heads enough
    to keep every worker busy (>= 2 per worker), else enough parts for 2 items per worker."""
    if n_heads >= 2 * n_workers:
        return 1
    return max(1, min(n_blocks, -(-2 * n_workers // n_heads)))


def _padded(n_keys):
    """Row length of the score buffers: a multiple of 16 elements (whole cache lines) plus 16,
    so that rows never sit a multiple of 4 KiB apart (which made GEMMs writing them 2x slower)."""
    return -(-n_keys // 16) * 16 + 16


def _bias_for_kernel(mask, dtype):
    bias = mask_as_bias(mask, dtype)
    if bias is None:
        return np.zeros((1, 1, 1, 1), dtype), False
    return bias, True


def _key_lengths(bias, use_bias, B, Nk):
    """(B,) int64: for each batch element, how many leading keys the kernels visit. A bias that
    is the same for every head and query (key padding, (B or 1, 1, 1, Nk)) and -inf on a run of
    trailing keys masks those keys for every row: the kernels skip them (no scores, no
    exponentials, no products), and their dk, dv are 0. At least 1 key stays, so that a row
    whose keys are all masked still goes through the kernels' fully-masked handling."""
    key_len = np.full(B, Nk, np.int64)
    if use_bias and bias.shape[1] == 1 and bias.shape[2] == 1 and bias.shape[3] == Nk > 1:
        live = bias[:, 0, 0, :] != -np.inf  # (B or 1, Nk)
        last_live = Nk - np.argmax(live[:, ::-1], axis=1)  # 1 + index of the last live key
        key_len[:] = np.where(live.any(axis=1), last_live, 1)
    return key_len


def _plan_work(heads, Nq, block_q, n_threads):
    """(n_split, n_workers, rows) for a work-queue kernel over `heads` heads of Nq query rows in
    blocks of block_q: the splits per head, the workers (one scratch set each), rows per block."""
    n_split = _query_splits(heads, -(-Nq // block_q), n_threads)
    return n_split, min(n_threads, heads * n_split), min(block_q, Nq)


def _keeps_probs(B, H, Nq, Nk, dtype):
    """Whether forward may keep the (B, H, Nq, Nk) probabilities for backward: only when they
    take at most SAVED_PROBS_BYTES (unpadded)."""
    return B * H * Nq * Nk * np.dtype(dtype).itemsize <= SAVED_PROBS_BYTES


def _unviewed_refs():
    """sys.getrefcount of a pooled owner array that nothing else references (measured, so that
    it holds on any Python version)."""
    pool = [np.empty(1, np.uint8)]
    return max(_owner_refs(pool, 0), 1)


def _owner_refs(pool, index):
    return sys.getrefcount(pool[index])


def _kept_probs_array(shape, dtype):
    """An uninitialised (shape, dtype) array for forward to keep P in, on memory reused from an
    earlier call when possible (see KEPT_POOL_BYTES)."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with _kept_lock:  # another Python thread must not take the same free buffer meanwhile
        return _take_kept_buffer(nbytes).view(dtype).reshape(shape)


def _take_kept_buffer(nbytes):
    free = [i for i in range(len(_kept_buffers)) if _owner_refs(_kept_buffers, i) <= _UNVIEWED_REFS]
    fits = [i for i in free if _kept_buffers[i].nbytes >= nbytes]
    if fits:
        owner = _kept_buffers[min(fits, key=lambda i: _kept_buffers[i].nbytes)]
    else:
        owner = np.empty(nbytes, np.uint8)
        held = sum(b.nbytes for b in _kept_buffers)
        for i in sorted(free, reverse=True):  # free buffers too small: let go first
            if held + nbytes <= KEPT_POOL_BYTES:
                break
            held -= _kept_buffers.pop(i).nbytes
        if held + nbytes <= KEPT_POOL_BYTES:
            _kept_buffers.append(owner)
    # A view of owner: every later view of it (NumPy collapses view chains) references owner.
    return owner[:nbytes]


_kept_buffers = []  # owners of the memory of kept P arrays (1-D uint8), at most KEPT_POOL_BYTES
_UNVIEWED_REFS = _unviewed_refs()
_kept_lock = threading.Lock()


def cpu_forward(q, k, v, mask=None, is_causal=False, scale=None, keep_probs=False):
    """Fused attention forward on NumPy arrays. Same contract as ``reference_forward``:
    returns ``(o, lse)``, o (B, H, Nq, Dv), lse (B, H, Nq) natural log, -inf for fully-masked rows.

    With ``keep_probs``, returns ``(o, lse, probs)``: probs is the attention matrix P,
    (B, H, Nq, >= Nk) (rows padded; entries past a row's visible keys undefined), for
    ``cpu_backward(..., probs=probs)`` to reuse, or None when it would take more than
    SAVED_PROBS_BYTES (then backward recomputes P from lse, as without keep_probs).
    """
    B, H, Nq, Nk, D, Dv = check_forward_inputs(q, k, v, mask)
    scale = resolve_scale(scale, D)
    q, k, v = (as_c_contiguous(np.asarray(a)) for a in (q, k, v))
    dtype = q.dtype
    if B * H * Nq == 0 or Nk == 0:  # nothing to attend to: every row is "fully masked"
        o, lse = np.zeros((B, H, Nq, Dv), dtype), np.full((B, H, Nq), -np.inf, dtype)
        return (o, lse, None) if keep_probs else (o, lse)
    o = np.empty((B, H, Nq, Dv), dtype)  # every row is written (the first key tile has beta = 0)
    lse = np.empty((B, H, Nq), dtype)
    bias, use_bias = _bias_for_kernel(mask, dtype)
    keep = keep_probs and _keeps_probs(B, H, Nq, Nk, dtype)
    if keep:
        block_q, tile = SAVED_PROBS_BLOCK, Nk
        probs = _kept_probs_array((B, H, Nq, _padded(Nk)), dtype)
    else:
        block_q, tile = FORWARD_BLOCK_CAUSAL if is_causal else FORWARD_BLOCK
        probs = np.empty((1, 1, 1, 1), dtype)
    with _parallel_region() as n_threads:
        n_split, n_workers, rows = _plan_work(B * H, Nq, block_q, n_threads)
        # (kept probabilities are written in place: no score or statistics scratch then)
        scores = np.empty((n_workers, rows, 1 if keep else _padded(min(tile, Nk))), dtype)
        keys_t = np.empty((n_workers, D, _padded(Nk)), dtype)
        stats = np.empty((n_workers, 2, 1 if keep else rows), dtype)  # running row maximum and sum
        _forward_kernel(q, k, v, bias, use_bias, _key_lengths(bias, use_bias, B, Nk), bool(is_causal),
                        scale, n_split, o, lse,
                        probs, keep, scores, keys_t, stats, np.zeros(1, np.int64), tile, DIAGONAL_TILE)
    if keep_probs:
        return o, lse, (probs if keep else None)
    return o, lse


def _gradient_parts(k, v, n_split):
    """(dk_parts, dv_parts), (n_split, *k.shape) and (n_split, *v.shape). With n_split > 1,
    several workers add into one head's dk, dv: each part gets its own (zeroed by the kernel).
    With one part, the parts are views of fresh dk and dv arrays, which ``_summed`` hands
    back: autograd adopts a fresh array as a leaf's gradient without a copy (a view it copies:
    two 2 MiB copies were 4% of a B8 H4 N256 layer's forward + backward)."""
    if n_split == 1:
        return np.empty_like(k)[np.newaxis], np.empty_like(v)[np.newaxis]
    return np.empty((n_split,) + k.shape, k.dtype), np.empty((n_split,) + v.shape, v.dtype)


def _summed(parts):
    return parts.base if parts.shape[0] == 1 else parts.sum(axis=0)


def cpu_backward(q, k, v, o, lse, do, mask=None, is_causal=False, scale=None, probs=None):
    """Fused attention backward on NumPy arrays: returns ``(dq, dk, dv)``. P is recomputed from
    ``lse`` block by block (no (Nq, Nk) matrix is ever held), or, given ``probs`` (what
    ``cpu_forward(..., keep_probs=True)`` returned for the same inputs), read from it; backward
    then zeroes the entries of probs past each row's visible keys. No gradient for the mask."""
    B, H, Nq, Nk, D, Dv = check_backward_inputs(q, k, v, o, lse, do, mask)
    scale = resolve_scale(scale, D)
    q, k, v, o, lse, do = (as_c_contiguous(np.asarray(a)) for a in (q, k, v, o, lse, do))
    dtype = q.dtype
    if B * H * Nq == 0 or Nk == 0:
        return np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    dq = np.empty_like(q)  # every row is written (the first key tile has beta = 0)
    bias, use_bias = _bias_for_kernel(mask, dtype)
    use_saved = probs is not None
    block_q, tile = BACKWARD_BLOCK_CAUSAL if is_causal else BACKWARD_BLOCK
    with _parallel_region() as n_threads:
        n_split, n_workers, rows = _plan_work(B * H, Nq, block_q, n_threads)
        dk_parts, dv_parts = _gradient_parts(k, v, n_split)
        width = _padded(min(tile, Nk))
        keys_t = np.empty((n_workers, 1, 1) if use_saved else (n_workers, D, _padded(Nk)), dtype)
        values_t = np.empty((n_workers, Dv, _padded(Nk)), dtype)
        scores = np.empty((n_workers, 1, 1) if use_saved else (n_workers, rows, width), dtype)
        dscores = np.empty((n_workers, rows, width), dtype)
        deltas = np.empty((n_workers, rows), dtype)
        _backward_kernel(q, k, v, o, lse, do, bias, use_bias, _key_lengths(bias, use_bias, B, Nk),
                         bool(is_causal), scale, n_split,
                         dq, dk_parts, dv_parts, probs if use_saved else np.empty((1, 1, 1, 1), dtype),
                         use_saved, keys_t, values_t, scores, dscores, deltas,
                         np.zeros(1, np.int64), tile, DIAGONAL_TILE)
    return dq, _summed(dk_parts), _summed(dv_parts)


# ---------------------------------------------------------------------------------------------
# 7. Every block product on AMX tiles
# ---------------------------------------------------------------------------------------------
# The kernels above with their block products on Intel AMX tiles (``_amx.py``): the same work
# queue, key tiles, causal skipping and online softmax; what changes is who multiplies, and
# in what layout the operands are written:
#
#     forward    S  = q k^T     A: the block's q pieces        B: the head's k^T, pair layout
#                o += P v       A: P's pieces (softmax pass)   B: the head's v, pair layout
#     backward   S  = q k^T     as forward
#                dP = dO v^T    A: the block's dO pieces       B: the head's v^T, pair layout
#                dq += dS k     A: dS's pieces (dS pass)       B: the head's k, pair layout
#                dk^T += q^T dS A: the head's q^T pieces       B: dS, pair layout along rows
#                dv^T += dO^T P A: the head's dO^T pieces      B: P, pair layout along rows
#
# Each product is six bfloat16 tile products of three-piece splits with float32 sums, as
# accurate as a float32 GEMM (``_amx.py``). The softmax scale is applied in the elementwise
# passes (a tile product has no alpha); dq and dk are scaled once, at the end of their block
# and item. The backward's elementwise pass takes two query rows at a time
# (``_amx.probs_grad_pair``), because the pair layout along rows interleaves them. dk^T and
# dv^T accumulate per work item and are transposed into dk, dv at its end.
#
# Used (``amx_forward``/``amx_backward``, called first by the attention dispatch) when
# ``amx_applies``: float32, D and Dv multiples of 32, at least AMX_MIN_KEYS keys
# (AMX_MIN_KEYS_CAUSAL with a causal mask), AMX usable (``_amx.available``). Otherwise the
# BLAS kernels above run. Every input must also be finite, with its largest magnitude in
# [2**-60, 2**60] (AMX reads a bfloat16 piece below 2**-126 as 0; a value near the float32
# maximum would round to inf): the kernels learn that from the splits that pack the inputs
# (``fit_for_tiles``), and when it fails their results are dropped and the BLAS kernels run
# after all (a wasted pass, only on such inputs). P is never kept.
#
# Per worker, beyond the BLAS kernels' buffers: the head's k^T, v^T, k in the pair layout and
# q^T, dO^T as pieces (each 3 x 2 bytes per element, 1.5x a float32 copy), float32 dk^T and
# dv^T of the item, and the block's pieces: ~4 MiB at N1024 D64 with (128, 128) blocks.

# Fewer keys than this (without, with a causal mask): the BLAS kernels, which keep P for
# backward when it is small. Kernels' forward + backward, AMX / BLAS with P kept, B8 H4 D64,
# 2 threads, interleaved: N160 1.04, N192 0.92, N256 0.83, N1024 (B4) 0.66; causal N256 1.07-1.09
# (BLAS skips more of the masked triangle in its narrow diagonal tiles), N384 0.94, N512 0.86.
AMX_MIN_KEYS = 192
AMX_MIN_KEYS_CAUSAL = 384
# Blocks (query rows, keys per tile) of the AMX kernels: smaller than BLAS's, because each
# worker's pieces of the head and of the block are ~1.5x float32 copies and should stay in L2.
# B4 H4 N1024 D64, 2 threads, interleaved: backward (256, 256) 46.3 ms, (128, 256) 42.7,
# (256, 128) 43.0, (128, 128) 41.6, (128, 512) 46.9; forward (256, 512) 17.9, (128, 512) 17.1,
# (64, 512) 17.0, (256, 256) 18.8.
AMX_FORWARD_BLOCK = (128, 512)
AMX_FORWARD_BLOCK_CAUSAL = (128, 512)
AMX_BACKWARD_BLOCK = (128, 128)
AMX_BACKWARD_BLOCK_CAUSAL = (128, 128)


def amx_applies(dtype, D, Dv, n_keys, causal):
    """Whether the AMX kernels may run on inputs of this dtype and shape (see section 7's
    header); their values are checked as the kernels split them (``fit_for_tiles``)."""
    enough = n_keys >= (AMX_MIN_KEYS_CAUSAL if causal else AMX_MIN_KEYS)
    return dtype == np.float32 and not D % 32 and not Dv % 32 and enough and _amx.available()


def _ceil_to(n, m):
    return -(-n // m) * m


@njit(cache=True)
def _exp_sum_split(row, alpha, shift, ph, pm, pl, k_pad):
    """2**(alpha row[j] - shift) into pieces ph, pm, pl [j] for j < len(row), zeros up to
    k_pad; returns the sum of the probabilities (before rounding them to pieces)."""
    n = row.shape[0]
    total = exp_sum_split(row, alpha, shift, ph[:n], pm[:n], pl[:n])
    ph[n:k_pad] = 0
    pm[n:k_pad] = 0
    pl[n:k_pad] = 0
    return total


@njit(cache=True)
def _forward_block_amx(q, ktp, vp, n_keys, bias, use_bias, b, h, causal, scale, i0, i1, o, lse,
                       qb, s, pp, acc, row_max, row_sum, tile, diagonal_tile):
    """cpu.py's ``_forward_block`` on AMX. ktp: the head's k^T in the pair layout; vp: its v in
    the pair layout; qb (3, >= rows, D) pieces of the block's queries (filled here); s, the
    float32 scores; pp, the pieces of P; acc, the block's unnormalised o. Returns the bits of
    the largest |q| of the block."""
    rows = i1 - i0
    n_keys = _visible_keys(causal, n_keys, i1 - 1)
    minus_inf = np.float32(-np.inf)
    alpha = np.float32(scale * LOG2E)
    prescale = use_bias or not alpha > 0  # a bias (or a scale <= 0) needs the scores scaled first
    d_chunks = q.shape[1] // 32
    dv_tiles = acc.shape[1] // 16
    top = split_rows(q[i0:i1], qb)
    for r in range(rows):
        row_max[r] = minus_inf
        row_sum[r] = 0
    for j0, j1, r0 in _key_tiles(i0, n_keys, causal, tile, diagonal_tile):
        width = j1 - j0
        k_pad = -(-width // 32) * 32
        m_tiles = (rows - r0 + 15) // 16
        amx_gemm(qb[:, r0:], ktp[:, :, 2 * j0 :], s[r0:], m_tiles, (width + 15) // 16, d_chunks, False)
        for r in range(r0, rows):
            i = i0 + r
            visible = min(max(_visible_keys(causal, j1, i) - j0, 0), width)
            row = s[r, :visible]
            step = alpha
            if prescale:
                _scale(row, alpha)
                if use_bias:
                    _add_bias(row, _bias_row(bias, b, h, i, j0, j0 + visible))
                step = np.float32(1)
            old = row_max[r]
            new = max(old, step * _row_max(row)) if visible > 0 else old
            if new == minus_inf:  # no visible key so far: no probability
                pp[:, r, :k_pad] = 0
                continue
            if new != old:
                factor = _exp2(old - new)
                row_sum[r] *= factor
                if j0 > 0:
                    _scale(acc[r], factor)
                row_max[r] = new
            row_sum[r] += _exp_sum_split(row, step, new, pp[0, r], pp[1, r], pp[2, r], k_pad)
        amx_gemm(pp[:, r0:], vp[:, j0 // 2 :], acc[r0:], m_tiles, dv_tiles, k_pad // 32, j0 != 0)
    for r in range(rows):
        i = i0 + r
        if row_sum[r] == 0:
            o[i, :] = 0
            lse[i] = minus_inf
        else:
            inverse = np.float32(1) / row_sum[r]
            for c in range(o.shape[1]):
                o[i, c] = acc[r, c] * inverse
            lse[i] = LN2 * (row_max[r] + np.log2(row_sum[r]))
    return top


@njit(cache=True)
def _backward_block_amx(q, o, lse, do, ktp, vtp, kp, n_keys, bias, use_bias, b, h, causal, scale,
                        i0, i1, dq, dkt, dvt, qb, dob, qth, doth, p, ds, dsp, dsq, pq,
                        dq_acc, delta, tile, diagonal_tile):
    """cpu.py's ``_backward_block`` with every product on AMX. ktp, vtp: the head's k^T and v^T
    in the pair layout; kp: its k in the pair layout; qb, dob: the block's q and dO pieces (filled
    here); qth, doth: the pieces of the head's q^T and dO^T; p, ds: float32 scratch; dsp:
    dS's pieces by rows; dsq, pq: dS and P in the pair layout along rows; dq_acc: the block's
    dq / scale; dkt, dvt: the item's dk^T / scale and dv^T, accumulated here."""
    rows = i1 - i0
    n_keys = _visible_keys(causal, n_keys, i1 - 1)
    alpha = np.float32(scale * LOG2E)
    prescale = use_bias or not alpha > 0
    d_chunks, dv_chunks = q.shape[1] // 32, do.shape[1] // 32
    d_tiles, dv_tiles = dq_acc.shape[1] // 16, dvt.shape[0] // 16
    split_rows(q[i0:i1], qb)
    split_rows(do[i0:i1], dob)
    for r in range(rows):
        delta[r] = _dot(do[i0 + r], o[i0 + r])
    pair_shift = np.empty(2, np.float32)
    pair_delta = np.empty(2, np.float32)
    pair_visible = np.empty(2, np.int64)
    for j0, j1, r0 in _key_tiles(i0, n_keys, causal, tile, diagonal_tile):
        width = j1 - j0
        k_pad = -(-width // 32) * 32
        m_tiles = (rows - r0 + 15) // 16
        n_tiles = (width + 15) // 16
        row_chunks = (rows - r0 + 31) // 32
        amx_gemm(qb[:, r0:], ktp[:, :, 2 * j0 :], p[r0:], m_tiles, n_tiles, d_chunks, False)
        amx_gemm(dob[:, r0:], vtp[:, :, 2 * j0 :], ds[r0:], m_tiles, n_tiles, dv_chunks, False)
        step = np.float32(1) if prescale else alpha
        for r in range(r0, rows, 2):  # two rows at a time: the pair layout interleaves them
            for t in range(2):
                i = i0 + r + t
                visible = 0
                if r + t < rows and lse[i] != -np.inf:
                    visible = min(max(_visible_keys(causal, j1, i) - j0, 0), width)
                    if prescale:
                        _scale(p[r + t, :visible], alpha)
                        if use_bias:
                            _add_bias(p[r + t, :visible], _bias_row(bias, b, h, i, j0, j0 + visible))
                pair_shift[t] = LOG2E * lse[i] if visible > 0 else 0
                pair_delta[t] = delta[r + t] if visible > 0 else 0
                pair_visible[t] = visible
            probs_grad_pair(p[r : r + 2, :k_pad], ds[r : r + 2, :k_pad], step, pair_shift, pair_delta,
                            pair_visible, dsp[:, r : r + 2], dsq[:, r // 2], pq[:, r // 2])
        rows_32 = -(-rows // 32) * 32  # the dk, dv products read whole 32-row chunks
        dsq[:, (rows + 1) // 2 : rows_32 // 2, : 2 * k_pad] = 0
        pq[:, (rows + 1) // 2 : rows_32 // 2, : 2 * k_pad] = 0
        amx_gemm(dsp[:, r0:], kp[:, j0 // 2 :], dq_acc[r0:], m_tiles, d_tiles, k_pad // 32, j0 != 0)
        amx_gemm(qth[:, :, i0 + r0 :], dsq[:, r0 // 2 :], dkt[:, j0:], d_tiles, n_tiles, row_chunks, True)
        amx_gemm(doth[:, :, i0 + r0 :], pq[:, r0 // 2 :], dvt[:, j0:], dv_tiles, n_tiles, row_chunks, True)
    for r in range(rows):
        for c in range(dq.shape[1]):
            dq[i0 + r, c] = scale * dq_acc[r, c]


@njit(parallel=True, nogil=True, cache=True)
def _forward_kernel_amx(q, k, v, bias, use_bias, key_len, causal, scale, n_split, o, lse, qb, scores,
                        pp, acc, keys_p, values_p, transposed, stats, seen, counter, tile, diagonal_tile):
    H, Nq, _, n_workers, block_q, n_blocks, n_items = _queue_layout(q, k, stats[:, 0], n_split)
    for worker in prange(n_workers):
        packed = -1  # the head whose keys and values this worker's buffers hold
        head, part, b, h = _claim(counter, H, n_split, n_items)
        while head >= 0:
            Nk = key_len[b]
            if head != packed:
                top = split_transposed_pairs(k[b, h, :Nk], keys_p[worker], transposed[worker])
                seen[worker, 1] = max(seen[worker, 1], top)
                seen[worker, 2] = max(seen[worker, 2], split_pairs(v[b, h, :Nk], values_p[worker]))
                packed = head
            for block in range(part, n_blocks, n_split):
                i0 = block * block_q
                i1 = min(i0 + block_q, Nq)
                top = _forward_block_amx(q[b, h], keys_p[worker], values_p[worker], Nk, bias, use_bias,
                                         b, h, causal, scale, i0, i1, o[b, h], lse[b, h], qb[worker],
                                         scores[worker], pp[worker], acc[worker], stats[worker, 0],
                                         stats[worker, 1], tile, diagonal_tile)
                seen[worker, 0] = max(seen[worker, 0], top)
            head, part, b, h = _claim(counter, H, n_split, n_items)


@njit(parallel=True, nogil=True, cache=True)
def _backward_kernel_amx(q, k, v, o, lse, do, bias, use_bias, key_len, causal, scale, n_split,
                         dq, dk_parts, dv_parts, keys_tp, values_tp, keys_p, qb, dob, qth, doth,
                         probs, dprobs, dsp, dsq, pq, dq_acc, dkt, dvt, deltas, transposed, seen,
                         counter, tile, diagonal_tile):
    H, Nq, _, n_workers, block_q, n_blocks, n_items = _queue_layout(q, k, deltas, n_split)
    for worker in prange(n_workers):
        packed = -1
        head, part, b, h = _claim(counter, H, n_split, n_items)
        while head >= 0:
            Nk = key_len[b]
            if head != packed:
                tops = (split_transposed_rows(q[b, h], qth[worker], transposed[worker]),
                        split_transposed_pairs(k[b, h, :Nk], keys_tp[worker], transposed[worker]),
                        split_transposed_pairs(v[b, h, :Nk], values_tp[worker], transposed[worker]),
                        split_transposed_rows(do[b, h], doth[worker], transposed[worker]))
                split_pairs(k[b, h, :Nk], keys_p[worker])
                for a in range(4):
                    seen[worker, a] = max(seen[worker, a], tops[a])
                packed = head
            dkt[worker] = 0
            dvt[worker] = 0
            for block in range(part, n_blocks, n_split):
                i0 = block * block_q
                i1 = min(i0 + block_q, Nq)
                _backward_block_amx(q[b, h], o[b, h], lse[b, h], do[b, h], keys_tp[worker],
                                    values_tp[worker], keys_p[worker], Nk, bias, use_bias, b, h,
                                    causal, scale, i0, i1, dq[b, h], dkt[worker], dvt[worker],
                                    qb[worker], dob[worker], qth[worker], doth[worker],
                                    probs[worker], dprobs[worker], dsp[worker],
                                    dsq[worker], pq[worker], dq_acc[worker], deltas[worker], tile,
                                    diagonal_tile)
            dk, dv = dk_parts[part, b, h], dv_parts[part, b, h]
            dk[Nk:] = 0  # keys past key_len: masked for every query
            dv[Nk:] = 0
            transpose_into(dkt[worker, :, :Nk], dk, scale)
            transpose_into(dvt[worker, :, :Nk], dv)
            head, part, b, h = _claim(counter, H, n_split, n_items)


def _run_forward_amx(q, k, v, bias, use_bias, key_len, causal, scale, o, lse, n_split, n_workers,
                     rows, tile, diagonal_tile):
    """Runs the AMX forward kernel into o and lse (cpu_forward's checked, contiguous inputs);
    returns whether the inputs were fit for the tiles (if not, o and lse are garbage)."""
    D, Dv, Nk = q.shape[3], v.shape[3], k.shape[2]
    rows_pad, keys = _ceil_to(rows, 16), _ceil_to(Nk, 32)
    width = _ceil_to(min(tile, Nk), 32)
    qb = aligned_empty((n_workers, 3, rows_pad, D), np.uint16)
    scores = aligned_empty((n_workers, rows_pad, width + 16), np.float32)
    pp = aligned_empty((n_workers, 3, rows_pad, width + 32), np.uint16)
    acc = aligned_empty((n_workers, rows_pad, Dv), np.float32)
    keys_p = aligned_empty((n_workers, 3, D // 2, 2 * keys + 32), np.uint16)  # rows never 4 KiB apart
    values_p = aligned_empty((n_workers, 3, keys // 2, 2 * Dv), np.uint16)
    stats = np.empty((n_workers, 2, rows), np.float32)
    # scratch of the split of k^T, used only for a D that is not a multiple of 16 (not here)
    transposed = np.empty((n_workers, D, _ceil_to(Nk, 16) + 16), np.float32)
    seen = np.zeros((n_workers, 3), np.int32)  # the largest |q|, |k|, |v| each worker split
    _forward_kernel_amx(q, k, v, bias, use_bias, key_len, causal, scale, n_split, o, lse, qb, scores,
                        pp, acc, keys_p, values_p, transposed, stats, seen, np.zeros(1, np.int64), tile,
                        diagonal_tile)
    return fit_for_tiles(seen)


def _run_backward_amx(q, k, v, o, lse, do, bias, use_bias, key_len, causal, scale, n_split, dq,
                      dk_parts, dv_parts, n_workers, rows, tile, diagonal_tile):
    """Runs the AMX backward kernel into dq and the dk, dv parts; returns whether the inputs
    were fit for the tiles (if not, the gradients are garbage)."""
    D, Dv, Nk = q.shape[3], v.shape[3], k.shape[2]
    rows_pad, keys = _ceil_to(rows, 16), _ceil_to(Nk, 32)
    width = _ceil_to(min(tile, Nk), 32)
    keys_tp = aligned_empty((n_workers, 3, D // 2, 2 * keys + 32), np.uint16)
    values_tp = aligned_empty((n_workers, 3, Dv // 2, 2 * keys + 32), np.uint16)
    keys_p = aligned_empty((n_workers, 3, keys // 2, 2 * D), np.uint16)
    qb = aligned_empty((n_workers, 3, rows_pad, D), np.uint16)
    dob = aligned_empty((n_workers, 3, rows_pad, Dv), np.uint16)
    probs = aligned_empty((n_workers, rows_pad, width + 16), np.float32)
    dprobs = aligned_empty((n_workers, rows_pad, width + 16), np.float32)
    dsp = aligned_empty((n_workers, 3, rows_pad, width + 32), np.uint16)
    rows_32 = _ceil_to(rows, 32)  # the dk, dv products' K (query rows), in whole chunks
    Nq = q.shape[2]
    qth = aligned_empty((n_workers, 3, D, _ceil_to(Nq, 32) + 32), np.uint16)  # the head's q^T
    doth = aligned_empty((n_workers, 3, Dv, _ceil_to(Nq, 32) + 32), np.uint16)
    dsq = aligned_empty((n_workers, 3, rows_32 // 2, 2 * width + 32), np.uint16)
    pq = aligned_empty((n_workers, 3, rows_32 // 2, 2 * width + 32), np.uint16)
    dq_acc = aligned_empty((n_workers, rows_pad, D), np.float32)
    dkt = aligned_empty((n_workers, D, keys + 16), np.float32)  # rows never 4 KiB apart
    dvt = aligned_empty((n_workers, Dv, keys + 16), np.float32)
    deltas = np.empty((n_workers, rows), np.float32)
    transposed = np.empty((n_workers, max(D, Dv), _ceil_to(max(Nk, Nq), 16) + 16), np.float32)
    seen = np.zeros((n_workers, 4), np.int32)  # the largest |q|, |k|, |v|, |dO| each worker split
    _backward_kernel_amx(q, k, v, o, lse, do, bias, use_bias, key_len, causal, scale, n_split, dq,
                         dk_parts, dv_parts, keys_tp, values_tp, keys_p, qb, dob, qth, doth,
                         probs, dprobs, dsp, dsq, pq, dq_acc, dkt, dvt, deltas, transposed, seen,
                         np.zeros(1, np.int64), tile, diagonal_tile)
    return fit_for_tiles(seen)


def amx_forward(q, k, v, mask=None, is_causal=False, scale=None):
    """``cpu_forward`` on AMX tiles: ``(o, lse)``, or None when ``amx_applies`` says no or the
    inputs were not ``fit_for_tiles`` (the caller then runs the BLAS kernels). P is never kept."""
    B, H, Nq, Nk, D, Dv = check_forward_inputs(q, k, v, mask)
    if B * H * Nq == 0 or Nk == 0:
        return None
    q, k, v = (as_c_contiguous(np.asarray(a)) for a in (q, k, v))
    if not amx_applies(q.dtype, D, Dv, Nk, is_causal):
        return None
    scale = resolve_scale(scale, D)
    o = np.empty((B, H, Nq, Dv), np.float32)
    lse = np.empty((B, H, Nq), np.float32)
    bias, use_bias = _bias_for_kernel(mask, np.float32)
    block_q, tile = AMX_FORWARD_BLOCK_CAUSAL if is_causal else AMX_FORWARD_BLOCK
    with _parallel_region() as n_threads:
        n_split, n_workers, rows = _plan_work(B * H, Nq, block_q, n_threads)
        fit = _run_forward_amx(q, k, v, bias, use_bias, _key_lengths(bias, use_bias, B, Nk),
                               bool(is_causal), scale, o, lse, n_split, n_workers, rows, tile, DIAGONAL_TILE)
    return (o, lse) if fit else None


def amx_backward(q, k, v, o, lse, do, mask=None, is_causal=False, scale=None):
    """``cpu_backward`` (recomputing P) on AMX tiles: ``(dq, dk, dv)``, or None when
    ``amx_applies`` says no or the inputs were not ``fit_for_tiles``."""
    B, H, Nq, Nk, D, Dv = check_backward_inputs(q, k, v, o, lse, do, mask)
    if B * H * Nq == 0 or Nk == 0:
        return None
    q, k, v, o, lse, do = (as_c_contiguous(np.asarray(a)) for a in (q, k, v, o, lse, do))
    if not amx_applies(q.dtype, D, Dv, Nk, is_causal):
        return None
    scale = resolve_scale(scale, D)
    dq = np.empty_like(q)
    bias, use_bias = _bias_for_kernel(mask, np.float32)
    block_q, tile = AMX_BACKWARD_BLOCK_CAUSAL if is_causal else AMX_BACKWARD_BLOCK
    with _parallel_region() as n_threads:
        n_split, n_workers, rows = _plan_work(B * H, Nq, block_q, n_threads)
        dk_parts, dv_parts = _gradient_parts(k, v, n_split)
        fit = _run_backward_amx(q, k, v, o, lse, do, bias, use_bias, _key_lengths(bias, use_bias, B, Nk),
                                bool(is_causal), scale, n_split, dq, dk_parts, dv_parts, n_workers, rows,
                                tile, DIAGONAL_TILE)
    return (dq, _summed(dk_parts), _summed(dv_parts)) if fit else None
