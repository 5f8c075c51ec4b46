"""``torch.multiprocessing``: Python's ``multiprocessing``, re-exported (``Process``, ``Queue``,
``Pool``, ``get_context``, ``set_start_method``, ...), with PyTorch's sharing-strategy calls.

PyTorch adds these to share tensors between processes through shared memory. tinymm's tensors
are NumPy/CuPy arrays and pickle as copies, so there is nothing to share: the strategy is
stored and returned, checked against PyTorch's names, and changes nothing.
"""
from __future__ import annotations

import multiprocessing as _mp
import sys as _sys
from multiprocessing import *  # noqa: F401,F403

__all__ = list(_mp.__all__) + ["set_sharing_strategy", "get_sharing_strategy", "get_all_sharing_strategies"]

_STRATEGIES = {"file_descriptor", "file_system"} if _sys.platform != "darwin" else {"file_system"}
_strategy = ["file_descriptor" if _sys.platform != "darwin" else "file_system"]


def get_all_sharing_strategies() -> set:
    return set(_STRATEGIES)


def set_sharing_strategy(new_strategy: str) -> None:
    """Store the strategy (it changes nothing here, see the module docstring)."""
    if new_strategy not in _STRATEGIES:
        raise AssertionError(f"invalid sharing strategy {new_strategy!r}, expected one of {_STRATEGIES}")
    _strategy[0] = new_strategy


def get_sharing_strategy() -> str:
    return _strategy[0]
