"""More of PyTorch's Tensor surface: predicates, conversions, statistics, random fills,
storage-level ``resize_``, legacy ``new``, and two small activations every Tensor has.

Each follows PyTorch's semantics and exception class; none keeps state of its own except
``register_post_accumulate_grad_hook`` (registered with ``tinymm.autograd``, which runs the
hooks after a leaf's ``.grad`` is written).

``TENSOR_MORE_OPS`` is the table ``tinymm.ops`` adds to ``OPS``; ``TENSOR_MORE_METHODS`` are
methods and properties that are no function of ``torch.*``.
"""
from __future__ import annotations

import builtins
import collections

import numpy as np

from tinymm import autograd, backend, factories
from tinymm.ops._util import DTypeError, DTypeNotImplementedError, EmptyReductionError, ValueRangeError, normalize_dim, refuse_complex
from tinymm.ops.convert import as_tensor, to
from tinymm.ops.elementwise import mul
from tinymm.ops.index import gather, where
from tinymm.ops.inplace import fill_, zero_
from tinymm.ops.reduce import amax, amin
from tinymm.ops.shape import reshape
from tinymm.tensor import Tensor, bump_version, storage_of

AminmaxResult = collections.namedtuple("aminmax", ["min", "max"])
NanmedianResult = collections.namedtuple("nanmedian", ["values", "indices"])
HistogramResult = collections.namedtuple("histogram", ["hist", "bin_edges"])


# ----------------------------------------------------------------------------- statistics


def aminmax(input, *, dim=None, keepdim: bool = False):
    """``(amin, amax)`` over all elements or along ``dim``; both carry gradients as amin/amax."""
    x = as_tensor(input, "aminmax")
    refuse_complex(x, "aminmax_cpu")
    n = x.numel() if dim is None else (x.shape[normalize_dim("aminmax", x.ndim, dim)] if x.ndim else 1)
    if n == 0:
        raise EmptyReductionError("aminmax(): cannot compute aminmax over an empty dimension as the operation "
                                  "has no identity.")
    if dim is None:
        lo, hi = amin(x), amax(x)
        if keepdim:
            lo, hi = reshape(lo, *([1] * x.ndim)), reshape(hi, *([1] * x.ndim))
        return AminmaxResult(lo, hi)
    return AminmaxResult(amin(x, dim, keepdim), amax(x, dim, keepdim))


