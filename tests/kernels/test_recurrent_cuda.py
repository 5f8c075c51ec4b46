"""kernels/recurrent CUDA kernels vs the reference: through Numba's CUDA simulator on tiny
shapes (NumPy arrays), or on CuPy arrays on a GPU. Same comparison as the CPU kernel's
(test_recurrent_kernels.compare_with_reference): outputs, final states and every gradient."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cuda_helpers import SIMULATED, to_cuda, to_host
from test_recurrent_kernels import MODES, compare_with_reference

# Tiny grids leave most of a GPU idle; Numba says so for every launch.
pytestmark = pytest.mark.filterwarnings("ignore:Grid size")

# Under the simulator every CUDA thread is a Python thread and every step a few launches.
MAX_T, MAX_B, MAX_H = (4, 3, 5) if SIMULATED else (17, 5, 13)
EXAMPLES = 6 if SIMULATED else 25
device = dict(to_device=to_cuda, to_host=to_host)


@st.composite
def tiny_sizes(draw):
    mode = draw(st.sampled_from(MODES))
    T, B = draw(st.integers(1, MAX_T)), draw(st.integers(1, MAX_B))
    I, H = draw(st.integers(1, 4)), draw(st.integers(1, MAX_H))
    proj = draw(st.integers(1, H - 1)) if mode == "LSTM" and H > 1 and draw(st.booleans()) else 0
    return mode, T, B, I, H, proj, draw(st.booleans()), draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 2**31))


@pytest.mark.parametrize("mode", MODES)
def test_cuda_every_cell_ragged_reverse_float32(mode):
    proj = 2 if mode == "LSTM" else 0
    compare_with_reference("cuda", mode, 3, 3, 2, 3, proj, True, True, True, 5, np.float32, **device)


@settings(max_examples=EXAMPLES)
@given(tiny_sizes())
def test_cuda_float32_matches_reference(s):
    compare_with_reference("cuda", *s, dtype=np.float32, **device)


@settings(max_examples=max(2, EXAMPLES // 2))
@given(tiny_sizes())
def test_cuda_float64_matches_reference(s):
    compare_with_reference("cuda", *s, dtype=np.float64, **device)
