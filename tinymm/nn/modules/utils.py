"""``torch.nn.modules.utils``' argument helpers, which custom layers import to accept an int or a
tuple for sizes: ``_pair(3) == (3, 3)``, ``_pair((1, 2)) == (1, 2)`` (an iterable passes through
as a tuple, unchecked, as in PyTorch)."""
from __future__ import annotations

import collections.abc
from itertools import repeat

__all__ = ["_ntuple", "_single", "_pair", "_triple", "_quadruple", "_reverse_repeat_tuple"]


def _ntuple(n: int, name: str = "parse"):
    def parse(x):
        if isinstance(x, collections.abc.Iterable):
            return tuple(x)
        return tuple(repeat(x, n))
    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")


def _reverse_repeat_tuple(t, n: int) -> tuple:
    """Each item of ``t``, last first, ``n`` times: a conv's padding as F.pad wants it."""
    return tuple(x for x in reversed(t) for _ in range(n))
