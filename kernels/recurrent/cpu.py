r"""The recurrent layers on the CPU: BLAS for every product, the time loop in one Numba function.

The math is the reference's (``reference.py``); the work is laid out so that Python is paid
once per call, not once per step, and every product that can leave the time loop does:

forward::

    XA = x W_ih^T + b_ih (+ b_hh where it simply adds)   one (T*B, I) x (I, G) GEMM, all steps
    for s in 0..T-1 (inside Numba):
        HP = hs[s] W_hh^T                              (B, P) x (P, G) BLAS GEMM
        gates, c, h = fused non-linearities            one pass over (B, G), rows as 1-D views
        (LSTM with proj_size: h = r W_hr^T, one more small GEMM)

backward::

    for s in T-1..0 (inside Numba):
        dA[s] = fused gate derivatives                 one pass over (B, G)
        dh    = dA[s] W_hh   (GRU: dHp[s] W_hh + z dh) (B, G) x (G, P) BLAS GEMM
    dx = dA W_ih, dW_ih = dA^T x, dW_hh = dHp^T hs    three big GEMMs, outside the loop

Only the two small GEMMs per step stay in the loop: they are the wall (at B32, H128 a
(32, 128) x (128, 512) GEMM runs far below BLAS's peak). The elementwise work is made cheap
so that it does not add to it: ``exp`` is softmax's vectorised ``_exp_f32`` for float32 (a
libm call per element keeps the loops scalar), ``tanh`` is built from it (``_tanh``), rows
are 1-D contiguous views (indexing a 3-D array in the inner loop was 3.5x slower), and the
time-major layout keeps each step's rows together.

Both directions of a bidirectional layer run at once (``cpu_forward_pair``/``cpu_backward_pair``):
one Numba thread each, BLAS held to one thread meanwhile, so that both cores have work
although each step's GEMM is too small to split.
"""
import numpy as np
from numba import njit, types
from numba.extending import overload

from ..attention.cpu import _parallel_region, gemm
from ..softmax import _exp
from .reference import GATES, step_order

# Float flags for the gate loops: contraction and reassociation help vectorising; no
# "no-NaN/no-inf" assumption (a NaN input must come out NaN, not whatever LLVM likes).
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


# ---------------------------------------------------------------------------------------------
# 1. Gate non-linearities
# ---------------------------------------------------------------------------------------------

@njit(inline="always", fastmath=_FAST)
def _sigmoid(v):
    return 1 / (1 + _exp(-v))


@njit(inline="always", fastmath=_FAST)
def _tanh_f32(v):
    """tanh of a float32 from the vectorised exp: (1 - e) / (1 + e) with e = exp(-2|v|), and
    the odd Taylor series below |v| = 0.2, where that quotient would lose digits to
    cancellation (the series' truncation error there is 1e-8). Absolute error about 1e-7
    (relative 6e-7 at |v| = 0.2). Both branches are computed, so the loop stays branch-free
    and vectorises."""
    a = abs(v)
    e = _exp(-2 * a)
    t = (1 - e) / (1 + e)
    a2 = a * a
    p = a * (1 + a2 * (np.float32(-1 / 3) + a2 * (np.float32(2 / 15) + a2 * np.float32(-17 / 315))))
    t = p if a < np.float32(0.2) else t
    return t if v >= 0 else -t


def _tanh(v):
    """tanh in the gate loops: ``_tanh_f32`` for float32, libm's for float64 (full precision)."""
    return np.tanh(v)


@overload(_tanh)
def _tanh_typed(v):
    if v == types.float32:
        return lambda v: _tanh_f32(v)
    return lambda v: np.tanh(v)


# ---------------------------------------------------------------------------------------------
# 2. Forward time loops, one per cell. States by step (hs, cs: (T+1, B, .)), outputs y by time.
# ---------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=_FAST)
def _write_state(s, perm, lens, h, hs, y):
    """hs[s+1] = h for the rows still running (and y at their time index), else held / 0."""
    T, B, P = y.shape
    for b in range(B):
        t = perm[s, b]
        src = h[b] if s < lens[b] else hs[s, b]
        dst = hs[s + 1, b]
        out = y[t, b]
        on = s < lens[b]
        for j in range(P):
            dst[j] = src[j]
            out[j] = src[j] if on else 0


