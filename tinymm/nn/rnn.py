"""Recurrent layers with PyTorch's signatures, parameter names and initialisation:
``RNN``, ``LSTM``, ``GRU`` and the one-step ``RNNCell``, ``LSTMCell``, ``GRUCell``.

Each layer of a stack is one call of ``F.recurrent.recurrent_layer`` (the fused kernels of
``tinymm.kernels.recurrent``, whole sequence at once), or of ``bidirectional_layer`` for both
directions of a bidirectional layer (run at once, outputs concatenated); and ``dropout`` is applied to every layer's output
but the last, in training only. Parameters per layer k and direction (suffix ``_reverse`` for
the backward one), registered in PyTorch's order so state dicts move between the two::

    weight_ih_l{k}  (G, I_k)   G = H (RNN), 4H (LSTM: i f g o), 3H (GRU: r z n)
    weight_hh_l{k}  (G, P)     P = proj_size or H
    bias_ih_l{k}, bias_hh_l{k}  (G,)      (bias=True)
    weight_hr_l{k}  (P, H)     (LSTM with proj_size > 0)

all drawn from U(-1/sqrt(H), 1/sqrt(H)). Inputs: (T, B, I), (B, T, I) with ``batch_first``,
unbatched (T, I), or a ``PackedSequence`` (variable lengths: padded steps neither change the
final state nor receive gradient; the reverse direction starts at each sequence's last step).
Returns ``output, h_n`` (LSTM: ``output, (h_n, c_n)``) exactly as PyTorch does.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm import backend
from tinymm.nn import functional as F
from tinymm.nn import init
from tinymm.nn.functional.recurrent import RecurrentShapeError, bidirectional_layer, recurrent_layer
from tinymm.nn.module import Module
from tinymm.nn.parameter import Parameter
from tinymm.nn.utils.rnn import PackedSequence, pack_sorted_time_major, unpack_sorted_time_major
from tinymm import ops as O
from tinymm.tensor import Tensor

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_NAMES = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "LSTM": "LSTM", "GRU": "GRU"}


class RecurrentDTypeError(TypeError, RuntimeError, ValueError):
    """Input and parameters of different dtypes: PyTorch raises ValueError from the layers and
    RuntimeError from the cells; this is catchable as either (and as the TypeError it is)."""


def _empty(shape, dtype, device):
    xp = backend.array_module(device)
    return xp.empty(shape, dtype=np.dtype(dtype) if dtype is not None else backend.get_default_dtype())


def _uniform_init(module):
    """PyTorch's init of every recurrent weight and bias: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0.0
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


def _graph_anchor(module) -> Tensor:
    """A scalar 0 that depends on every parameter: added to the empty outputs of an empty batch
    so that backward gives each parameter (and state) a zero gradient, as PyTorch does."""
    return sum(O.sum(p) for p in module.parameters()) * 0.0


def _zeros_state(shape, like: Tensor) -> Tensor:
    xp = backend.array_module(like.device)
    return Tensor._wrap(xp.zeros(shape, like.dtype))


class RecurrentSizeTypeError(TypeError, ValueError):
    """A size or layer count that is not an int (PyTorch: TypeError; ValueError as before)."""


