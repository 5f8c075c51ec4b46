"""Pooling and batch norm, functionals and modules, against PyTorch (values, gradients, indices,
running statistics, state dicts) and a float64 finite-difference gradcheck; bad input."""
import numpy as np
import pytest

import tinymm as tm
import tinymm.nn as nn
import tinymm.nn.functional as F
from helpers import TORCH_REASON, check_op, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
TF = torch.nn.functional if torch is not None else None


# ----------------------------------------------------------------------------- max pooling


@needs_torch
@pytest.mark.parametrize("shape,kwargs", [
    ((2, 3, 9, 8), dict(kernel_size=2)),
    ((2, 3, 9, 8), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 2, 11, 7), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(2, 1), ceil_mode=True)),
    ((3, 9, 8), dict(kernel_size=3, stride=2, ceil_mode=True)),  # unbatched (C, H, W)
])
def test_max_pool2d_matches_torch(shape, kwargs):
    check_op([shape], lambda x: F.max_pool2d(x, **kwargs), lambda x: TF.max_pool2d(x, **kwargs))
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    y, idx = F.max_pool2d(tm.tensor(x), **kwargs, return_indices=True)
    ty, tidx = TF.max_pool2d(torch.tensor(x), **kwargs, return_indices=True)
    assert idx.dtype == np.int64 and not idx.requires_grad
    np.testing.assert_array_equal(idx.detach().numpy(), tidx.detach().numpy())
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())


@needs_torch
@pytest.mark.parametrize("shape,kwargs", [
    ((2, 3, 10), dict(kernel_size=2)),
    ((2, 3, 10), dict(kernel_size=4, stride=3, padding=2, dilation=2, ceil_mode=True)),
    ((3, 10), dict(kernel_size=3, stride=1, padding=1)),  # unbatched (C, L)
])
def test_max_pool1d_matches_torch(shape, kwargs):
    check_op([shape], lambda x: F.max_pool1d(x, **kwargs), lambda x: TF.max_pool1d(x, **kwargs))
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    _, idx = F.max_pool1d(tm.tensor(x), **kwargs, return_indices=True)
    np.testing.assert_array_equal(idx.detach().numpy(), TF.max_pool1d(torch.tensor(x), **kwargs, return_indices=True)[1].detach().numpy())


@needs_torch
def test_max_pool_ties_and_nan_follow_torch():
    x = np.array([[[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, np.nan, 1.0], [np.nan, 0.0, 5.0, 5.0]]]], dtype=np.float32)
    y, idx = F.max_pool2d(tm.tensor(x), 2, 1, return_indices=True)
    ty, tidx = TF.max_pool2d(torch.tensor(x), 2, 1, return_indices=True)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(idx.detach().numpy(), tidx.detach().numpy())
    xt = tm.tensor(x, requires_grad=True)
    F.max_pool2d(xt, 2, 1).sum().backward()
    xr = torch.tensor(x, requires_grad=True)
    TF.max_pool2d(xr, 2, 1).sum().backward()
    np.testing.assert_array_equal(xt.grad.numpy(), xr.grad.numpy())


# ----------------------------------------------------------------------------- average pooling


