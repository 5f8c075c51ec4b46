"""``tinymm.save`` / ``tinymm.load``, as ``torch.save`` / ``torch.load``: safetensors files for
state dicts, PyTorch's zip format for anything else.

A path ending in ``.safetensors`` is written as safetensors; any other path (``model.pt``,
``ckpt.pth``) or file object gets PyTorch's zip format (:mod:`tinymm.serialization_pt`: any
picklable object, loadable by ``torch.load``). ``load`` reads both, telling them apart by their
first bytes, and by default unpickles nothing but tensors, containers, numbers and strings.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON (each tensor's
dtype, shape and byte range, plus an optional ``"__metadata__"`` object of strings), then the
raw little-endian bytes. Loading runs no code: this module checks the framing and every header
entry itself, so that a truncated, foreign or corrupt file is refused with a message naming the
file, the tensor and what is wrong, and then reads each tensor with ``numpy.frombuffer``.

dtypes: F64, F32, F16, I64, I32, I16, I8, U8 and BOOL are written and read as they are; BF16
(which NumPy has no type for) is read and converted to float32 exactly. Anything else (uint16,
complex, strings, objects) is refused at save, naming the key, so that every file ``save``
writes can be loaded. 0-d tensors keep their shape ``[]``.

Writes to a path are atomic (:mod:`tinymm._atomic`): the bytes go to a temporary file in the
same folder, which is then renamed over the target, so a crash mid-write never leaves a
half-written checkpoint behind; a symlink is followed; a read-only file is refused and left as
it was. Safetensors files written here load with ``safetensors.torch.load_file`` into the
equivalent torch module, and files written by ``safetensors.torch.save_file`` load here.
"""
from __future__ import annotations

import io
import json
import math
import os
import struct

import numpy as np

from tinymm._atomic import atomic_write, resolve_target

# safetensors dtype name -> NumPy dtype (little-endian), for what is saved and loaded as is.
_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_NAMES = {dt: name for name, dt in _DTYPES.items()}
_DTYPE_SIZES = {**{k: v.itemsize for k, v in _DTYPES.items()}, "BF16": 2}
_SAVABLE = "float64, float32, float16, int64, int32, int16, int8, uint8, bool"
_MAX_HEADER = 100 * 2**20


class CheckpointError(ValueError):
    """A file that is not a readable safetensors checkpoint (truncated, foreign, corrupt)."""


def _as_numpy(v, key) -> np.ndarray:
    from tinymm.tensor import Tensor

    if isinstance(v, Tensor):
        v = v.numpy(force=True)
    elif hasattr(v, "__cuda_array_interface__") and hasattr(v, "get"):
        v = v.get()
    elif not isinstance(v, (np.ndarray, np.generic)):
        raise TypeError(f"save: value for {key!r} is a {type(v).__name__}, expected a Tensor or array")
    v = np.asarray(v)
    dt = v.dtype.newbyteorder("<") if v.dtype.byteorder == ">" else v.dtype
    if dt not in _NAMES:
        raise TypeError(f"save: tensor {key!r} has dtype {v.dtype}, which safetensors files "
                        f"written by tinymm do not hold; use one of {_SAVABLE}")
    # np.ascontiguousarray would turn a 0-d array into shape (1,): keep the shape as it is.
    return np.array(v, dtype=dt, order="C", copy=True) if (dt != v.dtype or not v.flags.c_contiguous) else v


def _is_safetensors_path(f) -> bool:
    return isinstance(f, (str, os.PathLike)) and os.fspath(f).lower().endswith(".safetensors")


def save(obj, f, metadata: dict | None = None) -> None:
    """Save ``obj`` to ``f`` (a path or a binary file object), as ``torch.save`` does.

    A path ending in ``.safetensors`` gets a safetensors file (see the module docstring): ``obj``
    must then be a flat dict of name → Tensor/array, and ``metadata`` (str → str) goes into its
    header. Any other path or file object gets PyTorch's own zip format
    (:mod:`tinymm.serialization_pt`), which holds any picklable object — a checkpoint dict with
    the epoch, a model's and an optimizer's state dicts — and loads in PyTorch too.

    Raises ``TypeError`` for what the chosen format cannot hold (naming the key or the type),
    ``PermissionError`` for a read-only target (left untouched)."""
    if _is_safetensors_path(f):
        return _save_safetensors(obj, f, metadata)
    if metadata is not None:
        raise TypeError("save: metadata= is stored in .safetensors files only; this path gets PyTorch's "
                        f"format ({os.fspath(f) if isinstance(f, (str, os.PathLike)) else type(f).__name__})")
    from tinymm import serialization_pt

    if hasattr(f, "write"):
        name = getattr(f, "name", None)
        return serialization_pt.save_archive(obj, f, serialization_pt.archive_name(name if isinstance(name, str) else None))
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(f"save: expected a file path or a binary file object, got {type(f).__name__}")
    resolve_target(f)
    buf = io.BytesIO()
    serialization_pt.save_archive(obj, buf, serialization_pt.archive_name(f))
    atomic_write(f, lambda fh: fh.write(buf.getvalue()))


