"""Floor 4: the recurrent layers' differentiable backward, for ``create_graph=True``.

``RecurrentFn`` and ``BidirectionalFn`` run a whole sequence in one fused kernel and backward is
one BPTT call on arrays. Their gradient is differentiated again only under ``create_graph``
(WGAN-GP with a recurrent critic, MAML over an LSTM, Hessian-vector products), so there the
layer is recomputed step by step from Tensor ops, the cells exactly as
``tinymm.kernels.recurrent.reference`` writes them (gate order, variable lengths, reverse,
LSTM projections), and differentiated with ``autograd.grad(..., create_graph=True)``: the
gradients come out recorded, differentiable to any order. The first-order path never comes
here.

The recomputation reads each input through a ``clone`` of it (a proxy): the nested ``grad``
then stops at the proxies, so it neither walks the graph before the layer nor counts a path
twice when one input also feeds another (the outer walk carries the gradient on from them).
"""
from __future__ import annotations

import numpy as np

from tinymm import autograd
from tinymm import ops as O
from tinymm.autograd_graph import operand
from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor


def _cell_step(mode, a, h, c, w_hh, b_hh, w_hr, H):
    """One step of every row: (h', c') from a = the input part x·W_ihᵀ + b_ih (B, G)."""
    hp = O.matmul(h, O.transpose(w_hh, 0, 1))
    if b_hh is not None:
        hp = hp + b_hh
    if mode == "RNN_TANH":
        return (a + hp).tanh(), None
    if mode == "RNN_RELU":
        return (a + hp).relu(), None
    if mode == "LSTM":
        pre = a + hp
        i, f = pre[:, :H].sigmoid(), pre[:, H:2 * H].sigmoid()
        g, o = pre[:, 2 * H:3 * H].tanh(), pre[:, 3 * H:].sigmoid()
        c_new = f * c + i * g
        h_new = o * c_new.tanh()
        if w_hr is not None:
            h_new = O.matmul(h_new, O.transpose(w_hr, 0, 1))
        return h_new, c_new
    r = (a[:, :H] + hp[:, :H]).sigmoid()
    z = (a[:, H:2 * H] + hp[:, H:2 * H]).sigmoid()
    n = (a[:, 2 * H:] + r * hp[:, 2 * H:]).tanh()
    return (1 - z) * n + z * h, None


def recurrent_on_tensors(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse):
    """One layer, one direction on Tensors: ``(y, h_n, c_n)`` as the kernels compute them."""
    from tinymm.kernels.recurrent import GATES, step_order

    T, B = x.shape[:2]
    H = w_hh.shape[0] // GATES[mode]
    perm, active = step_order(lengths, T, B, reverse)
    xp = xp_of(x._data)
    rows = xp.arange(B)
    xa = O.matmul(x, O.transpose(w_ih, 0, 1))
    if b_ih is not None:
        xa = xa + b_ih
    h, c, outs = h0, c0, []
    for s in range(T):
        on = Tensor._wrap(xp.asarray(active[s]).reshape(B, 1))
        h_new, c_new = _cell_step(mode, xa[xp.asarray(perm[s]), rows], h, c, w_hh, b_hh, w_hr, H)
        outs.append(O.where(on, h_new, 0.0))
        h = O.where(on, h_new, h)
        if c_new is not None:
            c = O.where(on, c_new, c)
    # outs are by step; the row's step s wrote time perm[s, b]: put each back at its time
    by_time = np.empty_like(perm)
    by_time[perm, np.arange(B)[None, :]] = np.arange(T)[:, None]
    y = O.stack(outs, 0)[xp.asarray(by_time), rows]
    return y, h, c


def differentiate_recomputed(ctx, arrays, recompute, grads):
    """The gradients of ``recompute(*inputs)`` (a tuple of outputs) weighted by ``grads``,
    with respect to each of ``ctx``'s inputs that needs one, recorded (``create_graph``).
    ``arrays`` are the op's inputs as forward saved them, in argument order."""
    ins, wanted = [], []
    for i, a in enumerate(arrays):
        t = operand(ctx, i, a)
        if ctx.needs_input_grad[i]:
            t = O.clone(t)  # the proxy (module docstring)
            wanted.append(i)
        ins.append(t)
    outs = recompute(*ins)
    total = None
    for o, g in zip(outs, grads):
        if o is not None and g is not None:
            term = (o * g).sum()
            total = term if total is None else total + term
    got = autograd.grad(total, [ins[i] for i in wanted], create_graph=True, materialize_grads=True)
    result = [None] * len(ctx.needs_input_grad)
    for i, g in zip(wanted, got):
        result[i] = g
    return tuple(result)


def recurrent_backward_graph(ctx, dy, dh_n, dc_n=None):
    """``RecurrentFn``'s gradients, differentiable (see the module docstring)."""
    *arrays, _ = ctx.saved_arrays
    mode, lengths, reverse = ctx.meta
    return differentiate_recomputed(
        ctx, arrays, lambda *ins: recurrent_on_tensors(mode, *ins, lengths, reverse), (dy, dh_n, dc_n))


def bidirectional_backward_graph(ctx, dy, dh_f, dh_r, dc_f=None, dc_r=None):
    """``BidirectionalFn``'s gradients, differentiable: both directions recomputed."""
    x, states, weights, _ = ctx.saved_arrays
    mode, lengths = ctx.meta
    arrays = [x, *states[0], *states[1], *weights[0], *weights[1]]

    def recompute(x, h0_f, c0_f, h0_r, c0_r, *ws):
        y_f, h_f, c_f = recurrent_on_tensors(mode, x, h0_f, c0_f, *ws[:5], lengths, False)
        y_r, h_r, c_r = recurrent_on_tensors(mode, x, h0_r, c0_r, *ws[5:], lengths, True)
        return O.cat([y_f, y_r], 2), h_f, h_r, c_f, c_r

    return differentiate_recomputed(ctx, arrays, recompute, (dy, dh_f, dh_r, dc_f, dc_r))
