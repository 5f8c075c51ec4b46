"""Helpers shared by the distributions: parameter broadcasting, probs/logits conversion,
``lazy_property`` (computed once, on first use) and the draws from tinymm's global generator.

Every draw goes through ``tinymm.backend.rng`` — the generator ``tinymm.manual_seed`` seeds —
so a seeded program draws the same samples on every run.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from tinymm import backend
from tinymm.autograd import no_grad
from tinymm.factories import tensor
from tinymm.nn.functional import pad
from tinymm.ops import broadcast_tensors, log, log1p, sigmoid, softmax, where
from tinymm.tensor import Size, Tensor

__all__ = [
    "broadcast_all",
    "clamp_probs",
    "lazy_property",
    "logits_to_probs",
    "probs_to_logits",
    "tril_matrix_to_vec",
    "vec_to_tril_matrix",
]

euler_constant = 0.57721566490153286060  # γ, as torch.distributions.utils.euler_constant


def finfo_of(dtype):
    return np.finfo(np.dtype(dtype))


def broadcast_all(*values):
    """Tensors and numbers → tensors of one broadcast shape. Numbers take the dtype of the
    tensors among ``values`` (the default dtype when there are none), as PyTorch's
    ``broadcast_all``."""
    if not all(isinstance(v, (Tensor, numbers.Number)) for v in values):
        raise ValueError("Input arguments must all be instances of numbers.Number or tinymm.Tensor.")
    tensors = [v for v in values if isinstance(v, Tensor)]
    if not tensors:
        dtype = backend.get_default_dtype()
        device = "cpu"
    else:
        dtype = tensors[0].dtype
        device = tensors[0].device
    out = [v if isinstance(v, Tensor) else tensor(float(v), dtype=dtype, device=device) for v in values]
    return broadcast_tensors(*out)


def batch_shape_of(given, broadcast: Tensor) -> Size:
    """The batch shape of parameters ``given`` as the user passed them, ``broadcast`` being one
    of them after ``broadcast_all``: () when every one was a plain number (PyTorch's rule:
    ``Normal(0., 1.)`` has batch_shape ()), else the broadcast shape."""
    if all(isinstance(p, numbers.Number) for p in given):
        return Size()
    return broadcast.shape


def as_float_tensor(value, like: Tensor) -> Tensor:
    """``value`` (a number or tensor) as a tensor in ``like``'s dtype, for values given to log_prob."""
    if isinstance(value, Tensor):
        return value
    return tensor(value, dtype=like.dtype, device=like.device)


def sum_rightmost(value, dim: int):
    """Sum out the ``dim`` rightmost dimensions (none when ``dim`` is 0)."""
    if dim == 0:
        return value
    return value.reshape(tuple(value.shape[: value.ndim - dim]) + (-1,)).sum(-1)


def clamp_probs(probs):
    """Probabilities clamped to [eps, 1 − eps] of their dtype, so their logs stay finite."""
    eps = float(finfo_of(probs.dtype).eps)
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs, is_binary: bool = False):
    """log p (categorical) or log(p/(1 − p)) (binary), with p clamped away from 0 and 1."""
    p = clamp_probs(probs)
    if is_binary:
        return log(p) - log1p(-p)
    return log(p)


def logits_to_probs(logits, is_binary: bool = False):
    """sigmoid (binary) or softmax over the last dim (categorical)."""
    if is_binary:
        return sigmoid(logits)
    return softmax(logits, dim=-1)