@njit(cache=True, fastmath=_FAST)
def _rnn_forward(relu, xa, perm, lens, w_hh, hs, y, hp):
    T, B, G = xa.shape
    for s in range(T):
        gemm(1.0, hs[s], w_hh, 0.0, hp, False, True)
        for b in range(B):
            a = xa[perm[s, b], b]
            q = hp[b]
            for j in range(G):
                v = a[j] + q[j]
                q[j] = max(v, 0) if relu else _tanh(v)
        _write_state(s, perm, lens, hp, hs, y)


@njit(cache=True, fastmath=_FAST)
def _lstm_forward(proj, xa, perm, lens, w_hh, w_hr, hs, cs, gates, y, hp, r, hr):
    T, B, G = xa.shape
    H = G // 4
    for s in range(T):
        gemm(1.0, hs[s], w_hh, 0.0, hp, False, True)
        for b in range(B):
            on = s < lens[b]
            a, q, gt = xa[perm[s, b], b], hp[b], gates[s, b]
            c_old, c_new, rb = cs[s, b], cs[s + 1, b], r[b]
            if on:
                for j in range(H):
                    i = _sigmoid(a[j] + q[j])
                    f = _sigmoid(a[H + j] + q[H + j])
                    g = _tanh(a[2 * H + j] + q[2 * H + j])
                    o = _sigmoid(a[3 * H + j] + q[3 * H + j])
                    c = f * c_old[j] + i * g
                    gt[j], gt[H + j], gt[2 * H + j], gt[3 * H + j] = i, f, g, o
                    c_new[j] = c
                    rb[j] = o * _tanh(c)
            else:
                for j in range(G):
                    gt[j] = 0
                for j in range(H):
                    c_new[j] = c_old[j]
                    rb[j] = 0
        if proj:
            gemm(1.0, r, w_hr, 0.0, hr, False, True)
            _write_state(s, perm, lens, hr, hs, y)
        else:
            _write_state(s, perm, lens, r, hs, y)


@njit(cache=True, fastmath=_FAST)
def _gru_forward(xa, perm, lens, w_hh, b_hn, hs, gates, hn, y, hp, hnew):
    T, B, G = xa.shape
    H = G // 3
    for s in range(T):
        gemm(1.0, hs[s], w_hh, 0.0, hp, False, True)
        for b in range(B):
            on = s < lens[b]
            a, q, gt, hnb, h, out = xa[perm[s, b], b], hp[b], gates[s, b], hn[s, b], hs[s, b], hnew[b]
            if on:
                for j in range(H):
                    r = _sigmoid(a[j] + q[j])
                    z = _sigmoid(a[H + j] + q[H + j])
                    m = q[2 * H + j] + b_hn[j]
                    n = _tanh(a[2 * H + j] + r * m)
                    gt[j], gt[H + j], gt[2 * H + j] = r, z, n
                    hnb[j] = m
                    out[j] = (1 - z) * n + z * h[j]
            else:
                for j in range(G):
                    gt[j] = 0
                for j in range(H):
                    hnb[j] = 0
        _write_state(s, perm, lens, hnew, hs, y)


# ---------------------------------------------------------------------------------------------
# 3. Backward time loops: dA (and GRU's dHp) by step, dh/dc carried, in place
# ---------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=_FAST)
def _upstream(s, perm, lens, dy, dh, d):
    """d[b] = dh[b] + dy[t, b] for the rows running at step s, 0 for the others."""
    B, P = dh.shape
    for b in range(B):
        row, carry, up = d[b], dh[b], dy[perm[s, b], b]
        if s < lens[b]:
            for j in range(P):
                row[j] = carry[j] + up[j]
        else:
            for j in range(P):
                row[j] = 0


@njit(cache=True, fastmath=_FAST)
def _take_carry(s, lens, carry, dh):
    """dh[b] = carry[b] for the rows running at step s (the others keep theirs)."""
    B, P = dh.shape
    for b in range(B):
        if s < lens[b]:
            src, dst = carry[b], dh[b]
            for j in range(P):
                dst[j] = src[j]