def nanmedian(input, dim=None, keepdim: bool = False):
    """The lower median ignoring NaNs (NaN when a row is all NaN): a 0-d tensor over all
    elements, or (values, indices) along ``dim``; the gradient goes to the chosen element."""
    x = as_tensor(input, "nanmedian")
    if x.dtype.kind not in "fc":
        from tinymm.ops.scan import median

        return median(x, dim, keepdim) if dim is not None else median(x)
    if dim is None:
        if x.numel() == 0:
            return reshape(x, -1).sum() * float("nan")  # NaN, as PyTorch
        return nanmedian(reshape(x, -1), 0).values
    if x.ndim == 0:
        return NanmedianResult(x * 1, Tensor._wrap(np.zeros((), np.int64)))
    axis = normalize_dim("nanmedian", x.ndim, dim)
    if x.shape[axis] == 0:
        raise EmptyReductionError(f"nanmedian(): Expected reduction dim {axis} to have non-zero size.")
    xp = np if type(x._data) is np.ndarray else __import__("cupy")
    order = xp.argsort(x._data, axis=axis, kind="stable")  # NaNs sort last
    k = (~xp.isnan(x._data)).sum(axis=axis, keepdims=True)
    pos = xp.maximum((k - 1) // 2, 0)
    idx = xp.take_along_axis(order, pos, axis=axis).astype(np.int64)
    values = gather(x, axis, Tensor._wrap(idx))
    if not keepdim:
        values, idx = values.squeeze(axis), idx.squeeze(axis)
    return NanmedianResult(values, Tensor._wrap(idx))


def histogram(input, bins=100, *, range=None, weight=None, density: bool = False):
    """``(hist, bin_edges)`` of a floating tensor: ``bins`` equal bins over ``range`` (default
    the data's min..max) or the given edges (a 1-D tensor); ``weight`` weighs each element,
    ``density`` normalises to a probability density. Not differentiable, as PyTorch."""
    x = as_tensor(input, "histogram")
    if x.dtype.kind not in "fc":
        raise DTypeNotImplementedError(f'"histogramdd" not implemented for {x.dtype}')
    data = x.numpy(force=True).reshape(-1)
    w = None if weight is None else as_tensor(weight, "histogram").numpy(force=True).reshape(-1)
    if w is not None and w.shape != data.shape:
        raise ValueRangeError(f"histogram: weight has {w.size} elements, the input {data.size}")
    if isinstance(bins, Tensor):
        edges = bins.numpy(force=True).astype(x.dtype)
        if edges.ndim != 1 or edges.size < 2:
            raise ValueRangeError("histogram: bins must be a 1-D tensor with at least 2 edges")
        if (np.diff(edges) < 0).any():
            raise ValueRangeError("histogram: bin edges must be increasing")
        hist, out_edges = np.histogram(data, bins=edges, weights=w, density=density)
    else:
        if int(bins) <= 0:
            raise ValueRangeError(f"histogram(): bins must be > 0, but got {bins} for dimension 0")
        lo, hi = (float(data.min()), float(data.max())) if range is None and data.size else (range or (0.0, 0.0))
        if lo > hi:
            raise ValueRangeError(f"histogram: min should not exceed max, but got min {lo} max {hi}")
        if lo == hi:  # as PyTorch: widen an empty range by one on each side... of half a unit
            lo, hi = lo - 0.5, hi + 0.5
        hist, out_edges = np.histogram(data, bins=int(bins), range=(lo, hi), weights=w, density=density)
    dev = x.device
    return HistogramResult(Tensor._wrap(backend.to_device(hist.astype(x.dtype), dev)),
                           Tensor._wrap(backend.to_device(out_edges.astype(x.dtype), dev)))


# ----------------------------------------------------------------------------- predicates


def positive(input):
    """``input`` itself (PyTorch's unary plus); a bool tensor is refused, as PyTorch."""
    x = as_tensor(input, "positive")
    if x.dtype.kind == "b":
        raise DTypeError("The `+` operator, on a bool tensor is not supported.")
    return x


def isreal(input):
    """Elementwise: true where the imaginary part is 0 (everywhere for a real tensor)."""
    x = as_tensor(input, "isreal")
    if x._data.dtype.kind == "c":  # cplx
        return Tensor._wrap(x._data.imag == 0)
    return Tensor._wrap(backend.array_module(x.device).ones(x.shape, dtype=bool))


def is_signed(input) -> bool:
    return as_tensor(input, "is_signed").dtype.kind in "fic"  # cplx: complex is signed, as in PyTorch


def is_complex(input) -> bool:
    """Whether the dtype is complex (complex64, complex128)."""
    return as_tensor(input, "is_complex")._data.dtype.kind == "c"


def is_same_size(input, other) -> bool:
    return tuple(as_tensor(input, "is_same_size").shape) == tuple(as_tensor(other, "is_same_size").shape)


def is_nonzero(input) -> bool:
    """The truth of a one-element tensor (RuntimeError for more or no elements)."""
    x = as_tensor(input, "is_nonzero")
    if x.numel() == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if x.numel() > 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(x.item())


def get_device(input) -> int:
    """-1 for a CPU tensor, the GPU's index for a CUDA one."""
    x = as_tensor(input, "get_device")
    if x.device.type == "cpu":
        return -1
    return int(getattr(x._data, "device").id)


def detach(input):
    return as_tensor(input, "detach").detach()


def fill(input, value):
    """A new tensor of input's shape and dtype filled with ``value`` (torch.fill)."""
    x = as_tensor(input, "fill")
    return fill_(x * 0 if x.dtype.kind in "fc" else Tensor._wrap(x._data.copy()), value)


# ----------------------------------------------------------------------------- small activations


def prelu(input, weight):
    """``max(0, x) + weight · min(0, x)``, ``weight`` one value or one per channel (dim 1)."""
    x, w = as_tensor(input, "prelu"), as_tensor(weight, "prelu")
    if w.ndim > 1:
        raise ValueRangeError(f"prelu: weight must be a scalar or 1-D, got shape {tuple(w.shape)}")
    n = w.numel()
    if n != 1:
        channels = x.shape[1] if x.ndim >= 2 else (x.shape[0] if x.ndim == 1 else 1)
        if n != channels:
            raise ValueRangeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                                  f"{n} and channel size = {channels}.")
        if x.ndim >= 2:
            w = reshape(w, *([1, n] + [1] * (x.ndim - 2)))
    elif w.ndim:
        w = reshape(w, ())
    return where(x.detach() > 0, x, mul(x, w))


def hardshrink(input, lambd: float = 0.5):
    """``x`` where ``|x| > lambd``, 0 elsewhere."""
    x = as_tensor(input, "hardshrink")
    keep = (x.detach() > lambd) | (x.detach() < -lambd)
    return mul(x, keep.to(x.dtype))


# ----------------------------------------------------------------------------- conversions, legacy


def byte(x):
    return to(x, np.uint8)


def char(x):
    return to(x, np.int8)


def short(x):
    return to(x, np.int16)


