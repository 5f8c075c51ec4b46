"""nn.functional surface of issue 9 against PyTorch: activations, interpolate, pad modes,
binary_cross_entropy, normalize(p), SDPA (enable_gqa, float-mask gradient, is_causal with a
mask), cross_entropy with a probability target that requires grad, and the matching Modules."""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn as nn
import tinymm.nn.functional as F
from helpers import TORCH_REASON, check_op, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
if torch is not None:
    import torch.nn.functional as TF


def fn_of(x):
    return F if isinstance(x, tm.Tensor) else TF


ACTIVATIONS = {
    "elu": lambda x: fn_of(x).elu(x, alpha=0.7),
    "celu": lambda x: fn_of(x).celu(x, alpha=1.3),
    "selu": lambda x: fn_of(x).selu(x),
    "leaky_relu": lambda x: fn_of(x).leaky_relu(x, 0.2),
    "relu6": lambda x: fn_of(x).relu6(x * 4),
    "hardtanh": lambda x: fn_of(x).hardtanh(x, -0.5, 0.8),
    "hardsigmoid": lambda x: fn_of(x).hardsigmoid(x * 3),
    "hardswish": lambda x: fn_of(x).hardswish(x * 3),
    "mish": lambda x: fn_of(x).mish(x),
    "softplus": lambda x: fn_of(x).softplus(x),
    "softplus_beta": lambda x: fn_of(x).softplus(x * 10, beta=2.0, threshold=5.0),
    "softsign": lambda x: fn_of(x).softsign(x),
    "logsigmoid": lambda x: fn_of(x).logsigmoid(x),
    "softmin": lambda x: fn_of(x).softmin(x, dim=-1),
    "tanhshrink": lambda x: fn_of(x).tanhshrink(x),
    "threshold": lambda x: fn_of(x).threshold(x, 0.1, -2.0),
    "glu": lambda x: fn_of(x).glu(x, dim=-1),
    "normalize_p1": lambda x: fn_of(x).normalize(x, p=1.0, dim=-1),
    "normalize_p3": lambda x: fn_of(x).normalize(x, p=3, dim=0),
    "normalize_inf": lambda x: fn_of(x).normalize(x, p=float("inf"), dim=1),
}


