r"""The recurrent layers in ``numba.cuda``: fused gate kernels between cuBLAS GEMMs.

The math is the reference's (``reference.py``). Each step of the time loop is a few launches
on the current CuPy stream (the loop itself runs on the host; a persistent kernel that keeps
it on the GPU is not written yet)::

    XA = x W_ih^T + b_ih (+ b_hh where it simply adds)    one cuBLAS GEMM for all steps
    for s in 0..T-1:
        HP = hs[s] W_hh^T                                cupy.matmul (cuBLAS)
        gates kernel: one thread per (row b, unit j)     non-linearities, c', h' fused
        (LSTM proj_size: h' = r W_hr^T, cupy.matmul)
        state kernel: hs[s+1], y[perm[s, b], b]          held / zero on padded steps
    backward, s = T-1..0:
        upstream kernel: d = dh + dy[perm]               (0 on padded steps)
        gate-derivative kernel -> dA[s] (GRU: dHp[s]), dc carried in place
        carry = dA[s] W_hh (cupy.matmul);  carry kernel: dh = carry (+ z d for GRU)
    dx = dA W_ih, dW_ih = dA^T x, dW_hh = dHp^T hs      three GEMMs after the loop

Every kernel is elementwise over (B, H) or (B, P): threads index ``k = b * width + j``, so
consecutive threads touch consecutive elements of a row (coalesced). Given NumPy arrays (the
CUDA simulator) the GEMMs are NumPy's. Kernels are compiled on first launch.
"""
import functools
import math
from types import SimpleNamespace

import numpy as np

from .._common import array_module, blocks_for, launch_on_cupy_stream, numba_cuda
from .reference import GATES, step_order

cuda = numba_cuda()  # numba.cuda, with the NumPy 2.5 alias it needs (see _common.numba_cuda)

THREADS = 128  # threads per block of every elementwise kernel


