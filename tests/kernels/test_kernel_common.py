"""kernels/_common: dispatch by impl, the numba.cuda import and its NumPy alias, the block reductions."""
import numba
import numpy as np
import pytest

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
    with pytest.raises(ValueError, match="must be an integer, got 'lots'"):
        _common.parallel_threshold(123)


class FakeCupyArray:
    """Looks like a CuPy array to is_cuda_array (which checks the type's module name)."""


FakeCupyArray.__module__ = "cupy._core.core"


def test_resolve_impl_goes_by_array_type_unless_impl_is_named():
    assert _common.resolve_impl(None, np.zeros(2)) == "cpu"
    assert _common.resolve_impl(None, FakeCupyArray()) == "cuda"
    for impl in ("reference", "cpu", "cuda"):
        assert _common.resolve_impl(impl, np.zeros(2)) == impl
    with pytest.raises(ValueError, match=r"impl must be one of \('reference', 'cpu', 'cuda'\) or None, got 'gpu'"):
        _common.resolve_impl("gpu", np.zeros(2))
    with pytest.raises(ValueError, match=r"^pool: impl must be one of"):
        _common.resolve_impl("gpu", np.zeros(2), "pool")


def test_implementation_returns_the_family_module_it_names():
    from tinymm.kernels.softmax import cpu, reference

    assert _common.implementation("tinymm.kernels.softmax", None, np.zeros(2)) is cpu
    assert _common.implementation("tinymm.kernels.softmax", "reference", np.zeros(2)) is reference


# ``numba.cuda`` for the kernel below, a module global (the simulator swaps a kernel's global
# ``cuda`` for its fake module, not a local one).
cuda = None


def test_block_reductions_sum_and_max_over_a_block():
    """One generic tree reduction serves both (softmax needs the max, everything the sum)."""
    global cuda
    cuda = _common.numba_cuda()
    block_sum, block_max = _common.cuda_block_reduce("sum"), _common.cuda_block_reduce("max")
    assert _common.cuda_block_sum() is block_sum

    @cuda.jit
    def reduce_both(x, out):
        scratch = cuda.shared.array(0, numba.float64)
        v = x[cuda.threadIdx.x]
        s = block_sum(scratch, v)
        m = block_max(scratch, v)
        if cuda.threadIdx.x == 0:
            out[0] = s
            out[1] = m

    x = np.array([3.0, -1.0, 7.5, 2.0, 0.5, -4.0, 7.0, 1.0])
    out = np.zeros(2)
    _common.launch_on_cupy_stream(reduce_both, 1, 8, 8 * 8, (x, out))
    np.testing.assert_array_equal(out, [x.sum(), 7.5])
    with pytest.raises(ValueError, match="kind must be 'sum' or 'max', got 'min'"):
        _common.cuda_block_reduce("min")


# ----------------------------------------------------------------------------- process settings

def _in_fresh_process(code, **env):
    import os
    import subprocess
    import sys

    full_env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "TINYMM_HEAP_KEEP")}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_idle_openmp_threads_sleep_unless_the_user_says_otherwise():
    code = "import os, tinymm; print(os.environ['OMP_WAIT_POLICY'])"
    assert _in_fresh_process(code) == "PASSIVE"
    assert _in_fresh_process(code, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


def test_keep_freed_heap_only_where_glibc_takes_it():
    import os
    import sys

    from tinymm.kernels._common import HEAP_KEEP_BYTES, keep_freed_heap

    assert keep_freed_heap(0) is False and keep_freed_heap(-5) is False
    glibc = sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION") or "")
    if not glibc:
        print("not Linux with glibc: keep_freed_heap must leave malloc alone")
    assert keep_freed_heap(HEAP_KEEP_BYTES) is glibc
    code = "from tinymm.kernels._common import HEAP_KEEP_BYTES; print(HEAP_KEEP_BYTES)"
    assert _in_fresh_process(code) == str(128 << 20)
    assert _in_fresh_process(code, TINYMM_HEAP_KEEP="0") == "0"
