"""``tinymm.save`` / ``tinymm.load``: state dicts as safetensors files, never pickle.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON (each tensor's
dtype, shape and byte range), then the raw bytes. Loading runs no code. Before handing the
bytes to ``safetensors`` this module checks the framing itself so that a truncated or foreign
file is refused with a message naming the file and what is wrong with it.

Writes are atomic: the bytes go to a temporary file in the same folder, which is then renamed
over the target, so a crash mid-write never leaves a half-written checkpoint behind.
Files written here load with ``safetensors.torch.load_file`` into the equivalent torch module,
and files written by ``safetensors.torch.save_file`` load here.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np

from tinymm._atomic import atomic_write

_DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_MAX_HEADER = 100 * 2**20


class CheckpointError(ValueError):
    """A file that is not a readable safetensors checkpoint (truncated, foreign, corrupt)."""


def _as_numpy(v, key):
    from tinymm.tensor import Tensor

    if isinstance(v, Tensor):
        v = v.numpy()
    elif hasattr(v, "__cuda_array_interface__"):
        v = v.get()
    elif not isinstance(v, np.ndarray):
        raise TypeError(f"save: value for {key!r} is a {type(v).__name__}, expected a Tensor or array")
    return np.ascontiguousarray(v)


def save(state_dict: dict, path, metadata: dict | None = None) -> None:
    """Write ``state_dict`` (name → Tensor or array) to ``path`` as safetensors, atomically."""
    from safetensors.numpy import save as st_save

    if not isinstance(state_dict, dict):
        raise TypeError(f"save: expected a dict of tensors, got {type(state_dict).__name__}")
    arrays = {str(k): _as_numpy(v, k) for k, v in state_dict.items()}
    meta = {"format": "pt", "producer": "tinymm"}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    blob = st_save(arrays, metadata=meta)
    atomic_write(path, lambda f: f.write(blob))


def read_header(path) -> tuple[dict, dict]:
    """Check the file's framing and return (tensor entries, metadata); raise CheckpointError."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file: {path}")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"load: {path} is not a safetensors file: only {size} bytes long")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER or n + 8 > size:
            raise CheckpointError(
                f"load: {path} is not a safetensors file or is truncated: header claims {n} bytes, "
                f"the file has {size}"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"load: {path} is not a safetensors file: its header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"load: {path} is not a safetensors file: header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    data_len = size - 8 - n
    end = 0
    for key, entry in header.items():
        try:
            dtype, shape, (start, stop) = entry["dtype"], entry["shape"], entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"load: {path}: entry {key!r} is malformed") from None
        if dtype not in _DTYPE_SIZES:
            raise CheckpointError(f"load: {path}: tensor {key!r} has unsupported dtype {dtype}")
        want = int(np.prod(shape)) * _DTYPE_SIZES[dtype]
        if stop - start != want:
            raise CheckpointError(f"load: {path}: tensor {key!r} has {stop - start} bytes, its shape {shape} needs {want}")
        end = max(end, stop)
    if end > data_len:
        raise CheckpointError(
            f"load: {path} is truncated: tensors need {end} bytes of data, the file holds {data_len}"
        )
    return header, metadata


def load(path, device: str = "cpu") -> dict:
    """Read a safetensors file into a dict of name → Tensor on ``device``."""
    from safetensors.numpy import load as st_load

    from tinymm.tensor import Tensor

    read_header(path)
    with open(path, "rb") as f:
        blob = f.read()
    try:
        arrays = st_load(blob)
    except Exception as e:  # the library's own check, after ours passed
        raise CheckpointError(f"load: {os.fspath(path)} could not be read: {e}") from None
    return {k: Tensor(v, device=device) for k, v in arrays.items()}


def load_metadata(path) -> dict:
    return read_header(path)[1]