class lazy_property:
    """A property computed on first access and then stored on the instance (so later reads
    are plain attribute reads). Distributions use it for whichever of probs/logits was not
    given; argument validation skips a lazy parameter that has not been computed yet."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__
        self.__name__ = wrapped.__name__

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        value = self.wrapped(instance)
        instance.__dict__[self.wrapped.__name__] = value
        return value


def shape_of(sample_shape) -> Size:
    if isinstance(sample_shape, int):
        return Size((sample_shape,))
    return Size(tuple(int(s) for s in sample_shape))


def draw(kind: str, shape, like: Tensor, *args) -> Tensor:
    """A tensor of ``shape`` in ``like``'s dtype and device, drawn from the global generator:
    ``normal`` (standard normal), ``uniform`` (on [args[0], args[1]) ), ``exponential``
    (rate 1), ``cauchy`` (standard). Drawn in float64 and cast, so float32 and float64 draws
    of one seed agree up to rounding."""
    rng = backend.rng(like.device)
    shape = tuple(shape)
    if kind == "normal":
        arr = rng.standard_normal(shape)
    elif kind == "uniform":
        low, high = args
        arr = low + (high - low) * rng.random(shape)
    elif kind == "exponential":
        arr = rng.standard_exponential(shape)
    elif kind == "cauchy":
        arr = rng.standard_cauchy(shape)
    else:
        raise ValueError(f"draw: unknown kind {kind!r}")
    return Tensor._wrap(arr.astype(like.dtype, copy=False))


def numpy_draw(fn_name: str, like: Tensor, *params, dtype=None) -> Tensor:
    """``numpy.random.Generator.<fn_name>(*params)`` on the global generator, parameters given
    as tensors (already expanded to the output shape), result in ``dtype`` (``like``'s dtype
    when not given). No gradient: for sample(), never rsample()."""
    rng = backend.rng(like.device)
    with no_grad():
        arrays = [p.detach()._data if isinstance(p, Tensor) else p for p in params]
    out = getattr(rng, fn_name)(*arrays)
    return Tensor._wrap(np.asarray(out).astype(dtype or like.dtype, copy=False))


def xlogy(x, y):
    """x·log(y), and 0 where x is 0 (even where y is 0), with gradients that stay finite there."""
    zero = x == 0
    safe_y = where(zero, 1.0, y) if isinstance(y, Tensor) else y
    return where(zero, 0.0, x * (safe_y.log() if isinstance(safe_y, Tensor) else math.log(safe_y)))


def check_probs_or_logits(probs, logits) -> None:
    """Exactly one of the two must be given (PyTorch's ValueError otherwise)."""
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")


class BinaryProbsLogits:
    """Mixin for distributions of a binary event given by exactly one of ``probs`` and
    ``logits`` (Bernoulli, Binomial, Geometric, LogitRelaxedBernoulli): the given one is
    stored (and is ``_param``), the other is computed on first use."""

    def _set_probs_or_logits(self, probs, logits, *others):
        """Store probs or logits broadcast with ``others`` (returned broadcast, in order)."""
        check_probs_or_logits(probs, logits)
        name, given = ("probs", probs) if probs is not None else ("logits", logits)
        *others, param = broadcast_all(*others, given)
        self.__dict__[name] = param
        self._param = param
        return others

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self):
        return self._param.shape


def _tril_positions(n: int, diag: int):
    """(rows, cols) of the entries j < i + diag + 1 of an n × n matrix, in row order."""
    idx = np.arange(n)
    return np.nonzero(idx[None, :] < idx[:, None] + (diag + 1))


def tril_matrix_to_vec(mat, diag: int = 0):
    """The lower-triangular entries (on and below diagonal ``diag``) of (..., n, n) ``mat``,
    in row order, as (..., m) vectors; differentiable."""
    n = mat.shape[-1]
    if diag < -n or diag >= n:
        raise ValueError(f"diag ({diag}) provided is outside [{-n}, {n - 1}].")
    rows, cols = _tril_positions(n, diag)
    return mat[..., rows, cols]


def vec_to_tril_matrix(vec, diag: int = 0):
    """The inverse of ``tril_matrix_to_vec``: (..., m) vectors into (..., n, n) matrices that
    are zero above diagonal ``diag``; ValueError when m is no such triangle's size."""
    m = vec.shape[-1]
    # the positive root of n² + (1 + 2·diag)·n − |diag|·(diag + 1) − 2m = 0
    b = 1 + 2 * diag
    n = (-b + (b**2 + 8 * m + 4 * abs(diag) * (diag + 1)) ** 0.5) / 2
    if round(n) - n > float(finfo_of(vec.dtype).eps):
        raise ValueError(
            f"The size of last dimension is {m} which cannot be expressed as "
            "the lower triangular part of a square D x D matrix."
        )
    n = round(n)
    rows, cols = _tril_positions(n, diag)
    # where each matrix entry reads from: its position in vec, or the zero appended at the end
    source = np.full((n, n), m, dtype=np.int64)
    source[rows, cols] = np.arange(len(rows))
    padded = pad(vec, (0, 1), value=0.0)
    return padded[..., source.reshape(-1)].reshape(tuple(vec.shape[:-1]) + (n, n))