def _save_safetensors(state_dict, path, metadata: dict | None = None) -> None:
    from collections.abc import Mapping

    from safetensors.numpy import save as st_save

    if not isinstance(state_dict, Mapping):
        raise TypeError(f"save: a .safetensors file holds a dict of name -> tensor, got {type(state_dict).__name__} "
                        f"(other objects: save to a .pt path, PyTorch's format)")
    arrays = {}
    for k, v in state_dict.items():
        if not isinstance(k, str):
            raise TypeError(f"save: keys must be strings, got {k!r} ({type(k).__name__})")
        if k == "__metadata__":
            raise ValueError("save: '__metadata__' is reserved by the safetensors format; rename that tensor "
                             "(pass metadata=... for metadata)")
        arrays[k] = _as_numpy(v, k)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"save: metadata must be a dict of str -> str, got {type(metadata).__name__}")
    meta = {"format": "pt", "producer": "tinymm"}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    resolve_target(path)  # refuse a read-only target or a folder before building the bytes
    try:
        blob = st_save(arrays, metadata=meta)
    except Exception as e:  # the library's own limits (header size, ...), after our checks
        raise ValueError(f"save: safetensors could not serialise this state dict: {e}") from None
    atomic_write(path, lambda f: f.write(blob))


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_entry(path: str, key: str, entry) -> tuple[str, tuple, int, int]:
    """(dtype, shape, start, stop) of one header entry, or CheckpointError naming what is wrong."""
    where = f"load: {path}: tensor {key!r}"
    if not isinstance(entry, dict):
        raise CheckpointError(f"{where} is malformed: expected an object with dtype, shape and data_offsets, "
                              f"got {type(entry).__name__}")
    missing = [f for f in ("dtype", "shape", "data_offsets") if f not in entry]
    if missing:
        raise CheckpointError(f"{where} is malformed: missing {', '.join(missing)}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str):
        raise CheckpointError(f"{where}: dtype must be a string such as \"F32\", got {dtype!r}")
    if dtype not in _DTYPE_SIZES:
        raise CheckpointError(f"{where} has unsupported dtype {dtype} (tinymm reads "
                              f"{', '.join(_DTYPE_SIZES)})")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise CheckpointError(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]):
        raise CheckpointError(f"{where}: data_offsets must be [start, stop] with 0 <= start <= stop, got {offsets!r}")
    start, stop = offsets
    want = math.prod(shape) * _DTYPE_SIZES[dtype]
    if stop - start != want:
        raise CheckpointError(f"{where} has {stop - start} bytes, its shape {shape} needs {want}")
    return dtype, tuple(shape), start, stop


def _check_path(path) -> str:
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"load: expected a file path (str or os.PathLike), got {type(path).__name__}") from None
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"load: {path} is a folder, expected a safetensors file")
    if not os.path.isfile(path):  # a FIFO or a device would block or never end
        raise CheckpointError(f"load: {path} is not a regular file")
    return path


def _parse(path: str, head: bytes, read_header_bytes, size: int) -> tuple[dict, dict, int]:
    """(entries, metadata, header length) of a file of ``size`` bytes starting with ``head``."""
    if len(head) < 8:
        raise CheckpointError(f"load: {path} is not a safetensors file: only {size} bytes long")
    (n,) = struct.unpack("<Q", head[:8])
    if n > _MAX_HEADER or n + 8 > size:
        raise CheckpointError(
            f"load: {path} is not a safetensors file or is truncated: header claims {n} bytes, "
            f"the file has {size}"
        )
    raw = read_header_bytes(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"load: {path} is not a safetensors file: its header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"load: {path} is not a safetensors file: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"load: {path}: __metadata__ must be an object of strings, got {metadata!r:.200}")
    data_len = size - 8 - n
    entries = {key: _check_entry(path, key, entry) for key, entry in header.items()}
    # The data must be covered exactly: tensors back to back, no overlap, no gap.
    end = 0
    for key, (_, _, start, stop) in sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if start != end:
            what = "overlaps the previous tensor" if start < end else f"leaves a gap of {start - end} bytes"
            raise CheckpointError(f"load: {path}: tensor {key!r} at bytes [{start}, {stop}) {what}")
        end = stop
    if end > data_len:
        raise CheckpointError(
            f"load: {path} is truncated: tensors need {end} bytes of data, the file holds {data_len}"
        )
    if end < data_len:
        raise CheckpointError(f"load: {path}: {data_len - end} bytes after the last tensor; not a safetensors file")
    return entries, metadata, n


