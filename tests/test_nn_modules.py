"""Modules: registration, state dicts, modes, devices, and agreement with torch.nn twins."""
import math

import numpy as np
import pytest

import tinymm as tm
from tinymm import nn
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4, padding_idx=0)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4)) for _ in range(2)])
        self.norm = nn.LayerNorm(4)
        self.head = nn.ModuleDict({"cls": nn.Linear(4, 3, bias=False)})
        self.register_buffer("scale", tm.ones(1))

    def forward(self, idx):
        h = self.emb(idx)
        for b in self.blocks:
            h = h + b(h)
        return self.head["cls"](self.norm(h)) * self.scale


def test_parameter_names_follow_pytorch():
    names = [n for n, _ in Net().named_parameters()]
    assert names == [
        "emb.weight",
        "blocks.0.0.weight", "blocks.0.0.bias", "blocks.0.2.weight", "blocks.0.2.bias",
        "blocks.1.0.weight", "blocks.1.0.bias", "blocks.1.2.weight", "blocks.1.2.bias",
        "norm.weight", "norm.bias", "head.cls.weight",
    ]
    assert list(Net().state_dict())[0] == "scale"  # own buffers before children, as torch


def test_state_dict_round_trip_and_strictness():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    idx = tm.tensor([[1, 2, 0]])
    np.testing.assert_array_equal(a(idx).detach().numpy(), b(idx).detach().numpy())
    sd = a.state_dict()
    sd.pop("norm.bias")
    with pytest.raises(KeyError, match=r'Missing key\(s\) in state_dict: "norm.bias"'):
        b.load_state_dict(sd)
    missing, unexpected = b.load_state_dict(sd, strict=False)
    assert missing == ["norm.bias"] and unexpected == []
    sd = a.state_dict()
    sd["norm.weight"] = tm.ones(5)
    with pytest.raises(ValueError, match=r"size mismatch for norm.weight: copying a param with shape tinymm.Size\(\[5\]\) "
                       r"from checkpoint, the shape in current model is tinymm.Size\(\[4\]\)"):
        b.load_state_dict(sd)


def test_train_eval_and_dropout():
    m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    x = tm.ones(64, 4)
    m.eval()
    assert not m[1].training
    np.testing.assert_array_equal(m(x).detach().numpy(), m(x).detach().numpy())
    m.train()
    out = nn.Dropout(0.5)(x).detach().numpy()
    assert set(np.unique(out)) <= {0.0, 2.0} and 0.3 < (out == 0).mean() < 0.7


def test_repr_is_readable():
    r = repr(nn.Sequential(nn.Linear(2, 3), nn.ReLU()))
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in r and "(1): ReLU()" in r


def test_to_dtype_keeps_parameter_identity():
    m = nn.Linear(3, 2)
    w = m.weight
    m.to(tm.float64)
    assert m.weight is w and w.dtype == np.float64


def test_default_init_statistics_match_pytorch_formulas():
    tm.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w = lin.weight.detach().numpy()
    assert np.abs(w).max() <= bound and abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
    emb = nn.Embedding(1000, 64, padding_idx=3)
    assert abs(emb.weight.detach().numpy().std() - 1) < 0.02 and not emb.weight.detach().numpy()[3].any()
    x = tm.zeros(30, 20)
    nn.init.xavier_uniform_(x)
    assert np.abs(x.detach().numpy()).max() <= math.sqrt(6 / 50)


def test_embedding_padding_row_gets_no_gradient_and_repeats_accumulate():
    emb = nn.Embedding(5, 2, padding_idx=0)
    emb(tm.tensor([[0, 1, 1], [4, 0, 1]])).sum().backward()
    g = emb.weight.grad.numpy()
    np.testing.assert_array_equal(g[:, 0], [0, 3, 0, 0, 1])
    with pytest.raises(IndexError, match=r"values span \[7, 7\], the table has 5 rows"):
        emb(tm.tensor([7]))


def test_bad_inputs_name_the_shapes():
    with pytest.raises(ValueError, match=r"input has 5 features \(shape \(2, 5\)\), weight expects 3"):
        nn.Linear(3, 2)(tm.randn(2, 5))
    with pytest.raises(ValueError, match="does not end with normalized_shape"):
        nn.LayerNorm(4)(tm.randn(2, 5))
    with pytest.raises(TypeError, match="indices must be integers"):
        nn.Embedding(3, 2)(tm.randn(2))


@needs_torch
@pytest.mark.parametrize("kind", ["linear", "layernorm", "embedding", "mlp"])
def test_layers_match_torch_with_copied_weights(kind):
    torch.manual_seed(0)
    if kind == "linear":
        tmod, tor = nn.Linear(5, 3), torch.nn.Linear(5, 3)
        xin = np.random.default_rng(0).standard_normal((4, 2, 5)).astype(np.float32)
    elif kind == "layernorm":
        tmod, tor = nn.LayerNorm((3, 5)), torch.nn.LayerNorm((3, 5))
        with torch.no_grad():
            tor.weight.uniform_(0.5, 1.5)
            tor.bias.uniform_(-0.5, 0.5)
        xin = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(np.float32)
    elif kind == "embedding":
        tmod, tor = nn.Embedding(7, 3, padding_idx=2), torch.nn.Embedding(7, 3, padding_idx=2)
        xin = np.array([[1, 2, 2], [6, 0, 1]])
    else:
        tmod = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.SiLU(), nn.Linear(8, 2))
        tor = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.SiLU(), torch.nn.Linear(8, 2))
        xin = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    tmod.load_state_dict({k: v.detach().numpy() for k, v in tor.state_dict().items()})
    out = tmod(tm.tensor(xin))
    tout = tor(torch.tensor(xin))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), atol=1e-5, rtol=1e-5)
    r = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    (out * tm.tensor(r)).sum().backward()
    (tout * torch.tensor(r)).sum().backward()
    tgrads = dict(tor.named_parameters())
    for name, p in tmod.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tgrads[name].grad.numpy(), atol=1e-4, rtol=1e-4, err_msg=name)


def test_layer_norm_gradcheck_float64():
    w = tm.tensor(np.random.default_rng(0).uniform(0.5, 1.5, 4), requires_grad=True)
    b = tm.tensor(np.random.default_rng(1).standard_normal(4), requires_grad=True)
    x = tm.tensor(np.random.default_rng(2).standard_normal((3, 4)), requires_grad=True)
    tm.gradcheck(lambda x, w, b: tm.nn.functional.layer_norm(x, 4, w, b), [x, w, b])


def test_a_child_registered_twice_is_one_child_as_in_torch():
    """``self.shared = self.a``: named_children, children and apply see it once (PyTorch dedups)."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)
            self.b = nn.ReLU()
            self.shared = self.a

    m = Net()
    assert [n for n, _ in m.named_children()] == ["a", "b"]
    seen = []
    m.apply(lambda x: seen.append(type(x).__name__))
    assert seen == ["Linear", "ReLU", "Net"]
    assert m.share_memory() is m