@functools.lru_cache(maxsize=None)
def _kernels():
    """Compile the device functions and kernels once, on first use.

    Every kernel starts from ``element`` (or ``live_element``): thread ``k`` owns element
    ``(b, j) = divmod(k, W)`` of a (B, W) array. The (T, B, n H) gate arrays (``gates``,
    ``dA``, ``dHp``) hold gate ``q`` of unit ``j`` at column ``q * H + j``; ``take3``/``take4``
    read and ``put3``/``put4`` write the 3 (GRU) or 4 (LSTM) gates of one (s, b, j), taking
    ``H`` from the array's width.
    """

    @cuda.jit(device=True)
    def sigmoid(v):
        return 1 / (1 + math.exp(-v))

    @cuda.jit(device=True)
    def element(a):
        """This thread's (b, j) in the (B, W) array ``a``, and whether it lies inside it."""
        W = a.shape[1]
        k = cuda.grid(1)
        return k // W, k % W, k < a.shape[0] * W

    @cuda.jit(device=True)
    def live_element(a, lens, s):
        """``element(a)``, its flag false also where step ``s`` is padding for row ``b``."""
        b, j, inside = element(a)
        return b, j, inside and s < lens[b]

    @cuda.jit(device=True)
    def preact(xa, hp, t, b, c):
        """Input part plus hidden part of gate column ``c``."""
        return xa[t, b, c] + hp[b, c]

    @cuda.jit(device=True)
    def take3(a, s, b, j):
        H = a.shape[2] // 3
        return a[s, b, j], a[s, b, H + j], a[s, b, 2 * H + j]

    @cuda.jit(device=True)
    def take4(a, s, b, j):
        H = a.shape[2] // 4
        return a[s, b, j], a[s, b, H + j], a[s, b, 2 * H + j], a[s, b, 3 * H + j]

    @cuda.jit(device=True)
    def put_at(a, s, b, j, H, v0, v1, v2):
        """The first three gates, ``H`` given (shared by ``put3`` and ``put4``)."""
        a[s, b, j] = v0
        a[s, b, H + j] = v1
        a[s, b, 2 * H + j] = v2

    @cuda.jit(device=True)
    def put3(a, s, b, j, v0, v1, v2):
        put_at(a, s, b, j, a.shape[2] // 3, v0, v1, v2)

    @cuda.jit(device=True)
    def put4(a, s, b, j, v0, v1, v2, v3):
        H = a.shape[2] // 4
        put_at(a, s, b, j, H, v0, v1, v2)
        a[s, b, 3 * H + j] = v3

    @cuda.jit
    def rnn_forward(xa, hp, perm, lens, s, relu, hnew):
        b, j, live = live_element(hnew, lens, s)
        if live:
            v = preact(xa, hp, perm[s, b], b, j)
            hnew[b, j] = max(v, 0) if relu else math.tanh(v)

    @cuda.jit
    def lstm_forward(xa, hp, perm, lens, s, gates, cs, r):
        H = r.shape[1]
        b, j, inside = element(r)
        if not inside:
            return
        if s >= lens[b]:  # padding: c is held, the gates and r are zero
            put4(gates, s, b, j, 0, 0, 0, 0)
            cs[s + 1, b, j] = cs[s, b, j]
            r[b, j] = 0
            return
        t = perm[s, b]
        i = sigmoid(preact(xa, hp, t, b, j))
        f = sigmoid(preact(xa, hp, t, b, H + j))
        g = math.tanh(preact(xa, hp, t, b, 2 * H + j))
        o = sigmoid(preact(xa, hp, t, b, 3 * H + j))
        c = f * cs[s, b, j] + i * g
        put4(gates, s, b, j, i, f, g, o)
        cs[s + 1, b, j] = c
        r[b, j] = o * math.tanh(c)

    @cuda.jit
    def gru_forward(xa, hp, b_hn, perm, lens, s, gates, hn, hs, hnew):
        H = hnew.shape[1]
        b, j, inside = element(hnew)
        if not inside:
            return
        if s >= lens[b]:
            put3(gates, s, b, j, 0, 0, 0)
            hn[s, b, j] = 0
            return
        t = perm[s, b]
        r = sigmoid(preact(xa, hp, t, b, j))
        z = sigmoid(preact(xa, hp, t, b, H + j))
        m = hp[b, 2 * H + j] + b_hn[j]
        n = math.tanh(xa[t, b, 2 * H + j] + r * m)
        put3(gates, s, b, j, r, z, n)
        hn[s, b, j] = m
        hnew[b, j] = (1 - z) * n + z * hs[s, b, j]

    @cuda.jit
    def write_state(perm, lens, s, hnew, hs, y):
        b, j, inside = element(hnew)
        if not inside:
            return
        t = perm[s, b]
        if s < lens[b]:
            hs[s + 1, b, j] = hnew[b, j]
            y[t, b, j] = hnew[b, j]
        else:
            hs[s + 1, b, j] = hs[s, b, j]
            y[t, b, j] = 0

    @cuda.jit
    def upstream(perm, lens, s, dy, dh, d):
        b, j, inside = element(dh)
        if inside:
            d[b, j] = dh[b, j] + dy[perm[s, b], b, j] if s < lens[b] else 0

    @cuda.jit
    def rnn_backward(lens, s, relu, d, hs, dA):
        b, j, live = live_element(d, lens, s)
        if not live:
            return
        h = hs[s + 1, b, j]
        if relu:
            dA[s, b, j] = d[b, j] if h > 0 else 0
        else:
            dA[s, b, j] = d[b, j] * (1 - h * h)

    @cuda.jit
    def lstm_backward(lens, s, dr, gates, cs, dc, dA):
        b, j, live = live_element(dc, lens, s)
        if not live:
            return
        i, f, g, o = take4(gates, s, b, j)
        row = dr[b, j]
        tc = math.tanh(cs[s + 1, b, j])
        dcs = dc[b, j] + row * o * (1 - tc * tc)
        put4(dA, s, b, j, dcs * g * i * (1 - i), dcs * cs[s, b, j] * f * (1 - f),
             dcs * i * (1 - g * g), row * tc * o * (1 - o))
        dc[b, j] = dcs * f

    @cuda.jit
    def gru_backward(lens, s, d, gates, hs, hn, dA, dHp):
        b, j, live = live_element(d, lens, s)
        if not live:
            return
        r, z, n = take3(gates, s, b, j)
        row = d[b, j]
        dn = row * (1 - z) * (1 - n * n)
        dz = row * (hs[s, b, j] - n) * z * (1 - z)
        dr = dn * hn[s, b, j] * r * (1 - r)
        put3(dA, s, b, j, dr, dz, dn)
        put3(dHp, s, b, j, dr, dz, dn * r)

    @cuda.jit
    def take_carry(lens, s, carry, d, gates, gru, dh):
        P = dh.shape[1]
        b, j, live = live_element(dh, lens, s)
        if not live:
            return
        if gru:
            dh[b, j] = carry[b, j] + d[b, j] * gates[s, b, P + j]   # + z * dh' (P = H for GRU)
        else:
            dh[b, j] = carry[b, j]

    return SimpleNamespace(rnn_forward=rnn_forward, lstm_forward=lstm_forward, gru_forward=gru_forward,
                           write_state=write_state, upstream=upstream, rnn_backward=rnn_backward,
                           lstm_backward=lstm_backward, gru_backward=gru_backward, take_carry=take_carry)


def _launch(kernel, n, *args):
    launch_on_cupy_stream(kernel, blocks_for(n, THREADS), THREADS, 0, args)


def _order(xp, lengths, T, B, reverse):
    perm, _ = step_order(lengths, T, B, reverse)
    lens = np.full(B, T, np.int64) if lengths is None else np.asarray(lengths, np.int64)
    return perm, xp.asarray(perm), xp.asarray(lens)


def _input_part(xp, mode, x, w_ih, b_ih, b_hh, H):
    T, B, I = x.shape
    G = w_ih.shape[0]
    xa = xp.matmul(x.reshape(T * B, I), w_ih.T).reshape(T, B, G)
    if b_ih is not None:
        xa += b_ih
    if b_hh is not None:
        if mode == "GRU":
            xa[:, :, :2 * H] += b_hh[:2 * H]
        else:
            xa += b_hh
    return xa


def cuda_forward(mode, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None, lengths=None, reverse=False):
    """Same contract as ``reference_forward``, on CuPy arrays (NumPy under the simulator)."""
    K = _kernels()
    xp = array_module(x)
    T, B, _ = x.shape
    G, P = w_hh.shape
    H = G // GATES[mode]
    dtype = x.dtype
    _, perm, lens = _order(xp, lengths, T, B, reverse)
    xa = _input_part(xp, mode, x, w_ih, b_ih, b_hh, H)
    w_hh_t = w_hh.T
    hs = xp.empty((T + 1, B, P), dtype)
    hs[0] = h0
    y = xp.empty((T, B, P), dtype)
    hnew = xp.zeros((B, H), dtype)
    cs = gates = hn = None
    if mode == "LSTM":
        cs = xp.empty((T + 1, B, H), dtype)
        cs[0] = c0
    if mode in ("LSTM", "GRU"):
        gates = xp.empty((T, B, G), dtype)
    if mode == "GRU":
        hn = xp.empty((T, B, H), dtype)
        b_hn = xp.zeros(H, dtype) if b_hh is None else xp.ascontiguousarray(b_hh[2 * H:])
    for s in range(T):
        hp = xp.matmul(hs[s], w_hh_t)
        if mode in ("RNN_TANH", "RNN_RELU"):
            _launch(K.rnn_forward, B * H, xa, hp, perm, lens, s, mode == "RNN_RELU", hnew)
            h = hnew
        elif mode == "LSTM":
            _launch(K.lstm_forward, B * H, xa, hp, perm, lens, s, gates, cs, hnew)
            h = hnew if w_hr is None else xp.matmul(hnew, w_hr.T)
        else:
            _launch(K.gru_forward, B * H, xa, hp, b_hn, perm, lens, s, gates, hn, hs, hnew)
            h = hnew
        _launch(K.write_state, B * P, perm, lens, s, xp.ascontiguousarray(h), hs, y)
    c_n = None if cs is None else cs[T].copy()
    return y, hs[T].copy(), c_n, (hs, cs, gates, hn)


def cuda_backward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse, saved, dy, dh_n, dc_n):
    """Same contract as ``reference_backward``, on CuPy arrays (NumPy under the simulator)."""
    K = _kernels()
    xp = array_module(x)
    hs, cs, gates, hn = saved
    T, B, I = x.shape
    G, P = w_hh.shape
    H = G // GATES[mode]
    dtype = x.dtype
    perm_host, perm, lens = _order(xp, lengths, T, B, reverse)
    dh = xp.zeros((B, P), dtype) if dh_n is None else dh_n.astype(dtype, copy=True)
    dc = None
    if mode == "LSTM":
        dc = xp.zeros((B, H), dtype) if dc_n is None else dc_n.astype(dtype, copy=True)
    dA = xp.zeros((T, B, G), dtype)
    dHp = xp.zeros((T, B, G), dtype) if mode == "GRU" else dA
    dsteps = xp.zeros((T, B, P), dtype) if w_hr is not None else None
    d = xp.empty((B, P), dtype)
    no_gates = xp.zeros((1, 1, 1), dtype)
    for s in range(T - 1, -1, -1):
        _launch(K.upstream, B * P, perm, lens, s, dy, dh, d)
        if mode in ("RNN_TANH", "RNN_RELU"):
            _launch(K.rnn_backward, B * H, lens, s, mode == "RNN_RELU", d, hs, dA)
        elif mode == "LSTM":
            dr = d
            if w_hr is not None:
                dsteps[s] = d
                dr = xp.ascontiguousarray(xp.matmul(d, w_hr))
            _launch(K.lstm_backward, B * H, lens, s, dr, gates, cs, dc, dA)
        else:
            _launch(K.gru_backward, B * H, lens, s, d, gates, hs, hn, dA, dHp)
        carry = xp.ascontiguousarray(xp.matmul(dHp[s], w_hh))
        _launch(K.take_carry, B * P, lens, s, carry, d, gates if mode == "GRU" else no_gates,
                mode == "GRU", dh)
    if lengths is None and not reverse:
        dA_time = dA
    else:
        dA_time = xp.empty_like(dA)
        dA_time[xp.asarray(perm_host), xp.arange(B)[None, :]] = dA
    flat = dA_time.reshape(T * B, G)
    dx = xp.matmul(flat, w_ih).reshape(T, B, I)
    dw_ih = xp.matmul(flat.T, x.reshape(T * B, I))
    dw_hh = xp.matmul(dHp.reshape(T * B, G).T, hs[:-1].reshape(T * B, P))
    db_ih = None if b_ih is None else dA.sum(axis=(0, 1))
    db_hh = None if b_hh is None else dHp.sum(axis=(0, 1))
    dw_hr = None
    if w_hr is not None:
        r_steps = gates[:, :, 3 * H:] * xp.tanh(cs[1:])
        dw_hr = xp.matmul(dsteps.reshape(T * B, P).T, r_steps.reshape(T * B, H))
    return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_hr
