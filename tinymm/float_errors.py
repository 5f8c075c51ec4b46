"""Floor 2: NumPy's floating-point warnings silenced inside tinymm's ops, as PyTorch is silent.

``torch.tensor([1e30]) ** 2`` is ``inf``, ``inf * 0`` is ``nan`` and ``(-1.) ** 0.5`` is ``nan``,
all without a word; the same NumPy ufuncs print ``RuntimeWarning: overflow encountered ...``.
Every op's forward (``Function.apply``) and every backward walk run between :func:`silence`
and :func:`restore`, so a tinymm op never warns, while NumPy code of the user's own, outside
those calls, keeps whatever ``np.seterr`` the user chose.

NumPy 2 keeps its error state in a context variable; ``np.errstate`` sets it, but builds a new
state object on every entry (~1.7 µs per call, a third of a small op's whole cost). Here the
"ignore all" state is built once and the variable is set and reset directly (~0.2 µs). Where
NumPy has no such variable (1.x), the public ``np.errstate`` does the same, slower.
"""
from __future__ import annotations

import numpy as np

try:
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj

    _IGNORE_ALL = _make_extobj(all="ignore")

    def silence():
        """Start ignoring floating-point errors; returns the token for :func:`restore`."""
        return _extobj_contextvar.set(_IGNORE_ALL)

    def restore(token) -> None:
        """Back to the error state from before the :func:`silence` that returned ``token``."""
        _extobj_contextvar.reset(token)

except (ImportError, AttributeError):  # NumPy 1.x (or a future layout): the public route

    def silence():
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def restore(token) -> None:
        token.__exit__(None, None, None)
