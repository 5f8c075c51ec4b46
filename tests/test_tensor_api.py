"""The Tensor API: creation, properties, conversion, devices, and import hygiene."""
import inspect
import subprocess
import sys

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch


def test_creation_defaults_follow_pytorch():
    assert tm.tensor([1.0, 2.0]).dtype == np.float32
    assert tm.tensor([1, 2]).dtype == np.int64
    assert tm.tensor(np.zeros(2, np.float64)).dtype == np.float64
    assert tm.zeros(2, 3).shape == (2, 3) and tm.ones((2, 3)).dtype == np.float32
    assert tm.arange(5).dtype == np.int64 and tm.arange(0.0, 1.0, 0.25).shape == (4,)
    assert tm.full((2,), 7).dtype == np.int64
    assert tm.randn(3, 4, dtype=tm.float64).dtype == np.float64
    assert tm.zeros_like(tm.randn(2, 2)).shape == (2, 2)
    assert tm.eye(3).detach().numpy().trace() == 3


def test_manual_seed_makes_draws_repeatable():
    tm.manual_seed(7)
    a = tm.randn(5).detach().numpy()
    tm.manual_seed(7)
    np.testing.assert_array_equal(a, tm.randn(5).detach().numpy())


def test_properties_and_conversions():
    x = tm.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.shape == (2, 2) and x.ndim == 2 and x.device == "cpu" and x.numel() == 4 and x.size(1) == 2
    assert x.is_leaf and (x * 2).grad_fn.name() == "MulBackward0"
    assert x.sum().item() == 10.0 and x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert x.double().dtype == np.float64 and x.to(tm.float64).dtype == np.float64
    assert x.long().dtype == np.int64
    assert "requires_grad=True" in repr(x)
    with pytest.raises(ValueError, match="one-element"):
        x.item()


def test_cast_is_differentiable():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    (x.double() * 3).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_comparisons_give_bool_tensors():
    x = tm.tensor([1.0, 2.0, 3.0])
    assert ((x > 1.5).detach().numpy() == [False, True, True]).all()
    assert ((x == 2.0) | (x < 1.5)).detach().numpy().tolist() == [True, True, False]
    assert (~(x > 1.5)).detach().numpy().tolist() == [True, False, False]


def test_setitem_refuses_graph_corruption():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        x[0] = 3.0
    with tm.no_grad():
        x[0] = 3.0
    assert x.detach().numpy()[0] == 3.0


def test_unknown_device_is_named():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        tm.zeros(2, device="tpu")


@pytest.mark.skipif(tm.cuda_available(), reason="this machine has a GPU; the no-GPU message is not shown")
def test_cuda_unavailable_message_names_the_cause():
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        tm.zeros(2, device="cuda")


def test_import_is_light_and_never_imports_torch():
    code = (
        "import sys, time; t=time.perf_counter(); import tinymm, tinymm.nn, tinymm.optim;"
        "dt=time.perf_counter()-t;"
        "bad=[m for m in ('torch','sklearn','cupy','numba') if m in sys.modules];"
        "assert not bad, bad; print(dt)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_every_table_op_is_a_tensor_method_and_tinymm_export():
    import tinymm.nn.functional as F
    from tinymm import ops

    for fn, method, exported in ops.OPS:
        if method is not None:
            # the op, or its front taking PyTorch's keyword names (tinymm/ops/torch_keywords.py)
            assert inspect.unwrap(getattr(tm.Tensor, method)) is fn, method
        if exported:
            name = exported if isinstance(exported, str) else fn.__name__
            top = getattr(tm, name)  # the export, or its out= / keyword-name fronts (ops/out_arg.py, ops/torch_keywords.py)
            assert inspect.unwrap(top) is fn, name
    x = tm.tensor([-1.0, 0.5])
    np.testing.assert_allclose(x.silu().detach().numpy(), F.silu(x).detach().numpy())
    np.testing.assert_allclose(x.gelu(approximate="tanh").detach().numpy(), F.gelu(x, approximate="tanh").detach().numpy())


def test_contiguous_returns_a_c_contiguous_array_with_gradient():
    x = tm.randn(3, 4, requires_grad=True)
    t = x.T
    assert not t._data.flags.c_contiguous
    c = t.contiguous()
    assert c._data.flags.c_contiguous and c.shape == (4, 3)
    np.testing.assert_array_equal(c.detach().numpy(), x.detach().numpy().T)
    (c * tm.arange(12.0).reshape(4, 3)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(12.0).reshape(4, 3).T)
    assert x.contiguous() is x  # already contiguous: no copy, as PyTorch


_LEGACY_CONSTRUCTOR_CALLS = [
    lambda m: m.Tensor(), lambda m: m.Tensor(2, 3), lambda m: m.Tensor(5), lambda m: m.Tensor(m.Size([2, 3])),
    lambda m: m.Tensor([1, 2]), lambda m: m.Tensor((1, 2)), lambda m: m.Tensor(np.array([1, 2])),
    lambda m: m.Tensor(np.array([1.0, 2.0])), lambda m: m.Tensor([[True]]), lambda m: m.Tensor(m.ones(2, dtype=m.int64)),
    lambda m: m.Tensor(2, 3, device="cpu"), lambda m: m.nn.Parameter(m.Tensor(3, 4)),
    lambda m: m.Tensor(2.5), lambda m: m.Tensor(-1), lambda m: m.Tensor(True), lambda m: m.Tensor("a"),
]


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
@pytest.mark.parametrize("call", _LEGACY_CONSTRUCTOR_CALLS)
def test_the_legacy_tensor_constructor_behaves_as_torch(call):
    """``torch.Tensor(...)``: sizes give an uninitialised float tensor, data becomes the default
    dtype (``nn.Parameter(torch.Tensor(out, in))`` in older layers; ``torch.Tensor(np_array)``)."""
    got = []
    for m in (torch, tm):
        try:
            t = call(m)
            got.append((tuple(t.shape), str(t.dtype).split(".")[-1], type(t).__name__))
        except (TypeError, RuntimeError) as e:
            got.append(type(e).__name__)
    assert got[1] == got[0]
    if not isinstance(got[0], str) and got[0][0] == (2,) and got[0][1] == "float32":
        assert call(tm).tolist() == call(torch).tolist()
