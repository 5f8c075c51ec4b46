"""Losses against PyTorch, forward and backward, every option; gradcheck in float64."""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as F
from helpers import TORCH_REASON, check_op, torch

if torch is not None:
    import torch.nn.functional as TF

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
def _targets(rng, n, c, ignore=None):
    t = rng.integers(0, c, size=n)
    if ignore is not None:
        t[::3] = ignore
    return t


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("ignore", [None, 1])
def test_cross_entropy_index_targets(rng, reduction, smoothing, use_weight, ignore):
    n, c = 7, 5
    t = _targets(rng, n, c, ignore)
    w = rng.uniform(0.5, 2.0, c).astype(np.float32) if use_weight else None
    kw = dict(reduction=reduction, label_smoothing=smoothing, ignore_index=ignore if ignore is not None else -100)
    check_op(
        [(n, c)],
        lambda x: F.cross_entropy(x, tm.tensor(t), weight=None if w is None else tm.tensor(w), **kw),
        lambda x: TF.cross_entropy(x, torch.tensor(t), weight=None if w is None else torch.tensor(w), **kw),
        atol=1e-5,
    )


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_probability_targets_and_spatial_dims(rng, reduction):
    p = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    w = np.array([1.0, 2.0, 0.5, 1.0], np.float32)
    check_op(
        [(6, 4)],
        lambda x: F.cross_entropy(x, tm.tensor(p).to(x.dtype), weight=tm.tensor(w), reduction=reduction, label_smoothing=0.1),
        lambda x: TF.cross_entropy(x, torch.tensor(p), weight=torch.tensor(w), reduction=reduction, label_smoothing=0.1),
    )
    t = rng.integers(0, 3, size=(2, 4, 5))
    check_op(
        [(2, 3, 4, 5)],
        lambda x: F.cross_entropy(x, tm.tensor(t), reduction=reduction),
        lambda x: TF.cross_entropy(x, torch.tensor(t), reduction=reduction),
    )


def test_cross_entropy_bad_input_is_named():
    x = tm.randn(4, 3)
    with pytest.raises(ValueError, match=r"target has shape \(5,\), expected \(4,\)"):
        F.cross_entropy(x, tm.tensor([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match=r"weight has shape \(2,\), expected \(3,\)"):
        F.cross_entropy(x, tm.tensor([0, 1, 2, 0]), weight=tm.ones(2))
    with pytest.raises(ValueError):
        F.cross_entropy(x, tm.tensor([0, 1, 7, 0]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, tm.tensor([0, 1, 2, 0]), reduction="avg")


def test_cross_entropy_is_stable_for_huge_logits():
    x = tm.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    loss = F.cross_entropy(x, tm.tensor([1]))
    assert np.isfinite(loss.item()) and abs(loss.item() - 2e4) < 1
    loss.backward()
    assert np.isfinite(x.grad.numpy()).all()


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss(rng, reduction):
    t = _targets(rng, 6, 4, ignore=2)
    check_op(
        [(6, 4)],
        lambda x: F.nll_loss(x.log_softmax(1), tm.tensor(t), ignore_index=2, reduction=reduction),
        lambda x: TF.nll_loss(x.log_softmax(1), torch.tensor(t), ignore_index=2, reduction=reduction),
    )


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("pos_weight", [None, "vector"])
def test_bce_with_logits(rng, reduction, pos_weight):
    t = (rng.random((5, 3)) > 0.5).astype(np.float32)
    pw = np.array([0.5, 2.0, 3.0], np.float32) if pos_weight else None
    w = rng.uniform(0.5, 1.5, (5, 3)).astype(np.float32)
    check_op(
        [(5, 3)],
        lambda x: F.binary_cross_entropy_with_logits(x, tm.tensor(t), weight=tm.tensor(w), reduction=reduction,
                                                     pos_weight=None if pw is None else tm.tensor(pw)),
        lambda x: TF.binary_cross_entropy_with_logits(x, torch.tensor(t), weight=torch.tensor(w), reduction=reduction,
                                                      pos_weight=None if pw is None else torch.tensor(pw)),
        low=-30, high=30, gradcheck=False,
    )
    check_op([(5, 3)], lambda x: F.binary_cross_entropy_with_logits(x, tm.tensor(t).to(x.dtype), reduction=reduction),False)


def test_bce_gradient_wrt_target_and_pos_weight(rng):
    x = tm.tensor(rng.standard_normal((4, 2)))
    t = tm.tensor(rng.random((4, 2)), requires_grad=True)
    pw = tm.tensor(np.array([0.7, 1.9]), requires_grad=True)
    tm.gradcheck(lambda t, pw: F.binary_cross_entropy_with_logits(x, t, pos_weight=pw), [t, pw])


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_and_l1(reduction):
    check_op([(4, 3), (4, 3)], lambda a, b: F.mse_loss(a, b, reduction=reduction), lambda a, b: TF.mse_loss(a, b, reduction=reduction))
    check_op([(4, 3), (4, 3)], lambda a, b: F.l1_loss(a, b, reduction=reduction), lambda a, b: TF.l1_loss(a, b, reduction=reduction))


def test_cross_entropy_out_of_range_target_is_named_and_catchable_as_pytorch_raises():
    x = tm.randn(4, 3)
    with pytest.raises(IndexError, match=r"cross_entropy: target 7 \(at flat position 2\) is out of bounds: "
                                         r"expected a class index in \[0, 3\) or ignore_index \(-100\)") as info:
        F.cross_entropy(x, tm.tensor([0, 1, 7, 0]))
    assert isinstance(info.value, ValueError)
    with pytest.raises(IndexError, match="target -1"):
        F.cross_entropy(x, tm.tensor([0, 1, 2, -1]))
    F.cross_entropy(x, tm.tensor([0, 1, 2, -1]), ignore_index=-1)  # -1 is fine when it is ignore_index
    with pytest.raises(IndexError, match=r"target 3 \(at flat position 5\)"):  # spatial targets, flattened
        F.cross_entropy(tm.randn(2, 3, 4), tm.tensor(np.array([[0, 1, 2, 0], [1, 3, 0, 0]])))


def test_cross_entropy_other_bad_arguments_are_named():
    x = tm.randn(4, 3)
    t = tm.tensor([0, 1, 2, 0])
    with pytest.raises(TypeError, match="cross_entropy: input has dtype tinymm.int64, expected float32 or float64"):
        F.cross_entropy(tm.tensor(np.zeros((4, 3), np.int64)), t)  # (float16 runs in float32: revd)
    with pytest.raises(TypeError, match="ignore_index must be an int, got float"):
        F.cross_entropy(x, t, ignore_index=1.5)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got nan"):
        F.cross_entropy(x, t, label_smoothing=float("nan"))
    with pytest.raises(TypeError, match="probability target is tinymm.float64, input is tinymm.float32"):
        F.cross_entropy(x, tm.tensor(np.full((4, 3), 1 / 3)))
    with pytest.raises(ValueError, match="expected at least one class"):
        F.cross_entropy(tm.zeros(4, 0), t)


def test_cross_entropy_scans_the_targets_once_per_call(monkeypatch):
    """Validate once: the loss checks every class index before the kernels; neither the
    forward nor the backward kernel scans them again."""
    from tinymm.kernels import softmax as K

    calls = []
    real = K.first_invalid_target
    monkeypatch.setattr(K, "first_invalid_target", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = tm.randn(5, 4, requires_grad=True)
    F.cross_entropy(x, tm.tensor([0, 1, 2, 3, 0])).backward()
    assert len(calls) == 1
