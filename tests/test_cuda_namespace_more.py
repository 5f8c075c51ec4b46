"""``tinymm.cuda``'s device queries and ``OutOfMemoryError``: honest errors without a GPU, the
driver's answers with one."""
import pytest

import tinymm as tm

GPU = tm.cuda.is_available()


def test_out_of_memory_error_is_torchs_shape():
    assert tm.OutOfMemoryError is tm.cuda.OutOfMemoryError
    with pytest.raises(RuntimeError):
        raise tm.cuda.OutOfMemoryError("CUDA out of memory")


@pytest.mark.skipif(GPU, reason="checks the answers without a GPU; this machine has one")
def test_queries_without_a_gpu():
    for query in (tm.cuda.get_device_properties, tm.cuda.get_device_capability, tm.cuda.mem_get_info):
        with pytest.raises(RuntimeError, match="no CUDA device"):
            query()


@pytest.mark.skipif(not GPU, reason="needs a GPU (CuPy and a driver)")
def test_queries_with_a_gpu():
    props = tm.cuda.get_device_properties(0)
    assert props.total_memory > 0 and isinstance(props.name, str)
    assert tm.cuda.get_device_capability() == (props.major, props.minor)
    free, total = tm.cuda.mem_get_info()
    assert 0 < free <= total


def test_set_device():
    tm.cuda.set_device(0)
    tm.cuda.set_device("cuda:0")
    with pytest.raises(RuntimeError, match="one GPU"):
        tm.cuda.set_device(1)