def read_header(path) -> tuple[dict, dict]:
    """Check the file's framing and every entry; return (tensor entries, metadata), reading
    only the header. Raises ``FileNotFoundError``, ``IsADirectoryError`` or
    :class:`CheckpointError` (a ``ValueError``) naming the file and the problem."""
    path = _check_path(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        entries, metadata, _ = _parse(path, f.read(8), f.read, size)
    return {k: {"dtype": d, "shape": list(sh), "data_offsets": [a, b]} for k, (d, sh, a, b) in entries.items()}, metadata


def load(f, map_location=None, *, weights_only: bool = True, device=None, mmap=None, **pickle_load_args):
    """Load what :func:`save` (or ``torch.save``, or ``safetensors``) wrote, as ``torch.load`` does.

    ``f``: a path or a binary file object; the format is read off the first bytes (a zip archive
    is PyTorch's format, anything else is read as safetensors, which returns a dict of name →
    Tensor). ``map_location``: where tensors go — a device (``"cpu"``, ``"cuda"``), a dict
    mapping saved locations to devices, or PyTorch's callable ``(storage, location) -> storage``
    (``lambda storage, loc: storage`` keeps tensors on the CPU); None puts each where it was saved (a CUDA tensor with no
    usable GPU is an error that says to pass ``map_location="cpu"``). ``device`` is tinymm's
    older name for ``map_location``. ``weights_only`` (default True, as PyTorch ≥ 2.6): unpickle
    only tensors, containers, numbers, strings, dtypes and devices; False runs the file's pickle,
    which can execute code — only for trusted files. ``mmap`` is accepted and ignored (files are
    read whole). Raises ``FileNotFoundError``, ``IsADirectoryError``, :class:`CheckpointError`
    (a safetensors file that is truncated or corrupt) or ``pickle.UnpicklingError`` (naming the
    file and the problem)."""
    from tinymm import serialization_pt

    if pickle_load_args:
        raise TypeError(f"load: unexpected arguments {sorted(pickle_load_args)} (tinymm's unpickler takes none)")
    if device is not None and map_location is not None:
        raise TypeError("load: pass map_location= or device=, not both")
    where = map_location if map_location is not None else device
    if hasattr(f, "read"):
        blob = f.read()
        name = getattr(f, "name", None) or f"<{type(f).__name__}>"
        if not isinstance(blob, bytes):
            raise TypeError(f"load: the file object must be opened in binary mode ({name})")
        if serialization_pt.is_torch_archive(blob):
            return serialization_pt.load_archive(io.BytesIO(blob), str(name), where, weights_only)
        return _load_safetensors_bytes(blob, str(name), where)
    path = _check_path(f)
    with open(path, "rb") as fh:
        blob = fh.read()  # one read: what is checked is what is loaded, even if the file changes
    if serialization_pt.is_torch_archive(blob):
        return serialization_pt.load_archive(io.BytesIO(blob), path, where, weights_only)
    if blob[:2] in (b"\x80\x02", b"\x80\x04") and not path.endswith(".safetensors"):
        raise CheckpointError(f"load: {path} is not a safetensors file or a PyTorch zip checkpoint: it is a bare "
                              f"pickle (PyTorch's legacy format, before 1.6, or pickle.dump), which tinymm does not read")
    return _load_safetensors_bytes(blob, path, where)


def _load_safetensors_bytes(blob: bytes, path: str, map_location) -> dict:
    from tinymm import backend, serialization_pt
    from tinymm.tensor import Tensor

    if isinstance(map_location, dict):
        map_location = map_location.get("cpu", "cpu")
    elif callable(map_location) and not isinstance(map_location, str):  # probe3: lambda storage, loc: storage
        map_location = serialization_pt.mapped_location(map_location, "cpu")
    device = backend.parse_device(map_location)
    entries, _, n = _parse(path, blob[:8], lambda k: blob[8 : 8 + k], len(blob))
    base = 8 + n
    out = {}
    for key, (dtype, shape, start, stop) in entries.items():
        raw = blob[base + start : base + stop]
        if dtype == "BF16":
            arr = serialization_pt.bf16_to_f32(np.frombuffer(raw, dtype="<u2"))
        elif dtype == "BOOL":
            arr = np.frombuffer(raw, dtype=np.uint8) != 0  # any non-zero byte is True, as in torch
        else:
            arr = np.frombuffer(raw, dtype=_DTYPES[dtype]).astype(_DTYPES[dtype].newbyteorder("="), copy=True)
        out[key] = Tensor._of(arr.reshape(shape), device=device)
    return out


def load_metadata(path) -> dict:
    """The ``__metadata__`` strings of a safetensors file (after the same checks as :func:`load`)."""
    return read_header(path)[1]
