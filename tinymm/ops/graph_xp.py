"""An array-module stand-in (``xp``) whose functions are differentiable Tensor ops.

The elementwise families (``UnaryFunction`` in ``ops/elementwise.py``, ``_Pointwise`` in
``nn/functional/activations.py``) write each derivative once, as ``df(xp, x, ...)`` on arrays.
Called with Tensors and this ``XP``, the same expression builds a recorded Tensor computation,
which is what ``create_graph=True`` needs (``autograd_graph``). Comparisons and ``sign`` give
constants, which is right: a piecewise-constant factor has derivative 0 almost everywhere.

Only classes that set ``df_on_tensors = True`` are run this way: a ``df`` that calls SciPy
(``special_of(x).digamma``) would turn a Tensor into an array and silently lose the graph.
A function this stand-in lacks raises ``AttributeError``. Everything goes through Tensor
methods, so this module imports no op module (no import cycle with the ops that use it).
"""
from __future__ import annotations

from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor

_METHODS = ("exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh", "abs")


class _TensorXP:
    def __getattr__(self, name):
        if name not in _METHODS:
            raise AttributeError(name)
        return lambda x: getattr(x, name)()

    @staticmethod
    def sign(x):
        return Tensor._wrap(xp_of(x._data).sign(x._data))

    @staticmethod
    def where(cond, a, b):
        if isinstance(a, Tensor):
            return a.where(cond, b)
        if isinstance(b, Tensor):
            return b.where(~cond, a)
        # two numbers: a constant in NumPy's type (float64), which the caller casts to the
        # gradient's dtype as the array path does (rounding 0.2 to float32 first would not)
        return Tensor._wrap(xp_of(cond._data).where(cond._data, a, b))

    @staticmethod
    def maximum(a, b):
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            return a.maximum(b)
        return a.clamp(min=b) if isinstance(a, Tensor) else b.clamp(min=a)

    @staticmethod
    def minimum(a, b):
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            return a.minimum(b)
        return a.clamp(max=b) if isinstance(a, Tensor) else b.clamp(max=a)

    @staticmethod
    def clip(x, lo, hi):
        return x.clamp(lo, hi)

    @classmethod
    def logaddexp(cls, a, b):
        """log(eᵃ + eᵇ) = max + log1p(e^(−|a − b|)), on Tensors (either may be a number)."""
        return cls.maximum(a, b) + (-(a - b).abs()).exp().log1p()


XP = _TensorXP()
