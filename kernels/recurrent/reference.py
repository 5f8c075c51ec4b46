r"""Recurrent cells and backpropagation through time in plain NumPy: the specification.

One call runs **one layer in one direction** over a whole sequence; stacking layers, the two
directions of a bidirectional layer and dropout between layers are the caller's business.

Cells (PyTorch's equations and gate order; ``x W^T`` rows, ``h`` of the previous step)::

    RNN   h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)                act = tanh or relu
    LSTM  [i f g o] = x W_ih^T + b_ih + h W_hh^T + b_hh              (B, 4H), in that order
          i, f, o = sigmoid(.),  g = tanh(.)
          c' = f * c + i * g,   r = o * tanh(c'),   h' = r W_hr^T  (h' = r without proj_size)
    GRU   [r z n] parts:  a = x W_ih^T + b_ih,  hn = h W_hh^T + b_hh     (B, 3H) each
          r = sigmoid(a_r + hn_r),  z = sigmoid(a_z + hn_z)
          n = tanh(a_n + r * hn_n)            (the reset gate multiplies the hidden projection)
          h' = (1 - z) * n + z * h

Shapes: x (T, B, I) time-major; h0 (B, P) with P = proj_size or H; c0 (B, H) (LSTM only);
W_ih (G, I), W_hh (G, P), b_ih, b_hh (G,) with G = H, 4H or 3H; W_hr (P, H) (LSTM with
proj_size only). Output y (T, B, P), final h_n (B, P) and c_n (B, H).

Variable lengths. ``lengths`` (B,) integers in [1, T] (None: all T). Row b takes steps
``s = 0 .. lengths[b]-1``; the time index of step s is ``s`` forward and ``lengths[b]-1-s``
in reverse, so the reverse direction starts at each sequence's own last element. Steps past a
row's length leave its state unchanged and write zeros to y, so h_n is the state after the
row's last real element and padded steps get no gradient. ``step_order`` gives the map
``perm[s, b]`` (a permutation of 0..T-1 per row: padded steps map to themselves) and the mask
``active[s, b] = s < lengths[b]``.

Saved for backward (the same tuple from every implementation)::

    hs     (T+1, B, P)  states by *step*: hs[0] = h0, hs[s+1] after step s (held when padded)
    cs     (T+1, B, H)  LSTM cell states by step, else None
    gates  (T, B, G)    LSTM [i f g o] and GRU [r z n] after their non-linearities, by step,
                        zero on padded steps; None for RNN (h' itself is hs[s+1])
    hn     (T, B, H)    GRU: the n-part of h W_hh^T + b_hh, needed for dr; LSTM: tanh(c')
                        by step from the CPU kernel (its backward recomputes it when None, as
                        the reference and CUDA kernels leave it); else None

Backward walks the steps in reverse carrying dh (and dc). Per step, the gradient of the gate
pre-activations splits into the part seen by the input projection (dA) and by the hidden one
(dHp); they are equal except for GRU's n gate, where dHp_n = dA_n * r. Then::

    dh_prev = dHp W_hh  (+ z * dh for GRU),   dc_prev = f * dc
    dW_hh = sum_s dHp_s^T hs[s],   db_hh = sum dHp,
    dx = dA W_ih,   dW_ih = sum_t dA_t^T x_t,   db_ih = sum dA       (dA moved to time order)
    dW_hr = sum_s dh_s^T r_s  (proj_size)
"""
import numpy as np

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def step_order(lengths, T, B, reverse):
    """(perm (T, B) int64, active (T, B) bool): the time index of each row's step s, and
    whether that step is a real element (see the module docstring)."""
    s = np.arange(T)[:, None]
    if lengths is None:
        lengths = np.full(B, T, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)[None, :]
    active = s < lengths
    perm = np.where(active & reverse, lengths - 1 - s, s)
    return np.array(np.broadcast_to(perm, (T, B))), np.array(active)  # writable copies


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _zeros_if_none(b, n, dtype):
    return np.zeros(n, dtype) if b is None else b


