"""Constraints: the set a parameter or a sample must lie in, as ``torch.distributions.constraints``.

``constraint.check(value)`` returns a bool tensor over the batch dims (the rightmost
``event_dim`` dims are reduced: a vector is valid when all of it is), and ``repr`` is PyTorch's
(``GreaterThan(lower_bound=0.0)``), since validation errors quote it. The module-level names
are the same as PyTorch's: ``real``, ``positive``, ``unit_interval``, ``simplex``,
``interval(a, b)``, ``independent(c, n)`` ...
"""
from __future__ import annotations

import numpy as np

from tinymm.autograd import no_grad
from tinymm.tensor import Tensor

__all__ = [
    "Constraint",
    "boolean",
    "cat",
    "corr_cholesky",
    "dependent",
    "dependent_property",
    "greater_than",
    "greater_than_eq",
    "half_open_interval",
    "independent",
    "integer_interval",
    "interval",
    "is_dependent",
    "less_than",
    "lower_cholesky",
    "lower_triangular",
    "MixtureSameFamilyConstraint",
    "multinomial",
    "nonnegative",
    "nonnegative_integer",
    "one_hot",
    "positive",
    "positive_definite",
    "positive_integer",
    "positive_semidefinite",
    "real",
    "real_vector",
    "simplex",
    "square",
    "stack",
    "symmetric",
    "unit_interval",
]


def _arr(value):
    """The array behind a tensor or number (checks need no gradient)."""
    if isinstance(value, Tensor):
        return value._data
    return np.asarray(value)


def _wrap(mask) -> Tensor:
    return Tensor._wrap(mask)


class Constraint:
    """A region of values. ``is_discrete``: a region of integers; ``event_dim``: how many
    rightmost dims make one event (checked together)."""

    is_discrete = False
    event_dim = 0

    def check(self, value) -> Tensor:
        """A bool tensor: whether each event of ``value`` satisfies the constraint."""
        with no_grad():
            return _wrap(self._check(_arr(value)))

    def _check(self, v):
        raise NotImplementedError

    def __repr__(self):
        return self.__class__.__name__[1:] + "()"


class _Dependent(Constraint):
    """Placeholder for a support that depends on other parameters (Uniform's support depends
    on low and high); it cannot be checked."""

    def __init__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        self._is_discrete = is_discrete
        self._event_dim = event_dim

    @property
    def is_discrete(self):
        if self._is_discrete is NotImplemented:
            raise NotImplementedError(".is_discrete cannot be determined statically")
        return self._is_discrete

    @property
    def event_dim(self):
        if self._event_dim is NotImplemented:
            raise NotImplementedError(".event_dim cannot be determined statically")
        return self._event_dim

    def __call__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        if is_discrete is NotImplemented:
            is_discrete = self._is_discrete
        if event_dim is NotImplemented:
            event_dim = self._event_dim
        return _Dependent(is_discrete=is_discrete, event_dim=event_dim)

    def check(self, x):
        raise ValueError("Cannot determine validity of dependent constraint")


def is_dependent(constraint) -> bool:
    """Whether ``constraint`` is a dependent placeholder (skipped by validation)."""
    return isinstance(constraint, _Dependent)


class _DependentProperty(property, _Dependent):
    """A property whose value is a constraint that depends on the instance (``support`` of
    Uniform), and that reads as ``dependent`` on the class."""

    def __init__(self, fn=None, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        property.__init__(self, fn)
        _Dependent.__init__(self, is_discrete=is_discrete, event_dim=event_dim)

    def __call__(self, fn):
        return _DependentProperty(fn, is_discrete=self._is_discrete, event_dim=self._event_dim)


class _IndependentConstraint(Constraint):
    """``base`` with ``reinterpreted_batch_ndims`` more dims folded into each event."""

    def __init__(self, base_constraint, reinterpreted_batch_ndims: int):
        self.base_constraint = base_constraint
        self.reinterpreted_batch_ndims = int(reinterpreted_batch_ndims)

    @property
    def is_discrete(self):
        return self.base_constraint.is_discrete

    @property
    def event_dim(self):
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def _check(self, v):
        result = self.base_constraint._check(v)
        n = self.reinterpreted_batch_ndims
        if result.ndim < n:
            expected = self.base_constraint.event_dim + n
            raise ValueError(f"Expected value.dim() >= {expected} but got {v.ndim}")
        if n:
            result = result.reshape(result.shape[: result.ndim - n] + (-1,)).all(-1)
        return result

    def __repr__(self):
        return f"{self.__class__.__name__[1:]}({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


class _Boolean(Constraint):
    is_discrete = True

    def _check(self, v):
        return (v == 0) | (v == 1)


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def _check(self, v):
        return ((v == 0) | (v == 1)).all(-1) & (v.sum(-1) == 1)


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound, upper_bound):
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound

    def _check(self, v):
        return (v % 1 == 0) & (_arr(self.lower_bound) <= v) & (v <= _arr(self.upper_bound))

    def __repr__(self):
        return f"{self.__class__.__name__[1:]}(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _IntegerLessThan(Constraint):
    is_discrete = True

    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def _check(self, v):
        return (v % 1 == 0) & (v <= _arr(self.upper_bound))

    def __repr__(self):
        return f"{self.__class__.__name__[1:]}(upper_bound={self.upper_bound})"


