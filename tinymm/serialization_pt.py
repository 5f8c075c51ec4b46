"""PyTorch's checkpoint format (what ``torch.save`` writes), read and written without torch.

``tinymm.save(obj, "model.pt")`` and ``tinymm.load("model.pt")`` use it for any path that does
not end in ``.safetensors`` (:mod:`tinymm.serialization` picks the format), so a training script
that saves ``{"epoch": 3, "model": model.state_dict(), "optimizer": opt.state_dict()}`` runs
unchanged, its files load in PyTorch (``torch.load(path)``, weights only) and PyTorch's files
load here.

The file is a zip archive whose entries are stored, not compressed, under one folder
``<name>/``::

    data.pkl     the object, pickled (protocol 2); each tensor is the call
                 torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)
                 and each storage a persistent id ('storage', torch.FloatStorage, key, location, numel)
    data/<key>   the storage's raw bytes, little-endian
    byteorder    "little"
    version      "3"

The pickle names torch's functions and classes (``torch._utils._rebuild_tensor_v2``,
``torch.FloatStorage``, ``collections.OrderedDict``) as strings: writing them needs no torch,
and reading maps each name to what tinymm builds instead (a Tensor, a dtype, a device).

**Loading runs no code by default.** ``weights_only=True`` (PyTorch's default since 2.6)
unpickles only an allow-list: containers (dict, OrderedDict, list, tuple, set), numbers,
strings, bytes, None, tensors and parameters, sparse COO tensors (``_rebuild_sparse_tensor``, both
ways), dtypes, devices and ``torch.Size``. Any other
global (a class of a pickled model, a NumPy array) is refused with ``pickle.UnpicklingError``
naming it; ``weights_only=False`` unpickles everything, which can run arbitrary code: only for
files you trust, exactly as in PyTorch.

Differences from PyTorch: tensors that shared a storage (views of one tensor) load as separate
arrays; bfloat16 storages load as float32 (NumPy has no bfloat16; the widening is exact);
complex, quantized and sparse tensors are refused, naming the storage type. The legacy
(pre-1.6, non-zip) format is refused with a message.
"""
from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
import zipfile

import numpy as np

from tinymm import dtype_objects

# storage class name in a torch pickle <-> NumPy dtype; "BFloat16Storage" widens to float32
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"), "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"), "BoolStorage": np.dtype("?"),
    "BFloat16Storage": np.dtype("<u2"),
}
_STORAGE_NAMES = {dt.newbyteorder("="): name for name, dt in _STORAGE_DTYPES.items() if name != "BFloat16Storage"}
# torch dtype names (``torch.float32`` pickles as the global ``torch float32``) -> NumPy dtype
_DTYPE_NAMES = {
    "float32": "float32", "float": "float32", "float64": "float64", "double": "float64", "float16": "float16",
    "half": "float16", "int64": "int64", "long": "int64", "int32": "int32", "int": "int32", "int16": "int16",
    "short": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
}
ZIP_MAGIC = b"PK\x03\x04"


def is_torch_archive(head: bytes) -> bool:
    """Whether the first bytes of a file are a zip archive's (PyTorch's format)."""
    return head[:4] == ZIP_MAGIC


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