def new(x, *args, **kwargs):
    """Legacy ``x.new(...)``: ``new(*sizes)`` or ``new(torch.Size)`` an uninitialised tensor,
    ``new(data)`` (a list/tuple/array) a tensor, ``new(tensor)`` that tensor (same dtype
    required), ``new()`` an empty one: all with x's dtype and device."""
    device = kwargs.pop("device", x.device)
    if kwargs:
        raise TypeError(f"new(): unexpected keyword arguments {sorted(kwargs)}")
    if not args:
        return factories.empty(0, dtype=x.dtype, device=device)
    first = args[0]
    if len(args) == 1 and isinstance(first, Tensor):
        if first.dtype != x.dtype:
            raise TypeError(f"new(): expected a tensor of dtype {x.dtype}, got {first.dtype}")
        return first
    sizes = None
    if all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args):
        sizes = tuple(int(a) for a in args)
    elif len(args) == 1 and type(first).__name__ == "Size":
        sizes = tuple(first)
    if sizes is not None:
        return factories.empty(*sizes, dtype=x.dtype, device=device)
    if len(args) == 1:
        return factories.tensor(np.asarray(first), dtype=x.dtype, device=device)
    raise TypeError(f"new(): expected sizes, a Size, data or a tensor, got {args!r}")


def _plain_write_check(name, x):
    if x.requires_grad and autograd.is_grad_enabled():
        raise RuntimeError(f"Can't call {name}() on Variable that requires grad. Use var.detach().{name}() instead.")
    if x.device.type != "cpu":
        raise TypeError(f"{name}() is only implemented on CPU tensors")


def apply_(x, callable):
    """``x[i] = callable(x[i])`` for every element, in place (CPU, no graph, slow: Python)."""
    _plain_write_check("apply_", x)
    flat = [callable(v) for v in x._data.reshape(-1).tolist()]
    x._data[...] = np.asarray(flat, dtype=x.dtype).reshape(x.shape)
    bump_version(x._data)
    return x


def map_(x, tensor, callable):
    """``x[i] = callable(x[i], tensor[i])`` with ``tensor`` broadcast to x, in place (CPU)."""
    _plain_write_check("map_", x)
    other = np.broadcast_to(as_tensor(tensor, "map_").numpy(force=True), x.shape)
    flat = [callable(a, b) for a, b in zip(x._data.reshape(-1).tolist(), other.reshape(-1).tolist())]
    x._data[...] = np.asarray(flat, dtype=x.dtype).reshape(x.shape)
    bump_version(x._data)
    return x


# ----------------------------------------------------------------------------- random fills


def _assign(name, x, arr):
    if x.requires_grad and autograd.is_grad_enabled() and x._node is None:
        raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an in-place operation")
    x._data[...] = arr.astype(x.dtype) if hasattr(arr, "astype") else arr
    bump_version(x._data)
    if x._node is not None:  # the old values are gone: x no longer depends on its history
        x._node, x.requires_grad = None, False
    return x


def random_(x, from_=0, to=None, *, generator=None, **kwargs):
    """Integers drawn uniformly from [from, to - 1]: ``random_(to)``, ``random_(from, to)``, or
    ``random_()`` for [0, 2**mantissa] (floats) / [0, dtype max] (integers), as PyTorch."""
    from_ = kwargs.pop("from", from_)
    to = kwargs.pop("to", to)
    if kwargs:
        raise TypeError(f"random_(): unexpected keyword arguments {sorted(kwargs)}")
    if to is None and from_ != 0:
        from_, to = 0, from_
    if to is None:
        if x.dtype.kind in "fc":
            to = 2 ** (np.finfo(x.dtype).nmant + 1) + 1
        elif x.dtype.kind == "b":
            to = 2
        else:
            to = int(np.iinfo(x.dtype).max) + 1
    if int(from_) >= int(to):
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={from_} >= to={to}")
    return _assign("random_", x, backend.rng(x.device, generator).integers(int(from_), int(to), size=tuple(x.shape)))


def cauchy_(x, median: float = 0.0, sigma: float = 1.0, *, generator=None):
    """Fill with Cauchy(median, sigma) draws."""
    if x.dtype.kind not in "fc":
        raise DTypeError(f"Cauchy distribution is a continuous probability distribution. dtype must be a floating "
                         f"point but you specified {x.dtype}")
    g = backend.rng(x.device, generator)
    return _assign("cauchy_", x, median + sigma * g.standard_cauchy(size=tuple(x.shape)))


def log_normal_(x, mean: float = 1.0, std: float = 2.0, *, generator=None):
    """Fill with exp(N(mean, std²)) draws."""
    if x.dtype.kind not in "fc":
        raise DTypeError(f"log_normal_ expects a floating point tensor, got {x.dtype}")
    if std <= 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
    return _assign("log_normal_", x, backend.rng(x.device, generator).lognormal(mean, std, size=tuple(x.shape)))


