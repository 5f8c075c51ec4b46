r"""Float32 block products on Intel AMX tiles, at float32 accuracy: three bfloat16 pieces.

AMX (Sapphire Rapids and later Xeons) multiplies bfloat16 tiles into float32 ones:
``tdpbf16ps`` adds a (16 x 32) @ (32 x 16) bfloat16 product to a 16 x 16 float32 tile, 16x the
multiply-adds per cycle of an AVX-512 float32 FMA pair. A bfloat16 keeps only 8 significant
bits, so a float32 x is cut into three: h = x rounded to bfloat16 (to nearest, ties away from
zero), m = x - h rounded the same way, l = x - h - m truncated (each difference is exact in
float32), x = h + m + l to 2**-24 relative. Then

    a @ b  ~  ah bh + ah bm + am bh + am bm + ah bl + al bh          (six bfloat16 products)

leaves out only am bl, al bm and al bl, each below 2**-25 relative to |a||b|: the error of a
float32 product itself. Every partial sum is float32, in the tile. Measured against float64
on (128 x 512) @ (512 x 64) and (256 x 64) @ (64 x 512) products: max |error| / (|a| @ |b|)
1.4-2.0e-7, against 1.3-2.7e-7 for OpenBLAS's sgemm. Six products at 16x the rate: ~2.7x float32's peak in the inner loop
(measured on this kind of Xeon, one core: 2.7 TF/s bfloat16 with the tiles loaded from L1,
so ~440 GF/s of float32 work, against 120-130 GF/s for OpenBLAS at the attention's shapes).

Layouts (all ``uint16`` arrays holding bfloat16 bits; the leading axis is the piece h, m, l):

    A operand (rows, K):       pieces (3, rows, K), row-major
                               from x (rows, K)         ``split_rows``
                               from x (K, rows), A = x^T ``split_transposed_rows``
    B operand (K, N):          pieces (3, K / 2, 2 N): element (k, n) at [k // 2, 2 n + k % 2]
                               (AMX's "VNNI" pairs: two consecutive k of one column side by side)
                               from x (K, N)            ``split_pairs``
                               from x (N, K), B = x^T   ``split_transposed_pairs``

``amx_gemm(a, b, c, m_tiles, n_tiles, k_chunks, accumulate)``: c[:16 m_tiles, :16 n_tiles]
(+)= the six-product sum of a[:, :16 m_tiles, :32 k_chunks] @ B, where b holds B's pieces
in the pair layout. Every operand must be padded to whole tiles (16 rows, 32 K, 16 columns)
with finite values, zeros along K (a NaN in padding would reach real outputs through 0 * NaN).
Row strides that are multiples of 64 bytes keep every tile row in one cache line (unaligned
tile loads ran at a third of the speed).

Subnormals: AMX treats bfloat16 subnormal inputs as zero, so a piece below 2**-126 is lost:
only values under ~2**-110 lose relative accuracy, and attention's callers scale nothing
that small into a product that matters (its products are of O(1) probabilities, queries,
keys, values, gradients). Non-finite inputs give NaN in the pieces (inf - inf): every split
reports the largest magnitude it saw, and the attention kernels' results are then thrown away
for BLAS's.

``available()`` says whether this process may use AMX: the CPU has it, Numba compiles for the
host CPU (``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` may name a CPU without it), JIT is on,
``TINYMM_AMX`` is not "0", and Linux granted the tile data permission (``arch_prctl``).
"""
import functools
import math
import os
import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


TILE_ROWS = 16      # rows of every tile
TILE_K = 32         # bfloat16 values along K in one A tile row (64 bytes)
TILE_COLS = 16      # float32 columns of a C tile (and column pairs of a B tile)

# (A piece, B piece) of the six products, big terms first.
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0))

_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18
_SYS_ARCH_PRCTL = 158  # x86_64


@functools.cache
def available():
    """Whether this process may run ``amx_gemm`` (see the module docstring). Asks Linux for
    the tile permission the first time it is called."""
    if os.environ.get("TINYMM_AMX", "1") == "0" or platform.system() != "Linux" or platform.machine() != "x86_64":
        return False
    from numba.core import config

    if config.DISABLE_JIT:
        return False
    if config.CPU_FEATURES is not None:
        features = set(config.CPU_FEATURES.split(","))
        if not {"+amx-tile", "+amx-bf16"} <= features:
            return False
    elif config.CPU_NAME is not None and config.CPU_NAME != "host":
        return False
    else:
        import llvmlite.binding

        host = llvmlite.binding.get_host_cpu_features()
        if not (host.get("amx-tile") and host.get("amx-bf16")):
            return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) != 0:
        return False
    return _self_test()


