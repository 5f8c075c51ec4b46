r"""The recurrent layers on the CPU: the time loop in Numba, range by range; BLAS or packed GEMMs.

The math is the reference's (``reference.py``); the work is laid out so that Python is paid
once per range of steps (about 8 per call), not once per step, and every product that can
leave the time loop does:

forward, for each step range R = [s0, s1) (``_chunks``)::

    XA_R = x_R W_ih^T                                  one (|R|*B, I) x (I, G) GEMM  (helper)
    for s in R (inside Numba):
        HP = hs[s] W_hh^T                              (B, P) x (P, G) BLAS GEMM
        gates, c, h = fused non-linearities (+ bias)   one pass over (B, G), rows as 1-D views
    (LSTM: gates[s] = [x_s | hs[s]] [W_ih^T ; W_hh^T] in one packed GEMM per step on one
     thread; with a helper, XA_R is written into gates[R] and the step's packed GEMM adds to it)
        (LSTM with proj_size: h = r W_hr^T, one more small GEMM)

backward, for each step range R, last range first::

    for s in R, descending (inside Numba):
        dA[s] = fused gate derivatives                 one pass over (B, G)
        db   += the rows of dA[s]                      (float64, while dA[s] is in L1)
        dh    = dA[s] W_hh   (GRU: dHp[s] W_hh + z dh) (B, G) x (G, P) GEMM (LSTM: packed)
        (LSTM on one thread: dx[s] = dA[s] W_ih here too, packed)
    dx_R = dA_R W_ih                                                           (helper)
    [dW_ih | dW_hh] += dA_R^T [x_R | hs_R]             one GEMM (GRU: two, and sums)

Rows are taken in *step* order throughout (x is gathered by step once when lengths or the
reverse direction make steps differ from times; dx is scattered back), so a range of steps
is a contiguous block of every array. With one thread there is one range, the whole
sequence (``_ranges``): the big GEMMs are then single calls, which ran faster here than eight
smaller ones plus partial sums. XA, dA (GRU: dHp) and [x | h] are per-thread scratch
arrays reused from call to call (``_scratch``): fresh arrays of that size come from mmap and
were faulted in page by page on every call (10-15 % of an LSTM forward+backward). The LSTM
forward also keeps tanh(c') for backward (saved's fourth slot, GRU's ``hn``), and without a
backward to follow (``keep=False``) every state array is scratch too.

**Two cores.** The "helper" is a second thread when Numba may use two threads or more
(``_helper``): it computes the next range's XA while the loop runs this one, and the weight
gradients of the range the backward loop has just left, so the big GEMMs (about half of the
backward FLOPs) come off the critical path, which is then the loop alone. With one thread
the helper runs each call inline, the same code in the same order. BLAS is held to one thread
for the whole call (``_common.one_blas_thread``): each step's GEMM is too small to split, and on this
shared 2-core machine OpenBLAS's two-thread path was many times slower whenever the other
core was busy. Both directions of a bidirectional layer run at once instead
(``cpu_forward_pair``/``cpu_backward_pair``): two Python threads, each one direction with its
helper inline.

**The LSTM's step products** go through ``_packed_gemm``: the weights are packed into
k-major panels once per call and each step's product is a register-blocked kernel (LLVM IR
through a Numba intrinsic) that streams them from L1/L2, in vectors as wide as the CPU's
(64 bytes with AVX-512: 27% less LSTM fwd+bwd time on an AVX-512 Xeon than 32-byte vectors,
see ``_packed_gemm._host_vector_bytes``). OpenBLAS packed W_hh again on every
step and ran these shapes at 55-62 GF/s (one core here; 80-88 for a 1024^3 SGEMM). Since the
packed kernel has no per-call packing, a longer K only helps it, so on one thread the
forward multiplies [x_s | h_s] by [W_ih^T ; W_hh^T] (K = I + P) in the step instead of
projecting x in one big GEMM first, and the backward computes dx_s = dA_s W_ih beside dh.
At LSTM 64->128, B32, T64, one thread (minimum of 40 runs, shared machine): the forward's
step products 4.6 ms (BLAS: 2.1 ms of x W_ih^T + 4.3 ms of steps), the backward's 4.3 ms
(BLAS: 4.5 ms of steps + 2.0 ms of dx); forward + backward of the layer 10-12 % faster
in interleaved runs. With a helper thread the input projection and dx stay on it (off the
loop's critical path) and the loop's packed GEMM only adds h W_hh^T. GRU and RNN still call
BLAS per step (``gemm``, pre-transposed W_hh^T: "NN", about 1.5x faster than "NT" through
OpenBLAS at these shapes).

The elementwise work is made cheap so that it does not add much: ``exp`` is
``_cpu_math.exp``, the vectorised float32 exp (a libm call per element keeps the loops
scalar), ``tanh`` is built from it (``_tanh``), rows are 1-D contiguous views (indexing a 3-D
array in the inner loop was 3.5x slower), and the time-major layout keeps each step's rows
together. The gate loops are one pass per gate over row views that start at index 0 (loops
over ``range(2H, 3H)`` of a row ran about twice as slow). At LSTM 64->128, B32, T64 the gate
math is ~1.3 ms of the forward loop and ~1.8 ms of the backward's; the backward's is mostly
memory traffic (the pass alone, with its data in cache, takes 0.25 ms: it streams the saved
gates, c, tanh(c) and dy, ~7 MB, and writes dA, 4 MB). What is left of an LSTM forward +
backward is then about 3/4 GEMMs near the core's peak (the weight-gradient GEMM, 4.6 ms at
~87 GF/s through OpenBLAS, is the largest), 1/6 gate passes, ~1 ms Python and autograd.

Tried and left out (one thread, this machine): projecting x W_ih^T range by range just before
each range's steps (no gain over one GEMM); one merged loop per LSTM row instead of one per
gate (slower); the backward gate pass split into three loops or indexed as 2-D arrays
(slower); W_hh @ h^T per step (a transposed state layout: a probe's BLAS GEMM was 6 % faster,
less than the packed kernel gains, and every state and gate array would be transposed); the
weight-gradient GEMM as dW^T = [x | h]^T dA or split in two (within 2 % of dA^T [x | h]);
a packed kernel with 4 x 24 blocks instead of 6 x 16 (a few % slower at B32); the input
products left to BLAS for a second layer, whose packed [W_ih^T ; W_hh^T] (512 KiB) fills
this core's L2 (2 layers 2 % slower than fusing them too).
"""
import math
import threading

