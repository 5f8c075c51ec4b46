"""kernels/conv CUDA kernels vs the reference: through Numba's CUDA simulator on tiny shapes
(NumPy arrays), or on CuPy arrays on a GPU. Same cases and tolerances as the CPU tests
(test_conv_kernels.py); the simulator runs every CUDA thread as a Python thread, so shapes
and example counts stay small there."""
import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cuda_helpers import SIMULATED, to_cuda, to_host
from test_conv_kernels import FD_CASES, check_against_reference, conv_case, geometry, make
from tinymm.kernels import conv as K

# Tiny test grids leave most of a GPU idle; Numba says so for every launch.
pytestmark = pytest.mark.filterwarnings("ignore:Grid size")

EXAMPLES = 8 if SIMULATED else 40
SMALL = dict(max_batch=2, max_channels=4, max_size=7, max_kernel=3) if SIMULATED else {}

forward = functools.partial(K.forward, impl="cuda")
backward = functools.partial(K.backward, impl="cuda")
device = dict(to_device=to_cuda, to_host=to_host)


@settings(max_examples=EXAMPLES)
@given(conv_case(**SMALL), st.sampled_from([np.float32, np.float64]))
def test_cuda_matches_reference(case, dtype):
    check_against_reference(forward, backward, case, dtype, **device)


@pytest.mark.parametrize("B,C,H,W,O,kh,kw,geom", FD_CASES)
def test_cuda_fixed_cases(B, C, H, W, O, kh, kw, geom):
    """Strides, asymmetric padding, dilation, groups, depthwise and conv1d, float64."""
    check_against_reference(forward, backward, (B, C, H, W, O, kh, kw, geom, True, 9), np.float64, **device)


def test_cuda_skips_gradients_not_asked_for():
    rng = np.random.default_rng(10)
    geom = geometry(padding=1)
    x, w, b, dy = make(rng, 1, 2, 4, 4, 2, 3, 3, geom, True, np.float64)
    dx, dw, db = backward(*(to_cuda(a) for a in (x, w, dy)), *geom, has_bias=False, need_weight=False)
    assert dw is None and db is None
    np.testing.assert_allclose(to_host(dx), K.reference_backward(x, w, dy, *geom)[0], rtol=1e-12)


@pytest.mark.skipif(SIMULATED, reason="needs a GPU: dispatch sends CuPy arrays to the CUDA kernels")
def test_dispatch_cupy_goes_to_cuda():
    rng = np.random.default_rng(11)
    geom = geometry(padding=1)
    x, w, b, dy = (to_cuda(a) for a in make(rng, 2, 4, 9, 9, 4, 3, 3, geom, True, np.float32))
    y = K.forward(x, w, b, *geom)
    assert type(y).__module__.startswith("cupy")
