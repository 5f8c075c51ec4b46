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

# The simulator runs each CUDA thread as a Python thread; a shorter switch interval makes
# syncthreads barriers (one GIL hand-off per thread) far cheaper.
if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    sys.setswitchinterval(1e-5)

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