class _IntegerGreaterThan(Constraint):
    is_discrete = True

    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def _check(self, v):
        return (v % 1 == 0) & (v >= _arr(self.lower_bound))

    def __repr__(self):
        return f"{self.__class__.__name__[1:]}(lower_bound={self.lower_bound})"


class _Real(Constraint):
    """Any real number, ±inf included; only NaN is out."""

    def _check(self, v):
        return v == v


class _GreaterThan(Constraint):
    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def _check(self, v):
        return _arr(self.lower_bound) < v

    def __repr__(self):
        return f"{self.__class__.__name__[1:]}(lower_bound={self.lower_bound})"


class _GreaterThanEq(Constraint):
    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def _check(self, v):
        return _arr(self.lower_bound) <= v

    def __repr__(self):
        return f"{self.__class__.__name__[1:]}(lower_bound={self.lower_bound})"


class _LessThan(Constraint):
    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def _check(self, v):
        return v < _arr(self.upper_bound)

    def __repr__(self):
        return f"{self.__class__.__name__[1:]}(upper_bound={self.upper_bound})"


class _Interval(Constraint):
    """lower ≤ x ≤ upper."""

    def __init__(self, lower_bound, upper_bound):
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound

    def _check(self, v):
        return (_arr(self.lower_bound) <= v) & (v <= _arr(self.upper_bound))

    def __repr__(self):
        return f"{self.__class__.__name__[1:]}(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _HalfOpenInterval(_Interval):
    """lower ≤ x < upper."""

    def _check(self, v):
        return (_arr(self.lower_bound) <= v) & (v < _arr(self.upper_bound))


class _Simplex(Constraint):
    """Non-negative vectors summing to 1 (within 1e-6)."""

    event_dim = 1

    def _check(self, v):
        return (v >= 0).all(-1) & (np.abs(v.sum(-1) - 1) < 1e-6)


class _Multinomial(Constraint):
    """Non-negative count vectors whose total is at most ``upper_bound``."""

    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def _check(self, v):
        return (v >= 0).all(-1) & (v.sum(-1) <= self.upper_bound)


class _LowerTriangular(Constraint):
    event_dim = 2

    def _check(self, v):
        return (np.tril(v) == v).reshape(v.shape[:-2] + (-1,)).all(-1)


class _LowerCholesky(Constraint):
    """Lower-triangular with a positive diagonal."""

    event_dim = 2

    def _check(self, v):
        lower = (np.tril(v) == v).reshape(v.shape[:-2] + (-1,)).all(-1)
        return lower & (np.diagonal(v, axis1=-2, axis2=-1) > 0).all(-1)


class _Square(Constraint):
    event_dim = 2

    def _check(self, v):
        return np.full(v.shape[:-2], v.shape[-2] == v.shape[-1], dtype=bool)


class _Symmetric(_Square):
    def _check(self, v):
        square = super()._check(v)
        if not square.all():
            return square
        return np.isclose(v, np.swapaxes(v, -1, -2), atol=1e-6).all(-2).all(-1)


class _PositiveSemidefinite(_Symmetric):
    def _check(self, v):
        sym = super()._check(v)
        if not sym.all():
            return sym
        return np.linalg.eigvalsh(v).min(-1) >= 0


class _PositiveDefinite(_Symmetric):
    """Symmetric, and its Cholesky factorisation exists (as PyTorch's check)."""

    def _check(self, v):
        sym = super()._check(v)
        if not sym.all():
            return sym
        flat = v.reshape((-1,) + v.shape[-2:])
        ok = np.ones(len(flat), dtype=bool)
        for i, m in enumerate(flat):
            try:
                np.linalg.cholesky(m)
            except np.linalg.LinAlgError:
                ok[i] = False
        return ok.reshape(v.shape[:-2])