import numba
import numpy as np
from numba import njit, types
from numba.extending import overload

from .._common import one_blas_thread
from .._cpu_math import exp as _exp
from ..attention.cpu import gemm
from ._packed_gemm import pack_panels, packed_gemm
from .reference import GATES, step_order

# Float flags for the gate loops: contraction and reassociation help vectorising; no
# "no-NaN/no-inf" assumption (a NaN input must come out NaN, not whatever LLVM likes).
# Every loop also takes NumPy's error model: Python's checks every division for zero to raise
# ZeroDivisionError, and that branch alone kept ``1 / (1 + e)`` from vectorising.
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


# ---------------------------------------------------------------------------------------------
# 1. Gate non-linearities
# ---------------------------------------------------------------------------------------------

# Numba types ``1 - z`` as float64 when z is float32 (NumPy's promotion of an int64 literal),
# which halves the vector width and converts every element twice: the loops below write every
# constant as ``one``/``zero`` of the arrays' own dtype (``_one``), and the float32 functions
# use float32 literals.
_F = np.float32


@njit(inline="always", fastmath=_FAST, error_model="numpy")
def _sigmoid_f32(v):
    return _F(1) / (_F(1) + _exp(-v))


@njit(inline="always", fastmath=_FAST, error_model="numpy")
def _tanh_f32(v):
    """tanh of a float32 from the vectorised exp: 2 / (1 + exp(-2v)) - 1, a sigmoid and two
    flops (exact limits +-1 at +-inf, NaN stays NaN). Absolute error at most 1.8e-7, the same
    as an odd Taylor series blended in near 0 gave, at about 30 % less time (the quotient alone
    loses *relative* accuracy for |v| < 1e-3, which no gate or state needs: each is only
    ever added to or multiplied with numbers of order 1)."""
    return _F(2) / (_F(1) + _exp(_F(-2) * v)) - _F(1)


def _one(like):
    """1 of ``like``'s float type (see above)."""
    return like.dtype.type(1) if hasattr(like, "dtype") else 1.0


def _sigmoid(v):
    """sigmoid in the gate loops: the vectorised float32 version, or exact float64."""
    return 1.0 / (1.0 + np.exp(-v))


def _tanh(v):
    """tanh in the gate loops: ``_tanh_f32`` for float32, libm's for float64 (full precision)."""
    return np.tanh(v)


@overload(_one)
def _one_typed(like):
    if like == types.float32:
        return lambda like: _F(1)
    return lambda like: 1.0


@overload(_sigmoid)
def _sigmoid_typed(v):
    if v == types.float32:
        return lambda v: _sigmoid_f32(v)
    return lambda v: 1.0 / (1.0 + np.exp(-v))


@overload(_tanh)
def _tanh_typed(v):
    if v == types.float32:
        return lambda v: _tanh_f32(v)
    return lambda v: np.tanh(v)


