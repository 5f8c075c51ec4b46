"""Floor 4: one recurrent layer in one direction as a differentiable op.

``recurrent_layer(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse)`` runs the
kernel family ``tinymm.kernels.recurrent`` over a whole time-major sequence x (T, B, I) and
returns ``(y, h_n, c_n)`` (c_n None but for LSTM). ``bidirectional_layer`` runs both
directions of one layer as one op (the kernels run them at once on two CPU threads) and
returns their outputs concatenated, as a bidirectional layer does. Each is one ``Function``: forward saves the
kernel's per-step states and gates, backward is one BPTT call. Stacking layers, the two
directions and dropout between layers are composed from it by ``tinymm.nn.rnn`` (floor 5),
which also checks every shape at the public boundary: nothing here re-checks.

``RecurrentShapeError`` is the error class of bad shapes in the recurrent layers: a
RuntimeError, as PyTorch raises, and a ValueError, as the rest of tinymm raises.
"""
from __future__ import annotations

from tinymm.autograd import Function, is_grad_enabled
from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor
from tinymm.nn.functional.half import computes_in_float32
from tinymm.nn.functional.recurrent_graph import bidirectional_backward_graph, recurrent_backward_graph


class RecurrentShapeError(RuntimeError, ValueError):
    """A recurrent layer got an input, a state or lengths of the wrong shape."""


class RecurrentFn(Function):
    """forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mode, lengths, reverse) -> (y, h_n[, c_n]).

    Gradients for the eight array inputs (None for those that are None); ``lengths`` is a host
    int64 array or None."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mode, lengths, reverse):
        from tinymm.kernels import recurrent as K

        xp = xp_of(x)
        arrays = [None if a is None else xp.ascontiguousarray(a) for a in (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)]
        keep = is_grad_enabled() and any(ctx.needs_input_grad)   # will backward run?
        y, h_n, c_n, saved = K.forward(mode, *arrays, lengths=lengths, reverse=reverse, keep=keep)
        if keep:
            ctx.save_for_backward(*arrays, saved)
        ctx.meta = (mode, lengths, reverse)
        return (y, h_n) if c_n is None else (y, h_n, c_n)

    @staticmethod
    def backward(ctx, dy, dh_n, dc_n=None):
        from tinymm.kernels import recurrent as K

        *arrays, saved = ctx.saved_arrays
        mode, lengths, reverse = ctx.meta
        xp = xp_of(dy)
        dy, dh_n = xp.ascontiguousarray(dy), xp.ascontiguousarray(dh_n)
        if dc_n is not None:
            dc_n = xp.ascontiguousarray(dc_n)
        grads = K.backward(mode, *arrays, lengths, reverse, saved, dy, dh_n, dc_n)
        return tuple(grads) + (None, None, None)

    # create_graph: the layer recomputed on Tensors and differentiated (recurrent_graph.py)
    backward_graph = staticmethod(recurrent_backward_graph)


@computes_in_float32  # revd: float16 layers
def recurrent_layer(mode, x: Tensor, h0: Tensor, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None,
                    lengths=None, reverse=False):
    """One layer, one direction (see the module docstring). Returns ``(y, h_n, c_n)``."""
    out = RecurrentFn.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mode, lengths, bool(reverse))
    if len(out) == 2:
        return out[0], out[1], None
    return out


class BidirectionalFn(Function):
    """forward(x, h0_f, c0_f, h0_r, c0_r, *weights_f(5), *weights_r(5), mode, lengths)
    -> (y (T, B, 2P), h_f, h_r[, c_f, c_r]); y is [forward | reverse] along the last axis."""

    @staticmethod
    def forward(ctx, x, h0_f, c0_f, h0_r, c0_r, *rest):
        from tinymm.kernels import recurrent as K

        *ws, mode, lengths = rest
        xp = xp_of(x)
        c = lambda a: None if a is None else xp.ascontiguousarray(a)  # noqa: E731
        x = c(x)
        states = [(c(h0_f), c(c0_f)), (c(h0_r), c(c0_r))]
        weights = [tuple(c(w) for w in ws[:5]), tuple(c(w) for w in ws[5:])]
        keep = is_grad_enabled() and any(ctx.needs_input_grad)
        results = K.forward_bidirectional(mode, x, states, weights, lengths, keep=keep)
        if keep:
            ctx.save_for_backward(x, states, weights, [r[3] for r in results])
        ctx.meta = (mode, lengths)
        y = xp.concatenate([results[0][0], results[1][0]], axis=2)
        if mode == "LSTM":
            return y, results[0][1], results[1][1], results[0][2], results[1][2]
        return y, results[0][1], results[1][1]

    @staticmethod
    def backward(ctx, dy, dh_f, dh_r, dc_f=None, dc_r=None):
        from tinymm.kernels import recurrent as K

        x, states, weights, saved = ctx.saved_arrays
        mode, lengths = ctx.meta
        xp = xp_of(dy)
        P = dy.shape[2] // 2
        c = lambda a: None if a is None else xp.ascontiguousarray(a)  # noqa: E731
        grads = K.backward_bidirectional(mode, x, states, weights, lengths, saved,
                                         [c(dy[:, :, :P]), c(dy[:, :, P:])], [c(dh_f), c(dh_r)],
                                         [c(dc_f), c(dc_r)])
        (dx_f, dh0_f, dc0_f, *dw_f), (dx_r, dh0_r, dc0_r, *dw_r) = grads
        return (dx_f + dx_r, dh0_f, dc0_f, dh0_r, dc0_r, *dw_f, *dw_r, None, None)

    backward_graph = staticmethod(bidirectional_backward_graph)


@computes_in_float32  # revd: float16 layers
def bidirectional_layer(mode, x: Tensor, states, weights, lengths=None):
    """Both directions of one layer (see the module docstring): ``states`` [(h0, c0)] * 2,
    ``weights`` [(w_ih, w_hh, b_ih, b_hh, w_hr)] * 2. Returns ``(y, [h_f, h_r], [c_f, c_r])``
    with y (T, B, 2P); the c list holds Nones but for LSTM."""
    out = BidirectionalFn.apply(x, *states[0], *states[1], *weights[0], *weights[1], mode, lengths)
    if len(out) == 3:
        return out[0], [out[1], out[2]], [None, None]
    return out[0], [out[1], out[2]], [out[3], out[4]]
