"""The ``*_like`` factories with PyTorch's keywords (dtype, device, layout, memory_format,
requires_grad, generator, pin_memory) and the factories' layout=/pin_memory=, against torch."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

LIKES = ["zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"]


def _call(lib, name, x, **kw):
    fn = getattr(lib, name)
    if name == "full_like":
        return fn(x, 2.5, **kw)
    if name == "randint_like":
        return fn(x, 3, 9, **kw)
    return fn(x, **kw)


@pytest.mark.parametrize("name", LIKES + ["full_like", "randint_like"])
@pytest.mark.parametrize("kw", [
    {}, {"dtype": "float64"}, {"device": "cpu"}, {"layout": "strided"}, {"memory_format": "channels_last"},
    {"memory_format": "preserve_format"}, {"memory_format": "contiguous_format"}, {"pin_memory": False},
])
def test_like_keywords_match_torch(name, kw):
    if torch is None:
        pytest.skip(TORCH_REASON)
    outs = []
    for lib in (tm, torch):
        args = {k: (getattr(lib, v) if k in ("dtype", "layout", "memory_format") else v) for k, v in kw.items()}
        x = lib.ones(2, 3, 4, 5)
        outs.append(_call(lib, name, x, **args))
    ours, ref = outs
    assert tuple(ours.shape) == tuple(ref.shape)
    assert str(ours.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1]
    assert ours.device.type == ref.device.type
    if name in ("zeros_like", "ones_like", "full_like"):
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    if name == "randint_like":
        assert ((ours.numpy() >= 3) & (ours.numpy() < 9)).all() and (ours.numpy() == ours.numpy().round()).all()


@pytest.mark.parametrize("name", ["rand_like", "randn_like"])
def test_like_generator_and_requires_grad(name):
    x = tm.ones(3, 4, dtype=tm.float64)
    a = _call(tm, name, x, generator=tm.Generator().manual_seed(7), requires_grad=True)
    base = tm.rand if name == "rand_like" else tm.randn
    b = base(3, 4, generator=tm.Generator().manual_seed(7), dtype=tm.float64)
    np.testing.assert_array_equal(a.detach().numpy(), b.numpy())
    assert a.requires_grad and a.is_leaf and a.dtype == tm.float64


def test_randint_like_high_only_and_integer_grad_refused():
    x = tm.zeros(50, dtype=tm.int64)
    r = tm.randint_like(x, 4)
    assert r.dtype == tm.int64 and r.numpy().min() >= 0 and r.numpy().max() < 4
    with pytest.raises(RuntimeError):
        tm.randint_like(x, 4, requires_grad=True)
    if torch is not None:
        with pytest.raises(RuntimeError):
            torch.randint_like(torch.zeros(5, dtype=torch.int64), 4, requires_grad=True)


@pytest.mark.parametrize("lib_name", ["tm", "torch"])
def test_like_bad_arguments_errors_as_torch(lib_name):
    lib = tm if lib_name == "tm" else torch
    if lib is None:
        pytest.skip(TORCH_REASON)
    x = lib.ones(2)
    with pytest.raises(TypeError, match="input"):
        lib.zeros_like([1.0, 2.0])
    with pytest.raises(TypeError, match="memory_format"):
        lib.ones_like(x, memory_format="channels_last")
    with pytest.raises(TypeError):
        lib.zeros_like(x, 3)  # keywords only after input (full_like takes fill_value)


def test_pin_memory_true_without_gpu_refused_as_torch():
    if tm.cuda.is_available():
        pytest.skip("a GPU is present: pin_memory=True pins instead of raising")
    for call in (lambda lib: lib.zeros(2, pin_memory=True), lambda lib: lib.empty_like(lib.ones(2), pin_memory=True)):
        with pytest.raises(RuntimeError):
            call(tm)
        if torch is not None:
            with pytest.raises(RuntimeError):
                call(torch)


def test_factories_take_strided_layout_and_refuse_others():
    assert tm.zeros(2, 3, layout=tm.strided).layout is tm.strided
    assert tm.arange(4, layout=tm.strided, pin_memory=False).tolist() == [0, 1, 2, 3]
    assert tm.full((2,), 1.5, layout=tm.strided).tolist() == [1.5, 1.5]
    with pytest.raises(ValueError, match="strided"):
        tm.ones(2, layout="sparse_coo")
    with pytest.raises(ValueError, match="strided"):
        tm.zeros_like(tm.ones(2), layout="sparse_coo")