# ---------------------------------------------------------------------------------------------
# 2. Forward time loops, one per cell, over steps s0..s1-1. States by step (hs, cs: (T+1, B, .)),
#    outputs y by time; xa holds the input part of these steps only (xa[s - s0]).
# ---------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _write_state(s, perm, lens, h, hs, y):
    """hs[s+1] = h for the rows still running (and y at their time index), else held / 0."""
    T, B, P = y.shape
    zero = _one(h[0, 0]) * 0
    for b in range(B):
        on = s < lens[b]
        src = h[b] if on else hs[s, b]
        dst, out = hs[s + 1, b], y[perm[s, b], b]
        for j in range(P):
            dst[j] = src[j]
        if on:
            for j in range(P):
                out[j] = src[j]
        else:
            for j in range(P):
                out[j] = zero


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _rnn_forward(relu, s0, s1, xa, bias, perm, lens, w_hh_t, hs, y, hp):
    T, B, G = xa.shape
    zero = _one(xa[0, 0, 0]) * 0
    for s in range(s0, s1):
        gemm(1.0, hs[s], w_hh_t, 0.0, hp, False, False)
        for b in range(B):
            a = xa[s - s0, b]
            q = hp[b]
            if relu:
                for j in range(G):
                    q[j] = max(a[j] + q[j] + bias[j], zero)
            else:
                for j in range(G):
                    q[j] = _tanh(a[j] + q[j] + bias[j])
        _write_state(s, perm, lens, hp, hs, y)


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _lstm_forward(proj, s0, s1, xs, add, bias, perm, lens, w_packed, w_hr_t, hs, cs, gates, tcs, y, r, hr):
    """Each step's product is ``packed_gemm([xs[s] | hs[s]], w_packed) -> gates[s]``: with
    xs the inputs by step and w_packed [W_ih^T ; W_hh^T] (one thread: the input projection
    inside the step), or with xs 0 columns wide, w_packed W_hh^T and ``add``: gates[s] then
    holds x_s W_ih^T on entry (projected ahead, on the helper thread). The gate pass turns
    the sum into the gates."""
    T, B, G = gates.shape
    H = G // 4
    zero = _one(gates[0, 0, 0]) * 0
    for s in range(s0, s1):
        packed_gemm(xs[s], hs[s], w_packed, gates[s], add)
        for b in range(B):
            gt = gates[s, b]
            c_old, c_new, rb, tc = cs[s, b], cs[s + 1, b], r[b], tcs[s, b]
            if s >= lens[b]:
                gt[:] = zero
                c_new[:] = c_old
                rb[:] = zero
                tc[:] = zero
                continue
            # pre-activation and non-linearity in one pass per gate; every loop starts at
            # index 0 of a row view (loops that started at 2H in one row ran ~2x slower)
            for j in range(2 * H):
                gt[j] = _sigmoid(gt[j] + bias[j])
            b_g, g = bias[2 * H:3 * H], gt[2 * H:3 * H]
            for j in range(H):
                g[j] = _tanh(g[j] + b_g[j])
            b_o, o = bias[3 * H:], gt[3 * H:]
            for j in range(H):
                o[j] = _sigmoid(o[j] + b_o[j])
            i, f = gt[:H], gt[H:2 * H]
            for j in range(H):
                cj = f[j] * c_old[j] + i[j] * g[j]
                t = _tanh(cj)
                c_new[j] = cj
                tc[j] = t   # saved: backward needs it too
                rb[j] = o[j] * t
        if proj:
            gemm(1.0, r, w_hr_t, 0.0, hr, False, False)
            _write_state(s, perm, lens, hr, hs, y)
        else:
            _write_state(s, perm, lens, r, hs, y)


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _gru_forward(s0, s1, xa, bias, perm, lens, w_hh_t, b_hn, hs, gates, hn, y, hp, hnew):
    T, B, G = xa.shape
    H = G // 3
    one = _one(xa[0, 0, 0])
    zero = one * 0
    for s in range(s0, s1):
        gemm(1.0, hs[s], w_hh_t, 0.0, hp, False, False)
        for b in range(B):
            a, q, gt, m, h, out = xa[s - s0, b], hp[b], gates[s, b], hn[s, b], hs[s, b], hnew[b]
            if s >= lens[b]:
                gt[:] = zero
                m[:] = zero
                continue
            for j in range(2 * H):
                gt[j] = _sigmoid(a[j] + q[j] + bias[j])
            r, z, n = gt[:H], gt[H:2 * H], gt[2 * H:]
            a_n, q_n, bias_n = a[2 * H:], q[2 * H:], bias[2 * H:]
            for j in range(H):
                m[j] = q_n[j] + b_hn[j]
            for j in range(H):
                n[j] = _tanh(a_n[j] + bias_n[j] + r[j] * m[j])
            for j in range(H):
                out[j] = (one - z[j]) * n[j] + z[j] * h[j]
        _write_state(s, perm, lens, hnew, hs, y)