def _self_test():
    """Compiles and runs every AMX and 16-lane routine once on small inputs against NumPy: an
    LLVM that names its intrinsics differently (older llvmlite builds use typed pointers) or
    lowers them wrongly makes this False, and attention stays on BLAS, instead of failing in
    the middle of a model."""
    try:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((16, 32)).astype(np.float32)
        b = rng.standard_normal((32, 16)).astype(np.float32)
        ap, bp = aligned_empty((3, 16, 32), np.uint16), aligned_empty((3, 16, 32), np.uint16)
        tops = (split_rows(a, ap), split_pairs(b, bp))
        scratch = np.empty((32, 32), np.float32)
        apt, bpt = np.zeros_like(ap), np.zeros_like(bp)  # the same pieces, from a^T and b^T
        tops_t = (split_transposed_rows(np.ascontiguousarray(a.T), apt, scratch),
                  split_transposed_pairs(np.ascontiguousarray(b.T), bpt, scratch))
        c = aligned_empty((16, 16), np.float32)
        s = rng.standard_normal((2, 20)).astype(np.float32)
        dp = rng.standard_normal((2, 20)).astype(np.float32)
        rows_out = np.zeros((3, 2, 20), np.uint16)
        pairs = np.zeros((2, 3, 40), np.uint16)
        total = _self_test_kernel(ap, bp, c, s, dp, rows_out, pairs)
        e = np.exp2(s.astype(np.float64) - 1.0)
        g = e * (dp - 0.5)
        back = (rows_out.astype(np.uint32) << 16).view(np.float32).sum(axis=0)
        return bool(np.allclose(c, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
                    and np.isclose(total, e[0].sum(), rtol=1e-5)
                    and np.allclose(back, g, rtol=1e-5, atol=1e-6)
                    and tops == tops_t == (np.abs(a).max().view(np.int32), np.abs(b).max().view(np.int32))
                    and np.array_equal(apt, ap) and np.array_equal(bpt, bp))
    except Exception:  # noqa: BLE001 (any compile or lowering failure means: not usable)
        return False


# ---------------------------------------------------------------------------------------------
# The tile product
# ---------------------------------------------------------------------------------------------

_i8, _i16, _i64 = ir.IntType(8), ir.IntType(16), ir.IntType(64)
_bytes_ptr = ir.PointerType(_i8)


def _declare(module, name, args):
    return cgutils.get_or_insert_function(module, ir.FunctionType(ir.VoidType(), args), name)


def _tile_config(builder):
    """A 64-byte tile configuration on the stack: palette 1, tiles 0-7 of 16 rows x 64 bytes."""
    cfg = cgutils.alloca_once(builder, ir.ArrayType(_i8, 64))
    cfg.align = 64
    base = builder.bitcast(cfg, _bytes_ptr)
    cgutils.memset(builder, base, ir.Constant(_i64, 64), 0)
    builder.store(ir.Constant(_i8, 1), base)  # palette
    for t in range(8):
        colsb = builder.bitcast(builder.gep(base, [ir.Constant(_i64, 16 + 2 * t)]), ir.PointerType(_i16))
        builder.store(ir.Constant(_i16, 64), colsb)
        builder.store(ir.Constant(_i8, TILE_ROWS), builder.gep(base, [ir.Constant(_i64, 48 + t)]))
    return base


@intrinsic
def _tile_gemm(typingctx, a, a_piece, lda, b, b_piece, ldb, c, ldc, m_tiles, n_tiles, k_chunks,
               accumulate, tap_chunks, tap_width, tap_row, b_tap):
    """c (+)= sum over _PAIRS of A_pa @ B_pb. a, b, c: data pointers (void*); strides in bytes.
    Tiles 0-3 hold a 2 x 2 block of c, 4-5 the A tiles of its rows, 6-7 the B tiles of its
    columns; blocks at the edges are 1 x 2, 2 x 1 or 1 x 1.

    Taps (a convolution's shifted products, summed in the tiles): K chunk kc is chunk
    kc % tap_chunks of tap t = kc // tap_chunks, whose A rows start (t // tap_width) * tap_row
    + t % tap_width rows further down and whose B is b_tap bytes further on. One tap
    (tap_chunks = k_chunks) is a plain product."""

    def codegen(context, builder, signature, args):
        (a, a_piece, lda, b, b_piece, ldb, c, ldc, m_tiles, n_tiles, k_chunks, accumulate,
         tap_chunks, tap_width, tap_row, b_tap) = args
        module = builder.module
        ldtilecfg = _declare(module, "llvm.x86.ldtilecfg", [_bytes_ptr])
        release = _declare(module, "llvm.x86.tilerelease", [])
        load = _declare(module, "llvm.x86.tileloadd64", [_i8, _bytes_ptr, _i64])
        store = _declare(module, "llvm.x86.tilestored64", [_i8, _bytes_ptr, _i64])
        zero = _declare(module, "llvm.x86.tilezero", [_i8])
        dot = _declare(module, "llvm.x86.tdpbf16ps", [_i8, _i8, _i8])
        a, b, c = (builder.bitcast(p, _bytes_ptr) for p in (a, b, c))
        const = lambda v: ir.Constant(_i64, v)  # noqa: E731
        tile = lambda t: ir.Constant(_i8, t)  # noqa: E731

        def at(base, offset):
            return builder.gep(base, [offset])

        builder.call(ldtilecfg, [_tile_config(builder)])
        step_a = builder.mul(lda, const(TILE_ROWS))         # bytes from one row tile to the next
        step_b = builder.mul(ldb, const(TILE_K // 2))       # bytes from one K chunk to the next

        def block(mt, nt, rows, cols):
            c_tile = lambda i, j: at(c, builder.add(builder.mul(builder.add(mt, const(i)), builder.mul(ldc, const(TILE_ROWS))),  # noqa: E731
                                                    builder.mul(builder.add(nt, const(j)), const(4 * TILE_COLS))))
            with builder.if_else(accumulate) as (then, otherwise):
                with then:
                    for i in range(rows):
                        for j in range(cols):
                            builder.call(load, [tile(2 * i + j), c_tile(i, j), ldc])
                with otherwise:
                    for i in range(rows):
                        for j in range(cols):
                            builder.call(zero, [tile(2 * i + j)])
            a_rows = builder.mul(mt, step_a)
            b_cols = builder.mul(nt, const(4 * TILE_COLS))
            # Each A piece's tiles are loaded once per K chunk for all the B pieces it meets
            # (h: h, m, l; m: h, m; l: h): 18 tile loads per 24 products instead of 24.
            for pa in range(3):
                a_base = at(a, builder.add(builder.mul(a_piece, const(pa)), a_rows))
                with cgutils.for_range(builder, k_chunks) as loop:
                    tap = builder.sdiv(loop.index, tap_chunks)
                    kc = builder.srem(loop.index, tap_chunks)
                    shift = builder.add(builder.mul(builder.sdiv(tap, tap_width), tap_row),
                                        builder.srem(tap, tap_width))
                    a_k = at(a_base, builder.add(builder.mul(kc, const(2 * TILE_K)), builder.mul(shift, lda)))
                    for i in range(rows):
                        builder.call(load, [tile(4 + i), at(a_k, builder.mul(const(i), step_a)), lda])
                    for pb in [pb for qa, pb in _PAIRS if qa == pa]:
                        b_base = at(b, builder.add(builder.mul(b_piece, const(pb)), b_cols))
                        b_k = at(b_base, builder.add(builder.mul(kc, step_b), builder.mul(tap, b_tap)))
                        for j in range(cols):
                            builder.call(load, [tile(6 + j), at(b_k, const(4 * TILE_COLS * j)), ldb])
                        for i in range(rows):
                            for j in range(cols):
                                builder.call(dot, [tile(2 * i + j), tile(4 + i), tile(6 + j)])
            for i in range(rows):
                for j in range(cols):
                    builder.call(store, [tile(2 * i + j), c_tile(i, j), ldc])

        with cgutils.for_range_slice(builder, const(0), m_tiles, const(2)) as (mt, _):
            two_rows = builder.icmp_signed("<", builder.add(mt, const(1)), m_tiles)
            with cgutils.for_range_slice(builder, const(0), n_tiles, const(2)) as (nt, _):
                two_cols = builder.icmp_signed("<", builder.add(nt, const(1)), n_tiles)
                with builder.if_else(two_rows) as (rows2, rows1):
                    with rows2:
                        with builder.if_else(two_cols) as (cols2, cols1):
                            with cols2:
                                block(mt, nt, 2, 2)
                            with cols1:
                                block(mt, nt, 2, 1)
                    with rows1:
                        with builder.if_else(two_cols) as (cols2, cols1):
                            with cols2:
                                block(mt, nt, 1, 2)
                            with cols1:
                                block(mt, nt, 1, 1)
        builder.call(release, [])
        return context.get_dummy_value()

    i64 = types.int64
    sig = types.void(types.voidptr, i64, i64, types.voidptr, i64, i64, types.voidptr, i64,
                     i64, i64, i64, types.boolean, i64, i64, i64, i64)
    return sig, codegen


@intrinsic
def _pointer(typingctx, array):
    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.bitcast(ary.data, cgutils.voidptr_t)

    return types.voidptr(array), codegen


@njit(inline="always")
def amx_gemm(a, b, c, m_tiles, n_tiles, k_chunks, accumulate):
    """c[:16 m_tiles, :16 n_tiles] = (or += when accumulate) A @ B in float32, A's pieces a
    (3, >= 16 m_tiles, >= 32 k_chunks), B's pieces b (3, >= 16 k_chunks, >= 32 n_tiles) in the
    pair layout, c float32 (>= 16 m_tiles, >= 16 n_tiles); every row contiguous."""
    if m_tiles <= 0 or n_tiles <= 0:
        return
    if k_chunks <= 0:
        if not accumulate:
            c[: TILE_ROWS * m_tiles, : TILE_COLS * n_tiles] = 0
        return
    _tile_gemm(_pointer(a), a.strides[0], a.strides[1], _pointer(b), b.strides[0], b.strides[1],
               _pointer(c), c.strides[0], m_tiles, n_tiles, k_chunks, accumulate, k_chunks, 1, 0, 0)


@njit(inline="always")
def amx_conv_gemm(a, b, c, m_tiles, n_tiles, c_chunks, kh, kw, row, accumulate):
    """c[:16 m_tiles, :16 n_tiles] (+)= the sum over the kh x kw taps (i, j) of
    A[shift:] @ B_ij, shift = i row + j: a convolution's shifted products, summed in the tiles
    (c is read and written once). a: A's pieces (3, >= shift + 16 m_tiles, >= 32 c_chunks);
    b: (kh kw, 3, >= 16 c_chunks, >= 32 n_tiles), each tap's B in the pair layout."""
    if m_tiles <= 0 or n_tiles <= 0:
        return
    _tile_gemm(_pointer(a), a.strides[0], a.strides[1], _pointer(b), b.strides[1], b.strides[2],
               _pointer(c), c.strides[0], m_tiles, n_tiles, kh * kw * c_chunks, accumulate, c_chunks,
               kw, row, b.strides[0])


# ---------------------------------------------------------------------------------------------
# Cutting float32 into bfloat16 pieces
# ---------------------------------------------------------------------------------------------
# Checked while split: every split below also returns the bits of the largest |x| it read (an
# int32 that sorts like the magnitudes; inf is 0x7f800000, NaN above). The attention kernels
# pass each input through a split anyway, so they learn whether the inputs were fit for the
# tiles (finite, not too large or too small) without a separate pass over them (which took
# ~6% of a B8 H4 N256 layer's forward + backward), and the caller runs BLAS instead when not.

def _split_ir(builder, x, int_type, float_type, const):
    """The IR of the three-piece split of float32 x (a scalar, or a vector with matching int and
    float types; const(v) builds an int constant of int_type): (h, m, l), each in the low 16
    bits of int_type. h and m are rounded to nearest, ties away from zero (add half an ulp of
    bfloat16, clear the low 16 bits); l = x - h - m truncated (its dropped bits are below
    2**-24 |x|)."""

    def rounded(value):
        top = builder.and_(builder.add(builder.bitcast(value, int_type), const(0x8000)), const(-65536))
        return builder.lshr(top, const(16)), builder.bitcast(top, float_type)

    h, hf = rounded(x)
    rest = builder.fsub(x, hf)
    m, mf = rounded(rest)
    lo = builder.lshr(builder.bitcast(builder.fsub(rest, mf), int_type), const(16))
    return h, m, lo


@njit(cache=True, nogil=True)
def split_rows(x, out):
    """out[p, i, j] = piece p of x[i, j] for x (n, d) float32 with contiguous rows; out's
    other rows and columns (out is (3, >= n, >= d)) are set to 0. Returns the bits of max |x|
    (every split here does: see "Checked while split" above)."""
    n, d = x.shape
    top = np.int32(0)
    for i in range(n):
        top = max(top, split_row(x[i], out[0, i], out[1, i], out[2, i]))
        out[:, i, d:] = 0
    out[:, n:, :] = 0
    return top


@njit(cache=True, nogil=True)
def split_pairs(x, out):
    """B = x (K = n, N = d) in the pair layout: out[p, k // 2, 2 c + k % 2] = piece p of
    x[k, c]; out (3, >= ceil(n / 2), >= 2 d) uint16 with contiguous rows, everything else 0.
    Each pair of pieces is written as one 32-bit word (low half: the even k). Returns the bits
    of max |x|."""
    n, d = x.shape
    out[:, (n + 1) // 2 :, :] = 0
    out[:, :, 2 * d :] = 0
    top = np.int32(0)
    for half in range(n // 2):
        top = max(top, split_pair_rows(x[2 * half], x[2 * half + 1], out[0, half], out[1, half], out[2, half]))
    if n % 2:  # the last k has no partner: pair it with zeros
        top = max(top, split_pair_rows(x[n - 1], np.zeros(d, np.float32), out[0, n // 2], out[1, n // 2],
                                       out[2, n // 2]))
    return top


@njit(cache=True, nogil=True)
def split_transposed_pairs(x, out, scratch):
    """B = x^T for x (n, d) (K = d, N = n) in the pair layout: out[p, k // 2, 2 j + k % 2] =
    piece p of x[j, k]; out (3, >= ceil(d / 2), >= 2 n), everything else 0. Returns the bits of
    max |x|. When d is a multiple of 16 (the attention kernels' d is one of 32), 16 x 16 blocks
    are transposed in registers and split there (``transposed_pairs_block``: 2x faster than a
    transpose and then ``split_pairs``); otherwise that, through scratch, float32 (>= d, >= n)."""
    return _split_transposed(x, out, scratch, True)


@njit(cache=True, nogil=True)
def split_transposed_rows(x, out, scratch):
    """The pieces of x^T by rows, as ``split_rows(x^T, out)``: out[p, c, i] = piece p of x[i, c]
    for x (n, d); out (3, >= d, >= n), everything else 0. Returns the bits of max |x|. Blocks
    in registers when d is a multiple of 16 (``transposed_rows_block``), else through scratch
    as ``split_transposed_pairs``."""
    return _split_transposed(x, out, scratch, False)


@njit(cache=True, nogil=True)
def _split_transposed(x, out, scratch, pairs):
    """``split_transposed_pairs`` (pairs True) or ``split_transposed_rows`` (False)."""
    n, d = x.shape
    if d % 16:
        transpose_into(x, scratch)
        return split_pairs(scratch[:d, :n], out) if pairs else split_rows(scratch[:d, :n], out)
    top = np.int32(0)
    for i0 in range(0, n, 16):
        for c0 in range(0, d, 16):
            block = transposed_pairs_block(x, i0, c0, out) if pairs else transposed_rows_block(x, i0, c0, out)
            top = max(top, block)
    rows, columns = (d // 2, 2 * n) if pairs else (d, n)
    out[:, :rows, columns:] = 0
    out[:, rows:, :] = 0
    return top


@njit(cache=True, nogil=True)
def transpose_into(x, out, factor=1.0):
    """out[c, i] = factor * x[i, c] for x (n, d) float32 with contiguous rows, out (>= d, >= n)
    float32 with contiguous rows: whole 16 x 16 blocks in vector registers
    (``transpose_block``), the edges element by element."""
    n, d = x.shape
    f = np.float32(factor)
    n16, d16 = n - n % 16, d - d % 16
    for i0 in range(0, n16, 16):
        for c0 in range(0, d16, 16):
            transpose_block(x, i0, c0, out, f)
    for i in range(n16, n):
        for c in range(d):
            out[c, i] = f * x[i, c]
    for c in range(d16, d):
        for i in range(n16):
            out[c, i] = f * x[i, c]


# The largest magnitude of every input split for the tiles must lie in [2**-RANGE_LIMIT,
# 2**RANGE_LIMIT) (see "Checked while split").
RANGE_LIMIT = 60


def fit_for_tiles(seen):
    """Whether the inputs a kernel split were fit for the tiles: seen (workers, inputs), or
    (workers,) for one input, the bits of the largest |x| that each worker's splits returned
    (0: none). Each input's largest magnitude must lie in [2**-RANGE_LIMIT, 2**RANGE_LIMIT)
    (NaN and inf lie above)."""
    low = int(np.float32(2.0 ** -RANGE_LIMIT).view(np.int32))
    high = int(np.float32(2.0 ** RANGE_LIMIT).view(np.int32))
    seen = np.asarray(seen)
    return all(low <= top < high for top in seen.reshape(seen.shape[0], -1).max(axis=0).tolist())


def aligned_empty(shape, dtype, align=64):
    """An uninitialised C-contiguous array whose data starts on an ``align``-byte boundary."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + align, np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start : start + nbytes].view(dtype).reshape(shape)


# ---------------------------------------------------------------------------------------------
# The softmax passes that feed the tiles, as explicit 16-lane vector code
# ---------------------------------------------------------------------------------------------
# LLVM's loop vectoriser picked 8-lane vectors for these loops on AVX-512 Xeons (it prefers
# 256-bit code there), and the rounding to three pieces then cost more than the exponential:
# 0.86 ns per score for exp2 + split. Written here with <16 x float> and masked tails.

_LANES = 16
_EXP2_C = (1.0, 0.6931472067028326, 0.24022650922288757, 0.05550327226670302,
           0.009618056678524637, 0.0013400428177615838, 0.0001546144469856913)  # as cpu._C32


class _Vectors:
    """IR helpers over <16 x float> / <16 x i32> inside one intrinsic's codegen."""

    def __init__(self, builder):
        self.b = builder
        self.f = ir.VectorType(ir.FloatType(), _LANES)
        self.i = ir.VectorType(ir.IntType(32), _LANES)
        self.h = ir.VectorType(_i16, _LANES)
        self.m = ir.VectorType(ir.IntType(1), _LANES)
        module = builder.module
        self._floor = cgutils.get_or_insert_function(module, ir.FunctionType(self.f, [self.f]), "llvm.floor.v16f32")
        self._fma = cgutils.get_or_insert_function(module, ir.FunctionType(self.f, [self.f] * 3), "llvm.fma.v16f32")
        self._maxnum = cgutils.get_or_insert_function(module, ir.FunctionType(self.f, [self.f] * 2), "llvm.maxnum.v16f32")
        self._roundeven = cgutils.get_or_insert_function(module, ir.FunctionType(self.f, [self.f]), "llvm.roundeven.v16f32")
        self._scalef = cgutils.get_or_insert_function(
            module, ir.FunctionType(self.f, [self.f, self.f, self.f, _i16, ir.IntType(32)]),
            "llvm.x86.avx512.mask.scalef.ps.512")
        fptr, hptr = ir.PointerType(self.f), ir.PointerType(self.h)
        self._load = cgutils.get_or_insert_function(
            module, ir.FunctionType(self.f, [fptr, ir.IntType(32), self.m, self.f]), "llvm.masked.load.v16f32.p0")
        self._store_i = cgutils.get_or_insert_function(
            module, ir.FunctionType(ir.VoidType(), [self.i, ir.PointerType(self.i), ir.IntType(32), self.m]),
            "llvm.masked.store.v16i32.p0")
        self._store_h = cgutils.get_or_insert_function(
            module, ir.FunctionType(ir.VoidType(), [self.h, hptr, ir.IntType(32), self.m]), "llvm.masked.store.v16i16.p0")
        self._umax = cgutils.get_or_insert_function(module, ir.FunctionType(self.i, [self.i, self.i]), "llvm.umax.v16i32")

    def splat(self, value):
        vec = ir.Constant(self.f, ir.Undefined)
        for lane in range(_LANES):
            vec = self.b.insert_element(vec, value, ir.Constant(ir.IntType(32), lane))
        return vec

    def const_f(self, v):
        return ir.Constant(self.f, [ir.Constant(ir.FloatType(), v)] * _LANES)

    def const_i(self, v):
        return ir.Constant(self.i, [ir.Constant(ir.IntType(32), v)] * _LANES)

    def mask(self, remaining):
        """Lanes 0 .. remaining - 1 on (remaining: i64, may exceed 16)."""
        lanes = ir.Constant(ir.VectorType(_i64, _LANES), [ir.Constant(_i64, j) for j in range(_LANES)])
        rem = ir.Constant(ir.VectorType(_i64, _LANES), ir.Undefined)
        for lane in range(_LANES):
            rem = self.b.insert_element(rem, remaining, ir.Constant(ir.IntType(32), lane))
        return self.b.icmp_signed("<", lanes, rem)

    def load(self, base, index, mask):
        ptr = self.b.bitcast(self.b.gep(base, [index]), ir.PointerType(self.f))
        return self.b.call(self._load, [ptr, ir.Constant(ir.IntType(32), 4), mask, self.const_f(0.0)])

    def store_half(self, value, base, index, mask):
        ptr = self.b.bitcast(self.b.gep(base, [index]), ir.PointerType(self.h))
        self.b.call(self._store_h, [value, ptr, ir.Constant(ir.IntType(32), 2), mask])

    def exp2(self, x):
        """2**x for x <= 0: 2**round(x) * p(x - round(x)) through vscalefps (cpu._exp2_f32's
        polynomial); x is clamped at -160 first, so -inf and anything below ~2**-150 give 0."""
        b = self.b
        x = b.call(self._maxnum, [x, self.const_f(-160.0)])
        n = b.call(self._roundeven, [x])
        f = b.fsub(x, n)
        p = self.const_f(_EXP2_C[6])
        for c in _EXP2_C[5::-1]:
            p = b.call(self._fma, [p, f, self.const_f(c)])
        return b.call(self._scalef, [p, n, self.const_f(0.0), ir.Constant(_i16, -1), ir.Constant(ir.IntType(32), 4)])

    def fma(self, a, x, c):
        return self.b.call(self._fma, [a, x, c])

    def pieces(self, x):
        """x's three pieces (``_split_ir``), each in the low 16 bits of <16 x i32>."""
        return _split_ir(self.b, x, self.i, self.f, self.const_i)

    def split_store(self, x, pieces, index, mask):
        """Stores x's three pieces at pieces[0..2][index] (lanes in mask)."""
        for part, base in zip(self.pieces(x), pieces):
            self.store_half(self.b.trunc(part, self.h), base, index, mask)

    def magnitudes_start(self):
        """A <16 x i32> slot for ``magnitudes_add``: the bits of the largest |x| seen per lane."""
        return cgutils.alloca_once_value(self.b, self.const_i(0))

    def magnitudes_add(self, slot, x):
        """Lane-wise slot = max(slot, bits of |x|): the bits of |x| read as integers sort like
        the magnitudes, inf at 0x7f800000 and NaN above (lanes loaded as 0 add nothing)."""
        bits = self.b.and_(self.b.bitcast(x, self.i), self.const_i(0x7FFFFFFF))
        self.b.store(self.b.call(self._umax, [self.b.load(slot), bits]), slot)

    def magnitudes_end(self, slot):
        """The largest of the slot's lanes (an i32)."""
        lanes = self.b.load(slot)
        result = self.b.extract_element(lanes, ir.Constant(ir.IntType(32), 0))
        for lane in range(1, _LANES):
            other = self.b.extract_element(lanes, ir.Constant(ir.IntType(32), lane))
            result = self.b.select(self.b.icmp_unsigned(">", other, result), other, result)
        return result

    def store_words(self, value, base, index, mask):
        """Stores <16 x i32> at base (a uint16 pointer) + 2 index elements."""
        ptr = self.b.bitcast(self.b.gep(base, [self.b.mul(index, ir.Constant(_i64, 2))]), ir.PointerType(self.i))
        self.b.call(self._store_i, [value, ptr, ir.Constant(ir.IntType(32), 4), mask])


def _vector_loop(builder, vec, n, body):
    """body(j0, mask) for j0 = 0, 16, ... < n: whole chunks with every lane on, then one
    masked chunk for the rest (LLVM turns the all-on masked loads and stores into plain ones)."""
    const = lambda v: ir.Constant(_i64, v)  # noqa: E731
    whole = builder.mul(builder.sdiv(n, const(_LANES)), const(_LANES))
    every = ir.Constant(vec.m, [ir.Constant(ir.IntType(1), 1)] * _LANES)
    with cgutils.for_range_slice(builder, const(0), whole, const(_LANES)) as (j0, _):
        body(j0, every)
    with builder.if_then(builder.icmp_signed("<", whole, n)):
        body(whole, vec.mask(builder.sub(n, whole)))


@intrinsic
def exp_sum_split(typingctx, row, alpha, shift, ph, pm, pl):
    """For j < len(row): e = 2**(alpha row[j] - shift) into pieces ph, pm, pl [j]; returns the
    float32 sum of the e. row float32, pieces uint16, all contiguous 1-D."""

    def codegen(context, builder, signature, args):
        row_a, ph_a, pm_a, pl_a = (context.make_array(signature.args[i])(context, builder, args[i])
                                   for i in (0, 3, 4, 5))
        n = builder.extract_value(row_a.shape, 0)
        vec = _Vectors(builder)
        a, s = vec.splat(args[1]), vec.splat(args[2])
        total = cgutils.alloca_once_value(builder, vec.const_f(0.0))
        pieces = [x.data for x in (ph_a, pm_a, pl_a)]

        minus_s = builder.fneg(s)

        def body(j0, mask):
            x = vec.load(row_a.data, j0, mask)
            e = vec.exp2(vec.fma(a, x, minus_s))
            e = builder.select(mask, e, vec.const_f(0.0))
            builder.store(builder.fadd(builder.load(total), e), total)
            vec.split_store(e, pieces, j0, mask)

        _vector_loop(builder, vec, n, body)
        sums = builder.load(total)
        result = builder.extract_element(sums, ir.Constant(ir.IntType(32), 0))
        for lane in range(1, _LANES):
            result = builder.fadd(result, builder.extract_element(sums, ir.Constant(ir.IntType(32), lane)))
        return result

    return types.float32(row, types.float32, types.float32, ph, pm, pl), codegen


@intrinsic
def split_pair_rows(typingctx, even, odd, ph, pm, pl):
    """For c < len(even): the pieces of even[c] and odd[c] side by side, p?[2 c] and p?[2 c + 1]
    (one row of the pair layout); even, odd float32, the piece rows uint16 of length >= 2 len.
    Returns the bits of the largest |even[c]|, |odd[c]|."""

    def codegen(context, builder, signature, args):
        even_a, odd_a, ph_a, pm_a, pl_a = (context.make_array(t)(context, builder, v)
                                           for t, v in zip(signature.args, args))
        n = builder.extract_value(even_a.shape, 0)
        vec = _Vectors(builder)
        sixteen = vec.const_i(16)
        bases = [x.data for x in (ph_a, pm_a, pl_a)]
        seen = vec.magnitudes_start()

        def body(j0, mask):
            even_x, odd_x = vec.load(even_a.data, j0, mask), vec.load(odd_a.data, j0, mask)
            vec.magnitudes_add(seen, even_x)
            vec.magnitudes_add(seen, odd_x)
            for lo_part, hi_part, base in zip(vec.pieces(even_x), vec.pieces(odd_x), bases):
                vec.store_words(builder.or_(lo_part, builder.shl(hi_part, sixteen)), base, j0, mask)

        _vector_loop(builder, vec, n, body)
        return vec.magnitudes_end(seen)

    return types.int32(even, odd, ph, pm, pl), codegen


@intrinsic
def split_row(typingctx, x, ph, pm, pl):
    """The pieces of x[j] into ph[j], pm[j], pl[j] for j < len(x); x float32, the piece rows
    uint16, all with contiguous elements. Returns the bits of max |x[j]|. (Numba's loop over a
    scalar split ran at ~1 ns a value.)"""

    def codegen(context, builder, signature, args):
        x_a, ph_a, pm_a, pl_a = (context.make_array(t)(context, builder, v)
                                 for t, v in zip(signature.args, args))
        n = builder.extract_value(x_a.shape, 0)
        vec = _Vectors(builder)
        bases = [a.data for a in (ph_a, pm_a, pl_a)]
        seen = vec.magnitudes_start()

        def body(j0, mask):
            x = vec.load(x_a.data, j0, mask)
            vec.magnitudes_add(seen, x)
            vec.split_store(x, bases, j0, mask)

        _vector_loop(builder, vec, n, body)
        return vec.magnitudes_end(seen)

    return types.int32(x, ph, pm, pl), codegen


# Interleaving two 16-lane rows, lanes 0-7 (low) or 8-15 (high): a0 b0 a1 b1 ... Four rounds
# of row i with row i + 8 -> rows 2 i (low) and 2 i + 1 (high) transpose a 16 x 16 block.
_LOW_HALVES = [j // 2 + 16 * (j % 2) for j in range(_LANES)]
_HIGH_HALVES = [8 + j // 2 + 16 * (j % 2) for j in range(_LANES)]


def _transposed(builder, rows):
    """The 16 columns of the 16 x 16 block whose rows are the <16 x float> ``rows``."""
    i32 = ir.IntType(32)
    low = ir.Constant(ir.VectorType(i32, _LANES), [ir.Constant(i32, j) for j in _LOW_HALVES])
    high = ir.Constant(ir.VectorType(i32, _LANES), [ir.Constant(i32, j) for j in _HIGH_HALVES])
    for _ in range(4):
        rows = [builder.shuffle_vector(rows[i], rows[i + 8], m) for i in range(8) for m in (low, high)]
    return rows


@intrinsic
def transpose_block(typingctx, x, i0, c0, out, factor):
    """out[c0 + c, i0 + i] = factor * x[i0 + i, c0 + c] for i, c < 16; x and out 2-D float32
    with contiguous rows, the block inside both. Plain vector loads, shuffles and stores: no
    masked intrinsic, so any LLVM lowers it (the BLAS kernels use it too)."""

    def codegen(context, builder, signature, args):
        x_a = context.make_array(signature.args[0])(context, builder, args[0])
        out_a = context.make_array(signature.args[3])(context, builder, args[3])
        row = ir.VectorType(ir.FloatType(), _LANES)
        row_ptr = ir.PointerType(row)
        i32 = ir.IntType(32)
        const = lambda v: ir.Constant(_i64, v)  # noqa: E731
        x_stride = builder.extract_value(x_a.strides, 0)
        out_stride = builder.extract_value(out_a.strides, 0)

        def at(data, stride, r, c):  # &array[r, c] as a row pointer, strides in bytes
            offset = builder.add(builder.mul(r, stride), builder.mul(c, const(4)))
            return builder.bitcast(builder.gep(builder.bitcast(data, _bytes_ptr), [offset]), row_ptr)

        rows = _transposed(builder, [builder.load(at(x_a.data, x_stride, builder.add(args[1], const(r)), args[2]),
                                                  align=4) for r in range(_LANES)])
        scale = ir.Constant(row, ir.Undefined)
        for lane in range(_LANES):
            scale = builder.insert_element(scale, args[4], ir.Constant(i32, lane))
        for c in range(_LANES):
            target = at(out_a.data, out_stride, builder.add(args[2], const(c)), args[1])
            builder.store(builder.fmul(rows[c], scale), target, align=4)
        return context.get_dummy_value()

    return types.void(x, types.intp, types.intp, out, types.float32), codegen


def _split_transposed_block(context, builder, signature, args, pairs):
    """The IR of ``transposed_rows_block`` (pairs False) and ``transposed_pairs_block`` (True)."""
    x_a = context.make_array(signature.args[0])(context, builder, args[0])
    out_a = context.make_array(signature.args[3])(context, builder, args[3])
    i0, c0 = args[1], args[2]
    vec = _Vectors(builder)
    const = lambda v: ir.Constant(_i64, v)  # noqa: E731
    n = builder.extract_value(x_a.shape, 0)
    x_stride = builder.extract_value(x_a.strides, 0)
    piece_stride, row_stride = (builder.extract_value(out_a.strides, a) for a in (0, 1))
    valid = builder.sub(n, i0)  # rows of the block inside x (the lanes of each column)
    rows = []
    for r in range(_LANES):
        # rows past x's last are loaded from the last (valid memory) and replaced by zeros
        inside = builder.icmp_signed("<", const(r), valid)
        at_row = builder.select(inside, builder.add(i0, const(r)), builder.sub(n, const(1)))
        offset = builder.add(builder.mul(at_row, x_stride), builder.mul(c0, const(4)))
        ptr = builder.bitcast(builder.gep(builder.bitcast(x_a.data, _bytes_ptr), [offset]), ir.PointerType(vec.f))
        rows.append(builder.select(inside, builder.load(ptr, align=4), vec.const_f(0.0)))
    columns = _transposed(builder, rows)
    lanes = vec.mask(valid)
    seen = vec.magnitudes_start()
    for column in columns:
        vec.magnitudes_add(seen, column)
    out_bytes = builder.bitcast(out_a.data, _bytes_ptr)

    def piece_row(p, row):  # &out[p, row, 2 i0 (pairs) or i0] as a uint16 pointer
        offset = builder.add(builder.mul(const(p), piece_stride), builder.mul(row, row_stride))
        offset = builder.add(offset, builder.mul(i0, const(4 if pairs else 2)))
        return builder.bitcast(builder.gep(out_bytes, [offset]), ir.PointerType(_i16))

    if pairs:
        sixteen = vec.const_i(16)
        half_c0 = builder.sdiv(c0, const(2))
        for e in range(_LANES // 2):
            low, high = vec.pieces(columns[2 * e]), vec.pieces(columns[2 * e + 1])
            for p in range(3):
                word = builder.or_(low[p], builder.shl(high[p], sixteen))
                vec.store_words(word, piece_row(p, builder.add(half_c0, const(e))), const(0), lanes)
    else:
        for c in range(_LANES):
            for p, part in enumerate(vec.pieces(columns[c])):
                vec.store_half(builder.trunc(part, vec.h), piece_row(p, builder.add(c0, const(c))), const(0), lanes)
    return vec.magnitudes_end(seen)


@intrinsic
def transposed_rows_block(typingctx, x, i0, c0, out):
    """out[p, c0 + c, i0 + i] = piece p of x[i0 + i, c0 + c] for c < 16 and i < min(16, n - i0):
    the pieces of x^T by rows, one 16 x 16 block transposed in registers and split. x (n, >= c0
    + 16) float32 with contiguous rows, out (3, ...) uint16 with contiguous rows. Returns the
    bits of the block's largest |x|."""

    def codegen(context, builder, signature, args):
        return _split_transposed_block(context, builder, signature, args, False)

    return types.int32(x, types.intp, types.intp, out), codegen


@intrinsic
def transposed_pairs_block(typingctx, x, i0, c0, out):
    """out[p, (c0 + c) // 2, 2 (i0 + i) + c % 2] = piece p of x[i0 + i, c0 + c] for c < 16 and
    i < min(16, n - i0) (c0 even): B = x^T in the pair layout, one 16 x 16 block transposed in
    registers and split. Returns the bits of the block's largest |x|."""

    def codegen(context, builder, signature, args):
        return _split_transposed_block(context, builder, signature, args, True)

    return types.int32(x, types.intp, types.intp, out), codegen


@intrinsic
def probs_grad_pair(typingctx, s, dp, alpha, shifts, deltas, visible, rows_out, pairs_ds, pairs_p):
    """Two query rows at once, the backward's elementwise pass on AMX's operands: for row t in
    (0, 1) and key j < len: e = 2**(alpha s[t, j] - shifts[t]) and g = e (dp[t, j] - deltas[t])
    where j < visible[t], else 0. Writes g's pieces by rows (rows_out[p, t, j]) and both g and e
    in the pair layout along rows (pairs_ds[p, 2 j + t], pairs_p[p, 2 j + t]). s, dp: (2, >= n)
    float32 (read only); rows_out (3, 2, >= n), pairs_* (3, >= 2 n) uint16; shifts, deltas:
    (2,) float32; visible (2,) int64. n = s.shape[1] (a multiple of 16 is fastest)."""

    def codegen(context, builder, signature, args):
        arr = lambda i: context.make_array(signature.args[i])(context, builder, args[i])  # noqa: E731
        s_a, dp_a, shifts_a, deltas_a, vis_a, out_a, pds_a, pp_a = (arr(i) for i in (0, 1, 3, 4, 5, 6, 7, 8))
        vec = _Vectors(builder)
        i64c = lambda v: ir.Constant(_i64, v)  # noqa: E731
        n = builder.extract_value(s_a.shape, 1)
        s_row, dp_row = builder.extract_value(s_a.strides, 0), builder.extract_value(dp_a.strides, 0)
        out_piece, out_row = builder.extract_value(out_a.strides, 0), builder.extract_value(out_a.strides, 1)
        pds_piece = builder.extract_value(pds_a.strides, 0)
        pp_piece = builder.extract_value(pp_a.strides, 0)
        a = vec.splat(args[2])

        def byte_gep(base, offset):
            return builder.bitcast(builder.gep(builder.bitcast(base, _bytes_ptr), [offset]), base.type)

        rows = []
        for t in range(2):
            shift = builder.load(builder.gep(shifts_a.data, [i64c(t)]))
            delta = builder.load(builder.gep(deltas_a.data, [i64c(t)]))
            vis = builder.load(builder.gep(vis_a.data, [i64c(t)]))
            rows.append((byte_gep(s_a.data, builder.mul(s_row, i64c(t))),
                         byte_gep(dp_a.data, builder.mul(dp_row, i64c(t))),
                         builder.fneg(vec.splat(shift)), vec.splat(delta), vis,
                         [byte_gep(out_a.data, builder.add(builder.mul(out_piece, i64c(p)), builder.mul(out_row, i64c(t))))
                          for p in range(3)]))
        pds = [byte_gep(pds_a.data, builder.mul(pds_piece, i64c(p))) for p in range(3)]
        pps = [byte_gep(pp_a.data, builder.mul(pp_piece, i64c(p))) for p in range(3)]
        zero = vec.const_f(0.0)

        def body(j0, mask):
            grads, probs = [], []
            for s_ptr, dp_ptr, minus_shift, delta, vis, outs in rows:
                live = builder.and_(mask, vec.mask(builder.sub(vis, j0)))
                e = vec.exp2(vec.fma(a, vec.load(s_ptr, j0, mask), minus_shift))
                g = builder.fmul(e, builder.fsub(vec.load(dp_ptr, j0, mask), delta))
                e = builder.select(live, e, zero)
                g = builder.select(live, g, zero)
                vec.split_store(g, outs, j0, mask)
                grads.append(vec.pieces(g))
                probs.append(vec.pieces(e))
            sixteen = vec.const_i(16)
            for pieces, bases in ((grads, pds), (probs, pps)):
                for piece in range(3):
                    words = builder.or_(pieces[0][piece], builder.shl(pieces[1][piece], sixteen))
                    vec.store_words(words, bases[piece], j0, mask)

        _vector_loop(builder, vec, n, body)
        return context.get_dummy_value()

    f32 = types.float32
    return types.void(s, dp, f32, shifts, deltas, visible, rows_out, pairs_ds, pairs_p), codegen


@njit(cache=True)
def _self_test_kernel(ap, bp, c, s, dp, rows_out, pairs):
    amx_gemm(ap, bp, c, 1, 1, 1, False)
    pieces = np.zeros((3, s.shape[1]), np.uint16)
    total = exp_sum_split(s[0], np.float32(1), np.float32(1), pieces[0], pieces[1], pieces[2])
    shifts = np.ones(2, np.float32)
    deltas = np.full(2, 0.5, np.float32)
    visible = np.full(2, s.shape[1], np.int64)
    probs_grad_pair(s.copy(), dp.copy(), np.float32(1), shifts, deltas, visible, rows_out, pairs[0], pairs[1])
    return total