@needs_torch
@pytest.mark.parametrize("shape,kwargs", [
    ((2, 3, 9, 8), dict(kernel_size=2)),
    ((2, 3, 9, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((2, 3, 9, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ((1, 2, 7, 10), dict(kernel_size=(3, 4), stride=(1, 3), padding=(1, 2), divisor_override=5)),
    ((3, 9, 8), dict(kernel_size=3, stride=2)),  # unbatched
])
def test_avg_pool2d_matches_torch(shape, kwargs):
    check_op([shape], lambda x: F.avg_pool2d(x, **kwargs), lambda x: TF.avg_pool2d(x, **kwargs))


@needs_torch
@pytest.mark.parametrize("shape,kwargs", [
    ((2, 3, 10), dict(kernel_size=3)),
    ((2, 3, 10), dict(kernel_size=4, stride=3, padding=2, ceil_mode=True, count_include_pad=False)),
    ((3, 10), dict(kernel_size=2, stride=1, padding=1)),
])
def test_avg_pool1d_matches_torch(shape, kwargs):
    check_op([shape], lambda x: F.avg_pool1d(x, **kwargs), lambda x: TF.avg_pool1d(x, **kwargs))


@needs_torch
@pytest.mark.parametrize("shape,out", [((2, 3, 10, 7), (4, 3)), ((2, 3, 10, 7), 1), ((2, 3, 5, 7), (None, 9)),
                                       ((3, 10, 7), 3)])
def test_adaptive_avg_pool2d_matches_torch(shape, out):
    check_op([shape], lambda x: F.adaptive_avg_pool2d(x, out), lambda x: TF.adaptive_avg_pool2d(x, out))


@needs_torch
@pytest.mark.parametrize("shape,out", [((2, 3, 10), 4), ((2, 3, 5), 8), ((3, 10), 1)])
def test_adaptive_avg_pool1d_matches_torch(shape, out):
    check_op([shape], lambda x: F.adaptive_avg_pool1d(x, out), lambda x: TF.adaptive_avg_pool1d(x, out))


# ----------------------------------------------------------------------------- pooling modules


@needs_torch
@pytest.mark.parametrize("name,args,kwargs,shape", [
    ("MaxPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True), (2, 3, 9, 8)),
    ("MaxPool1d", (2,), dict(dilation=2), (2, 3, 9)),
    ("AvgPool2d", (2,), dict(count_include_pad=False, padding=1), (2, 3, 9, 8)),
    ("AvgPool1d", (3,), dict(stride=2), (2, 3, 9)),
    ("AdaptiveAvgPool2d", ((2, 3),), {}, (2, 3, 9, 8)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 9)),
])
def test_pooling_modules_match_torch(name, args, kwargs, shape):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    check_op([shape], ours, theirs)


@needs_torch
def test_max_pool_module_returns_indices():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    y, idx = nn.MaxPool2d(2, return_indices=True)(tm.tensor(x))
    np.testing.assert_array_equal(idx.detach().numpy(), torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))[1].detach().numpy())


# ----------------------------------------------------------------------------- batch norm, functional


@needs_torch
@pytest.mark.parametrize("shape", [(6, 4), (5, 3, 7), (4, 3, 5, 6)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_matches_torch(shape, affine):
    c = shape[1]
    if affine:
        check_op([shape, (c,), (c,)], lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                 lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True), high=3.0)
    else:
        check_op([shape], lambda x: F.batch_norm(x, None, None, training=True),
                 lambda x: TF.batch_norm(x, None, None, training=True))


@needs_torch
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_running_statistics_match_torch(training):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, 3, 5, 6)) * 2 + 1).astype(np.float32)
    rm, rv = rng.standard_normal(3).astype(np.float32), rng.uniform(0.5, 2, 3).astype(np.float32)
    ours_rm, ours_rv = tm.tensor(rm.copy()), tm.tensor(rv.copy())
    theirs_rm, theirs_rv = torch.tensor(rm), torch.tensor(rv)
    check_op([x.shape, (3,), (3,)],
             lambda x, w, b: F.batch_norm(x, ours_rm, ours_rv, w, b, training, 0.2, 1e-3),
             lambda x, w, b: TF.batch_norm(x, theirs_rm, theirs_rv, w, b, training, 0.2, 1e-3),
             inputs=[x, rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)],
             gradcheck=False)
    # check_op ran each side once (plus tinymm's float64 gradcheck, switched off here)
    np.testing.assert_allclose(ours_rm.detach().numpy(), theirs_rm.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours_rv.detach().numpy(), theirs_rv.detach().numpy(), rtol=1e-6, atol=1e-7)
    if not training:
        np.testing.assert_array_equal(ours_rm.detach().numpy(), rm)


def test_batch_norm_eval_gradcheck_float64():
    rng = np.random.default_rng(2)
    rm, rv = tm.tensor(rng.standard_normal(3)), tm.tensor(rng.uniform(0.5, 2, 3))
    x, w, b = (tm.tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 3, 4), (3,), (3,)))
    tm.gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), [x, w, b])


# ----------------------------------------------------------------------------- batch norm, modules


def copy_params(ours, theirs):
    """Random affine parameters, the same on both sides."""
    rng = np.random.default_rng(5)
    for name in ("weight", "bias"):
        if getattr(theirs, name) is not None:
            v = rng.standard_normal(theirs.num_features).astype(np.float32)
            getattr(ours, name)._data[...] = v
            with torch.no_grad():
                getattr(theirs, name).copy_(torch.tensor(v))


