"""Sparse COO tensors as module buffers, as PyTorch allows (a sparse tensor is a Tensor there).

openai/whisper keeps its alignment heads as ``register_buffer("alignment_heads",
all_heads.to_sparse(), persistent=False)`` and reads them back with ``.indices().T``. tinymm's
``SparseCOOTensor`` is not a ``Tensor`` subclass (so a dense op cannot take one by mistake), so
the places where a Module treats its buffers as dense tensors ask here instead:

* registering or assigning one (``register_buffer``, ``module.name = sparse``);
* ``Module._apply`` (``to``, ``cuda``, ``float``, ``double``...): the conversion is applied to the
  values, in place, and the indices follow the values' device, so the buffer object stays the one
  the module holds (as a dense buffer's does);
* ``load_state_dict``: a persistent sparse buffer takes a sparse value of the same size (PyTorch's
  ``copy_`` between sparse tensors: indices and values both replaced), on the buffer's device and
  in its dtype; a dense value for a sparse buffer, or the reverse, is reported as an error
  (``tinymm.save`` / ``tinymm.load`` write and read sparse COO tensors in PyTorch's format:
  ``serialization_pt``).
"""
from __future__ import annotations

from tinymm import backend
from tinymm.ops._util import xp_of
from tinymm.sparse.coo import SparseCOOTensor
from tinymm.tensor import Size


def is_sparse(value) -> bool:
    return isinstance(value, SparseCOOTensor)


def apply_in_place(buf: SparseCOOTensor, fn) -> None:
    """``Module._apply``'s ``fn`` (a Tensor -> Tensor conversion) on the values of ``buf``."""
    values = buf._values_t
    values._data = fn(values)._data
    if xp_of(buf._indices_arr) is not xp_of(values._data):
        buf._indices_arr = backend.to_device(buf._indices_arr, values.device.type)


def load_into(buf: SparseCOOTensor, value, key: str, error_msgs: list) -> None:
    """Copy the sparse ``value`` into the sparse buffer ``buf`` (indices and values replaced)."""
    if not is_sparse(value):
        error_msgs.append(f'While copying the parameter named "{key}", expected a sparse tensor for the sparse buffer, '
                          f"got {type(value).__name__}")
        return
    if tuple(value.shape) != tuple(buf.shape):
        error_msgs.append(f"size mismatch for {key}: copying a param with shape {Size(value.shape)!r} from "
                          f"checkpoint, the shape in current model is {Size(buf.shape)!r}.")
        return
    moved = value.to(buf.device).to(buf.dtype)
    buf._indices_arr = moved._indices_arr.copy()
    buf._values_t._data = moved._values_t._data.copy()
    buf._coalesced = moved._coalesced
