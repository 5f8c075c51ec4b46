"""An array-module stand-in (``xp``) whose functions are differentiable Tensor ops.

The elementwise families (``UnaryFunction`` in ``ops/elementwise.py``, ``_Pointwise`` in
``nn/functional/activations.py``) write each derivative once, as ``df(xp, x, ...)`` on arrays.
Called with Tensors and this ``XP``, the same expression builds a recorded Tensor computation,
which is what ``create_graph=True`` needs (``autograd_graph``). Comparisons and ``sign`` give
constants, which is right: a piecewise-constant factor has derivative 0 almost everywhere.

Only classes that set ``df_on_tensors = True`` are run this way: a ``df`` that calls SciPy
(``special_of(x).digamma``) would turn a Tensor into an array and silently lose the graph.
A function this stand-in lacks raises ``AttributeError``, which the caller reports as an op
without a differentiable backward.
"""
from __future__ import annotations

from tinymm.ops._util import xp_of
from tinymm.tensor import Tensor

_NAMES = ("exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh",
          "abs", "maximum", "minimum", "clip")


class _TensorXP:
    def __getattr__(self, name):
        if name not in _NAMES:
            raise AttributeError(name)
        import tinymm.ops as O  # lazily: the op modules import this one

        return getattr(O, name)

    @staticmethod
    def sign(x):
        return Tensor._wrap(xp_of(x.data).sign(x.data))

    @staticmethod
    def where(cond, a, b):
        import tinymm.ops as O

        if isinstance(a, Tensor) or isinstance(b, Tensor):
            return O.where(cond, a, b)
        # two numbers: a constant in NumPy's type (float64), which the caller casts to the
        # gradient's dtype as the array path does; tinymm.where would round to float32 first
        return Tensor._wrap(xp_of(cond.data).where(cond.data, a, b))

    @staticmethod
    def logaddexp(a, b):
        """log(eᵃ + eᵇ) = max + log1p(e^(−|a − b|)), on Tensors (either may be a number)."""
        import tinymm.ops as O

        hi = O.maximum(a, b) if isinstance(a, Tensor) and isinstance(b, Tensor) else (
            O.clamp(b, min=a) if isinstance(b, Tensor) else O.clamp(a, min=b))
        return hi + O.log1p(O.exp(-O.abs(a - b)))


XP = _TensorXP()