class _Global:
    """A torch function or class named by its import path, pickled as that global without
    importing torch. Callable only so that the pickler accepts it as a reduce function."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pragma: no cover - never called: it is only ever pickled
        raise TypeError(f"{self.module}.{self.name} is a stand-in for pickling")


class _Storage:
    def __init__(self, key: str, dtype_name: str, location: str, numel: int):
        self.key, self.dtype_name, self.location, self.numel = key, dtype_name, location, numel


_REBUILD_TENSOR = _Global("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAMETER = _Global("torch._utils", "_rebuild_parameter")
_REBUILD_SPARSE = _Global("torch._utils", "_rebuild_sparse_tensor")


class _CooLayout:
    """``torch.sparse_coo`` as PyTorch pickles a layout: ``torch.serialization._get_layout(name)``."""

    def __reduce__(self):
        return _Global("torch.serialization", "_get_layout"), ("torch.sparse_coo",)


class _TorchPickler(pickle._Pickler):
    """Pickles tinymm Tensors as torch's ``_rebuild_tensor_v2`` calls over numbered storages
    (the pure-Python pickler, because the stand-in globals are written as raw GLOBAL opcodes)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, parameter_types: tuple):
        super().__init__(file, protocol=2)
        self.storages: list[np.ndarray] = []
        self.parameter_types = parameter_types

    def save_torch_global(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("utf-8"))
        self.memoize(obj)

    dispatch[_Global] = save_torch_global

    def save_torch_dtype(self, obj) -> None:
        """A tinymm dtype is pickled as PyTorch pickles its dtypes: the global ``torch.<name>``."""
        if obj.name not in _DTYPE_NAMES or obj.byteorder == ">":
            raise pickle.PicklingError(f"save: {obj} has no PyTorch dtype to be saved as")
        self.save_torch_global(_Global("torch", obj.name))

    dispatch[dtype_objects.dtype] = save_torch_dtype

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", _Global("torch", obj.dtype_name), obj.key, obj.location, obj.numel)
        return None

    def reducer_override(self, obj):
        from tinymm.sparse.coo import SparseCOOTensor
        from tinymm.tensor import Tensor

        if isinstance(obj, SparseCOOTensor):  # (a sparse buffer in a state dict: whisper's alignment heads)
            data = (obj._indices(), obj._values().detach(), tuple(obj.shape), bool(obj.is_coalesced()))
            return _REBUILD_SPARSE, (_CooLayout(), data)
        if not isinstance(obj, Tensor):
            return NotImplemented
        arr = obj.numpy(force=True)
        name = _STORAGE_NAMES.get(arr.dtype)
        if name is None:
            raise pickle.PicklingError(f"save: a tensor of dtype {arr.dtype} has no PyTorch storage type")
        key = str(len(self.storages))
        self.storages.append(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False))
        location = "cpu" if obj.device.type == "cpu" else str(obj.device)
        stride, acc = [], 1
        for d in reversed(arr.shape):
            stride.append(acc)
            acc *= d
        storage = _Storage(key, name, location, int(arr.size))
        rebuilt = (storage, 0, tuple(int(d) for d in arr.shape), tuple(reversed(stride)),
                   bool(obj.requires_grad), collections.OrderedDict())
        if isinstance(obj, self.parameter_types):
            return _REBUILD_PARAMETER, (_Plain(rebuilt), bool(obj.requires_grad), collections.OrderedDict())
        return _REBUILD_TENSOR, rebuilt


class _Plain:
    """The plain-tensor part of a Parameter (``_rebuild_parameter`` takes a rebuilt tensor)."""

    def __init__(self, rebuilt):
        self.rebuilt = rebuilt

    def __reduce__(self):
        return _REBUILD_TENSOR, self.rebuilt


#: Tensor subclasses saved as ``torch.nn.Parameter`` (nn.parameter adds its class on import,
#: so that this floor-3 module need not import nn)
PARAMETER_TYPES: list[type] = []


def save_archive(obj, f, name: str = "archive") -> None:
    """Write ``obj`` in PyTorch's zip format to the open binary file ``f``."""
    buf = io.BytesIO()
    pickler = _TorchPickler(buf, tuple(PARAMETER_TYPES))
    pickler.dump(obj)
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{name}/data.pkl", buf.getvalue())
        z.writestr(f"{name}/byteorder", "little")
        for key, arr in enumerate(pickler.storages):
            z.writestr(f"{name}/data/{key}", arr.tobytes())
        z.writestr(f"{name}/version", "3\n")


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------


class _StorageRef:
    def __init__(self, array: np.ndarray, location: str):
        self.array, self.location = array, location