class RNNBase(Module):
    """The stack shared by RNN, LSTM and GRU (see the module docstring)."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, dtype=None, device=None):
        super().__init__()
        name = _NAMES[mode]
        for arg, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):  # PyTorch: TypeError
                raise RecurrentSizeTypeError(f"{name}: {arg} should be of type int, got {type(v).__name__} {v!r}")
            if v <= 0:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {v!r}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        if proj_size < 0:
            raise ValueError(f"{name}: proj_size must be >= 0, got {proj_size}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size is only supported by LSTM")
        if proj_size >= hidden_size:
            raise ValueError(f"{name}: proj_size {proj_size} must be smaller than hidden_size {hidden_size}")
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional, self.proj_size = bool(bidirectional), int(proj_size)
        directions = 2 if bidirectional else 1
        gates = _GATES[mode] * hidden_size
        real_hidden = proj_size or hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else real_hidden * directions
            for d in range(directions):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                setattr(self, "weight_ih" + sfx, Parameter(_empty((gates, layer_input), dtype, device)))
                setattr(self, "weight_hh" + sfx, Parameter(_empty((gates, real_hidden), dtype, device)))
                if bias:
                    setattr(self, "bias_ih" + sfx, Parameter(_empty((gates,), dtype, device)))
                    setattr(self, "bias_hh" + sfx, Parameter(_empty((gates,), dtype, device)))
                if proj_size:
                    setattr(self, "weight_hr" + sfx, Parameter(_empty((proj_size, hidden_size), dtype, device)))
        self.reset_parameters()

    def reset_parameters(self):
        _uniform_init(self)

    # opse: PyTorch's RNNBase surface
    def flatten_parameters(self) -> None:
        """A no-op: PyTorch packs the weights into one cuDNN buffer; tinymm's kernels read them as they are."""
        return None

    @property
    def all_weights(self):
        """Per layer and direction: [weight_ih, weight_hh, bias_ih, bias_hh(, weight_hr)], as PyTorch."""
        out = []
        for layer in range(self.num_layers):
            for d in range(2 if self.bidirectional else 1):
                out.append([w for w in self._weights(layer, d) if w is not None])
        return out

    def _weights(self, layer, d):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        get = lambda n: getattr(self, n + sfx, None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr")

    # ------------------------------------------------------------------ checks

    def _check_state(self, name, h, expected, batched):
        """``h`` of shape ``expected`` (num_layers * num_directions, batch, size), or of that
        shape without the batch dim for unbatched input; returned with the batch dim."""
        fn = _NAMES[self.mode]
        h = O.as_tensor(h, fn)
        want = tuple(expected) if batched else (expected[0], expected[2])
        if tuple(h.shape) != want:
            dims = "(num_layers * num_directions, batch, size)" if batched else "(num_layers * num_directions, size)"
            raise RecurrentShapeError(f"{fn}: {name} has shape {tuple(h.shape)}, expected {want} {dims}")
        if h.dtype != self.weight_ih_l0.dtype:  # (PyTorch refuses; a silent cast would hide a float64 state)
            raise RecurrentDTypeError(f"{fn}: {name} has dtype {h.dtype}, the parameters {self.weight_ih_l0.dtype}")
        return h if batched else O.unsqueeze(h, 1)

    def forward(self, input, hx=None):
        fn = _NAMES[self.mode]
        packed = isinstance(input, PackedSequence)
        lengths = None
        if packed:
            batch_sizes = input.batch_sizes.numpy()
            x, lengths = unpack_sorted_time_major(input.data, batch_sizes)
            batched = True
        else:
            x = O.as_tensor(input, fn)
            if x.ndim not in (2, 3):
                raise RecurrentShapeError(f"{fn}: input has shape {tuple(x.shape)}, expected 3 dims "
                                          f"({'batch, seq, feature' if self.batch_first else 'seq, batch, feature'}) or 2 (seq, feature)")
            batched = x.ndim == 3
            if not batched:
                x = O.unsqueeze(x, 1)
            elif self.batch_first:
                x = O.transpose(x, 0, 1)
        if x.shape[-1] != self.input_size:
            raise RecurrentShapeError(f"{fn}: input has {x.shape[-1]} features (shape {tuple(input.data.shape if packed else input.shape)}), "
                                      f"expected input_size={self.input_size}")
        if x.shape[0] == 0:
            raise RecurrentShapeError(f"{fn}: input has shape {tuple(x.shape if packed else input.shape)}: "
                                      "no time steps (the sequence length must be larger than 0)")
        w0 = self.weight_ih_l0
        if x.dtype != w0.dtype:
            raise RecurrentDTypeError(f"{fn}: input has dtype {x.dtype}, the parameters {w0.dtype}")
        if x.device != w0.device:
            raise ValueError(f"{fn}: input is on {x.device}, the parameters on {w0.device}")
        directions = 2 if self.bidirectional else 1
        B = x.shape[1]
        P = self.proj_size or self.hidden_size
        h_shape = (self.num_layers * directions, B, P)
        c_shape = (self.num_layers * directions, B, self.hidden_size)
        h0 = c0 = None
        if hx is not None:
            if self.mode == "LSTM":
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise RecurrentShapeError(f"{fn}: hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
                h0 = self._check_state("h_0", hx[0], h_shape, batched)
                c0 = self._check_state("c_0", hx[1], c_shape, batched)
            else:
                h0 = self._check_state("hx", hx, h_shape, batched)
            if packed and input.sorted_indices is not None:
                order = input.sorted_indices.numpy()
                h0 = O.getitem(h0, (slice(None), order))
                c0 = None if c0 is None else O.getitem(c0, (slice(None), order))
        if h0 is None:
            h0 = _zeros_state(h_shape, x)
        if self.mode == "LSTM" and c0 is None:
            c0 = _zeros_state(c_shape, x)

        h_out, c_out = [], []
        layer_input = x
        if B == 0:  # an empty batch, as PyTorch allows: empty outputs, no layer to run
            anchor = _graph_anchor(self)
            layer_input = O.getitem(x, (Ellipsis, np.zeros(directions * P, np.int64))) + anchor
            h_out = [O.getitem(h0, k) + anchor for k in range(self.num_layers * directions)]
            c_out = [O.getitem(c0, k) + anchor for k in range(self.num_layers * directions)] if c0 is not None else []
        for layer in range(self.num_layers if B else 0):
            states = [(O.getitem(h0, k), None if c0 is None else O.getitem(c0, k))
                      for k in range(layer * directions, (layer + 1) * directions)]
            if directions == 1:
                layer_input, h_n, c_n = recurrent_layer(self.mode, layer_input, *states[0],
                                                        *self._weights(layer, 0), lengths)
                h_out.append(h_n)
                c_out.append(c_n)
            else:
                weights = [self._weights(layer, d) for d in range(2)]
                layer_input, h_n, c_n = bidirectional_layer(self.mode, layer_input, states, weights, lengths)
                h_out.extend(h_n)
                c_out.extend(c_n)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        output = layer_input
        h_n = O.stack(h_out, dim=0)
        c_n = O.stack(c_out, dim=0) if self.mode == "LSTM" else None

        if packed:
            output = PackedSequence(pack_sorted_time_major(output, batch_sizes), input.batch_sizes,
                                    input.sorted_indices, input.unsorted_indices)
            if input.unsorted_indices is not None:
                order = input.unsorted_indices.numpy()
                h_n = O.getitem(h_n, (slice(None), order))
                c_n = None if c_n is None else O.getitem(c_n, (slice(None), order))
        elif not batched:
            output, h_n = O.squeeze(output, 1), O.squeeze(h_n, 1)
            c_n = None if c_n is None else O.squeeze(c_n, 1)
        elif self.batch_first:
            output = O.transpose(output, 0, 1)
        return (output, (h_n, c_n)) if self.mode == "LSTM" else (output, h_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


def _no_proj_size(name, kwargs):
    """RNN and GRU take no other keywords; naming proj_size at all is PyTorch's ValueError."""
    if "proj_size" in kwargs:
        raise ValueError(f"{name}: proj_size argument is only supported for LSTM, not RNN or GRU")
    if kwargs:
        raise TypeError(f"{name}.__init__() got an unexpected keyword argument {next(iter(kwargs))!r}")


class RNN(RNNBase):
    """Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu, ``nonlinearity='relu'``)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=None, device=None, **kwargs):
        _no_proj_size("RNN", kwargs)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, 0, dtype, device)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """LSTM, gates i, f, g, o; ``proj_size`` > 0 projects h through ``weight_hr`` (P, H)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, dtype=None, device=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, dtype, device)


class GRU(RNNBase):
    """GRU, gates r, z, n, with the reset gate applied to the hidden projection (PyTorch's)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None, device=None, **kwargs):
        _no_proj_size("GRU", kwargs)
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, dtype, device)


# ---------------------------------------------------------------------------------- cells


class RNNCellBase(Module):
    """One step: ``weight_ih`` (G, I), ``weight_hh`` (G, H), ``bias_ih``, ``bias_hh`` (G,),
    init U(-1/sqrt(H), 1/sqrt(H)); input (B, I) or unbatched (I,)."""

    def __init__(self, mode, input_size, hidden_size, bias=True, dtype=None, device=None):
        super().__init__()
        self.mode = mode
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bool(bias)
        gates = _GATES[mode] * hidden_size
        self.weight_ih = Parameter(_empty((gates, input_size), dtype, device))
        self.weight_hh = Parameter(_empty((gates, hidden_size), dtype, device))
        if bias:
            self.bias_ih = Parameter(_empty((gates,), dtype, device))
            self.bias_hh = Parameter(_empty((gates,), dtype, device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        _uniform_init(self)

    def _step(self, input, hx):
        fn = type(self).__name__
        x = O.as_tensor(input, fn)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise RecurrentShapeError(f"{fn}: input has shape {tuple(x.shape)}, expected (batch, {self.input_size}) or ({self.input_size},)")
        batched = x.ndim == 2
        if not batched:
            x = O.unsqueeze(x, 0)
        if x.dtype != self.weight_ih.dtype:
            raise RecurrentDTypeError(f"{fn}: input has dtype {x.dtype}, the parameters {self.weight_ih.dtype}")
        B, H = x.shape[0], self.hidden_size
        states = []
        n_states = 2 if self.mode == "LSTM" else 1
        if hx is not None and self.mode == "LSTM" and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            got = f"a {type(hx).__name__} of {len(hx)}" if isinstance(hx, (tuple, list)) else type(hx).__name__
            raise RecurrentShapeError(f"{fn}: expects two hidden states, hx = (h, c); got {got}")
        given = (hx if self.mode == "LSTM" else (hx,)) if hx is not None else (None,) * n_states
        for name, h in zip(("h", "c"), given):
            if h is None:
                states.append(_zeros_state((B, H), x))
                continue
            h = O.as_tensor(h, fn)
            want = (B, H) if batched else (H,)
            if tuple(h.shape) != want:
                raise RecurrentShapeError(f"{fn}: {name} has shape {tuple(h.shape)}, expected {want} to match input {tuple(input.shape)}")
            states.append(h if batched else O.unsqueeze(h, 0))
        if B == 0:  # an empty batch, as PyTorch allows: the empty states, still on the graph
            anchor = _graph_anchor(self) + O.getitem(x, (slice(None), np.zeros(H, np.int64)))
            h_n = states[0] + anchor
            c_n = states[1] + anchor if self.mode == "LSTM" else None
        else:
            _, h_n, c_n = recurrent_layer(self.mode, O.unsqueeze(x, 0), states[0],
                                          states[1] if n_states == 2 else None,
                                          self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if not batched:
            h_n = O.squeeze(h_n, 0)
            c_n = None if c_n is None else O.squeeze(c_n, 0)
        return (h_n, c_n) if self.mode == "LSTM" else h_n

    def forward(self, input, hx=None):
        return self._step(input, hx)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
        return s + (", nonlinearity=relu" if self.mode == "RNN_RELU" else "")


class RNNCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=None, device=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         bias, dtype, device)
        self.nonlinearity = nonlinearity


class LSTMCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, dtype=None, device=None):
        super().__init__("LSTM", input_size, hidden_size, bias, dtype, device)


class GRUCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, dtype=None, device=None):
        super().__init__("GRU", input_size, hidden_size, bias, dtype, device)
