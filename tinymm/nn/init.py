"""Weight initialisation with PyTorch's formulas (``torch.nn.init``), in place under no_grad.

fan_in / fan_out of a weight (out, in, *kernel) are in·Πkernel and out·Πkernel. Kaiming
(He) draws with std = gain/√fan; Xavier (Glorot) with std = gain·√(2/(fan_in + fan_out)); the
uniform versions use the bound √3·std that gives the same standard deviation.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from tinymm import backend
from tinymm.tensor import Tensor


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for ``nonlinearity``; 1 (an int, as PyTorch) for the linear ones."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
              "sigmoid")
    if nonlinearity in linear:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fans(t: Tensor):
    if t.ndim < 2:
        raise ValueError(f"fan in/out need a tensor with at least 2 dims, got shape {tuple(t.shape)}")
    receptive = int(np.prod(t.shape[2:])) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def _fill(t: Tensor, arr) -> Tensor:
    """Write values (a host array, or one of ``t``'s device) into ``t`` in place (on its
    device, in its dtype)."""
    t._data[...] = backend.to_device(np.asarray(backend.to_device(arr, "cpu"), dtype=t.dtype), t.device)
    return t


def _draws(t: Tensor, generator):
    """The generator an init draws from: the default CPU one, or ``generator``, which must be
    on ``t``'s device (PyTorch's RuntimeError otherwise)."""
    if generator is None:
        return backend.rng("cpu")
    return generator.draws(t.device)


def _uniform(t: Tensor, a, b, generator):
    # a + (b - a)·U[0, 1): NumPy's own uniform(a, b), number for number, and CuPy's too
    if a > b:  # the formula would draw from (b, a] without a word
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}")
    return a + (b - a) * _draws(t, generator).random(t.shape)


def _normal(t: Tensor, mean, std, generator):
    if not std >= 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    return mean + std * _draws(t, generator).standard_normal(t.shape)


# Parameter names are PyTorch's (``tensor``, ``val``): code passes them by keyword.
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    return _fill(tensor, _uniform(tensor, a, b, generator))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    return _fill(tensor, _normal(tensor, mean, std, generator))


def constant_(tensor: Tensor, val: float) -> Tensor:
    tensor._data[...] = val
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(t, a, mode, nonlinearity):
    fan_in, fan_out = _fans(t)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None) -> Tensor:
    if 0 in tuple(tensor.shape):  # PyTorch: a warning and nothing to do (the fan would be 0)
        warnings.warn("Initializing zero-element tensors is a no-op")
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None) -> Tensor:
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op")
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def _calculate_fan_in_and_fan_out(t: Tensor):
    """(fan_in, fan_out) as PyTorch computes them (code written for torch calls this name)."""
    return _fans(t)


def _calculate_correct_fan(t: Tensor, mode: str) -> int:
    """probe3: PyTorch's private helper, which custom init code calls: fan_in or fan_out by ``mode``."""
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _fans(t)
    return fan_in if mode == "fan_in" else fan_out


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None) -> Tensor:
    """N(mean, std²) truncated to [a, b] (absolute bounds, as PyTorch), drawn by inverting the
    normal CDF on a uniform sample between CDF(a) and CDF(b), then clamped against rounding."""
    from scipy.special import erf, erfinv

    lo = 0.5 * (1 + erf((a - mean) / (std * math.sqrt(2.0))))
    hi = 0.5 * (1 + erf((b - mean) / (std * math.sqrt(2.0))))
    u = backend.to_device(_uniform(tensor, 2 * lo - 1, 2 * hi - 1, generator), "cpu")
    return _fill(tensor, np.clip(erfinv(u) * std * math.sqrt(2.0) + mean, a, b))


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """A (semi-)orthogonal matrix over (shape[0], rest flattened), scaled by ``gain``: the Q of
    a QR decomposition of a Gaussian matrix, with signs fixed by R's diagonal (Saxe et al.)."""
    t = tensor
    if t.ndim < 2:
        raise ValueError(f"orthogonal_: Only tensors with 2 or more dimensions are supported, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        return t
    rows = t.shape[0]
    cols = t.numel() // rows
    flat = backend.to_device(_draws(t, generator).standard_normal((rows, cols)), "cpu")
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(t, (gain * q).reshape(t.shape))


def eye_(tensor: Tensor) -> Tensor:
    """The identity in a 2-D tensor (ones on the diagonal of a non-square one)."""
    t = tensor
    if t.ndim != 2:
        raise ValueError(f"eye_: Only tensors with 2 dimensions are supported, got shape {tuple(t.shape)}")
    return _fill(t, np.eye(*t.shape))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """A 3-, 4- or 5-D convolution weight that passes its input through: for each group, out
    channel d takes in channel d at the kernel's centre (as many channels as both have)."""
    t = tensor
    if t.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: Only tensors with 3, 4, or 5 dimensions are supported, got shape {tuple(t.shape)}")
    if t.shape[0] % groups:
        raise ValueError(f"dirac_: dim 0 ({t.shape[0]}) must be divisible by groups ({groups})")
    per_group = t.shape[0] // groups
    arr = np.zeros(t.shape)
    centre = tuple(s // 2 for s in t.shape[2:])
    for g in range(groups):
        for d in range(min(per_group, t.shape[1])):
            arr[(g * per_group + d, d) + centre] = 1
    return _fill(t, arr)


def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator=None) -> Tensor:
    """A 2-D tensor drawn from N(0, std²) with ⌈sparsity·rows⌉ entries of each column zeroed."""
    t = tensor
    if t.ndim != 2:
        raise ValueError(f"sparse_: Only tensors with 2 dimensions are supported, got shape {tuple(t.shape)}")
    rows, cols = t.shape
    rng = backend.rng("cpu", generator)  # (on the host: a CPU generator)
    arr = rng.normal(0.0, std, size=(rows, cols))
    zeros = int(math.ceil(sparsity * rows))
    for c in range(cols):
        arr[rng.permutation(rows)[:zeros], c] = 0
    return _fill(t, arr)


def _deprecated(fn):
    """PyTorch's old names without the trailing underscore: they warn, then do the same."""
    import warnings

    old = fn.__name__[:-1]

    def alias(*args, **kwargs):
        warnings.warn(f"`nn.init.{old}` is now deprecated in favor of `nn.init.{fn.__name__}`.", FutureWarning,
                      stacklevel=2)
        return fn(*args, **kwargs)

    alias.__name__, alias.__doc__ = old, f"Deprecated: use ``{fn.__name__}``."
    return alias


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)