@pytest.mark.parametrize("shape", [(3, 4), (), (0, 4)], ids=["2d", "0d", "empty"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_match_torch(name, shape):
    if shape == () and name in ("glu", "softmin", "normalize_p1", "normalize_p3", "normalize_inf"):
        pytest.skip("needs a dim")
    check_op([shape], ACTIVATIONS[name])


def test_prelu_per_channel_weight_gets_its_gradient():
    check_op([(2, 3, 4), (3,)], lambda x, w: fn_of(x).prelu(x, w))
    check_op([(2, 3), (1,)], lambda x, w: fn_of(x).prelu(x, w))


MODULES = [
    ("ELU", {"alpha": 0.5}), ("CELU", {}), ("SELU", {}), ("LeakyReLU", {"negative_slope": 0.3}), ("ReLU6", {}),
    ("Hardtanh", {"min_val": -0.2, "max_val": 0.4}), ("Hardsigmoid", {}), ("Hardswish", {}), ("Mish", {}),
    ("Softplus", {"beta": 2.0}), ("Softsign", {}), ("LogSigmoid", {}), ("Softmin", {"dim": 1}), ("Tanhshrink", {}),
    ("GLU", {}), ("LogSoftmax", {"dim": 0}),
]


@pytest.mark.parametrize("name,kwargs", MODULES, ids=[m[0] for m in MODULES])
def test_activation_modules_match_torch(name, kwargs):
    ours, theirs = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    check_op([(3, 4)], lambda x: (ours if isinstance(x, tm.Tensor) else theirs)(x))


@pytest.mark.parametrize("kw", [
    dict(size=(7, 5), mode="bilinear"),
    dict(scale_factor=2, mode="bilinear", align_corners=True),
    dict(scale_factor=1.7, mode="bilinear"),
    dict(size=(2, 3), mode="bilinear", align_corners=False),
    dict(size=(6, 9)),
    dict(scale_factor=2.5, mode="nearest"),
    dict(size=(4, 2), mode="nearest-exact"),
], ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_interpolate_2d_matches_torch(kw):
    check_op([(2, 2, 3, 4)], lambda x: fn_of(x).interpolate(x, **kw))


@pytest.mark.parametrize("kw", [dict(scale_factor=1.5, mode="linear"), dict(size=7, mode="linear", align_corners=True),
                                dict(size=5, mode="nearest")])
def test_interpolate_1d_matches_torch(kw):
    check_op([(2, 3, 4)], lambda x: fn_of(x).interpolate(x, **kw))


def test_upsample_module_matches_torch():
    ours, theirs = nn.Upsample(scale_factor=2, mode="bilinear"), torch.nn.Upsample(scale_factor=2, mode="bilinear")
    check_op([(1, 2, 3, 3)], lambda x: (ours if isinstance(x, tm.Tensor) else theirs)(x))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_modes_match_torch(mode):
    check_op([(2, 3, 4, 5)], lambda x: fn_of(x).pad(x, (1, 2, 2, 0), mode=mode))
    check_op([(2, 3, 5)], lambda x: fn_of(x).pad(x, (2, 1), mode=mode))
    check_op([(3, 5)], lambda x: fn_of(x).pad(x, (0, 3), mode=mode))


def test_constant_pad_with_negative_widths_crops():
    check_op([(2, 3, 5)], lambda x: fn_of(x).pad(x, (-1, 2, 1, -2), value=0.5))


@pytest.mark.parametrize("cls,pad", [("ReflectionPad2d", 1), ("ReplicationPad1d", (2, 0)), ("ZeroPad2d", (1, 0, 2, 1)),
                                     ("CircularPad2d", 1), ("ConstantPad1d", 2)])
def test_padding_modules_match_torch(cls, pad):
    ours, theirs = getattr(nn, cls)(pad) if cls != "ConstantPad1d" else nn.ConstantPad1d(pad, 1.5), \
        getattr(torch.nn, cls)(pad) if cls != "ConstantPad1d" else torch.nn.ConstantPad1d(pad, 1.5)
    shape = (1, 2, 4) if cls.endswith("1d") else (1, 2, 3, 4)
    check_op([shape], lambda x: (ours if isinstance(x, tm.Tensor) else theirs)(x))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_matches_torch_for_input_and_target_gradients(reduction):
    check_op([(3, 4), (3, 4)], lambda p, t: fn_of(p).binary_cross_entropy(p.sigmoid(), t.sigmoid(), reduction=reduction))
    w = np.linspace(0.5, 2.0, 4).astype(np.float32)
    check_op([(3, 4)], lambda p: fn_of(p).binary_cross_entropy(
        p.sigmoid(), (p * 0 + 1) if isinstance(p, tm.Tensor) else p.detach() * 0 + 1,
        weight=(tm.tensor(w).to(p.dtype) if isinstance(p, tm.Tensor) else torch.tensor(w)), reduction=reduction))
    ours, theirs = nn.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction)
    check_op([(3, 4), (3, 4)], lambda p, t: (ours if isinstance(p, tm.Tensor) else theirs)(p.sigmoid(), t.sigmoid()))


def test_binary_cross_entropy_at_0_and_1_is_finite_and_refuses_out_of_range():
    p = np.array([0.0, 1.0, 0.5], np.float32)
    t = np.array([1.0, 0.0, 1.0], np.float32)
    check_op([], lambda p, t: fn_of(p).binary_cross_entropy(p, t, reduction="none"), inputs=[p, t], gradcheck=False)
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(tm.tensor([1.5]), tm.tensor([1.0]))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_probability_target_gets_a_gradient(smoothing, reduction):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=(4,)).astype(np.float32)
    w = np.linspace(0.5, 1.5, 5).astype(np.float32)
    check_op([], lambda x, t: fn_of(x).cross_entropy(x, t, label_smoothing=smoothing, reduction=reduction),
             inputs=[rng.standard_normal((4, 5)).astype(np.float32), probs])
    check_op([], lambda x, t: fn_of(x).cross_entropy(x, t, weight=(tm.tensor(w) if isinstance(x, tm.Tensor) else torch.tensor(w)),
                                                      reduction=reduction),
             inputs=[rng.standard_normal((4, 5)).astype(np.float32), probs])
    probs3 = rng.dirichlet(np.ones(3), size=(2, 4)).transpose(0, 2, 1).astype(np.float32)
    check_op([], lambda x, t: fn_of(x).cross_entropy(x, t, reduction=reduction),
             inputs=[rng.standard_normal((2, 3, 4)).astype(np.float32), probs3])


def test_sdpa_float_mask_gets_its_gradient():
    check_op([(2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6), (4, 5)],
             lambda q, k, v, m: fn_of(q).scaled_dot_product_attention(q, k, v, attn_mask=m), atol=1e-4)
    check_op([(2, 4, 8), (2, 5, 8), (2, 5, 6), (2, 4, 5)],
             lambda q, k, v, m: fn_of(q).scaled_dot_product_attention(q, k, v, attn_mask=m), atol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_enable_gqa_matches_torch(causal):
    check_op([(1, 4, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4)],
             lambda q, k, v: fn_of(q).scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True), atol=1e-4)


def test_sdpa_refuses_is_causal_with_a_mask_and_mismatched_shapes():
    q = tm.randn(1, 2, 3, 4)
    with pytest.raises(RuntimeError, match="is_causal"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=tm.ones(3, 3, dtype=tm.bool_), is_causal=True)
    with pytest.raises(RuntimeError, match=r"\(1, 2, 3, 4\)"):
        F.scaled_dot_product_attention(q, tm.randn(1, 2, 3, 5), q)
    with pytest.raises(RuntimeError, match="multiple"):
        F.scaled_dot_product_attention(tm.randn(1, 3, 3, 4), tm.randn(1, 2, 3, 4), tm.randn(1, 2, 3, 4), enable_gqa=True)


def test_invalid_inputs_raise():
    with pytest.raises(RuntimeError):
        F.layer_norm(tm.randn(2, 3), ())
    with pytest.raises(RuntimeError):
        F.dropout(tm.tensor([1, 2, 3]), 0.5)
    with pytest.raises(RuntimeError):
        F.interpolate(tm.randn(1, 1, 4), scale_factor=2, mode="bilinear")
    with pytest.raises(RuntimeError, match="reflect"):
        F.pad(tm.randn(1, 1, 3), (3, 0), mode="reflect")
    with pytest.raises(RuntimeError, match="Boolean"):  # torch: "Boolean inputs not supported for relu"
        F.relu(tm.tensor([True, False]))


def test_import_tinymm_gives_nn_functional_and_optim_without_heavy_imports():
    import subprocess
    import sys

    code = ("import sys, tinymm; tinymm.nn.Linear; tinymm.nn.functional.relu; tinymm.optim.AdamW; "
            "tinymm.nn.utils.clip_grad_norm_; tinymm.nn.utils.clip_grad_value_; "
            "bad=[m for m in ('torch','numba','cupy') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_multinomial_and_bernoulli_are_seeded_and_follow_the_probabilities():
    p = tm.tensor([[0.1, 0.0, 0.6, 0.3], [0.0, 0.5, 0.5, 0.0]])
    tm.manual_seed(3)
    a = tm.multinomial(p, 2)
    tm.manual_seed(3)
    b = p.multinomial(2)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert a.dtype == np.int64 and a.shape == (2, 2)
    for row, probs in zip(a.detach().numpy(), p.detach().numpy()):
        assert len(set(row)) == 2 and all(probs[i] > 0 for i in row)  # no repeats, never a zero-weight class
    draws = tm.multinomial(tm.tensor([0.2, 0.8]), 20000, replacement=True).detach().numpy()
    assert abs(draws.mean() - 0.8) < 0.02
    first = np.bincount(tm.multinomial(tm.tensor([1.0, 2.0, 7.0]).expand(20000, 3), 1).detach().numpy()[:, 0], minlength=3) / 20000
    np.testing.assert_allclose(first, [0.1, 0.2, 0.7], atol=0.02)
    with pytest.raises(RuntimeError):
        tm.multinomial(tm.tensor([0.5, 0.0]), 2)
    bern = tm.bernoulli(tm.full((20000,), 0.3)).detach().numpy()
    assert set(np.unique(bern)) <= {0.0, 1.0} and abs(bern.mean() - 0.3) < 0.02
    x = tm.empty(10000)
    assert x.normal_(2.0, 0.5) is x and abs(float(x.mean()) - 2.0) < 0.05 and abs(float(x.std()) - 0.5) < 0.05
    x.uniform_(-1.0, 3.0)
    assert float(x.min()) >= -1.0 and float(x.max()) < 3.0 and abs(float(x.mean()) - 1.0) < 0.1
    with pytest.raises(RuntimeError, match="leaf"):
        tm.zeros(3, requires_grad=True).normal_()


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
def test_functional_parameter_names_are_torchs():
    """Every ``torch.nn.functional`` function tinymm has takes torch's parameters, in torch's
    order (so ``F.pad(input=x, pad=...)`` and positional calls mean the same)."""
    import inspect

    import torch.nn.functional as TF

    differ = []
    for name in dir(TF):
        theirs, ours = getattr(TF, name), getattr(F, name, None)
        if name.startswith("_") or ours is None or isinstance(theirs, type) or not callable(theirs):
            continue
        try:
            want = inspect.signature(theirs)
        except (TypeError, ValueError):  # a builtin without a signature
            continue
        names = [p.name for p in want.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        got = [p.name for p in inspect.signature(ours).parameters.values()
               if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if got[: len(names)] != names:
            differ.append((name, names, got))
    assert not differ