# ---------------------------------------------------------------------------------------------
# 3. Backward time loops over steps s1-1..s0: dA (and GRU's dHp) of these steps (dA[s - s0],
#    every row written), dh/dc carried in place
# ---------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _upstream(s, perm, lens, dy, dh, d):
    """d[b] = dh[b] + dy[t, b] for the rows running at step s, 0 for the others."""
    B, P = dh.shape
    zero = _one(dh[0, 0]) * 0
    for b in range(B):
        row, carry, up = d[b], dh[b], dy[perm[s, b], b]
        if s < lens[b]:
            for j in range(P):
                row[j] = carry[j] + up[j]
        else:
            for j in range(P):
                row[j] = zero


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _take_carry(s, lens, carry, dh):
    """dh[b] = carry[b] for the rows running at step s (the others keep theirs)."""
    B, P = dh.shape
    for b in range(B):
        if s < lens[b]:
            src, dst = carry[b], dh[b]
            for j in range(P):
                dst[j] = src[j]


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _add_rows(rows, total):
    """total += the sum of the rows (B, G) of one step: the bias gradient, summed while the
    step's dA is still in L1 (a column of ones in the weight-gradient GEMM made it N = I + P + 1
    wide, and the odd last column cost more than this loop)."""
    for b in range(rows.shape[0]):
        row = rows[b]
        for j in range(row.shape[0]):
            total[j] += row[j]


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _rnn_backward(relu, s0, s1, perm, lens, w_hh, hs, dy, dh, dA, d, carry, db):
    B, G = dA.shape[1:]
    one = _one(dA[0, 0, 0])
    zero = one * 0
    for s in range(s1 - 1, s0 - 1, -1):
        _upstream(s, perm, lens, dy, dh, d)
        for b in range(B):
            h, row, da = hs[s + 1, b], d[b], dA[s - s0, b]
            if relu:
                for j in range(G):
                    da[j] = row[j] if h[j] > zero else zero
            else:
                for j in range(G):
                    da[j] = row[j] * (one - h[j] * h[j])
        _add_rows(dA[s - s0], db)
        gemm(1.0, dA[s - s0], w_hh, 0.0, carry, False, False)
        _take_carry(s, lens, carry, dh)


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _lstm_backward(proj, s0, s1, perm, lens, w_hh_packed, w_ih_packed, dx, w_hr, cs, gates, tcs, saved_tc, dy, dh,
                   dc, dA, dsteps, d, dr, carry, db):
    """dA of steps s1-1..s0 and dh, dc carried in place; dx[s] = dA_s W_ih as well when dx
    has rows (one thread: inside the loop, against packed weights), else the caller's GEMM."""
    B, G = dA.shape[1:]
    H = G // 4
    one = _one(dA[0, 0, 0])
    zero = one * 0
    shortest = lens.min()
    own_tc = np.empty(H, dA.dtype)   # tanh(c') of one row when the forward did not keep it
    no_dy = np.zeros(H, dA.dtype)    # with a projection dy is already inside dr
    for s in range(s1 - 1, s0 - 1, -1):
        if proj:
            _upstream(s, perm, lens, dy, dh, d)
            dsteps[s] = d
            gemm(1.0, d, w_hr, 0.0, dr, False, False)   # dL/dr = dL/dh W_hr
        for b in range(B):
            if s >= lens[b]:
                dA[s - s0, b] = zero
                continue
            gt, da, dcs, c_old = gates[s, b], dA[s - s0, b], dc[b], cs[s, b]
            # dL/dr = row + up: dL/dh W_hr (+ 0) with a projection, else dh + dy, summed here
            row, up = (dr[b], no_dy) if proj else (dh[b], dy[perm[s, b], b])
            if saved_tc:
                tc = tcs[s, b]
            else:
                tc, c_new = own_tc, cs[s + 1, b]
                for j in range(H):
                    tc[j] = _tanh(c_new[j])
            i, f, g, o = gt[:H], gt[H:2 * H], gt[2 * H:3 * H], gt[3 * H:]
            da_i, da_f, da_g, da_o = da[:H], da[H:2 * H], da[2 * H:3 * H], da[3 * H:]
            for j in range(H):   # one pass: every operand read once, in L1
                t = tc[j]
                oj, fj, ij, gj = o[j], f[j], i[j], g[j]
                rj = row[j] + up[j]
                dcj = dcs[j] + rj * oj * (one - t * t)   # dL/dc' of this step
                da_o[j] = rj * t * oj * (one - oj)
                da_i[j] = dcj * gj * ij * (one - ij)
                da_f[j] = dcj * c_old[j] * fj * (one - fj)
                da_g[j] = dcj * ij * (one - gj * gj)
                dcs[j] = dcj * fj                              # carried to step s - 1
        _add_rows(dA[s - s0], db)
        da_s = dA[s - s0]
        if dx.shape[0]:
            packed_gemm(da_s[:, :0], da_s, w_ih_packed, dx[s], False)
        if s < shortest:   # every row runs this step: its dh is the product itself
            packed_gemm(da_s[:, :0], da_s, w_hh_packed, dh, False)
        else:
            packed_gemm(da_s[:, :0], da_s, w_hh_packed, carry, False)
            _take_carry(s, lens, carry, dh)


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _gru_backward(s0, s1, perm, lens, w_hh, hs, gates, hn, dy, dh, dA, dHp, d, carry):
    B, G = dA.shape[1:]
    H = G // 3
    one = _one(dA[0, 0, 0])
    zero = one * 0
    for s in range(s1 - 1, s0 - 1, -1):
        _upstream(s, perm, lens, dy, dh, d)
        for b in range(B):
            if s >= lens[b]:
                dA[s - s0, b] = zero
                dHp[s - s0, b] = zero
                continue
            gt, da, dhp, row, h, m = gates[s, b], dA[s - s0, b], dHp[s - s0, b], d[b], hs[s, b], hn[s, b]
            r, z, n = gt[:H], gt[H:2 * H], gt[2 * H:]
            da_r, da_z, da_n = da[:H], da[H:2 * H], da[2 * H:]
            for j in range(H):
                da_n[j] = row[j] * (one - z[j]) * (one - n[j] * n[j])
            for j in range(H):
                da_z[j] = row[j] * (h[j] - n[j]) * z[j] * (one - z[j])
            for j in range(H):
                da_r[j] = da_n[j] * m[j] * r[j] * (one - r[j])
            for j in range(2 * H):
                dhp[j] = da[j]
            dhp_n = dhp[2 * H:]
            for j in range(H):
                dhp_n[j] = da_n[j] * r[j]
        gemm(1.0, dHp[s - s0], w_hh, 0.0, carry, False, False)
        for b in range(B):
            if s < lens[b]:
                src, row, dst, z = carry[b], d[b], dh[b], gates[s, b, H:2 * H]
                for j in range(H):
                    dst[j] = src[j] + row[j] * z[j]