@needs_torch
@pytest.mark.parametrize("name,shape", [("BatchNorm1d", (8, 4)), ("BatchNorm1d", (5, 4, 7)), ("BatchNorm2d", (4, 4, 5, 3))])
@pytest.mark.parametrize("options", [dict(), dict(momentum=None), dict(affine=False, momentum=0.3),
                                     dict(track_running_stats=False)])
def test_batch_norm_module_train_steps_then_eval_match_torch(name, shape, options):
    ours, theirs = getattr(nn, name)(4, **options), getattr(torch.nn, name)(4, **options)
    copy_params(ours, theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    rng = np.random.default_rng(0)
    for step in range(4):
        x = (rng.standard_normal(shape) * (1 + step) + step).astype(np.float32)
        gy = rng.standard_normal(shape).astype(np.float32)
        xt, xr = tm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yt, yr = ours(xt), theirs(xr)
        np.testing.assert_allclose(yt.detach().numpy(), yr.detach().numpy(), rtol=1e-4, atol=1e-5)
        yt.backward(tm.tensor(gy))
        yr.backward(torch.tensor(gy))
        np.testing.assert_allclose(xt.grad.numpy(), xr.grad.numpy(), rtol=1e-4, atol=1e-4)
        for pname in ("weight", "bias"):
            if getattr(theirs, pname) is not None:
                np.testing.assert_allclose(getattr(ours, pname).grad.numpy(), getattr(theirs, pname).grad.numpy(),
                                           rtol=1e-4, atol=1e-4)
    for k, v in theirs.state_dict().items():
        got = ours.state_dict()[k].detach().numpy()
        assert got.dtype == v.detach().numpy().dtype and got.shape == tuple(v.shape), k
        np.testing.assert_allclose(got, v.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    ours.eval()
    theirs.eval()
    assert not ours.training
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    xt, xr = tm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yt, yr = ours(xt), theirs(xr)
    np.testing.assert_allclose(yt.detach().numpy(), yr.detach().numpy(), rtol=1e-4, atol=1e-5)
    yt.sum().backward()
    yr.sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), xr.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_train_and_eval_switch_batch_norm_inside_a_model():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    x = tm.tensor(np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32))
    y_train = model(x)
    assert int(model[1].num_batches_tracked.detach().numpy()) == 1
    np.testing.assert_allclose(y_train.detach().numpy().mean(axis=0), 0, atol=1e-5)  # batch statistics
    model.eval()
    y_eval = model(x)
    assert int(model[1].num_batches_tracked.detach().numpy()) == 1  # eval does not count or update
    assert not np.allclose(y_eval.detach().numpy(), y_train.detach().numpy())
    model.train()
    assert model[1].training


def test_batch_norm_buffers_follow_dtype_casts_but_count_stays_int64():
    bn = nn.BatchNorm2d(3).double()
    assert bn.running_mean.dtype == np.float64 and bn.weight.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()
    y = bn(tm.tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 4))))
    assert y.dtype == np.float64


