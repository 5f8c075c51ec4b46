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


def test_parallel_threshold_reads_the_environment(monkeypatch):
    monkeypatch.delenv("TINYMM_PARALLEL_MIN_ELEMENTS", raising=False)
    assert _common.parallel_threshold(123) == 123
    monkeypatch.setenv("TINYMM_PARALLEL_MIN_ELEMENTS", "4096")
    assert _common.parallel_threshold(123) == 4096
    monkeypatch.setenv("TINYMM_PARALLEL_MIN_ELEMENTS", "lots")
    import pytest

    with pytest.raises(ValueError, match="must be an integer, got 'lots'"):
        _common.parallel_threshold(123)
