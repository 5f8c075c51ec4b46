r"""A small GEMM against a right operand packed once per call: the recurrent time loop's product.

    wp = pack_panels(w1, w2, ...)             [w1 ; w2 ; ...] (K, N) -> (ceil(N / NR), K, NR)
    packed_gemm(a1, a2, wp, c, add)           c = [a1 | a2] @ w     (c += ... when add)
    pack_transposed(out, k0, w)               compiled: out[n // NR, k0 + k, n % NR] = w[n, k]

a1 (M, K1) and a2 (M, K2) are the two parts of the left operand along K (w's first K1 rows
go with a1, the next K2 with a2; K1 may be 0): the LSTM forward passes [x_s | h_s] without
building it, against [W_ih^T ; W_hh^T]. Every 2-D argument needs contiguous rows (any row
stride). float32 or float64; NR is two SIMD vectors: of 64 bytes where the CPU has AVX-512
(32 floats, 16 doubles), else of 32 (16 floats, 8 doubles); see ``_host_vector_bytes``.

**Why not BLAS.** Each step of a recurrence multiplies a few batch rows (B = 32) by the same
weights (128 x 512 at H = 128). OpenBLAS packs both operands on every call, and the weights
are the big one: at these shapes its step GEMM ran at 55-62 GF/s on one core of this
machine against 80-88 for a 1024^3 SGEMM. Here the weights are packed once per forward or
backward call, into panels of NR columns laid out k-major, so each step only streams them
from L1/L2. The inner kernel (``_tile``) holds an MR x NR block of c (MR = 6 rows, 12
vector accumulators, 8 rows with AVX-512: enough independent FMA chains to cover the FMA
latency on two ports)
in registers over the whole K loop: per k, two vector loads of the panel, MR broadcasts of
a's column k, 2 MR fused multiply-adds. It is written as LLVM IR through a Numba
intrinsic, because the same loop in Numba kept the block in memory (a load and a store per
FMA). Measured, one thread, 64 steps (process CPU time, shared machine, interleaved runs):
(32, 128) x (128, 512) 62 -> 67 GF/s (medians); (32, 512) x (512, 128) 62 -> 75; and
[x | h] (32, 64 + 128) x (192, 512) 78 (best runs: 87 and 93 GF/s, the sgemm rate), where
BLAS took 2.1 ms for x W_ih^T over all steps plus 4.3 ms for the steps: the K loop is then
long enough that the block's loads and stores hardly count, so the LSTM forward projects
the input inside the step.

Partial blocks: the rows are split evenly over the fewest blocks of at most MR (kernels for
1..MR rows); the last panel is zero-padded to NR columns and computed into a small buffer,
from which the valid columns are copied (or added). Under ``NUMBA_DISABLE_JIT=1`` ``packed_gemm`` is plain NumPy.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

def _host_vector_bytes():
    """The bytes of one SIMD register of the CPU Numba compiles for: 64 with AVX-512, else 32.

    On an AVX-512 Xeon (2 cores, one thread each) 64-byte vectors took the LSTM forward from
    5.2 to 3.4 ms and forward+backward from 15.9 to 11.6 ms (``tinymm bench recurrent``, one
    layer): twice the columns per FMA, and the accumulators (16 with MR = 8, below) leave half
    of its 32 vector registers. Elsewhere 32 (AVX2: 12 accumulators of 16 registers); LLVM splits the vectors
    on narrower targets, correct but slower. Numba's NUMBA_CPU_FEATURES, when set, names the
    target instead of the host (a portable cache; NUMBA_CPU_NAME alone gives 32)."""
    import llvmlite.binding
    from numba.core import config

    if config.CPU_FEATURES is not None:
        has_avx512 = "+avx512f" in config.CPU_FEATURES.split(",")
    elif config.CPU_NAME is not None:  # a named CPU without features: assume the narrower
        has_avx512 = False
    else:
        has_avx512 = bool(llvmlite.binding.get_host_cpu_features().get("avx512f"))
    return 64 if has_avx512 else 32


VECTOR_BYTES = _host_vector_bytes()  # one SIMD register of the target
# Rows of c per kernel call: 2 MR vector accumulators. AVX2 has 16 vector registers (6 rows: 12
# accumulators, 2 panel loads, 1 broadcast); AVX-512 has 32, where 8 rows ran the step shapes
# 5-10% faster than 6 (one thread, (32, 128..512) x (128..512, 128..512), interleaved in one
# process: 154-167 against 139-155 GF/s; 10 and 12 rows no better than 8).
MR = 8 if VECTOR_BYTES == 64 else 6
_VECTORS = 2       # vectors per panel row: NR = 2 * VECTOR_BYTES / itemsize


def panel_width(dtype):
    """NR: the columns of one packed panel for arrays of ``dtype``."""
    return _VECTORS * VECTOR_BYTES // np.dtype(dtype).itemsize


def pack_panels(*blocks):
    """The blocks (K_i, N) stacked along K (any strides: ``w.T`` is fine) -> (ceil(N / NR), K,
    NR): panel p holds columns [p NR, (p + 1) NR) of every row, k-major; the last panel's
    missing columns are 0."""
    N = blocks[0].shape[1]
    dtype = blocks[0].dtype
    nr = panel_width(dtype)
    full, rest = divmod(N, nr)
    out = np.empty((full + (rest > 0), sum(b.shape[0] for b in blocks), nr), dtype)
    if rest:
        out[full] = 0
    k0 = 0
    for b in blocks:
        k1 = k0 + b.shape[0]
        if b.T.flags.c_contiguous:   # a transposed weight: its rows are the panels' columns
            pack_transposed(out, k0, b.T)
        else:
            b = np.ascontiguousarray(b)
            rows, cols = b.strides
            out[:full, k0:k1] = np.lib.stride_tricks.as_strided(b, (full, b.shape[0], nr), (nr * cols, rows, cols))
            if rest:
                out[full, k0:k1, :rest] = b[:, full * nr:]
        k0 = k1
    return out


@njit(cache=True, nogil=True)
def pack_transposed(out, k0, w):
    """out[n // NR, k0 + k, n % NR] = w[n, k] for w (N, K) with contiguous rows: read along them
    (NumPy's copy of the panels out of w.T gathered element by element, ~4 ns each)."""
    N, K = w.shape
    nr = out.shape[2]
    for n in range(N):
        p, j = n // nr, n % nr
        for k in range(K):
            out[p, k0 + k, j] = w[n, k]


class TileCode:
    """The LLVM IR of an mr x NR register tile, shared by every kernel built on it (``_make_tile``
    here, the convolution's ``_shifted_gemm``): mr x 2 vector accumulators, the panel row loads,
    the broadcast-multiply-add step and the final store. Used inside an intrinsic's codegen."""

    def __init__(self, context, builder, dtype, mr):
        self.context, self.builder, self.mr = context, builder, mr
        elem = context.get_value_type(dtype)
        self.lanes = VECTOR_BYTES // context.get_abi_sizeof(elem)
        self.vec = ir.VectorType(elem, self.lanes)
        self.i32, self.i64 = ir.IntType(32), ir.IntType(64)
        suffix = "f32" if dtype == types.float32 else "f64"
        self.fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(self.vec, [self.vec] * 3),
                                                  f"llvm.fma.v{self.lanes}{suffix}")
        self.splat_mask = ir.Constant(ir.VectorType(self.i32, self.lanes), [0] * self.lanes)
        # accumulators as entry-block allocas: LLVM promotes them to registers (the loop
        # compiles to vbroadcastss / vmovups / vfmadd231ps only)
        self.acc = [[cgutils.alloca_once_value(builder, ir.Constant(self.vec, [0.0] * self.lanes))
                     for _ in range(_VECTORS)] for _ in range(mr)]

    def const(self, v):
        return ir.Constant(self.i64, v)

    def data(self, ty, value, offset):
        """A pointer to element ``offset`` of the array ``value`` (Numba type ``ty``)."""
        return self.builder.gep(self.context.make_array(ty)(self.context, self.builder, value).data, [offset])

    def _vector_ptr(self, row, j):
        return self.builder.bitcast(self.builder.gep(row, [self.const(self.lanes * j)]), self.vec.as_pointer())

    def load_row(self, row):
        """The NR values at ``row`` (a pointer; no alignment assumed) as _VECTORS vectors."""
        return [self.builder.load(self._vector_ptr(row, j), align=4) for j in range(_VECTORS)]

    def multiply_add(self, i, scalar_ptr, b):
        """Accumulator row i += (the value at scalar_ptr) * the row vectors b."""
        builder = self.builder
        s = builder.insert_element(ir.Constant(self.vec, ir.Undefined), builder.load(scalar_ptr),
                                   ir.Constant(self.i32, 0))
        s = builder.shuffle_vector(s, ir.Constant(self.vec, ir.Undefined), self.splat_mask)
        for j in range(_VECTORS):
            builder.store(builder.call(self.fma, [s, b[j], builder.load(self.acc[i][j])]), self.acc[i][j])

    def store(self, out, ldc, add):
        """Rows out + i * ldc (+)= the accumulators; ``add`` is an i1 value."""
        builder = self.builder
        for i in range(self.mr):
            row = builder.gep(out, [builder.mul(self.const(i), ldc)])
            for j in range(_VECTORS):
                ptr = self._vector_ptr(row, j)
                with builder.if_then(add):
                    builder.store(builder.fadd(builder.load(self.acc[i][j]), builder.load(ptr, align=4)),
                                  self.acc[i][j])
                builder.store(builder.load(self.acc[i][j]), ptr, align=4)


def _make_tile(mr):
    """The kernel for an mr x NR block of c: c_blk (+)= a1_blk @ w1 + a2_blk @ w2, where the
    packed panel holds w1's K1 rows, then w2's K2 rows."""

    @intrinsic
    def tile(typingctx, a1, a1_off, lda1, k1, a2, a2_off, lda2, k2, wp, w_off, c, c_off, ldc, add):
        i64 = types.int64
        sig = types.void(a1, i64, i64, i64, a2, i64, i64, i64, wp, i64, c, i64, i64, types.boolean)

        def codegen(context, builder, signature, args):
            (a1_v, a1_off, lda1, k1, a2_v, a2_off, lda2, k2, wp_v, w_off, c_v, c_off, ldc, add) = args
            t_a1, t_a2, t_w, t_c = (signature.args[i] for i in (0, 4, 8, 10))
            code = TileCode(context, builder, t_c.dtype, mr)
            nr = code.const(_VECTORS * code.lanes)
            panel = code.data(t_w, wp_v, w_off)
            for a_ty, a_v, a_off, lda, k_count, k_first in ((t_a1, a1_v, a1_off, lda1, k1, code.const(0)),
                                                             (t_a2, a2_v, a2_off, lda2, k2, k1)):
                base = code.data(a_ty, a_v, a_off)
                rows = [builder.gep(base, [builder.mul(code.const(i), lda)]) for i in range(mr)]
                with cgutils.for_range(builder, k_count) as loop:
                    k = loop.index
                    w = code.load_row(builder.gep(panel, [builder.mul(builder.add(k_first, k), nr)]))
                    for i in range(mr):
                        code.multiply_add(i, builder.gep(rows[i], [k]), w)
            code.store(code.data(t_c, c_v, c_off), ldc, add)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_TILES = tuple(_make_tile(mr) for mr in range(1, MR + 1))
_tile1, _tile2, _tile3, _tile4, _tile5, _tile6 = _TILES[:6]
_tile7, _tile8 = _TILES[6:] if MR == 8 else (_tile6, _tile6)  # never called when MR = 6


@njit(inline="always")
def _tile(mr, a1, a1_off, lda1, k1, a2, a2_off, lda2, k2, wp, w_off, c, c_off, ldc, add):
    if mr == 8:
        _tile8(a1, a1_off, lda1, k1, a2, a2_off, lda2, k2, wp, w_off, c, c_off, ldc, add)
    elif mr == 7:
        _tile7(a1, a1_off, lda1, k1, a2, a2_off, lda2, k2, wp, w_off, c, c_off, ldc, add)
    elif mr == 6:
        _tile6(a1, a1_off, lda1, k1, a2, a2_off, lda2, k2, wp, w_off, c, c_off, ldc, add)
    elif mr == 5:
        _tile5(a1, a1_off, lda1, k1, a2, a2_off, lda2, k2, wp, w_off, c, c_off, ldc, add)
    elif mr == 4:
        _tile4(a1, a1_off, lda1, k1, a2, a2_off, lda2, k2, wp, w_off, c, c_off, ldc, add)
    elif mr == 3:
        _tile3(a1, a1_off, lda1, k1, a2, a2_off, lda2, k2, wp, w_off, c, c_off, ldc, add)
    elif mr == 2:
        _tile2(a1, a1_off, lda1, k1, a2, a2_off, lda2, k2, wp, w_off, c, c_off, ldc, add)
    else:
        _tile1(a1, a1_off, lda1, k1, a2, a2_off, lda2, k2, wp, w_off, c, c_off, ldc, add)


def packed_gemm(a1, a2, wp, c, add):
    """c = [a1 | a2] @ w (c += ... when ``add``), wp = pack_panels(w); see the module docstring.
    This plain version is what ``NUMBA_DISABLE_JIT=1`` runs."""
    n = c.shape[1]
    w = wp.transpose(1, 0, 2).reshape(wp.shape[1], -1)[:, :n]
    k1 = a1.shape[1]
    product = a1 @ w[:k1] + a2 @ w[k1:]
    if add:
        c += product
    else:
        c[...] = product


@overload(packed_gemm, jit_options={"nogil": True})
def _packed_gemm_compiled(a1, a2, wp, c, add):
    def impl(a1, a2, wp, c, add):
        M, N = c.shape
        k1, k2 = a1.shape[1], a2.shape[1]
        K = k1 + k2
        n_panels, _, nr = wp.shape
        size = c.itemsize
        # VECTOR_BYTES is frozen into the compiled code: a kernel cached by Numba before it
        # changed (the cache is keyed on the calling file, not on this one) would misread the
        # panels. Refuse instead of computing garbage.
        if nr != _VECTORS * VECTOR_BYTES // size:
            raise ValueError("packed_gemm: panels of a different width than this compiled kernel "
                             "(a stale Numba cache: delete the kernels' __pycache__ folders)")
        # row strides in elements (a 0-column a1 may report any stride: never read)
        lda1, lda2, ldc = a1.strides[0] // size, a2.strides[0] // size, c.strides[0] // size
        edge = np.empty((MR, nr), c.dtype)
        # rows split evenly over the fewest blocks of at most MR (32 = 6+6+5+5+5+5, not
        # 6*5 + 2: a 2-row block has 4 FMA chains, too few to cover the FMA latency, 5 rows
        # keep 10): (32, 512) x (512, 128) 84 -> 89 GF/s, x (512, 64) 80 -> 84 (best runs)
        n_blocks = (M + MR - 1) // MR
        base, extra = M // n_blocks, M % n_blocks
        for p in range(n_panels):
            n0 = p * nr
            width = min(nr, N - n0)
            m0 = 0
            for blk in range(n_blocks):
                mr = base + 1 if blk < extra else base
                if width == nr:
                    _tile(mr, a1, m0 * lda1, lda1, k1, a2, m0 * lda2, lda2, k2, wp, p * K * nr,
                          c, m0 * ldc + n0, ldc, add)
                else:   # the zero-padded last panel: through a buffer, valid columns only
                    _tile(mr, a1, m0 * lda1, lda1, k1, a2, m0 * lda2, lda2, k2, wp, p * K * nr,
                          edge, 0, nr, False)
                    for i in range(mr):
                        dst, src = c[m0 + i, n0:N], edge[i]
                        if add:
                            for j in range(width):
                                dst[j] += src[j]
                        else:
                            for j in range(width):
                                dst[j] = src[j]
                m0 += mr

    return impl
