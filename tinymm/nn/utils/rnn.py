"""Variable-length batches for the recurrent layers, as ``torch.nn.utils.rnn``.

A ``PackedSequence`` holds a batch of sequences sorted by decreasing length, time step by time
step: ``data`` (sum of lengths, *) is step 0 of every sequence, then step 1 of every sequence
that is still running, and so on; ``batch_sizes[t]`` (int64, on the CPU) says how many
sequences have a step t. ``sorted_indices`` maps the sorted order back to the caller's batch
(None when the batch came sorted); ``unsorted_indices`` is its inverse.

Packing and unpacking are gathers (``Tensor.__getitem__`` with index arrays), so gradients
flow through them, and padded positions get none. The recurrent layers unpack to a padded
time-major batch plus lengths, run the kernels with those lengths, and pack their output again.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tinymm.nn.functional.recurrent import RecurrentShapeError
from tinymm import ops as O
from tinymm.ops._util import IndexRangeError, xp_of
from tinymm.tensor import Tensor


class PackedSequence(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    # probe3: PyTorch's conversions: the data moves/casts, the index tensors follow its device,
    # batch_sizes stays on the host
    def to(self, *args, **kwargs) -> "PackedSequence":
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self

        def follow(t):
            return None if t is None else t.to(data.device)
        return type(self)(data, self.batch_sizes, follow(self.sorted_indices), follow(self.unsorted_indices))

    def cuda(self, *args, **kwargs) -> "PackedSequence":
        return self.to(*args, **{**kwargs, "device": "cuda"}) if not args else self.to(*args, **kwargs)

    def cpu(self, *args, **kwargs) -> "PackedSequence":
        return self.to(*args, **{**kwargs, "device": "cpu"}) if not args else self.to(*args, **kwargs)

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    def half(self):
        return self.to(dtype=np.float16)

    def long(self):
        return self.to(dtype=np.int64)

    def int(self):
        return self.to(dtype=np.int32)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return False


def _host_ints(v, name, fn):
    """Lengths given as a list, NumPy array or Tensor, as a host int64 array. Like PyTorch's
    int64 conversion, float (and bool) lengths are accepted and truncated toward zero."""
    a = v.numpy(force=True) if isinstance(v, Tensor) else np.asarray(v)
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iubf"):
        raise RecurrentShapeError(f"{fn}: {name} must be a 1-D sequence of integers, got shape {tuple(a.shape)} dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise RecurrentShapeError(f"{fn}: {name} {a.tolist()} cannot be converted to int64")
    return a.astype(np.int64)


def _batch_sizes(lengths_sorted: np.ndarray) -> np.ndarray:
    """batch_sizes[t] = number of sequences longer than t (lengths sorted, decreasing)."""
    steps = np.arange(int(lengths_sorted[0]))
    return (lengths_sorted[None, :] > steps[:, None]).sum(axis=1).astype(np.int64)


def _lengths_from_batch_sizes(batch_sizes: np.ndarray) -> np.ndarray:
    """lengths (sorted order) from batch_sizes: row b runs while batch_sizes[t] > b."""
    rows = np.arange(int(batch_sizes[0]))
    return (batch_sizes[:, None] > rows[None, :]).sum(axis=0).astype(np.int64)


def _packed_rows(batch_sizes: np.ndarray):
    """(t, b) of every row of packed data, in packing order."""
    t = np.repeat(np.arange(len(batch_sizes)), batch_sizes)
    starts = np.concatenate([[0], np.cumsum(batch_sizes)[:-1]])
    b = np.arange(int(batch_sizes.sum())) - np.repeat(starts, batch_sizes)
    return t, b


def _pad_row(like: Tensor, tail, value) -> Tensor:
    """One row (1, *tail) of ``value``, on ``like``'s device and of its dtype: the row that
    padded positions gather."""
    return Tensor._wrap(xp_of(like._data).full((1,) + tuple(tail), value, dtype=like.dtype))


def pack_sorted_time_major(padded: Tensor, batch_sizes: np.ndarray) -> Tensor:
    """``data`` of a PackedSequence from a time-major (T, B, *) batch already in sorted order."""
    t, b = _packed_rows(batch_sizes)
    return O.getitem(padded, (t, b))


def unpack_sorted_time_major(data: Tensor, batch_sizes: np.ndarray, total_length=None,
                             padding_value=0.0):
    """(padded (T, B, *) in sorted order, lengths (B,) host int64) from packed ``data``."""
    lengths = _lengths_from_batch_sizes(batch_sizes)
    T = len(batch_sizes) if total_length is None else int(total_length)
    B = int(batch_sizes[0])
    starts = np.concatenate([[0], np.cumsum(batch_sizes)[:-1]])
    steps = np.arange(T)[:, None]
    rows = np.arange(B)[None, :]
    real = steps < lengths[None, :]
    n = int(batch_sizes.sum())
    # Padded positions read one extra row of padding_value appended to data.
    index = np.where(real, starts[np.minimum(steps, len(batch_sizes) - 1)] + rows, n)
    pad_row = _pad_row(data, data.shape[1:], padding_value)
    source = O.cat([data, pad_row], dim=0)
    return O.getitem(source, index), lengths


def _as_tensor_lengths(a: np.ndarray) -> Tensor:
    return Tensor._wrap(np.ascontiguousarray(a, dtype=np.int64))


def pack_padded_sequence(input, lengths, batch_first: bool = False, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) ((B, T, *) with ``batch_first``) of sequences of
    ``lengths`` (B,). With ``enforce_sorted`` the lengths must be in decreasing order;
    otherwise the batch is sorted here and ``sorted_indices`` records how."""
    fn = "pack_padded_sequence"
    x = O.as_tensor(input, fn)
    if x.ndim < 2:  # an IndexError in PyTorch (its batch dim is out of range)
        raise IndexRangeError(f"{fn}: input must be (T, B, *) or (B, T, *), got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise RecurrentShapeError(f"{fn}: cannot pack empty tensors (input shape {tuple(x.shape)})")
    if batch_first:
        x = O.transpose(x, 0, 1)
    T, B = x.shape[0], x.shape[1]
    lengths = _host_ints(lengths, "lengths", fn)
    if lengths.shape != (B,):
        raise RecurrentShapeError(f"{fn}: lengths has shape {tuple(lengths.shape)}, expected ({B},) to match the batch of input {tuple(input.shape)}")
    if B and (lengths.min() < 1 or lengths.max() > T):
        raise RecurrentShapeError(f"{fn}: lengths {lengths.tolist()} must lie in [1, {T}], the time steps of input {tuple(input.shape)}")
    sorted_indices = unsorted_indices = None
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise RecurrentShapeError(f"{fn}: lengths {lengths.tolist()} are not sorted in decreasing order; "
                                      "sort the batch or pass enforce_sorted=False")
    else:
        order = np.argsort(-lengths, kind="stable")
        sorted_indices = order
        unsorted_indices = np.argsort(order, kind="stable")
        x = O.getitem(x, (slice(None), order))
        lengths = lengths[order]
    batch_sizes = _batch_sizes(lengths)
    data = pack_sorted_time_major(x, batch_sizes)
    return PackedSequence(data, _as_tensor_lengths(batch_sizes),
                          None if sorted_indices is None else _as_tensor_lengths(sorted_indices),
                          None if unsorted_indices is None else _as_tensor_lengths(unsorted_indices))


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length=None):
    """The inverse of ``pack_padded_sequence``: ``(padded (T, B, *), lengths (B,))`` in the
    caller's original batch order; T is the longest length, or ``total_length``."""
    fn = "pad_packed_sequence"
    batch_sizes = sequence.batch_sizes.numpy()
    if total_length is not None and total_length < len(batch_sizes):
        raise RecurrentShapeError(f"{fn}: total_length {total_length} is shorter than the longest sequence ({len(batch_sizes)})")
    padded, lengths = unpack_sorted_time_major(sequence.data, batch_sizes, total_length, padding_value)
    if sequence.unsorted_indices is not None:
        order = sequence.unsorted_indices.numpy()
        padded = O.getitem(padded, (slice(None), order))
        lengths = lengths[order]
    if batch_first:
        padded = O.transpose(padded, 0, 1)
    return padded, _as_tensor_lengths(lengths)


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0, padding_side: str = "right") -> Tensor:
    """Stack tensors of shapes (L_i, *) into (T, B, *) ((B, T, *) with ``batch_first``),
    T = max L_i, filling with ``padding_value`` on the right (or the left)."""
    fn = "pad_sequence"
    seqs = [O.as_tensor(s, fn) for s in sequences]
    if not seqs:
        raise RecurrentShapeError(f"{fn}: got no sequences")
    if padding_side not in ("right", "left"):
        raise ValueError(f"{fn}: padding_side must be 'right' or 'left', got {padding_side!r}")
    tail = seqs[0].shape[1:]
    for i, s in enumerate(seqs):
        if s.ndim < 1 or s.shape[1:] != tail:
            raise RecurrentShapeError(f"{fn}: sequence {i} has shape {tuple(s.shape)}, expected (L, *{tail}) like sequence 0")
    lengths = np.array([s.shape[0] for s in seqs], dtype=np.int64)
    T, n = int(lengths.max()), int(lengths.sum())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    steps = np.arange(T)[:, None]
    shift = (T - lengths)[None, :] if padding_side == "left" else 0
    pos = steps - shift                                 # position inside each sequence
    real = (pos >= 0) & (pos < lengths[None, :])
    index = np.where(real, starts[None, :] + pos, n)
    out = O.getitem(O.cat(seqs + [_pad_row(seqs[0], tail, padding_value)], dim=0), index)
    return O.transpose(out, 0, 1) if batch_first else out


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of tensors (L_i, *) (``pad_sequence`` then ``pack_padded_sequence``)."""
    lengths = [O.as_tensor(s, "pack_sequence").shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def invert_permutation(permutation):
    """The permutation that undoes ``permutation`` (None stays None)."""
    if permutation is None:
        return None
    p = O.as_tensor(permutation, "invert_permutation")
    out = np.empty(p.numel(), dtype=np.int64)
    out[np.asarray(p.numpy(force=True)).reshape(-1)] = np.arange(p.numel())
    return Tensor._wrap(out).to(p.device)


def unpad_sequence(padded_sequences, lengths, batch_first: bool = False) -> list:
    """The inverse of ``pad_sequence``: the list of the B sequences (L_i, *) cut from the padded
    (T, B, *) batch ((B, T, *) with ``batch_first``) by ``lengths`` (B,)."""
    fn = "unpad_sequence"
    padded = O.as_tensor(padded_sequences, fn)
    lens = _host_ints(lengths, "lengths", fn)
    if not batch_first:
        padded = O.transpose(padded, 0, 1)
    if lens.shape[0] != padded.shape[0]:
        raise RecurrentShapeError(f"{fn}: lengths has {lens.shape[0]} entries, the padded batch {padded.shape[0]}")
    return [O.getitem(padded, (i, slice(0, int(n)))) for i, n in enumerate(lens)]


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The inverse of ``pack_sequence``: the list of the packed sequences (L_i, *), in the
    caller's original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
