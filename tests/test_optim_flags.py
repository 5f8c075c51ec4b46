"""PyTorch's implementation flags of the optimizers (foreach, fused, capturable,
differentiable) and Adam's decoupled_weight_decay: accepted with PyTorch's signatures, kept in
the param groups under PyTorch's keys, refused where they cannot be honoured."""
import inspect

import numpy as np
import pytest

import tinymm as tm
from tinymm import optim

from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
NAMES = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop"]


@needs_torch
@pytest.mark.parametrize("name", NAMES)
def test_signature_and_param_group_keys_are_torchs(name):
    theirs = set(inspect.signature(getattr(torch.optim, name)).parameters)
    ours = set(inspect.signature(getattr(optim, name)).parameters)
    assert theirs <= ours, sorted(theirs - ours)
    t = getattr(torch.optim, name)(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    m = getattr(optim, name)(tm.nn.Linear(2, 2).parameters(), lr=0.1)
    assert set(m.param_groups[0]) == set(t.param_groups[0]), set(m.param_groups[0]) ^ set(t.param_groups[0])


@needs_torch
def test_adam_with_decoupled_weight_decay_is_adamw_as_in_torch():
    w0 = np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)
    res = []
    for lib in (tm, torch):
        for make in (lambda p: lib.optim.Adam(p, lr=0.1, weight_decay=0.5, decoupled_weight_decay=True, foreach=False),
                     lambda p: lib.optim.AdamW(p, lr=0.1, weight_decay=0.5, fused=None)):
            w = lib.tensor(w0, requires_grad=True)
            opt = make([w])
            for _ in range(3):
                opt.zero_grad()
                (w ** 3).sum().backward()
                opt.step()
            res.append(w.detach().numpy())
    for r in res[1:]:
        np.testing.assert_allclose(r, res[0], rtol=1e-5, atol=1e-6)


def test_flags_that_cannot_be_honoured_are_refused():
    params = tm.nn.Linear(2, 2).parameters
    with pytest.raises(RuntimeError, match="differentiable=True .* not supported"):
        optim.Adam(params(), differentiable=True)
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        optim.SGD(params(), lr=0.1, fused=True, foreach=True)
    opt = optim.AdamW(params(), fused=True)
    assert opt.param_groups[0]["fused"] is True and opt.param_groups[0]["decoupled_weight_decay"] is True