def geometric_(x, p: float, *, generator=None):
    """Fill with the number of Bernoulli(p) trials up to the first success (1, 2, ...)."""
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    return _assign("geometric_", x, backend.rng(x.device, generator).geometric(p, size=tuple(x.shape)))


# ----------------------------------------------------------------------------- storage-level


def resize_(x, *sizes, memory_format=None):
    """PyTorch's ``resize_``: x becomes a contiguous tensor of ``sizes`` over its storage,
    starting at its storage offset; the first elements keep their values (storage order),
    and a storage too small is replaced by a larger one (new elements are zero here,
    uninitialised in PyTorch). The same shape is a no-op. Refused on a tensor that requires grad."""
    if len(sizes) == 1 and not isinstance(sizes[0], (int, np.integer)):
        sizes = tuple(sizes[0])
    sizes = tuple(int(s) for s in sizes)
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"Trying to create tensor with negative dimension: {list(sizes)}")
    if x.requires_grad:
        raise RuntimeError("cannot resize variables that require grad")
    if sizes == tuple(x.shape):
        return x
    n = int(np.prod(sizes)) if sizes else 1
    root = storage_of(x._data)
    offset = x.storage_offset()
    flat = root.reshape(-1) if root.flags.c_contiguous else None
    if flat is not None and offset + n <= flat.size:
        x._data = flat[offset:offset + n].reshape(sizes)
    else:
        xp = backend.array_module(x.device)
        new_arr = xp.zeros(n, x.dtype)
        old = flat[offset:] if flat is not None else x._data.reshape(-1)
        k = builtins.min(n, old.size)
        new_arr[:k] = old[:k]
        x._data = new_arr.reshape(sizes)
    return x


def resize_as_(x, other, memory_format=None):
    return resize_(x, tuple(as_tensor(other, "resize_as_").shape))


def pin_memory(x, device=None):
    """A copy of x in page-locked host memory. Without a GPU there is no accelerator to pin
    for: RuntimeError, as PyTorch's CPU-only build."""
    if not backend.cuda_available():
        raise RuntimeError("Cannot access accelerator device when none is available.")
    if x.device.type != "cpu":
        raise RuntimeError(f"cannot pin '{x.device}' memory: only dense CPU tensors can be pinned")
    import cupyx

    out = cupyx.empty_pinned(tuple(x.shape), dtype=x.dtype)
    out[...] = x._data
    return Tensor._wrap(out)


def share_memory_(x):
    """Returns x: tinymm tensors are process-local NumPy/CuPy arrays (no shared-memory move);
    PyTorch moves the storage to shared memory for worker processes."""
    return x


def register_post_accumulate_grad_hook(x, hook):
    """Call ``hook(x)`` after x's ``.grad`` was accumulated in a backward (leaves only)."""
    if x._node is not None:
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
    if not x.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    return autograd.register_post_accumulate_hook(x, hook)


TENSOR_MORE_OPS = (
    (aminmax, "aminmax", "aminmax"),
    (nanmedian, "nanmedian", "nanmedian"),
    (histogram, "histogram", "histogram"),
    (positive, "positive", "positive"),
    (isreal, "isreal", "isreal"),
    (is_signed, "is_signed", "is_signed"),
    (is_complex, "is_complex", "is_complex"),
    (is_same_size, "is_same_size", "is_same_size"),
    (is_nonzero, "is_nonzero", "is_nonzero"),
    (get_device, "get_device", "get_device"),
    (detach, None, "detach"),
    (fill, None, "fill"),
    (fill_, None, "fill_"),
    (zero_, None, "zero_"),
    (prelu, "prelu", "prelu"),
    (hardshrink, "hardshrink", "hardshrink"),
    (byte, "byte", False),
    (char, "char", False),
    (short, "short", False),
    (new, "new", False),
    (apply_, "apply_", False),
    (map_, "map_", False),
    (random_, "random_", False),
    (cauchy_, "cauchy_", False),
    (log_normal_, "log_normal_", False),
    (geometric_, "geometric_", False),
    (resize_, "resize_", False),
    (resize_as_, "resize_as_", "resize_as_"),
    (pin_memory, "pin_memory", False),
    (share_memory_, "share_memory_", False),
    (register_post_accumulate_grad_hook, "register_post_accumulate_grad_hook", False),
)

# Properties (no ``torch.*`` function).
TENSOR_MORE_PROPERTIES = {
    "is_cpu": property(lambda self: self.device.type == "cpu"),
    "retains_grad": property(lambda self: bool(self._retain_grad) and self._node is not None),
}