def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) as float32: bfloat16 is the top half of a float32, so this is exact."""
    return (raw.astype("<u4") << 16).view("<f4").astype(np.float32)


class MappedStorage:
    """What a callable ``map_location`` receives, as PyTorch hands it the storage loaded on the
    CPU (``lambda storage, loc: storage``, ``lambda storage, loc: storage.cuda(0)``): ``cpu()``,
    ``cuda(i)`` and ``to(device)`` say where the tensor goes; returning None keeps the saved place."""

    def __init__(self, device: str = "cpu"):
        self.device = device

    def cpu(self):
        return MappedStorage("cpu")

    def cuda(self, device=None, non_blocking: bool = False):
        if device is None:
            return MappedStorage("cuda")
        return MappedStorage(str(device) if isinstance(device, str) or hasattr(device, "type") else f"cuda:{int(device)}")

    def to(self, device, *args, **kwargs):
        return MappedStorage(str(device))


def mapped_location(fn, location: str) -> str:
    """The device a callable ``map_location`` sends a tensor saved at ``location`` to."""
    out = fn(MappedStorage("cpu"), location)
    if out is None:
        return location
    if not isinstance(out, MappedStorage):
        raise TypeError(f"load: map_location must return the storage it was given (or storage.cuda(), "
                        f"storage.cpu(), None), got {type(out).__name__}")
    return out.device


class _Rebuilder:
    """What the torch globals of a checkpoint become here, for one load (it knows the device)."""

    def __init__(self, where: str, map_location):
        self.where, self.map_location = where, map_location

    def device_for(self, location: str):
        from tinymm import backend

        ml = self.map_location
        if isinstance(ml, dict):
            location = ml.get(location, location)
        elif callable(ml) and not isinstance(ml, str):
            location = mapped_location(ml, location)
        elif ml is not None:
            location = str(ml)
        dev = backend.parse_device(location)
        if dev == "cuda" and not backend.cuda_available():
            raise RuntimeError(
                f"load: {self.where} holds tensors saved on {location}, and no CUDA device is usable here; "
                f"pass map_location='cpu'")
        return dev

    def tensor(self, storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
        from tinymm.tensor import Tensor

        if not isinstance(storage, _StorageRef):
            raise pickle.UnpicklingError(f"load: {self.where}: a tensor without a storage")
        arr = storage.array
        itemsize = arr.itemsize
        if arr.size:
            view = np.lib.stride_tricks.as_strided(arr[offset:], shape=tuple(size),
                                                   strides=tuple(s * itemsize for s in stride), writeable=False)
        else:
            view = np.empty(tuple(size), dtype=arr.dtype)
        out = Tensor._of(np.array(view, copy=True), device=self.device_for(storage.location))
        if requires_grad:
            out.requires_grad_(True)
        return out

    def sparse(self, layout, data):
        """``torch._utils._rebuild_sparse_tensor``: a COO tensor from (indices, values, size[, coalesced])."""
        from tinymm.sparse.coo import SparseCOOTensor
        from tinymm.tensor import Tensor

        if layout != "torch.sparse_coo":
            raise pickle.UnpicklingError(f"load: {self.where}: sparse layout {layout} is not supported (tinymm reads "
                                         f"sparse_coo tensors)")
        indices, values, size = data[:3]
        if not (isinstance(indices, Tensor) and isinstance(values, Tensor)):
            raise pickle.UnpicklingError(f"load: {self.where}: a sparse tensor without index and value tensors")
        coalesced = bool(data[3]) if len(data) > 3 and data[3] is not None else False
        return SparseCOOTensor(indices._data.astype(np.int64, copy=False), values, tuple(size), coalesced=coalesced)

    def parameter(self, tensor, requires_grad=True, *rest):
        cls = PARAMETER_TYPES[0] if PARAMETER_TYPES else None
        if cls is None:
            return tensor.requires_grad_(bool(requires_grad))
        return cls(tensor, requires_grad=bool(requires_grad))


class _TorchUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, rebuilder: _Rebuilder, weights_only: bool):
        super().__init__(file)
        self.archive, self.prefix, self.rebuilder, self.weights_only = archive, prefix, rebuilder, weights_only
        self.loaded: dict[str, np.ndarray] = {}

    def find_class(self, module, name):
        from tinymm.tensor import Size, device

        rb = self.rebuilder
        # protocol 2 writes Python 2's module names (__builtin__, copy_reg): read them as Python 3's
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rb.tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return rb.parameter
        if module == "torch._utils" and name == "_rebuild_sparse_tensor":
            return rb.sparse
        if module == "torch.serialization" and name == "_get_layout":
            return lambda layout_name: layout_name  # read back by the sparse rebuilder above
        if module == "torch" and name in _STORAGE_DTYPES:
            return ("storage-type", name)
        if module == "torch" and name.endswith("Storage"):
            raise pickle.UnpicklingError(f"load: {rb.where}: storage type torch.{name} is not supported "
                                         f"(tinymm reads {', '.join(_STORAGE_DTYPES)})")
        if module == "torch" and name in _DTYPE_NAMES:
            return dtype_objects.as_dtype(_DTYPE_NAMES[name])  # the global is the value: torch.float16 pickles as a name
        if module == "torch" and name == "device":
            return device
        if module == "torch" and name == "Size":
            return Size
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "builtins" and name in ("set", "frozenset", "slice", "complex"):
            return {"set": set, "frozenset": frozenset, "slice": slice, "complex": complex}[name]
        if self.weights_only:
            raise pickle.UnpicklingError(
                f"load: {rb.where}: weights_only=True refuses the global {module}.{name} (only tensors, "
                f"containers, numbers and strings load that way); if you trust the file, "
                f"load(..., weights_only=False) runs its pickle")
        if module.startswith("torch"):
            raise pickle.UnpicklingError(f"load: {rb.where}: the pickle needs {module}.{name}, a PyTorch object "
                                         f"tinymm cannot build")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"load: {self.rebuilder.where}: unknown persistent id {pid!r:.80}")
        _, kind, key, location, numel = pid
        if not (isinstance(kind, tuple) and kind[0] == "storage-type"):
            raise pickle.UnpicklingError(f"load: {self.rebuilder.where}: storage {key!r} has no known type")
        if key not in self.loaded:
            name = f"{self.prefix}data/{key}"
            try:
                raw = self.archive.read(name)
            except KeyError:
                raise pickle.UnpicklingError(f"load: {self.rebuilder.where}: the archive has no {name}") from None
            dt = _STORAGE_DTYPES[kind[1]]
            if len(raw) < numel * dt.itemsize:
                raise pickle.UnpicklingError(f"load: {self.rebuilder.where}: storage {key} has {len(raw)} bytes, "
                                             f"{numel} elements of {kind[1]} need {numel * dt.itemsize}")
            arr = np.frombuffer(raw, dtype=dt, count=numel)
            if kind[1] == "BFloat16Storage":
                arr = bf16_to_f32(arr)
            elif kind[1] == "BoolStorage":
                arr = arr.view(np.uint8) != 0
            else:
                arr = arr.astype(dt.newbyteorder("="), copy=False)
            self.loaded[key] = arr
        return _StorageRef(self.loaded[key], str(location))


def load_archive(f, where: str, map_location=None, weights_only: bool = True):
    """Read the object a PyTorch-format archive (open binary file ``f``) holds."""
    try:
        archive = zipfile.ZipFile(f)
    except zipfile.BadZipFile as e:
        raise pickle.UnpicklingError(f"load: {where} is not a readable PyTorch checkpoint: {e}") from None
    with archive:
        pkl = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise pickle.UnpicklingError(f"load: {where} is a zip archive without one <name>/data.pkl; "
                                         f"not a PyTorch checkpoint")
        prefix = pkl[0][: -len("data.pkl")]
        order = archive.read(f"{prefix}byteorder").decode().strip() if f"{prefix}byteorder" in archive.namelist() else "little"
        if order != "little":
            raise pickle.UnpicklingError(f"load: {where} was written on a {order}-endian machine; tinymm reads "
                                         f"little-endian checkpoints")
        rebuilder = _Rebuilder(where, map_location)
        up = _TorchUnpickler(io.BytesIO(archive.read(pkl[0])), archive, prefix, rebuilder, weights_only)
        return up.load()


def archive_name(path) -> str:
    """The folder name PyTorch uses inside the archive: the file's name without its suffix."""
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0] if path is not None else "archive"
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in stem) or "archive"
