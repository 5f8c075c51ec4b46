"""torch._foreach_*: each overload (number, list of numbers, list of tensors, 0-dim Tensor,
alpha=) against PyTorch's values, the in-place forms writing into the given tensors, and the
errors PyTorch raises (empty and unequal lists, alpha with a number, dtypes that cannot hold the
result)."""
import numpy as np
import pytest

import tinymm as tm

from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

SHAPES = [(3,), (2, 2), ()]


def pair(seed=0, shapes=SHAPES, positive=False):
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(0.5 if positive else -2, 2, s).astype(np.float32) for s in shapes]
    return [tm.tensor(a) for a in arrays], [torch.tensor(a) for a in arrays]


def same(ours, theirs):
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        assert o.shape == tuple(t.shape) and str(o.dtype) == str(t.dtype).replace("torch.", "tinymm.")
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=1e-6, atol=1e-6)


def both(name, ours_args, theirs_args, **kw):
    """Call the op in both libraries; in-place forms are compared through their first list."""
    a, b = getattr(tm, name)(*ours_args, **kw), getattr(torch, name)(*theirs_args, **kw)
    if name.endswith("_"):
        assert isinstance(a, list) and all(x is y for x, y in zip(a, ours_args[0]))
        same(ours_args[0], theirs_args[0])
    else:
        assert isinstance(a, tuple)
        same(a, b)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "clamp_min"])
@pytest.mark.parametrize("inplace", [False, True])
def test_binary_ops_take_every_overload(op, inplace):
    name = f"_foreach_{op}{'_' if inplace else ''}"
    for other in ("number", "numbers", "tensors", "scalar_tensor"):
        ours, theirs = pair(1)
        o2, t2 = pair(2)
        args = {"number": (1.5, 1.5), "numbers": ([0.5, -1.0, 2.0],) * 2, "tensors": (o2, t2),
                "scalar_tensor": (tm.tensor(0.75), torch.tensor(0.75))}[other]
        both(name, (ours, args[0]), (theirs, args[1]))
    if op in ("add", "sub"):
        ours, theirs = pair(3)
        o2, t2 = pair(4)
        both(name, (ours, o2), (theirs, t2), alpha=-0.5)
        if op == "add":
            both(name, (ours, tm.tensor(2.0)), (theirs, torch.tensor(2.0)), alpha=3)
        else:  # torch has no sub overload taking a Tensor and alpha
            for lib, a in ((tm, ours), (torch, theirs)):
                with pytest.raises(TypeError):
                    getattr(lib, name)(a, lib.tensor(2.0), alpha=3)
        with pytest.raises(TypeError):
            getattr(tm, name)(ours, 2.0, alpha=2)
        with pytest.raises(TypeError):
            getattr(torch, name)(theirs, 2.0, alpha=2)


@pytest.mark.parametrize("op", ["sqrt", "exp", "neg", "abs"])
def test_unary_ops(op):
    ours, theirs = pair(5, positive=op == "sqrt")
    both(f"_foreach_{op}", (ours,), (theirs,))
    both(f"_foreach_{op}_", (ours,), (theirs,))


def test_ema_lerp_and_optimizer_style_updates_match_torch():
    ema, tema = pair(6)
    model, tmodel = pair(7)
    for decay in (0.9, 0.99):
        tm._foreach_lerp_(ema, model, weight=1 - decay)  # timm's ModelEmaV3
        torch._foreach_lerp_(tema, tmodel, weight=1 - decay)
    same(ema, tema)
    w, tw = pair(8)
    both("_foreach_lerp_", (ema, model, w), (tema, tmodel, tw))
    both("_foreach_lerp_", (ema, model, [0.1, 0.2, 0.3]), (tema, tmodel, [0.1, 0.2, 0.3]))
    both("_foreach_lerp", (ema, model, 0.5), (tema, tmodel, 0.5))
    p, tp = pair(9)
    g1, tg1 = pair(10)
    g2, tg2 = pair(11, positive=True)
    for value, tvalue in ((0.5, 0.5), ([1.0, -2.0, 3.0], [1.0, -2.0, 3.0]),
                          (tm.tensor([1.0, 2.0, 0.5]), torch.tensor([1.0, 2.0, 0.5]))):
        for name in ("_foreach_addcmul_", "_foreach_addcdiv_", "_foreach_addcmul", "_foreach_addcdiv"):
            both(name, (p, g1, g2, value), (tp, tg1, tg2, tvalue))
    both("_foreach_copy_", (p, g1), (tp, tg1))
    both("_foreach_zero_", (p,), (tp,))


