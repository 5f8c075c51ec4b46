"""Creating tensors: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, random draws, ``*_like``.

Every factory takes ``dtype=`` (default: the default float dtype for floating factories),
``device=`` ("cpu" or "cuda"; None, the default, is ``tinymm.get_default_device()``) and
``requires_grad=``. Random draws use tinymm's generator,
seeded by ``tinymm.manual_seed``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from tinymm import backend
from tinymm.dtype_objects import default_complex_dtype
from tinymm.layout_objects import check_layout
from tinymm.fused_rounding import arange_values, linspace_values
from tinymm.ops._util import DTypeNotImplementedError, torch_dtype_name
from tinymm.ops.scalar_fit import check_scalar_fits
from tinymm.tensor import Tensor
from tinymm.tensor_data_checks import check_python_ints, check_strides, diagnose


class FactoryDTypeError(RuntimeError, TypeError):
    """A dtype a factory does not make (PyTorch raises RuntimeError, e.g. linspace with bool)."""


class FactorySizeError(RuntimeError, ValueError):
    """A negative size (PyTorch raises RuntimeError; catchable as ValueError, as NumPy's)."""


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)) and not (isinstance(s, Tensor) and s.dtype.kind in "iu" and s.ndim == 0):
            raise TypeError(f"size must be a tuple of ints, but found element {s!r} of type {type(s).__name__}")
    out = tuple(int(s) for s in size)
    if any(s < 0 for s in out):
        raise FactorySizeError(f"Trying to create tensor with negative dimension: size {out}")
    return out


def _size_given(name, args, size):
    """The size given positionally (``zeros(2, 3)``, ``zeros((2, 3))``) or by keyword
    (``zeros(size=(2, 3))``, as PyTorch also accepts), never both."""
    if size is None:
        return args
    if args:
        raise TypeError(f"{name}() got multiple values for argument 'size'")
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"{name}(): argument 'size' must be tuple of ints, not {type(size).__name__}")
    return (size,)


def _finish(arr, requires_grad):
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _dtype(dtype):
    return backend.get_default_dtype() if dtype is None else np.dtype(dtype)




def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor from data (copied). Python floats become the default float dtype."""
    check_strides(data, "tensor")  # (a NumPy array the user passed; a Tensor's own array may be any view)
    if isinstance(data, Tensor):
        data = data._data
    arr = data.copy() if hasattr(data, "copy") and not np.isscalar(data) else data
    if device is None and backend.default_device() != "cpu" and backend.device_of(arr) == "cpu":  # to the default device
        device = backend.default_device()
    try:
        t = Tensor._of(arr, dtype=dtype, device=device, requires_grad=requires_grad)
    except (TypeError, ValueError, OverflowError):
        err = diagnose(data, "tensor")
        if err is None:
            raise
        raise err from None
    if dtype is None:
        check_python_ints(data, t._data, "tensor")
    return t


def from_numpy(arr: np.ndarray) -> Tensor:
    """Wrap a NumPy array without copying (its dtype is kept)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(arr).__name__}")
    check_strides(arr, "from_numpy")
    err = diagnose(arr, "from_numpy") if arr.dtype.kind not in "fiubc" else None
    if err is not None:
        raise err
    return Tensor._of(arr)


