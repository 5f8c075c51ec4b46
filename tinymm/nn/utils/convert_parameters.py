"""``parameters_to_vector`` and ``vector_to_parameters`` (``torch.nn.utils``): every
parameter flattened into one vector and back, in iteration order."""
from __future__ import annotations

from tinymm import ops as O
from tinymm.tensor import Tensor


def parameters_to_vector(parameters) -> Tensor:
    """One 1-D tensor of all parameters, each flattened, concatenated (differentiable)."""
    params = list(parameters)
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    devices = {p.device for p in params}
    if len(devices) > 1:
        raise ValueError(f"parameters_to_vector: parameters are on several devices {sorted(devices)}")
    return O.cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into each parameter (in place)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, but got: {type(vec).__name__}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(f"vector_to_parameters: vec has shape {tuple(vec.shape)}, the parameters hold {total} values")
    start = 0
    for p in params:
        n = p.numel()
        p._data[...] = vec._data[start:start + n].reshape(p.shape).astype(p.dtype, copy=False)
        start += n