def reference_forward(mode, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None,
                      lengths=None, reverse=False):
    """One layer, one direction. Returns ``(y, h_n, c_n, saved)``; c_n is None but for LSTM."""
    T, B, _ = x.shape
    G, P = w_hh.shape
    H = G // GATES[mode]
    b_ih, b_hh = _zeros_if_none(b_ih, G, x.dtype), _zeros_if_none(b_hh, G, x.dtype)
    perm, active = step_order(lengths, T, B, reverse)
    rows = np.arange(B)

    xa = x @ w_ih.T + b_ih                           # (T, B, G) every step's input part at once
    hs = np.empty((T + 1, B, P), x.dtype)
    hs[0] = h0
    cs = gates = hn_all = None
    if mode == "LSTM":
        cs = np.empty((T + 1, B, H), x.dtype)
        cs[0] = c0
    if mode in ("LSTM", "GRU"):
        gates = np.zeros((T, B, G), x.dtype)
    if mode == "GRU":
        hn_all = np.zeros((T, B, H), x.dtype)
    y = np.zeros((T, B, P), x.dtype)

    for s in range(T):
        a = xa[perm[s], rows]                        # (B, G) input part of the rows' step s
        on = active[s][:, None]
        h = hs[s]
        hp = h @ w_hh.T + b_hh                       # (B, G)
        if mode == "RNN_TANH":
            h_new = np.tanh(a + hp)
        elif mode == "RNN_RELU":
            h_new = np.maximum(a + hp, 0)
        elif mode == "LSTM":
            pre = a + hp
            i, f = sigmoid(pre[:, :H]), sigmoid(pre[:, H:2 * H])
            g, o = np.tanh(pre[:, 2 * H:3 * H]), sigmoid(pre[:, 3 * H:])
            c_new = f * cs[s] + i * g
            h_new = o * np.tanh(c_new)
            if w_hr is not None:
                h_new = h_new @ w_hr.T
            cs[s + 1] = np.where(on, c_new, cs[s])
            gates[s] = np.where(on, np.concatenate([i, f, g, o], axis=1), 0)
        else:  # GRU
            r = sigmoid(a[:, :H] + hp[:, :H])
            z = sigmoid(a[:, H:2 * H] + hp[:, H:2 * H])
            n = np.tanh(a[:, 2 * H:] + r * hp[:, 2 * H:])
            h_new = (1 - z) * n + z * h
            gates[s] = np.where(on, np.concatenate([r, z, n], axis=1), 0)
            hn_all[s] = np.where(on, hp[:, 2 * H:], 0)
        hs[s + 1] = np.where(on, h_new, h)
        y[perm[s], rows] = np.where(on, h_new, 0)
    c_n = None if cs is None else cs[T].copy()
    return y, hs[T].copy(), c_n, (hs, cs, gates, hn_all)


def reference_backward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse,
                       saved, dy, dh_n, dc_n):
    """Backpropagation through time. ``dh_n``/``dc_n`` may be None (no gradient).

    Returns ``(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr)``: dc0 None but for LSTM,
    db_* None when the bias is None, dw_hr None without projection."""
    hs, cs, gates, hn_all = saved
    T, B, _ = x.shape
    G, P = w_hh.shape
    H = G // GATES[mode]
    perm, active = step_order(lengths, T, B, reverse)
    rows = np.arange(B)

    dh = np.zeros((B, P), x.dtype) if dh_n is None else dh_n.copy()
    dc = None
    if mode == "LSTM":
        dc = np.zeros((B, H), x.dtype) if dc_n is None else dc_n.copy()
    dA = np.zeros((T, B, G), x.dtype)               # by step; zero on padded steps
    dHp = np.zeros((T, B, G), x.dtype) if mode == "GRU" else dA
    dh_steps = np.zeros((T, B, P), x.dtype) if w_hr is not None else None

    for s in reversed(range(T)):
        on = active[s][:, None]
        d = dh + np.where(on, dy[perm[s], rows], 0)  # dL/dh' of step s
        if mode in ("RNN_TANH", "RNN_RELU"):
            h_new = hs[s + 1]
            da = d * (1 - h_new * h_new) if mode == "RNN_TANH" else d * (h_new > 0)
            carry = da @ w_hh
        elif mode == "LSTM":
            gi, gf, gg, go = (gates[s][:, k * H:(k + 1) * H] for k in range(4))
            tc = np.tanh(cs[s + 1])
            if w_hr is not None:
                dh_steps[s] = np.where(on, d, 0)
                d = d @ w_hr                          # through the projection: dL/dr
            dcs = dc + d * go * (1 - tc * tc)
            da = np.concatenate([dcs * gg * gi * (1 - gi), dcs * cs[s] * gf * (1 - gf),
                                 dcs * gi * (1 - gg * gg), d * tc * go * (1 - go)], axis=1)
            carry = da @ w_hh
            dc = np.where(on, dcs * gf, dc)
        else:  # GRU
            r, z, n = (gates[s][:, k * H:(k + 1) * H] for k in range(3))
            dn = d * (1 - z) * (1 - n * n)
            dz = d * (hs[s] - n) * z * (1 - z)
            dr = dn * hn_all[s] * r * (1 - r)
            da = np.concatenate([dr, dz, dn], axis=1)
            dhp = np.concatenate([dr, dz, dn * r], axis=1)
            dHp[s] = np.where(on, dhp, 0)
            carry = d * z + dhp @ w_hh
        dA[s] = np.where(on, da, 0)
        dh = np.where(on, carry, dh)

    dA_time = np.zeros_like(dA)
    dA_time[perm, rows[None, :]] = dA                 # back to time order (perm is a permutation)
    dx = dA_time @ w_ih
    dw_ih = dA_time.reshape(-1, G).T @ x.reshape(T * B, -1)
    dw_hh = dHp.reshape(-1, G).T @ hs[:-1].reshape(T * B, P)
    db_ih = None if b_ih is None else dA.sum(axis=(0, 1))
    db_hh = None if b_hh is None else dHp.sum(axis=(0, 1))
    dw_hr = None
    if w_hr is not None:
        r_steps = gates[:, :, 3 * H:] * np.tanh(cs[1:])  # r = o * tanh(c') per step (0 if padded)
        dw_hr = dh_steps.reshape(-1, P).T @ r_steps.reshape(-1, H)
    return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_hr