# ---------------------------------------------------------------------------------------------
# 4. What the entry points share: step order, bias, step ranges, the helper thread
# ---------------------------------------------------------------------------------------------

_identity_orders = {}   # (T, B) -> (perm, lens) of the plain forward direction, made once


def _order(lengths, T, B, reverse):
    """(perm, lens, identity): identity when steps are times (no reverse, no lengths). The
    kernels only read perm and lens, so the identity ones are kept per shape (building them
    cost ~0.1 ms a call, about 1 % of a layer's forward + backward at B32, T64)."""
    if lengths is None and not reverse:
        kept = _identity_orders.get((T, B))
        if kept is None:
            if len(_identity_orders) >= 64:   # shapes keep changing (tests): start over
                _identity_orders.clear()
            perm = np.repeat(np.arange(T, dtype=np.int64), B).reshape(T, B)
            kept = _identity_orders[(T, B)] = (perm, np.full(B, T, np.int64))
        return kept[0], kept[1], True
    perm, _ = step_order(lengths, T, B, reverse)
    lens = np.full(B, T, np.int64) if lengths is None else np.asarray(lengths, np.int64)
    return perm, lens, False


def _by_step(a, perm, identity):
    """a (T, B, n) in time order -> its rows in step order (a itself when steps are times)."""
    return a if identity else a[perm, np.arange(a.shape[1])[None, :]]


def _folded_bias(mode, b_ih, b_hh, G, H, dtype):
    """b_ih, with b_hh folded in where it only adds (all but GRU's n part, which r multiplies)."""
    bias = np.zeros(G, dtype)
    if b_ih is not None:
        bias += b_ih
    if b_hh is not None:
        if mode == "GRU":
            bias[:2 * H] += b_hh[:2 * H]
        else:
            bias += b_hh
    return bias


