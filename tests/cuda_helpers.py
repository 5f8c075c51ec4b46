"""Where CUDA kernel tests put their arrays.

Under the simulator (no GPU) the CUDA kernels take NumPy arrays; on a GPU, CuPy arrays.
Tests write ``to_cuda(x)`` / ``to_host(y)`` and run unchanged in both places.
"""
import os

import numpy as np

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def to_cuda(a):
    if a is None or SIMULATED:
        return a
    import cupy

    return cupy.asarray(a)


def to_host(a):
    if a is None or isinstance(a, np.ndarray) or np.isscalar(a):
        return a
    return a.get()