class _CorrCholesky(Constraint):
    """Lower Cholesky factors of correlation matrices: lower triangular, positive diagonal,
    every row of unit Euclidean length (within 10·n·eps of the dtype)."""

    event_dim = 2

    def _check(self, v):
        tol = np.finfo(v.dtype).eps * v.shape[-1] * 10 if v.dtype.kind == "f" else 0
        unit_rows = (np.abs(np.linalg.norm(v, axis=-1) - 1.0) <= tol).all(-1)
        return _LowerCholesky()._check(v) & unit_rows


def _check_sequence(cseq, what):
    if not all(isinstance(c, Constraint) for c in cseq):
        raise AssertionError(f"All elements of {what} must be Constraint instances")


def _check_dim(dim, ndim):
    if not -ndim <= dim < ndim:
        raise AssertionError(f"dim {dim} out of range for value with {ndim} dimensions")


class _OfParts(Constraint):
    """A constraint made of ``cseq``, one per part of the value along ``dim``."""

    def __init__(self, cseq, dim=0):
        _check_sequence(cseq, "cseq")
        self.cseq = list(cseq)
        self.dim = dim

    @property
    def is_discrete(self):
        return any(c.is_discrete for c in self.cseq)


class _Cat(_OfParts):
    """``cseq[i]`` on the slice of ``value`` along ``dim`` of length ``lengths[i]``."""

    def __init__(self, cseq, dim=0, lengths=None):
        super().__init__(cseq, dim)
        self.lengths = list(lengths) if lengths is not None else [1] * len(self.cseq)
        if len(self.lengths) != len(self.cseq):
            raise AssertionError(f"lengths ({len(self.lengths)}) must match cseq ({len(self.cseq)})")

    @property
    def event_dim(self):
        return max(c.event_dim for c in self.cseq)

    def _check(self, v):
        _check_dim(self.dim, v.ndim)
        parts, start = [], 0
        for c, length in zip(self.cseq, self.lengths):
            parts.append(c._check(np.take(v, np.arange(start, start + length), axis=self.dim)))
            start += length
        return np.concatenate(parts, axis=self.dim)


class _Stack(_OfParts):
    """``cseq[i]`` on ``value.select(dim, i)``, the results stacked along ``dim``."""

    @property
    def event_dim(self):
        dim = max(c.event_dim for c in self.cseq)
        if self.dim + dim < 0:
            dim += 1
        return dim

    def _check(self, v):
        _check_dim(self.dim, v.ndim)
        parts = [c._check(np.take(v, i, axis=self.dim)) for i, c in zip(range(v.shape[self.dim]), self.cseq)]
        return np.stack(parts, self.dim)


class MixtureSameFamilyConstraint(Constraint):
    """The support of a MixtureSameFamily: its component's ``base_constraint`` checked with the
    component dim put back (value unsqueezed at −1 − event_dim), then all-reduced over it."""

    def __init__(self, base_constraint):
        if not isinstance(base_constraint, Constraint):
            raise AssertionError(f"base_constraint must be a Constraint, got {type(base_constraint).__name__}")
        self.base_constraint = base_constraint

    @property
    def is_discrete(self):
        return self.base_constraint.is_discrete

    @property
    def event_dim(self):
        return self.base_constraint.event_dim

    def _check(self, v):
        event_dim = self.event_dim
        result = self.base_constraint._check(np.expand_dims(v, v.ndim - event_dim))
        if v.ndim < event_dim:
            raise ValueError(f"Expected value.dim() >= {event_dim} but got {v.ndim}")
        keep = v.ndim - event_dim
        return result.reshape(result.shape[:keep] + (-1,)).all(-1)

    def __repr__(self):
        return f"{self.__class__.__name__}({self.base_constraint!r})"


dependent = _Dependent()
dependent_property = _DependentProperty
independent = _IndependentConstraint
boolean = _Boolean()
one_hot = _OneHot()
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
integer_interval = _IntegerInterval
real = _Real()
real_vector = independent(real, 1)
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
multinomial = _Multinomial
unit_interval = _Interval(0.0, 1.0)
interval = _Interval
half_open_interval = _HalfOpenInterval
simplex = _Simplex()
lower_triangular = _LowerTriangular()
lower_cholesky = _LowerCholesky()
corr_cholesky = _CorrCholesky()
square = _Square()
symmetric = _Symmetric()
positive_semidefinite = _PositiveSemidefinite()
positive_definite = _PositiveDefinite()
cat = _Cat
stack = _Stack