def _chunks(T, n=8):
    """The step ranges [s0, s1) the time loop is cut into: about n, the first one half as long,
    so that the forward loop starts soon (its input projection is computed range by range) and
    the backward loop, which ends there, leaves little weight-gradient work after it."""
    size = max(1, -(-T // n))
    bounds = [0] + list(range(max(1, size // 2), T, size)) + [T]
    return list(zip(bounds[:-1], bounds[1:]))


_SCRATCH_MAX_BYTES = 16 << 20   # at most ~16 such arrays per thread: <= 256 MiB held
_scratch_arrays = threading.local()


def _scratch(role, shape, dtype):
    """An uninitialised work array that never leaves the call (the forward's x W_ih^T, the
    backward's dA, ...), kept per thread and reused by the next call of the same shape. Fresh
    arrays of these sizes (megabytes) come from mmap and were faulted in page by page on every
    call: 10-15 % of an LSTM forward+backward's time at 64->128, B32, T64. Arrays over
    ``_SCRATCH_MAX_BYTES`` are not kept."""
    dtype = np.dtype(dtype)
    if math.prod(shape) * dtype.itemsize > _SCRATCH_MAX_BYTES:
        return np.empty(shape, dtype)
    kept = getattr(_scratch_arrays, "kept", None)
    if kept is None:
        kept = _scratch_arrays.kept = {}
    key = (role, shape, dtype)
    a = kept.get(key)
    if a is None:
        if len(kept) >= 16:   # shapes keep changing (tests): start over rather than grow
            kept.clear()
        a = kept[key] = np.empty(shape, dtype)
    return a


def _ranges(T, helper):
    """The step ranges of one call: ``_chunks`` when a helper thread overlaps each range's big
    GEMMs with the loop, else one range: the GEMMs are then single calls over every step, which
    run faster than eight smaller ones and need no partial sums."""
    return [(0, T)] if helper is _INLINE else _chunks(T)


def _gemm_into(a, b, out, add):
    """out = a @ b, or out += a @ b when ``add``."""
    if add:
        out += a @ b
    else:
        np.matmul(a, b, out=out)


class _Inline:
    """The helper when there is one thread: runs each submitted call at once."""

    class _Done:
        @staticmethod
        def result():
            return None

    def submit(self, fn, *args):
        fn(*args)
        return self._Done


_INLINE = _Inline()
_pools = {}  # "pair": two threads for the two directions; "helper": one, made on first use


def _workers(kind="pair"):
    """The "pair" pool (two threads) or the "helper" pool: ONE thread, so that the calls a
    loop submits run one at a time in order (the weight-gradient calls add into the same
    arrays, and the forward loop's buffers are reused two ranges later)."""
    if kind not in _pools:
        from concurrent.futures import ThreadPoolExecutor

        _pools[kind] = ThreadPoolExecutor(max_workers=2 if kind == "pair" else 1,
                                          thread_name_prefix=f"tinymm-recurrent-{kind}")
    return _pools[kind]


def _helper():
    """Where the big GEMMs go while the time loop runs: the helper thread when Numba may use
    two threads or more (the loop and the GEMMs then share the two cores), else inline."""
    return _workers("helper") if numba.get_num_threads() > 1 else _INLINE


# ---------------------------------------------------------------------------------------------
# 5. Entry points. The time loop runs range by range (``_chunks``); the big GEMMs of each range
#    (forward: its input projection, ahead of the loop; backward: dx, dW_ih, dW_hh of the
#    range the loop has just left) run on the helper thread meanwhile.
# ---------------------------------------------------------------------------------------------

def cpu_forward(mode, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None, lengths=None, reverse=False,
                helper=None, keep=True):
    """Same contract as ``reference_forward``: returns ``(y, h_n, c_n, saved)``.
    ``helper``: where the input projections run (None: ``_helper()``). ``keep=False``: no
    backward will follow; saved is None and the states and gates live in scratch arrays."""
    T, B, I = x.shape
    G, P = w_hh.shape
    H = G // GATES[mode]
    dtype = x.dtype
    perm, lens, identity = _order(lengths, T, B, reverse)
    x_steps = _by_step(x, perm, identity)
    bias = _folded_bias(mode, b_ih, b_hh, G, H, dtype)
    helper = _helper() if helper is None else helper
    # what backward needs comes from fresh arrays; without backward (keep=False) the same
    # arrays are per-thread scratch, warm in the caches from the last call
    kept = (lambda role, shape: np.empty(shape, dtype)) if keep else (lambda role, shape: _scratch(role, shape, dtype))
    hs = kept("hs", (T + 1, B, P))
    hs[0] = h0
    y = np.empty((T, B, P), dtype)
    hp = np.empty((B, G), dtype)
    cs = gates = hn = None
    # pre-transposed: (P, G) rows make each BLAS step GEMM "NN" (the LSTM packs its own)
    w_hh_t = None if mode == "LSTM" else np.ascontiguousarray(w_hh.T)
    if mode == "LSTM":
        cs = kept("cs", (T + 1, B, H))
        cs[0] = c0
        proj = w_hr is not None
        w_hr_t = np.ascontiguousarray(w_hr.T) if proj else np.empty((1, 1), dtype)
        r, hr = np.empty((B, H), dtype), np.empty((B, P), dtype)
    if mode in ("LSTM", "GRU"):
        gates = kept("gates", (T, B, G))
    if mode == "LSTM":
        hn = kept("hn", (T, B, H))   # tanh(c') by step, in the slot GRU uses for hn
        # one thread: x_s W_ih^T inside each step's product (K = I + P, see _packed_gemm);
        # with a helper thread it is projected there, range by range, ahead of the loop
        fused = helper is _INLINE
        if fused:
            xs, w_packed = x_steps, pack_panels(w_ih.T, w_hh.T)
        else:
            xs, w_packed = x_steps[:, :, :0], pack_panels(w_hh.T)
    if mode == "GRU":
        hn = kept("hn", (T, B, H))
        b_hn = np.zeros(H, dtype) if b_hh is None else np.ascontiguousarray(b_hh[2 * H:])
        hnew = np.empty((B, H), dtype)

    ranges = _ranges(T, helper)
    longest = max(s1 - s0 for s0, s1 in ranges)
    # x W_ih^T of two ranges (in use, next); LSTM projects into its gates instead
    ring = None if mode == "LSTM" else _scratch("xa", (min(2, len(ranges)), longest, B, G), dtype)

    def project(k):
        s0, s1 = ranges[k]
        if mode == "LSTM" and fused:
            return
        # LSTM: into its own gates (the loop adds h W_hh^T there); others: a ring buffer
        target = gates[s0:s1] if mode == "LSTM" else ring[k % 2, :s1 - s0]
        np.matmul(x_steps[s0:s1].reshape(-1, I), w_ih.T, out=target.reshape(-1, G))

    def loop(k):
        s0, s1 = ranges[k]
        xa = None if ring is None else ring[k % 2, :s1 - s0]
        if mode in ("RNN_TANH", "RNN_RELU"):
            _rnn_forward(mode == "RNN_RELU", s0, s1, xa, bias, perm, lens, w_hh_t, hs, y, hp)
        elif mode == "LSTM":
            _lstm_forward(proj, s0, s1, xs, not fused, bias, perm, lens, w_packed, w_hr_t, hs, cs, gates, hn, y,
                          r, hr)
        else:
            _gru_forward(s0, s1, xa, bias, perm, lens, w_hh_t, b_hn, hs, gates, hn, y, hp, hnew)

    with one_blas_thread():
        pending = [helper.submit(project, k) for k in range(min(2, len(ranges)))]
        for k in range(len(ranges)):
            pending[k].result()
            loop(k)
            if k + 2 < len(ranges):   # its buffer is free now
                pending.append(helper.submit(project, k + 2))
    c_n = None if cs is None else cs[T].copy()
    return y, hs[T].copy(), c_n, ((hs, cs, gates, hn) if keep else None)


def cpu_backward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse, saved, dy, dh_n, dc_n,
                 helper=None):
    """Same contract as ``reference_backward``. ``helper``: where the weight GEMMs run."""
    hs, cs, gates, hn = saved
    T, B, I = x.shape
    G, P = w_hh.shape
    H = G // GATES[mode]
    dtype = x.dtype
    perm, lens, identity = _order(lengths, T, B, reverse)
    x_steps = _by_step(x, perm, identity)
    dh = np.zeros((B, P), dtype) if dh_n is None else np.array(dh_n, dtype)
    helper = _helper() if helper is None else helper
    ranges = _ranges(T, helper)[::-1]   # the order the loop takes them in
    longest = max(s1 - s0 for s0, s1 in ranges)
    n_buf = min(2, len(ranges))
    ring = _scratch("dA", (n_buf, longest, B, G), dtype)   # dA of two step ranges: being made, being used
    ring_hp = ring if mode != "GRU" else _scratch("dHp", (n_buf, longest, B, G), dtype)   # dHp (GRU's differs)
    if mode != "GRU":
        xh_buf = _scratch("xh", (longest, B, I + P), dtype)   # [x | h] of one range
        db_sum = np.zeros(G, np.float64)   # the loop sums the bias gradient here
    d = np.empty((B, P), dtype)
    carry = np.empty((B, P), dtype)
    dc = dsteps = None
    if mode == "LSTM":
        dc = np.zeros((B, H), dtype) if dc_n is None else np.array(dc_n, dtype)
        proj = w_hr is not None
        dsteps = np.zeros((T, B, P), dtype) if proj else np.empty((1, 1, 1), dtype)
        w_hr_or_dummy = w_hr if proj else np.empty((1, 1), dtype)
        dr = np.empty((B, H), dtype)
        saved_tc = hn is not None   # tanh(c') from a forward that kept it
        w_hh_packed = pack_panels(w_hh)   # dh = dA_s W_hh each step (see _packed_gemm)
        tcs = hn if saved_tc else cs
    dx_steps = np.empty((T, B, I), dtype)
    if mode == "LSTM":
        # one thread: dx_s = dA_s W_ih inside the loop, beside dh (the product is then K = G
        # long against packed weights: faster than BLAS's (T B, G) x (G, I) GEMM)
        dx_in_loop = dx_steps if helper is _INLINE else dx_steps[:0]
        w_ih_packed = pack_panels(w_ih) if helper is _INLINE else pack_panels(w_ih[:0])
    # dA = dHp but for GRU: then one GEMM gives [dW_ih | dW_hh] = dA^T [x | h], and the loop
    # sums db from the rows of dA it has just made
    merged = mode != "GRU"
    if merged:
        dw_xh = np.empty((G, I + P), dtype)
    else:
        dw_ih, dw_hh = np.empty((G, I), dtype), np.empty((G, P), dtype)
    db_ih = None if b_ih is None else np.empty(G, dtype)
    db_hh = None if b_hh is None else np.empty(G, dtype)

    def loop(k):
        s0, s1 = ranges[k]
        dA, dHp = ring[k % 2, :s1 - s0], ring_hp[k % 2, :s1 - s0]
        if mode in ("RNN_TANH", "RNN_RELU"):
            _rnn_backward(mode == "RNN_RELU", s0, s1, perm, lens, w_hh, hs, dy, dh, dA, d, carry, db_sum)
        elif mode == "LSTM":
            _lstm_backward(proj, s0, s1, perm, lens, w_hh_packed, w_ih_packed, dx_in_loop, w_hr_or_dummy, cs, gates,
                           tcs, saved_tc, dy, dh, dc, dA, dsteps, d, dr, carry, db_sum)
        else:
            _gru_backward(s0, s1, perm, lens, w_hh, hs, gates, hn, dy, dh, dA, dHp, d, carry)

    def weight_grads(k):
        s0, s1 = ranges[k]
        da = ring[k % 2, :s1 - s0].reshape(-1, G)
        dhp = ring_hp[k % 2, :s1 - s0].reshape(-1, G)
        if mode != "LSTM" or helper is not _INLINE:
            np.matmul(da, w_ih, out=dx_steps[s0:s1].reshape(-1, I))
        # the first range writes the sums, later ones add to them (no zeroed arrays, no
        # temporaries when there is one range)
        if merged:
            xh = xh_buf[:s1 - s0]
            np.concatenate((x_steps[s0:s1], hs[s0:s1]), axis=2, out=xh)
            _gemm_into(da.T, xh.reshape(-1, I + P), dw_xh, k > 0)
            return
        _gemm_into(da.T, x_steps[s0:s1].reshape(-1, I), dw_ih, k > 0)
        _gemm_into(dhp.T, hs[s0:s1].reshape(-1, P), dw_hh, k > 0)
        for db, rows in ((db_ih, da), (db_hh, dhp)):
            if db is None:
                continue
            if k > 0:
                db += rows.sum(axis=0)
            else:
                rows.sum(axis=0, out=db)

    with one_blas_thread():
        pending = []
        for k in range(len(ranges)):
            if k >= 2:
                pending[k - 2].result()   # its buffer is free again
            loop(k)
            pending.append(helper.submit(weight_grads, k))
        for done in pending[-2:]:
            done.result()
    if merged:
        dw_ih, dw_hh = np.ascontiguousarray(dw_xh[:, :I]), np.ascontiguousarray(dw_xh[:, I:])
        if db_ih is not None:
            db_ih[...] = db_sum
        if db_hh is not None:
            db_hh[...] = db_sum

    if identity:
        dx = dx_steps
    else:
        dx = np.empty_like(dx_steps)
        dx[perm, np.arange(B)[None, :]] = dx_steps
    dw_hr = None
    if w_hr is not None:
        r_steps = gates[:, :, 3 * H:] * (hn if saved_tc else np.tanh(cs[1:]))
        dw_hr = dsteps.reshape(T * B, P).T @ r_steps.reshape(T * B, H)
    return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_hr


# ---------------------------------------------------------------------------------------------
# 6. Both directions of a bidirectional layer at once
# ---------------------------------------------------------------------------------------------

def _run_pair(calls):
    """Run two zero-argument calls on two threads (the Numba loops release the GIL, and so
    does NumPy's matmul), BLAS on one thread meanwhile; returns both results in order. One
    after the other when Numba is held to one thread."""
    if numba.get_num_threads() < 2:
        return [call() for call in calls]
    with one_blas_thread():
        futures = [_workers().submit(call) for call in calls]
        return [f.result() for f in futures]


def cpu_forward_pair(mode, x, states, weights, lengths=None, keep=True):
    """``cpu_forward`` of the forward (reverse=False) and the reverse direction, at once.
    ``states`` = [(h0, c0)] * 2, ``weights`` = [(w_ih, w_hh, b_ih, b_hh, w_hr)] * 2."""
    return _run_pair([
        (lambda d=d: cpu_forward(mode, x, *states[d], *weights[d], lengths, bool(d), helper=_INLINE, keep=keep))
        for d in range(2)
    ])


def cpu_backward_pair(mode, x, states, weights, lengths, saved, dys, dh_ns, dc_ns):
    """``cpu_backward`` of both directions at once (see ``cpu_forward_pair``)."""
    return _run_pair([
        (lambda d=d: cpu_backward(mode, x, *states[d], *weights[d], lengths, bool(d), saved[d],
                                  dys[d], dh_ns[d], dc_ns[d], helper=_INLINE)) for d in range(2)
    ])