@njit(cache=True, fastmath=_FAST)
def _rnn_backward(relu, perm, lens, w_hh, hs, dy, dh, dA, d, carry):
    T, B, G = dA.shape
    for s in range(T - 1, -1, -1):
        _upstream(s, perm, lens, dy, dh, d)
        for b in range(B):
            h, row, da = hs[s + 1, b], d[b], dA[s, b]
            for j in range(G):
                da[j] = row[j] * (h[j] > 0) if relu else row[j] * (1 - h[j] * h[j])
        gemm(1.0, dA[s], w_hh, 0.0, carry, False, False)
        _take_carry(s, lens, carry, dh)


@njit(cache=True, fastmath=_FAST)
def _lstm_backward(proj, perm, lens, w_hh, w_hr, cs, gates, dy, dh, dc, dA, dsteps, d, dr, carry):
    T, B, G = dA.shape
    H = G // 4
    for s in range(T - 1, -1, -1):
        _upstream(s, perm, lens, dy, dh, d)
        if proj:
            for b in range(B):
                dsteps[s, b, :] = d[b]
            gemm(1.0, d, w_hr, 0.0, dr, False, False)   # dL/dr = dL/dh W_hr
            src = dr
        else:
            src = d
        for b in range(B):
            if s < lens[b]:
                gt, da, dcb, c_old, c_new, row = gates[s, b], dA[s, b], dc[b], cs[s, b], cs[s + 1, b], src[b]
                for j in range(H):
                    i, f, g, o = gt[j], gt[H + j], gt[2 * H + j], gt[3 * H + j]
                    tc = _tanh(c_new[j])
                    dcs = dcb[j] + row[j] * o * (1 - tc * tc)
                    da[j] = dcs * g * i * (1 - i)
                    da[H + j] = dcs * c_old[j] * f * (1 - f)
                    da[2 * H + j] = dcs * i * (1 - g * g)
                    da[3 * H + j] = row[j] * tc * o * (1 - o)
                    dcb[j] = dcs * f
        gemm(1.0, dA[s], w_hh, 0.0, carry, False, False)
        _take_carry(s, lens, carry, dh)


@njit(cache=True, fastmath=_FAST)
def _gru_backward(perm, lens, w_hh, hs, gates, hn, dy, dh, dA, dHp, d, carry):
    T, B, G = dA.shape
    H = G // 3
    for s in range(T - 1, -1, -1):
        _upstream(s, perm, lens, dy, dh, d)
        for b in range(B):
            if s < lens[b]:
                gt, da, dhp, row, h, m = gates[s, b], dA[s, b], dHp[s, b], d[b], hs[s, b], hn[s, b]
                for j in range(H):
                    r, z, n = gt[j], gt[H + j], gt[2 * H + j]
                    dn = row[j] * (1 - z) * (1 - n * n)
                    dz = row[j] * (h[j] - n) * z * (1 - z)
                    drr = dn * m[j] * r * (1 - r)
                    da[j], da[H + j], da[2 * H + j] = drr, dz, dn
                    dhp[j], dhp[H + j], dhp[2 * H + j] = drr, dz, dn * r
        gemm(1.0, dHp[s], w_hh, 0.0, carry, False, False)
        for b in range(B):
            if s < lens[b]:
                src, row, dst, gt = carry[b], d[b], dh[b], gates[s, b]
                for j in range(H):
                    dst[j] = src[j] + row[j] * gt[H + j]


# ---------------------------------------------------------------------------------------------
# 4. Entry points
# ---------------------------------------------------------------------------------------------

def _order(lengths, T, B, reverse):
    """(perm, lens, identity): identity when steps are times (no reverse, no lengths)."""
    if lengths is None and not reverse:
        return np.broadcast_to(np.arange(T, dtype=np.int64)[:, None], (T, B)), np.full(B, T, np.int64), True
    perm, _ = step_order(lengths, T, B, reverse)
    lens = np.full(B, T, np.int64) if lengths is None else np.asarray(lengths, np.int64)
    return perm, lens, False


def _input_part(mode, x, w_ih, b_ih, b_hh, H):
    """XA = x W_ih^T + b_ih, with b_hh folded in where it only adds (all but GRU's n part)."""
    T, B, I = x.shape
    G = w_ih.shape[0]
    xa = (x.reshape(T * B, I) @ w_ih.T).reshape(T, B, G)
    bias = np.zeros(G, x.dtype)
    if b_ih is not None:
        bias += b_ih
    if b_hh is not None:
        if mode == "GRU":
            bias[:2 * H] += b_hh[:2 * H]
        else:
            bias += b_hh
    xa += bias
    return xa


