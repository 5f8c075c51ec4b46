"""Test configuration shared by every test file.

Numba's CUDA simulator becomes the CUDA target when no GPU is present. This must happen
before anything imports Numba, which is why it sits at the top of the root conftest.
On a machine with a GPU (CuPy sees a device) the CUDA tests run on CuPy arrays instead.
"""
import os
import sys


def _gpu_present() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


if "NUMBA_ENABLE_CUDASIM" not in os.environ and not _gpu_present():
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"


def _lock_simulator_shared_arrays() -> None:
    """Make the CUDA simulator's static ``cuda.shared.array(shape, dtype)`` thread-safe.

    The simulator runs each CUDA thread as a Python thread. ``FakeCUDAShared.array`` (numba-cuda
    0.30) finds a static shared array by its caller's file and line in ``self._allocations`` and,
    on a miss, creates one, without a lock: threads that miss together each create their own, so
    a block's threads can end up writing different "shared" arrays (2 launches in 100 when the
    threads reach the allocation together, right after a barrier). This replaces the method
    with the same lookup under a lock. Dynamic shared memory (shape 0: one buffer per launch)
    was never racy and goes to the original. If the class has changed, nothing is patched.
    """
    import threading
    import warnings

    import numpy

    try:
        from numba.core import types
        from numba.cuda.simulator.kernelapi import FakeCUDAShared
        from numba.np import numpy_support

        patchable = isinstance(getattr(FakeCUDAShared(0), "_allocations", None), dict)
    except (ImportError, TypeError):
        patchable = False
    if not patchable:
        warnings.warn("tests/conftest.py: the CUDA simulator's FakeCUDAShared has changed; "
                      "static shared arrays are left unlocked")
        return
    original = FakeCUDAShared.array
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:
            return original(self, shape, dtype, alignment)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)  # what the original takes from the stack
        with lock:
            res = self._allocations.get(key)
            if res is None:
                if isinstance(dtype, types.Type):
                    dtype = numpy_support.as_dtype(dtype)
                res = self._allocations[key] = numpy.empty(shape, dtype)
        return res

    array.locked_by_tinymm_conftest = True
    FakeCUDAShared.array = array


if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    # The simulator runs each CUDA thread as a Python thread; a shorter switch interval makes
    # syncthreads barriers (one GIL hand-off per thread) far cheaper.
    sys.setswitchinterval(1e-5)
    _lock_simulator_shared_arrays()

import numpy as np  # noqa: E402
import pytest  # noqa: E402

try:
    from hypothesis import settings

    settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
    settings.register_profile("dev", max_examples=50, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a dev extra
    pass


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _torch_distribution_validation_default():
    """PyTorch's default for distribution argument validation (on) at the start of every test:
    torch._dynamo's import (the first ``torch.compile``/``torch.compiler`` use) turns it off for
    the whole process, after which comparisons with PyTorch's errors would depend on test
    order. Only acts once PyTorch's distributions are loaded (no import here)."""
    td = sys.modules.get("torch.distributions")
    if td is not None:
        td.Distribution.set_default_validate_args(True)
    yield