@needs_torch
def test_batch_norm2d_state_dict_round_trips_through_torch(tmp_path):
    from safetensors.torch import load_file, save_file

    rng = np.random.default_rng(0)
    ours = nn.BatchNorm2d(3)
    for _ in range(3):  # non-trivial running statistics and count
        ours(tm.tensor(rng.standard_normal((4, 3, 5, 5)).astype(np.float32) * 2 + 1))
    nn.init.uniform_(ours.weight, 0.5, 1.5)
    nn.init.uniform_(ours.bias, -1, 1)
    tm.save(ours.state_dict(), tmp_path / "ours.safetensors")
    theirs = torch.nn.BatchNorm2d(3)
    theirs.load_state_dict(load_file(str(tmp_path / "ours.safetensors")))  # strict
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(theirs.state_dict()[k].detach().numpy(), v.detach().numpy())
    assert int(theirs.num_batches_tracked) == 3
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(tm.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    theirs.train()
    theirs(torch.tensor(x))  # count 4, new statistics
    save_file(theirs.state_dict(), str(tmp_path / "theirs.safetensors"))
    back = nn.BatchNorm2d(3)
    back.load_state_dict(tm.load(tmp_path / "theirs.safetensors"))
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k].detach().numpy(), v.detach().numpy())
    assert back.num_batches_tracked.dtype == np.int64


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("call,match", [
    (lambda: F.max_pool2d(tm.zeros(1, 1, 2, 2), 3), r"kernel \(3, 3\) does not fit the input of shape \(1, 1, 2, 2\)"),
    (lambda: F.avg_pool1d(tm.zeros(1, 1, 3), 4, padding=0), r"kernel \(4,\) does not fit the input of shape \(1, 1, 3\) padded by \(0,\)"),
    (lambda: F.max_pool2d(tm.zeros(1, 1, 5, 5), 3, padding=2), r"padding \(2, 2\) must be at most half the kernel"),
    (lambda: F.avg_pool2d(tm.zeros(1, 1, 5, 5), 2, padding=(0, 2)), r"padding \(0, 2\) must be at most half"),
    (lambda: F.max_pool2d(tm.zeros(4, 4), 2), r"max_pool2d: expected a 3-D \(C, H, W\) or 4-D .* got shape \(4, 4\)"),
    (lambda: F.max_pool1d(tm.zeros(1, 2, 3, 4), 2), r"max_pool1d: expected .* got shape \(1, 2, 3, 4\)"),
    (lambda: F.adaptive_avg_pool2d(tm.zeros(1, 2, 0, 3), 2), r"input of shape \(1, 2, 0, 3\) has an empty"),
    (lambda: F.max_pool2d(tm.zeros(1, 1, 4, 4), 0), r"kernel_size must be at least 1"),
    (lambda: F.avg_pool2d(tm.zeros(1, 1, 4, 4), 2, stride=0), r"stride must be at least 1"),
    (lambda: F.batch_norm(tm.zeros(1, 3), None, None, training=True),
     r"more than 1 value per channel when training, got an input of shape \(1, 3\)"),
    (lambda: F.batch_norm(tm.zeros(2, 3, 1, 1)[:1], None, None, training=True), r"more than 1 value per channel"),
    (lambda: F.batch_norm(tm.zeros(2, 3), tm.zeros(4), tm.ones(4)),
     r"running_mean has shape \(4,\), expected \(3,\) for an input of shape \(2, 3\)"),
    (lambda: F.batch_norm(tm.zeros(2, 3), None, None, weight=tm.ones(2), training=True), r"weight has shape \(2,\)"),
    (lambda: F.batch_norm(tm.zeros(3), tm.zeros(3), tm.ones(3)), r"at least 2 dims .* got shape \(3,\)"),
    (lambda: F.batch_norm(tm.zeros(2, 3), None, None), r"must be given in evaluation mode"),
    (lambda: nn.BatchNorm2d(3)(tm.zeros(2, 4, 5, 5)), r"input of shape \(2, 4, 5, 5\) has 4 channels, the layer expects 3"),
    (lambda: nn.BatchNorm2d(3)(tm.zeros(2, 3, 5)), r"expected a 4-D \(N, C, H, W\) input, got shape \(2, 3, 5\)"),
    (lambda: nn.BatchNorm1d(3)(tm.zeros(2, 3, 4, 5)), r"expected a 2-D \(N, C\) or 3-D \(N, C, L\) input"),
])
def test_bad_input_raises_runtime_error_naming_shapes(call, match):
    with pytest.raises(RuntimeError, match=match):
        call()
    with pytest.raises(ValueError, match=match):  # ShapeError is both
        call()


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="float32 or float64"):
        F.max_pool2d(tm.tensor(np.zeros((1, 1, 4, 4), dtype=np.int64)), 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.batch_norm(tm.tensor(np.zeros((2, 3), dtype=np.int64)), None, None, training=True)


def test_batch_norm_dtype_mismatch_is_refused():
    with pytest.raises(TypeError, match="dtype"):
        F.batch_norm(tm.zeros(2, 3), None, None, weight=tm.tensor(np.ones(3)), training=True)


def test_empty_batch_passes_through_as_in_torch():
    assert nn.BatchNorm2d(3).eval()(tm.zeros(0, 3, 4, 4)).shape == (0, 3, 4, 4)
    assert F.max_pool2d(tm.zeros(0, 3, 4, 4), 2).shape == (0, 3, 2, 2)
    assert F.adaptive_avg_pool1d(tm.zeros(0, 3, 4), 2).shape == (0, 3, 2)
