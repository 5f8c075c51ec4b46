"""Gaps the probe6 scripts (tests/pytorch_scripts: convnext_swin, sd_unet, mae, ...) and their
idioms found, each compared with torch."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


# ---------------------------------------------------------------- PyTorch's keyword names
_KEYWORD_CALLS = {
    "reshape(shape=)": lambda L, x: x.reshape(shape=(2, 3)),
    "reshape(shape=[-1, 2])": lambda L, x: x.reshape(shape=[-1, 2]),
    "torch.reshape(input=, shape=)": lambda L, x: L.reshape(input=x, shape=(3, 2)),
    "view(size=)": lambda L, x: x.view(size=(2, 3)),
    "expand(size=)": lambda L, x: x.view(1, 6).expand(size=(2, 6)),
    "permute(dims=)": lambda L, x: x.view(2, 3).permute(dims=(1, 0)),
    "torch.permute(dims=)": lambda L, x: L.permute(x.view(2, 3), dims=(1, 0)),
    "repeat(repeats=)": lambda L, x: x.repeat(repeats=(2,)),
    "tile(dims=)": lambda L, x: x.tile(dims=(2,)),
    "split(split_size=)": lambda L, x: L.stack(x.split(split_size=2, dim=0)),
    "torch.split(tensor=)": lambda L, x: L.stack(L.split(tensor=x, split_size_or_sections=3)),
    "torch.gather(input=)": lambda L, x: L.gather(input=x, dim=0, index=L.tensor([4, 1])),
    "torch.where(input=, other=)": lambda L, x: L.where(condition=x > 2, input=x, other=L.zeros(6)),
    "torch.argsort(input=)": lambda L, x: L.argsort(input=x, dim=0, descending=True),
    "torch.matmul(input=, other=)": lambda L, x: L.matmul(input=x, other=x),
    "torch.add(input=, other=, alpha=)": lambda L, x: L.add(input=x, other=x, alpha=2),
    "add(other=)": lambda L, x: x.add(other=x, alpha=3),
    "torch.pow(input=, exponent=)": lambda L, x: L.pow(input=x, exponent=2),
    "pow(exponent=)": lambda L, x: x.pow(exponent=3),
    "torch.std(input=)": lambda L, x: L.std(input=x, dim=0),
    "torch.flatten(input=)": lambda L, x: L.flatten(input=x.view(2, 3), start_dim=0),
    "torch.transpose(input=)": lambda L, x: L.transpose(input=x.view(2, 3), dim0=0, dim1=1),
}


@needs_torch
@pytest.mark.parametrize("call", list(_KEYWORD_CALLS), ids=list(_KEYWORD_CALLS))
def test_ops_take_pytorchs_keyword_names(call):
    f = _KEYWORD_CALLS[call]
    want = f(torch, torch.arange(6.0, requires_grad=True))
    x = tm.arange(6.0, requires_grad=True)
    got = f(tm, x)
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    if got.requires_grad:  # the keyword route keeps the graph
        got.float().sum().backward()
        assert x.grad is not None


@needs_torch
@pytest.mark.parametrize("call", [
    lambda L: L.arange(6.0).reshape((2, 3), shape=(2, 3)),  # given twice
    lambda L: L.reshape(L.arange(6.0), input=L.arange(6.0), shape=(6,)),
    lambda L: L.add(L.ones(2), input=L.ones(2)),
    lambda L: L.arange(6.0).reshape(bogus=(6,)),
])
def test_keyword_misuse_raises_typeerror_as_torch(call):
    with pytest.raises(TypeError):
        call(torch)
    with pytest.raises(TypeError):
        call(tm)