def zeros(*args, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = backend.array_module(device)
    return _finish(xp.zeros(_size(_size_given("zeros", args, size)), _dtype(dtype)), requires_grad)


def ones(*args, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = backend.array_module(device)
    return _finish(xp.ones(_size(_size_given("ones", args, size)), _dtype(dtype)), requires_grad)


def empty(*args, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = backend.array_module(device)
    return _finish(xp.empty(_size(_size_given("empty", args, size)), _dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    if not isinstance(fill_value, (numbers.Number, np.generic)) and not (
            isinstance(fill_value, Tensor) and fill_value.numel() == 1):
        raise TypeError(f"full(): argument 'fill_value' (position 2) must be Number, not {type(fill_value).__name__}")
    xp = backend.array_module(device)
    if dtype is None and isinstance(fill_value, (bool, np.bool_)):
        dtype = np.bool_
    elif dtype is None and isinstance(fill_value, (int, np.integer)):
        dtype = np.int64
    elif dtype is None and isinstance(fill_value, (complex, np.complexfloating)):  # cplx
        dtype = default_complex_dtype(backend.get_default_dtype())
    shape = _size((size,))
    fill_value = check_scalar_fits(fill_value, _dtype(dtype), half_overflows=int(np.prod(shape)) != 1)
    return _finish(xp.full(shape, fill_value, _dtype(dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    if step == 0:
        raise FactorySizeError("arange: step must be nonzero")
    if end is None:
        start, end = 0, start
    for v in (start, end, step):
        if isinstance(v, (numbers.Real, np.generic)) and not math.isfinite(float(v)):
            raise FactorySizeError(f"arange: unsupported range: {start} -> {end} (step {step}): bounds and step must "
                                   f"be finite")
    if (end - start) * step < 0:  # PyTorch refuses rather than giving an empty tensor
        raise FactorySizeError(f"arange: upper bound and lower bound inconsistent with step sign "
                               f"(start={start}, end={end}, step={step})")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if is_int else backend.get_default_dtype()
    xp = backend.array_module(device)
    values = xp.arange(start, end, step, dtype=np.dtype(dtype))
    if xp is np and values.dtype in (np.float32, np.float64):
        from tinymm.runtime import get_num_threads

        # PyTorch's rounding, to the last bit (``tinymm.fused_rounding``)
        values = arange_values(np, start, step, values.shape[0], values.dtype, get_num_threads())
    return _finish(values, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from start to end, rounded to the last bit as PyTorch's
    CPU kernel rounds them (``tinymm.fused_rounding``); an integer dtype truncates toward
    zero (as PyTorch), bool is refused."""
    d = _dtype(dtype)
    if d.kind == "b":
        raise FactoryDTypeError("linspace: bool is not a supported dtype (use a floating or integer dtype)")
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise FactorySizeError(f"linspace: number of steps must be a non-negative integer, got {steps!r}")
    xp = backend.array_module(device)
    return _finish(linspace_values(xp, start, end, int(steps), d), requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False) -> Tensor:
    lin = linspace(start, end, steps, dtype=np.float64, device=device)
    xp = backend.array_module(device)
    return _finish((xp.asarray(base, np.float64) ** lin._data).astype(_dtype(dtype)), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    _size((n,) if m is None else (n, m))
    xp = backend.array_module(device)
    return _finish(xp.eye(n, m, dtype=_dtype(dtype)), requires_grad)


def _floating_draw(d, kernel: str) -> None:
    """rand/randn draw real numbers: an integer or bool dtype would silently truncate them
    (rand to all zeros), which PyTorch refuses with its kernel's NotImplementedError."""
    if d.kind not in "fc":
        raise DTypeNotImplementedError(f"\"{kernel}\" not implemented for '{torch_dtype_name(d)}' (a random draw of "
                                       f"real numbers cannot have dtype {d}; use randint for integers)")


def randn(*args, size=None, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal draws (from ``generator`` when given, else the default generator)."""
    size = _size_given("randn", args, size)
    d = _dtype(dtype)
    _floating_draw(d, "normal_kernel_cpu")
    if d.kind == "c":  # cplx: as PyTorch, real and imaginary parts each N(0, 1/2), drawn as (..., 2)
        part = np.dtype(f"f{d.itemsize // 2}")
        pairs = backend.rng(device, generator).standard_normal(_size(size) + (2,), dtype=part) * part.type(math.sqrt(0.5))
        return _finish(pairs.view(d)[..., 0], requires_grad)
    arr = backend.rng(device, generator).standard_normal(_size(size), dtype=d if d in (np.float32, np.float64) else np.float64)
    return _finish(arr.astype(d, copy=False), requires_grad)


def rand(*args, size=None, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform draws in [0, 1) (from ``generator`` when given)."""
    size = _size_given("rand", args, size)
    d = _dtype(dtype)
    _floating_draw(d, "check_uniform_bounds")
    if d.kind == "c":  # cplx: as PyTorch, real and imaginary parts each uniform in [0, 1)
        part = np.dtype(f"f{d.itemsize // 2}")
        return _finish(backend.rng(device, generator).random(_size(size) + (2,), dtype=part).view(d)[..., 0], requires_grad)
    arr = backend.rng(device, generator).random(_size(size), dtype=d if d in (np.float32, np.float64) else np.float64)
    return _finish(arr.astype(d, copy=False), requires_grad)


def randint(low, high=None, size=None, generator=None, dtype=np.int64, device=None) -> Tensor:
    """Integers in [low, high) (or [0, low) when high is omitted); PyTorch's
    ``randint(high, size)`` spelling is accepted too. ``size`` is required, as in PyTorch
    (``randint(5)`` is a TypeError there, not a scalar draw); ``size=()`` gives a 0-d tensor."""
    if isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    if size is None:
        raise TypeError(f"randint() missing the required argument 'size' (got low={low!r}, high={high!r}): "
                        f"call randint(high, size) or randint(low, high, size), e.g. randint(0, 10, (3,))")
    if high is None:
        low, high = 0, low
    if low >= high:
        raise FactorySizeError(f"randint: expects 'low' to be less than 'high', but got low={low} >= high={high}")
    arr = backend.rng(device, generator).integers(low, high, size=_size((size,)) if size != () else ())
    return Tensor._wrap(arr.astype(dtype))


def randperm(n, generator=None, dtype=np.int64, device=None, requires_grad=False) -> Tensor:
    """A random permutation of 0..n-1 (from ``generator`` when given)."""
    _size((n,))  # a negative n is refused (FactorySizeError)
    return _finish(backend.rng(device, generator).permutation(int(n)).astype(np.dtype(dtype)), requires_grad)


# ----------------------------------------------------------------------------- *_like
# PyTorch's keywords: ``zeros_like(input, *, dtype=None, layout=None, device=None,
# requires_grad=False, memory_format=torch.preserve_format)`` (the random ones also take a
# ``generator``). dtype and device default to the input's. Every tinymm array is row-major,
# so each memory format gives the same tensor (``contiguous(memory_format=)`` does the same);
# a value that is not a memory format is refused by name.


def _like(name: str, t, dtype, layout, device, memory_format) -> tuple:
    """(shape, dtype, device) of ``name``'s result, its keywords checked once here."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(t).__name__}")
    check_layout(layout, name)
    if memory_format is not None and type(memory_format).__name__ != "memory_format":
        raise TypeError(f"{name}(): argument 'memory_format' must be torch.memory_format, "
                        f"not {type(memory_format).__name__}")
    return t.shape, (t.dtype if dtype is None else dtype), (t.device if device is None else device)


def empty_like(input: Tensor, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None, pin_memory=False) -> Tensor:
    shape, dtype, device = _like("empty_like", input, dtype, layout, device, memory_format)
    return pinned(empty(shape, dtype=dtype, device=device, requires_grad=requires_grad), pin_memory)


def zeros_like(input: Tensor, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None, pin_memory=False) -> Tensor:
    shape, dtype, device = _like("zeros_like", input, dtype, layout, device, memory_format)
    return pinned(zeros(shape, dtype=dtype, device=device, requires_grad=requires_grad), pin_memory)


def ones_like(input: Tensor, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None, pin_memory=False) -> Tensor:
    shape, dtype, device = _like("ones_like", input, dtype, layout, device, memory_format)
    return pinned(ones(shape, dtype=dtype, device=device, requires_grad=requires_grad), pin_memory)


def full_like(input: Tensor, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None, pin_memory=False) -> Tensor:
    shape, dtype, device = _like("full_like", input, dtype, layout, device, memory_format)
    return pinned(full(shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad), pin_memory)


def randn_like(input: Tensor, *, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None, pin_memory=False) -> Tensor:
    shape, dtype, device = _like("randn_like", input, dtype, layout, device, memory_format)
    return pinned(randn(shape, generator=generator, dtype=dtype, device=device, requires_grad=requires_grad), pin_memory)


def rand_like(input: Tensor, *, generator=None, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None, pin_memory=False) -> Tensor:
    shape, dtype, device = _like("rand_like", input, dtype, layout, device, memory_format)
    return pinned(rand(shape, generator=generator, dtype=dtype, device=device, requires_grad=requires_grad), pin_memory)


def randint_like(input: Tensor, low, high=None, *, generator=None, dtype=None, layout=None, device=None,
                 requires_grad=False, memory_format=None, pin_memory=False) -> Tensor:
    """Integers in [low, high) (``randint_like(x, high)``: in [0, high)), shaped like ``input``,
    of its dtype unless ``dtype`` is given (a float input gives float integers, as PyTorch)."""
    shape, dtype, device = _like("randint_like", input, dtype, layout, device, memory_format)
    out = randint(low, high, shape, generator=generator, dtype=dtype, device=device)
    if requires_grad:
        out.requires_grad_(True)  # refused for an integer dtype, as PyTorch
    return pinned(out, pin_memory)


def pinned(t: Tensor, pin_memory: bool) -> Tensor:
    """``t``, or its copy in page-locked memory for ``pin_memory=True`` (a RuntimeError without
    a GPU, as PyTorch's CPU build gives)."""
    return t.pin_memory() if pin_memory else t