def cpu_forward(mode, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None, lengths=None, reverse=False):
    """Same contract as ``reference_forward``: returns ``(y, h_n, c_n, saved)``."""
    T, B, _ = x.shape
    G, P = w_hh.shape
    H = G // GATES[mode]
    dtype = x.dtype
    perm, lens, _ = _order(lengths, T, B, reverse)
    xa = _input_part(mode, x, w_ih, b_ih, b_hh, H)
    hs = np.empty((T + 1, B, P), dtype)
    hs[0] = h0
    y = np.empty((T, B, P), dtype)
    hp = np.empty((B, G), dtype)
    cs = gates = hn = None
    if mode in ("RNN_TANH", "RNN_RELU"):
        _rnn_forward(mode == "RNN_RELU", xa, perm, lens, w_hh, hs, y, hp)
    elif mode == "LSTM":
        cs = np.empty((T + 1, B, H), dtype)
        cs[0] = c0
        gates = np.empty((T, B, G), dtype)
        proj = w_hr is not None
        _lstm_forward(proj, xa, perm, lens, w_hh, w_hr if proj else np.empty((1, 1), dtype),
                      hs, cs, gates, y, hp, np.empty((B, H), dtype), np.empty((B, P), dtype))
    else:
        gates = np.empty((T, B, G), dtype)
        hn = np.empty((T, B, H), dtype)
        b_hn = np.zeros(H, dtype) if b_hh is None else np.ascontiguousarray(b_hh[2 * H:])
        _gru_forward(xa, perm, lens, w_hh, b_hn, hs, gates, hn, y, hp, np.empty((B, H), dtype))
    c_n = None if cs is None else cs[T].copy()
    return y, hs[T].copy(), c_n, (hs, cs, gates, hn)


def cpu_backward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse, saved, dy, dh_n, dc_n):
    """Same contract as ``reference_backward``."""
    hs, cs, gates, hn = saved
    T, B, I = x.shape
    G, P = w_hh.shape
    H = G // GATES[mode]
    dtype = x.dtype
    perm, lens, identity = _order(lengths, T, B, reverse)
    dh = np.zeros((B, P), dtype) if dh_n is None else np.array(dh_n, dtype)
    dA = np.zeros((T, B, G), dtype)
    dHp = dA
    d = np.empty((B, P), dtype)
    carry = np.empty((B, P), dtype)
    dc = dsteps = None
    if mode in ("RNN_TANH", "RNN_RELU"):
        _rnn_backward(mode == "RNN_RELU", perm, lens, w_hh, hs, dy, dh, dA, d, carry)
    elif mode == "LSTM":
        dc = np.zeros((B, H), dtype) if dc_n is None else np.array(dc_n, dtype)
        proj = w_hr is not None
        dsteps = np.zeros((T, B, P), dtype) if proj else np.empty((1, 1, 1), dtype)
        _lstm_backward(proj, perm, lens, w_hh, w_hr if proj else np.empty((1, 1), dtype), cs, gates,
                       dy, dh, dc, dA, dsteps, d, np.empty((B, H), dtype), carry)
    else:
        dHp = np.zeros((T, B, G), dtype)
        _gru_backward(perm, lens, w_hh, hs, gates, hn, dy, dh, dA, dHp, d, carry)

    if identity:
        dA_time = dA
    else:
        dA_time = np.empty_like(dA)
        dA_time[perm, np.arange(B)[None, :]] = dA
    flat = dA_time.reshape(T * B, G)
    dx = (flat @ w_ih).reshape(T, B, I)
    dw_ih = flat.T @ x.reshape(T * B, I)
    dw_hh = dHp.reshape(T * B, G).T @ hs[:-1].reshape(T * B, P)
    db_ih = None if b_ih is None else dA.sum(axis=(0, 1))
    db_hh = None if b_hh is None else dHp.sum(axis=(0, 1))
    dw_hr = None
    if w_hr is not None:
        r_steps = gates[:, :, 3 * H:] * np.tanh(cs[1:])
        dw_hr = dsteps.reshape(T * B, P).T @ r_steps.reshape(T * B, H)
    return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_hr