def test_norms_are_each_tensors_vector_norm():
    ours, theirs = pair(12)
    for ord in (2, 1, 3, float("inf"), float("-inf"), 0):
        same(tm._foreach_norm(ours, ord), torch._foreach_norm(theirs, ord))
    same(tm._foreach_norm(ours, dtype=tm.float64), torch._foreach_norm(theirs, dtype=torch.float64))


def test_gradients_flow_through_the_out_of_place_forms():
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    tm._foreach_mul([x], 3.0)[0].sum().backward()
    torch._foreach_mul([tx], 3.0)[0].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    with pytest.raises(RuntimeError, match="leaf"):
        tm._foreach_add_([x], 1.0)
    with tm.no_grad():
        tm._foreach_add_([x], 1.0)
    assert x.tolist() == [2.0, 3.0]


def test_errors_are_torchs():
    ours, theirs = pair(13)
    cases = [
        (lambda lib, a: getattr(lib, "_foreach_add_")(a, a[:2]), RuntimeError, "same number of tensors, got 3 and 2"),
        (lambda lib, a: getattr(lib, "_foreach_add")([], 1.0), RuntimeError, "at least one tensor"),
        (lambda lib, a: getattr(lib, "_foreach_mul_")(a, [1.0]), RuntimeError, "same number of elements as scalar list"),
        (lambda lib, a: getattr(lib, "_foreach_mul")(a, lib.ones(2)), RuntimeError, "expected to be 0 dim"),
        (lambda lib, a: getattr(lib, "_foreach_add_")(a[0], 1.0), TypeError, None),
        (lambda lib, a: getattr(lib, "_foreach_add_")(a, "x"), TypeError, None),
        (lambda lib, a: getattr(lib, "_foreach_addcmul_")(a, a, a, [1.0]), RuntimeError, "scalar list"),
        (lambda lib, a: getattr(lib, "_foreach_addcmul_")(a, a, a, lib.ones(2)), RuntimeError,
         "Expected length of scalars to match input of length 3 but got 2"),
        (lambda lib, a: getattr(lib, "_foreach_lerp_")(a, a[:1], 0.5), RuntimeError, "got 3 and 1"),
        (lambda lib, a: getattr(lib, "_foreach_copy_")(a[:1], [lib.ones(5)]), RuntimeError, None),
        (lambda lib, a: getattr(lib, "_foreach_add_")([lib.ones(2, dtype=lib.int64)], 1.5), RuntimeError,
         "result type Float can't be cast to the desired output type Long"),
        (lambda lib, a: getattr(lib, "_foreach_sqrt_")([lib.ones(2, dtype=lib.int64)]), RuntimeError,
         "can't be cast to the desired output type Long"),
        (lambda lib, a: getattr(lib, "_foreach_neg")([lib.ones(2, dtype=lib.bool)]), RuntimeError, "bool tensor"),
        (lambda lib, a: getattr(lib, "_foreach_norm")([lib.ones(2, dtype=lib.int64)]), RuntimeError, None),
    ]
    for call, cls, text in cases:
        for lib, a in ((tm, ours), (torch, theirs)):
            with pytest.raises(cls, match=text):
                call(lib, a)


def test_dtype_results_follow_torchs_promotion():
    for ours_in, theirs_in, other in ((tm.ones(2, dtype=tm.int64), torch.ones(2, dtype=torch.int64), 2.0),
                                     (tm.ones(2, dtype=tm.int32), torch.ones(2, dtype=torch.int32), 3)):
        for name in ("_foreach_mul", "_foreach_div", "_foreach_add"):
            same(getattr(tm, name)([ours_in], other), getattr(torch, name)([theirs_in], other))
    same(tm._foreach_add([tm.ones(2)], [tm.ones(2, dtype=tm.float64)]),
         torch._foreach_add([torch.ones(2)], [torch.ones(2, dtype=torch.float64)]))
    same(tm._foreach_sqrt([tm.tensor([4, 9])]), torch._foreach_sqrt([torch.tensor([4, 9])]))
