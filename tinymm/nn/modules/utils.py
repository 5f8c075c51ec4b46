"""``torch.nn.modules.utils``: turning an int-or-tuple layer argument into an n-tuple.

``_ntuple(n, name)`` returns a function that gives an iterable back as a tuple (whatever its
length, as PyTorch's does) and repeats anything else ``n`` times: ``_pair(3) == (3, 3)``,
``_pair((1, 2)) == (1, 2)``.
"""
from __future__ import annotations

import collections.abc

__all__ = ["_ntuple", "_single", "_pair", "_triple", "_quadruple", "_reverse_repeat_tuple"]


def _ntuple(n: int, name: str = "parse"):
    def parse(x):
        if isinstance(x, collections.abc.Iterable):
            return tuple(x)
        return (x,) * n

    parse.__name__ = parse.__qualname__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")


def _reverse_repeat_tuple(t, n: int) -> tuple:
    """The items of ``t`` in reverse order, each repeated ``n`` times (``F.pad``'s order for a
    per-dimension padding): ``_reverse_repeat_tuple((1, 2), 2) == (2, 2, 1, 1)``."""
    return tuple(x for x in reversed(t) for _ in range(n))
