"""Helpers shared by every kernel family: array-type dispatch and CUDA launch geometry.

Dispatch is by the *type of the array* a kernel is given, never by whether a GPU exists:
a ``cupy.ndarray`` goes to the CUDA version, anything else to the CPU version. The CUDA
versions also accept NumPy arrays, which is how they run under Numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) on machines without a GPU.
"""
import os

import numpy as np


def is_cuda_array(a) -> bool:
    """True for CuPy arrays. Checked by module name so that CuPy is never imported here."""
    return type(a).__module__.split(".", 1)[0] == "cupy"


def array_module(a):
    """``cupy`` for CuPy arrays, ``numpy`` for everything else."""
    if is_cuda_array(a):
        import cupy

        return cupy
    return np


def cuda_simulator_enabled() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


def blocks_for(n: int, threads: int) -> int:
    """Number of blocks of ``threads`` threads that cover ``n`` items (at least one)."""
    return max(1, (n + threads - 1) // threads)


def check_same_kind(name: str, **arrays) -> None:
    """Every array given must live on the same kind of device; the error names them."""
    kinds = {k: ("cuda" if is_cuda_array(v) else "cpu") for k, v in arrays.items() if v is not None}
    if len(set(kinds.values())) > 1:
        detail = ", ".join(f"{k} on {v}" for k, v in kinds.items())
        raise ValueError(f"{name}: arrays are on different devices ({detail})")
