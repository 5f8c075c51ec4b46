"""kernels/_common: the numba.cuda import and its NumPy compatibility alias."""
import numpy as np

from tinymm.kernels import _common


def test_numba_cuda_restores_the_row_stack_alias_numba_cuda_needs(monkeypatch):
    monkeypatch.delattr(np, "row_stack", raising=False)  # NumPy >= 2.5 has no row_stack
    cuda = _common.numba_cuda()
    assert np.row_stack is np.vstack
    assert hasattr(cuda, "jit")


def test_is_cuda_array_never_imports_cupy():
    assert not _common.is_cuda_array(np.zeros(2))
    assert _common.array_module(np.zeros(2)) is np
