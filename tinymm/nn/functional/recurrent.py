"""Floor 4: one recurrent layer in one direction as a differentiable op.

``recurrent_layer(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse)`` runs the
kernel family ``tinymm.kernels.recurrent`` over a whole time-major sequence x (T, B, I) and
returns ``(y, h_n, c_n)`` (c_n None but for LSTM). It is one ``Function``: forward saves the
kernel's per-step states and gates, backward is one BPTT call. Stacking layers, the two
directions and dropout between layers are composed from it by ``tinymm.nn.rnn`` (floor 5),
which also checks every shape at the public boundary: nothing here re-checks.

``RecurrentShapeError`` is the error class of bad shapes in the recurrent layers: a
RuntimeError, as PyTorch raises, and a ValueError, as the rest of tinymm raises.
"""
from __future__ import annotations

from tinymm.autograd import Function
from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor


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
        y, h_n, c_n, saved = K.forward(mode, *arrays, lengths=lengths, reverse=reverse)
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


def recurrent_layer(mode, x: Tensor, h0: Tensor, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None,
                    lengths=None, reverse=False):
    """One layer, one direction (see the module docstring). Returns ``(y, h_n, c_n)``."""
    out = RecurrentFn.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mode, lengths, bool(reverse))
    if len(out) == 2:
        return out[0], out[1], None
    return out
