"""More of torch.nn / torch.nn.functional against PyTorch: norms, channel dropout, distances,
losses, pixel shuffle, fold/unfold, adaptive max pooling, bilinear, containers and init."""
import numpy as np
import pytest

import tinymm as tm
from tinymm import nn
from tinymm.nn import functional as F
from helpers import TORCH_REASON, check_op, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
TF = torch.nn.functional if torch is not None else None


def _F(name, **kw):
    """(tinymm fn, torch fn) of the functional ``name`` with keyword arguments bound."""
    return (lambda *a: getattr(F, name)(*a, **kw)), (lambda *a: getattr(TF, name)(*a, **kw))


# ----------------------------------------------------------------------------- norms


@needs_torch
@pytest.mark.parametrize("shape,groups", [((2, 6, 5), 3), ((2, 4, 3, 3), 2), ((3, 4), 2), ((2, 6, 2, 3), 1)])
def test_group_norm_matches_torch(shape, groups):
    C = shape[1]
    tm_fn, t_fn = _F("group_norm", num_groups=groups)
    check_op([shape], tm_fn, t_fn)
    check_op([shape, (C,), (C,)], lambda x, w, b: F.group_norm(x, groups, w, b, 1e-5),
             lambda x, w, b: TF.group_norm(x, groups, w, b, 1e-5))


@needs_torch
@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 3)])
def test_instance_norm_matches_torch(shape):
    C = shape[1]
    check_op([shape], F.instance_norm, TF.instance_norm)
    check_op([shape, (C,), (C,)], lambda x, w, b: F.instance_norm(x, weight=w, bias=b, eps=1e-3),
             lambda x, w, b: TF.instance_norm(x, weight=w, bias=b, eps=1e-3))


@needs_torch
@pytest.mark.parametrize("cls,shape", [("InstanceNorm1d", (2, 3, 5)), ("InstanceNorm2d", (2, 3, 4, 3)),
                                       ("InstanceNorm1d", (3, 5))])
@pytest.mark.parametrize("kw", [dict(), dict(affine=True, track_running_stats=True, momentum=0.3),
                                dict(track_running_stats=True, momentum=None)])  # None: stats stay put
def test_instance_norm_modules_match_torch_in_train_and_eval(cls, shape, kw):
    ours, theirs = getattr(nn, cls)(3, **kw), getattr(torch.nn, cls)(3, **kw)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(2):
        np.testing.assert_allclose(ours(tm.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].detach().numpy(), v.detach().numpy(), atol=1e-6, err_msg=k)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(tm.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)


@needs_torch
@pytest.mark.parametrize("eps", [None, 1e-3])
def test_rms_norm_matches_torch(eps):
    check_op([(2, 3, 4), (3, 4)], lambda x, w: F.rms_norm(x, (3, 4), w, eps),
             lambda x, w: TF.rms_norm(x, (3, 4), w, eps))
    m, t = nn.RMSNorm(4, eps=eps), torch.nn.RMSNorm(4, eps=eps)
    assert list(m.state_dict()) == list(t.state_dict())
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(m(tm.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-5)


@needs_torch
@needs_torch
@pytest.mark.parametrize("cls,args,shape", [("GroupNorm", (2, 4), (2, 4, 3)), ("InstanceNorm1d", (4,), (2, 4, 3)),
                                            ("BatchNorm1d", (4,), (2, 4, 3))])
def test_norm_layers_take_pytorchs_bias_false(cls, args, shape):
    kw = dict(bias=False) if cls != "InstanceNorm1d" else dict(bias=False, affine=True)
    ours, theirs = getattr(nn, cls)(*args, **kw), getattr(torch.nn, cls)(*args, **kw)
    assert ours.bias is None and list(ours.state_dict()) == list(theirs.state_dict())
    with torch.no_grad():
        theirs.weight.uniform_()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    check_op([shape], ours, theirs, gradcheck=False)  # float32 parameters


def test_group_norm_module_and_local_response_norm_match_torch():
    m, t = nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)
    assert list(m.state_dict()) == list(t.state_dict())
    x = np.random.default_rng(2).standard_normal((2, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(m(tm.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(), atol=1e-5)
    for size in (1, 2, 3):
        tm_fn, t_fn = _F("local_response_norm", size=size, alpha=0.1, beta=0.7, k=2.0)
        check_op([(2, 5, 3)], tm_fn, t_fn)


def test_norm_shape_errors_are_named():
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(tm.randn(2, 5, 3), 2)
    with pytest.raises(RuntimeError, match=r"weight has shape \(3,\), expected \(4,\)"):
        F.group_norm(tm.randn(2, 4, 3), 2, tm.ones(3))
    with pytest.raises(RuntimeError, match="does not end with normalized_shape"):
        F.rms_norm(tm.randn(2, 3), (4,))
    with pytest.raises(RuntimeError, match="more than 1 spatial element"):
        F.instance_norm(tm.randn(2, 3, 1))
    with pytest.raises(RuntimeError, match="expected 2D .unbatched. or 3D"):
        nn.InstanceNorm1d(3)(tm.randn(2, 3, 4, 5))


# ----------------------------------------------------------------------------- dropout


@pytest.mark.filterwarnings("ignore:dropout2d. Received a 3D input")
@pytest.mark.parametrize("fn,shape,mask_dims", [("dropout1d", (4, 6, 50), 2), ("dropout2d", (4, 6, 7, 8), 2),
                                                ("dropout1d", (40, 3), 1), ("dropout3d", (40, 3, 4, 2), 1),
                                                # PyTorch 2 reads a 3-D dropout2d input as (N, C, L)
                                                ("dropout2d", (40, 3, 4), 2), ("dropout3d", (4, 8, 2, 3, 4), 2)])
def test_channel_dropout_zeroes_whole_channels_and_scales(fn, shape, mask_dims):
    x = tm.ones(*shape, requires_grad=True)
    y = getattr(F, fn)(x, 0.5, True)
    a = y.detach().numpy().reshape(shape[:mask_dims] + (-1,))
    assert set(np.unique(a)) <= {0.0, 2.0}
    assert (a.min(axis=-1) == a.max(axis=-1)).all()  # one value per channel
    assert 0 < (a[..., 0] == 0).mean() < 1
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())
    assert getattr(F, fn)(x, 0.5, False) is x
    with pytest.raises(RuntimeError, match="Expected"):
        getattr(F, fn)(tm.ones(3), 0.5)  # 1-D: no channel dim


def test_alpha_dropout_keeps_mean_and_variance():
    x = tm.randn(200_000)
    y = F.alpha_dropout(x, 0.3, training=True).detach().numpy()
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    assert F.alpha_dropout(x, 0.3) is x  # training=False by default, as PyTorch
    m = nn.AlphaDropout(0.2)
    m.eval()
    assert m(x) is x
    z = nn.FeatureAlphaDropout(0.5)(tm.randn(3, 8, 5)).detach().numpy()
    dropped = np.isclose(z, z[..., :1]).all(axis=-1)  # a dropped channel is one constant value
    assert dropped.any() and not dropped.all()


# ----------------------------------------------------------------------------- distances and bilinear


@needs_torch
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
def test_pairwise_distance_and_pdist_match_torch(p):
    tm_fn, t_fn = _F("pairwise_distance", p=p)
    check_op([(4, 5), (4, 5)], tm_fn, t_fn)
    check_op([(4, 5), (1, 5)], lambda a, b: F.pairwise_distance(a, b, p, keepdim=True),
             lambda a, b: TF.pairwise_distance(a, b, p, keepdim=True))
    check_op([(4, 3)], lambda x: F.pdist(x, p), lambda x: TF.pdist(x, p))
    m, t = nn.PairwiseDistance(p), torch.nn.PairwiseDistance(p)
    a, b = np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)
    np.testing.assert_allclose(m(tm.tensor(a), tm.tensor(b)).detach().numpy(), t(torch.tensor(a), torch.tensor(b)).detach().numpy())
    c = nn.CosineSimilarity(dim=0)(tm.tensor(a), tm.tensor(a + 1)).detach().numpy()
    np.testing.assert_allclose(c, torch.nn.CosineSimilarity(dim=0)(torch.tensor(a), torch.tensor(a + 1)).detach().numpy())


@needs_torch
def test_bilinear_matches_torch():
    check_op([(4, 3), (4, 5), (2, 3, 5), (2,)], F.bilinear, TF.bilinear)
    check_op([(2, 4, 3), (2, 4, 5), (2, 3, 5)], F.bilinear, TF.bilinear)
    m, t = nn.Bilinear(3, 5, 2), torch.nn.Bilinear(3, 5, 2)
    assert list(m.state_dict()) == list(t.state_dict())
    assert float(np.abs(m.weight.detach().numpy()).max()) <= 1 / np.sqrt(3)
    with pytest.raises(RuntimeError, match=r"input2 has shape \(4, 4\), expected \(\.\.\., 5\)"):
        F.bilinear(tm.randn(4, 3), tm.randn(4, 4), m.weight)


# ----------------------------------------------------------------------------- losses


def _labels(shape, seed=3):
    return np.where(np.random.default_rng(seed).random(shape) > 0.5, 1.0, -1.0).astype(np.float32)


LOSSES = [
    ("smooth_l1_loss", [(3, 4), (3, 4)], dict(beta=0.5), None),
    ("smooth_l1_loss", [(3, 4), (3, 4)], dict(beta=0.0, reduction="sum"), None),
    ("huber_loss", [(3, 4), (3, 4)], dict(delta=0.7), None),
    ("huber_loss", [(3, 4), (3, 4)], dict(delta=2.0, reduction="none"), None),
    ("soft_margin_loss", [(3, 4)], dict(), "labels"),
    ("hinge_embedding_loss", [(3, 4)], dict(margin=0.5), "labels"),
    ("multilabel_soft_margin_loss", [(3, 4)], dict(), "binary"),
    ("multilabel_soft_margin_loss", [(3, 4)], dict(reduction="none"), "binary"),
    ("poisson_nll_loss", [(3, 4)], dict(), "counts"),
    ("poisson_nll_loss", [(3, 4)], dict(log_input=False, full=True, reduction="sum"), "counts"),
]


@needs_torch
@pytest.mark.parametrize("name,shapes,kw,target", LOSSES)
def test_elementwise_losses_match_torch(name, shapes, kw, target):
    tm_fn, t_fn = _F(name, **kw)
    if target is None:
        check_op(shapes, tm_fn, t_fn)
        return
    rng = np.random.default_rng(4)
    x = rng.uniform(0.2, 2.0, shapes[0]).astype(np.float32)
    t = {"labels": _labels(shapes[0]), "binary": (rng.random(shapes[0]) > 0.5).astype(np.float32),
         "counts": rng.integers(0, 5, shapes[0]).astype(np.float32)}[target]
    check_op(None, lambda a: tm_fn(a, tm.tensor(t)), lambda a: t_fn(a, torch.tensor(t)), inputs=[x])


@needs_torch
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    rng = np.random.default_rng(5)
    logp = np.log(rng.dirichlet(np.ones(4), size=3)).astype(np.float32)
    q = rng.dirichlet(np.ones(4), size=3).astype(np.float32)
    q[0, 1] = 0  # a zero target contributes 0
    tgt = np.log(np.maximum(q, 1e-8)).astype(np.float32) if log_target else q
    # PyTorch's target gradient is NaN at a zero target; tinymm's is finite: compare input grads
    check_op(None, lambda x: F.kl_div(x, tm.tensor(tgt), reduction=reduction, log_target=log_target),
             lambda x: TF.kl_div(x, torch.tensor(tgt), reduction=reduction, log_target=log_target), inputs=[logp])
    if log_target:
        check_op(None, lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=True),
                 lambda x, t: TF.kl_div(x, t, reduction=reduction, log_target=True), inputs=[logp, tgt])
    m = nn.KLDivLoss(reduction=reduction, log_target=log_target)
    t = torch.nn.KLDivLoss(reduction=reduction, log_target=log_target)
    np.testing.assert_allclose(m(tm.tensor(logp), tm.tensor(tgt)).detach().numpy(),
                               t(torch.tensor(logp), torch.tensor(tgt)).detach().numpy(), rtol=1e-5, atol=1e-6)
    neg = -q  # a negative probability target gives NaN, as PyTorch's xlogy does
    np.testing.assert_array_equal(np.isnan(F.kl_div(tm.tensor(logp), tm.tensor(neg), reduction="none").detach().numpy()),
                                  np.isnan(TF.kl_div(torch.tensor(logp), torch.tensor(neg), reduction="none").detach().numpy()))


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_pair_and_triplet_losses_match_torch(reduction):
    y = _labels((5,))
    check_op([(5,), (5,)], lambda a, b: F.margin_ranking_loss(a, b, tm.tensor(y), 0.3, reduction=reduction),
             lambda a, b: TF.margin_ranking_loss(a, b, torch.tensor(y), 0.3, reduction=reduction))
    check_op([(5, 3), (5, 3)], lambda a, b: F.cosine_embedding_loss(a, b, tm.tensor(y), 0.2, reduction=reduction),
             lambda a, b: TF.cosine_embedding_loss(a, b, torch.tensor(y), 0.2, reduction=reduction))
    for swap in (False, True):
        check_op([(5, 3), (5, 3), (5, 3)],
                 lambda a, p, n: F.triplet_margin_loss(a, p, n, 1.5, swap=swap, reduction=reduction),
                 lambda a, p, n: TF.triplet_margin_loss(a, p, n, 1.5, swap=swap, reduction=reduction))


@needs_torch
@pytest.mark.parametrize("var_shape", [(4, 3), (4, 1), (4,)])
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_loss_matches_torch(var_shape, full):
    check_op([(4, 3), (4, 3), var_shape], lambda x, t, v: F.gaussian_nll_loss(x, t, v, full=full, eps=0.05),
             lambda x, t, v: TF.gaussian_nll_loss(x, t, v, full=full, eps=0.05), positive=True)
    # var below eps is clamped, and its gradient passes straight through (so no gradcheck)
    check_op([(4, 3), (4, 3), var_shape], lambda x, t, v: F.gaussian_nll_loss(x, t, v, full=full, eps=0.5),
             lambda x, t, v: TF.gaussian_nll_loss(x, t, v, full=full, eps=0.5), positive=True, gradcheck=False)


@needs_torch
def test_loss_modules_match_torch_and_keep_state_dicts_empty():
    rng = np.random.default_rng(6)
    x, t, y = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(3))
    pairs = [("SmoothL1Loss", dict(beta=0.5), (x, t)), ("HuberLoss", dict(delta=0.5), (x, t)),
             ("SoftMarginLoss", dict(), (x, _labels((3, 4)))), ("HingeEmbeddingLoss", dict(), (x, _labels((3, 4)))),
             ("MultiLabelSoftMarginLoss", dict(), (x, (t > 0).astype(np.float32))),
             ("PoissonNLLLoss", dict(), (x, np.abs(t))), ("GaussianNLLLoss", dict(), (x, t, np.abs(y) + 0.1)),
             ("MarginRankingLoss", dict(margin=0.1), (x[0], t[0], _labels((4,)))),
             ("CosineEmbeddingLoss", dict(), (x, t, _labels((3,)))),
             ("TripletMarginLoss", dict(margin=0.5), (x, t, y))]
    for name, kw, args in pairs:
        ours, theirs = getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw)
        got = ours(*map(tm.tensor, args)).detach().numpy()
        np.testing.assert_allclose(got, theirs(*map(torch.tensor, args)).detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
        assert not ours.state_dict()
    assert nn.SmoothL1Loss(size_average=False).reduction == "sum"


def test_loss_shape_errors_are_named():
    with pytest.raises(RuntimeError, match=r"target has shape \(3,\), input \(4,\)"):
        F.smooth_l1_loss(tm.randn(4), tm.randn(3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.kl_div(tm.randn(4), tm.randn(4), reduction="avg")
    with pytest.raises(RuntimeError, match=r"target has shape \(2,\), expected \(3,\)"):
        F.cosine_embedding_loss(tm.randn(3, 4), tm.randn(3, 4), tm.ones(2))
    with pytest.raises(RuntimeError, match=r"var has shape \(2, 2\)"):
        F.gaussian_nll_loss(tm.randn(4, 3), tm.randn(4, 3), tm.ones(2, 2))
    with pytest.raises(ValueError, match="negative"):
        F.gaussian_nll_loss(tm.randn(4, 3), tm.randn(4, 3), -tm.ones(4, 3))
    with pytest.raises(ValueError, match="margin must be greater than 0"):  # as PyTorch
        F.triplet_margin_loss(tm.randn(3, 4), tm.randn(3, 4), tm.randn(3, 4), margin=0.0)


# ----------------------------------------------------------------------------- rearrangements, fold/unfold


@needs_torch
def test_pixel_and_channel_shuffle_match_torch():
    check_op([(2, 8, 3, 2)], lambda x: F.pixel_shuffle(x, 2), lambda x: TF.pixel_shuffle(x, 2))
    check_op([(9, 2, 2)], lambda x: F.pixel_shuffle(x, 3), lambda x: TF.pixel_shuffle(x, 3))
    check_op([(2, 2, 4, 6)], lambda x: F.pixel_unshuffle(x, 2), lambda x: TF.pixel_unshuffle(x, 2))
    check_op([(2, 6, 3)], lambda x: F.channel_shuffle(x, 3), lambda x: TF.channel_shuffle(x, 3))
    x = np.random.default_rng(7).standard_normal((1, 8, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(nn.PixelUnshuffle(2)(nn.PixelShuffle(2)(tm.tensor(x))).detach().numpy(), x)
    with pytest.raises(RuntimeError, match="divisible by the square of upscale_factor"):
        F.pixel_shuffle(tm.randn(1, 5, 2, 2), 2)


FOLD_CASES = [dict(kernel_size=2), dict(kernel_size=(2, 3), stride=2, padding=1),
              dict(kernel_size=3, dilation=2, padding=(2, 1), stride=(1, 2))]


@needs_torch
@pytest.mark.parametrize("kw", FOLD_CASES)
def test_unfold_and_fold_match_torch(kw):
    check_op([(2, 3, 5, 6)], lambda x: F.unfold(x, **kw), lambda x: TF.unfold(x, **kw))
    check_op([(3, 5, 6)], lambda x: F.unfold(x, **kw), lambda x: TF.unfold(x, **kw))
    cols = TF.unfold(torch.zeros(2, 3, 5, 6), **kw).shape
    check_op([tuple(cols)], lambda c: F.fold(c, (5, 6), **kw), lambda c: TF.fold(c, (5, 6), **kw))
    x = np.random.default_rng(8).standard_normal((1, 3, 5, 6)).astype(np.float32)
    ours = nn.Fold((5, 6), **kw)(nn.Unfold(**kw)(tm.tensor(x))).detach().numpy()
    theirs = torch.nn.Fold((5, 6), **kw)(torch.nn.Unfold(**kw)(torch.tensor(x))).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_fold_errors_name_the_block_count():
    with pytest.raises(RuntimeError, match="calculated number of sliding blocks 4 \\* 5 = 20, but got input.size.2.=7"):
        F.fold(tm.randn(1, 12, 7), (5, 6), 2)
    with pytest.raises(RuntimeError, match="divisible by the product of kernel_size"):
        F.fold(tm.randn(1, 10, 20), (5, 6), 2)
    with pytest.raises(RuntimeError, match="Only 3D or 4D"):
        F.unfold(tm.randn(5, 6), 2)


# ----------------------------------------------------------------------------- pooling


@needs_torch
@pytest.mark.parametrize("shape,out", [((2, 3, 7, 8), (3, 5)), ((2, 3, 6, 8), (3, 4)), ((3, 5, 5), (None, 2)),
                                       ((2, 3, 7, 8), 1)])
def test_adaptive_max_pool2d_matches_torch(shape, out):
    check_op([shape], lambda x: F.adaptive_max_pool2d(x, out), lambda x: TF.adaptive_max_pool2d(x, out))
    x = np.random.default_rng(9).standard_normal(shape).astype(np.float32)
    _, i1 = nn.AdaptiveMaxPool2d(out, return_indices=True)(tm.tensor(x))
    _, i2 = torch.nn.AdaptiveMaxPool2d(out, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(i1.detach().numpy(), i2.detach().numpy())


@needs_torch
@pytest.mark.parametrize("out", [3, 4, 7])
def test_adaptive_max_pool1d_matches_torch(out):
    check_op([(2, 3, 8)], lambda x: F.adaptive_max_pool1d(x, out), lambda x: TF.adaptive_max_pool1d(x, out))


# ----------------------------------------------------------------------------- small modules, containers, init


@needs_torch
def test_unflatten_softmax2d_identity():
    x = np.random.default_rng(10).standard_normal((2, 6, 3, 2)).astype(np.float32)
    assert nn.Unflatten(1, (2, 3))(tm.tensor(x)).shape == (2, 2, 3, 3, 2)
    np.testing.assert_allclose(nn.Softmax2d()(tm.tensor(x)).detach().numpy(), torch.nn.Softmax2d()(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="3D or 4D"):
        nn.Softmax2d()(tm.randn(2, 3))


@needs_torch
def test_parameter_list_and_dict_state_dicts_match_torch():
    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.plist = nn.ParameterList([nn.Parameter(tm.randn(2)), tm.randn(3)])
            self.pdict = nn.ParameterDict({"a": tm.randn(2, 2)})
            self.pdict["b"] = nn.Parameter(tm.randn(1))

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.plist = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(2)), torch.randn(3)])
            self.pdict = torch.nn.ParameterDict({"a": torch.randn(2, 2)})
            self.pdict["b"] = torch.nn.Parameter(torch.randn(1))

    ours, theirs = Ours(), Theirs()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(ours.plist[1].detach().numpy(), theirs.plist[1].detach().numpy())
    assert len(list(ours.parameters())) == 4 and all(p.requires_grad for p in ours.parameters())
    assert len(ours.plist) == 2 and "b" in ours.pdict and list(ours.pdict.keys()) == ["a", "b"]


def test_init_functions():
    w = nn.Parameter(np.empty((4, 6), np.float32))
    nn.init.orthogonal_(w, gain=2.0)
    np.testing.assert_allclose(w.detach().numpy() @ w.detach().numpy().T, 4 * np.eye(4), atol=1e-5)
    nn.init.eye_(w)
    np.testing.assert_array_equal(w.detach().numpy(), np.eye(4, 6))
    big = nn.Parameter(np.empty((200, 200), np.float32))
    nn.init.trunc_normal_(big, mean=0.5, std=1.0, a=0.0, b=1.0)
    assert big.detach().numpy().min() >= 0.0 and big.detach().numpy().max() <= 1.0 and 0.45 < big.detach().numpy().mean() < 0.55
    nn.init.trunc_normal_(big, std=0.02)
    assert abs(big.detach().numpy().std() - 0.02) < 0.002
    conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    nn.init.dirac_(conv.weight)
    x = tm.randn(1, 4, 5, 5)
    np.testing.assert_allclose(conv(x).detach().numpy(), x.detach().numpy(), atol=1e-6)
    nn.init.sparse_(w, 0.5)
    assert ((w.detach().numpy() == 0).sum(axis=0) >= 2).all()
    assert nn.init._calculate_fan_in_and_fan_out(conv.weight) == (36, 36)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        nn.init.orthogonal_(nn.Parameter(np.empty(3, np.float32)))


# ----------------------------------------------------------------------------- smaller extras


@needs_torch
def test_shrink_rrelu_and_multi_margin_match_torch():
    for name in ("hardshrink", "softshrink"):
        tm_fn, t_fn = _F(name, lambd=0.7)
        check_op([(3, 5)], tm_fn, t_fn)
    check_op([(3, 5)], lambda x: F.rrelu(x, 0.1, 0.3), lambda x: TF.rrelu(x, 0.1, 0.3))  # eval: fixed slope
    y = F.rrelu(-tm.ones(1000), 0.1, 0.3, training=True).detach().numpy()
    assert -0.3 <= y.min() and y.max() <= -0.1 and y.std() > 0.03
    target = np.array([0, 3, 1], np.int64)
    w = np.array([1.0, 2.0, 0.5, 1.5], np.float32)
    for p in (1, 2):
        check_op([(3, 4)], lambda x: F.multi_margin_loss(x, tm.tensor(target), p=p, margin=0.8, weight=tm.tensor(w)),
                 lambda x: TF.multi_margin_loss(x, torch.tensor(target), p=p, margin=0.8, weight=torch.tensor(w)))
    np.testing.assert_allclose(nn.MultiMarginLoss(reduction="none")(tm.ones(3, 4), tm.tensor(target)).detach().numpy(),
                               torch.nn.MultiMarginLoss(reduction="none")(torch.ones(3, 4), torch.tensor(target)))


def test_gumbel_softmax_samples_and_hard_straight_through():
    logits = tm.tensor(np.log(np.array([[0.7, 0.2, 0.1]] * 4000, np.float32)), requires_grad=True)
    y = F.gumbel_softmax(logits, tau=0.5, hard=True)
    counts = y.detach().numpy().sum(axis=0) / 4000
    np.testing.assert_allclose(counts, [0.7, 0.2, 0.1], atol=0.03)
    assert set(np.unique(y.detach().numpy())) == {0.0, 1.0}
    (y * tm.tensor(np.arange(3, dtype=np.float32))).sum().backward()
    assert np.abs(logits.grad.numpy()).sum() > 0  # the soft sample's gradient
    soft = F.gumbel_softmax(logits[:2], tau=1.0).detach().numpy()
    np.testing.assert_allclose(soft.sum(axis=-1), 1, rtol=1e-5)


@needs_torch
def test_lp_pool_and_max_unpool_match_torch():
    check_op([(2, 3, 6, 5)], lambda x: F.lp_pool2d(x, 2.0, 2), lambda x: TF.lp_pool2d(x, 2.0, 2), positive=True)
    check_op([(2, 3, 7)], lambda x: F.lp_pool1d(x, 3.0, 3, 2), lambda x: TF.lp_pool1d(x, 3.0, 3, 2), positive=True)
    x = np.random.default_rng(11).standard_normal((2, 3, 6, 5)).astype(np.float32)
    y, idx = F.max_pool2d(tm.tensor(x), 2, return_indices=True)
    ty, tidx = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    check_op(None, lambda v: F.max_unpool2d(v, idx, 2, output_size=(6, 5)),
             lambda v: TF.max_unpool2d(v, tidx, 2, output_size=(6, 5)), inputs=[y.detach().numpy()])
    np.testing.assert_array_equal(nn.MaxUnpool2d(2)(y, idx, (6, 5)).detach().numpy(), torch.nn.MaxUnpool2d(2)(ty, tidx, (6, 5)).detach().numpy())
    y1, i1 = F.max_pool1d(tm.tensor(x[0]), 2, return_indices=True)
    ty1, ti1 = TF.max_pool1d(torch.tensor(x[0]), 2, return_indices=True)
    np.testing.assert_array_equal(F.max_unpool1d(y1, i1, 2).detach().numpy(), TF.max_unpool1d(ty1, ti1, 2).detach().numpy())
    with pytest.raises(RuntimeError, match="invalid max index"):
        F.max_unpool2d(y, idx, 2, output_size=(2, 2))


@needs_torch
def test_batchnorm3d_and_small_modules_match_torch():
    m, t = nn.BatchNorm3d(3), torch.nn.BatchNorm3d(3)
    x = np.random.default_rng(12).standard_normal((2, 3, 2, 3, 2)).astype(np.float32)
    np.testing.assert_allclose(m(tm.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(m.running_var.detach().numpy(), t.running_var.detach().numpy(), atol=1e-6)
    z = np.random.default_rng(13).standard_normal((1, 2, 3, 4)).astype(np.float32)
    for ours, theirs in [(nn.ZeroPad1d((1, 2)), torch.nn.ZeroPad1d((1, 2))),
                         (nn.UpsamplingNearest2d(scale_factor=2), torch.nn.UpsamplingNearest2d(scale_factor=2)),
                         (nn.UpsamplingBilinear2d(size=(5, 7)), torch.nn.UpsamplingBilinear2d(size=(5, 7))),
                         (nn.Hardshrink(0.3), torch.nn.Hardshrink(0.3)), (nn.LPPool2d(2, 2), torch.nn.LPPool2d(2, 2))]:
        np.testing.assert_allclose(ours(tm.tensor(z)).detach().numpy(), theirs(torch.tensor(z)).detach().numpy(), atol=1e-5,
                                   err_msg=type(ours).__name__)


def test_parameters_to_vector_round_trip_and_forward_hooks():
    lin = nn.Linear(3, 2)
    v = nn.utils.parameters_to_vector(lin.parameters())
    assert v.shape == (8,)
    nn.utils.vector_to_parameters(v * 0 + 1, lin.parameters())
    assert (lin.weight.detach().numpy() == 1).all() and (lin.bias.detach().numpy() == 1).all()
    with pytest.raises(ValueError, match="hold 8 values"):
        nn.utils.vector_to_parameters(tm.ones(5), lin.parameters())
    seen = []
    h = lin.register_forward_hook(lambda m, args, out: out * 2)
    h2 = lin.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    out = lin(tm.ones(4, 3))
    np.testing.assert_allclose(out.detach().numpy(), 8.0)
    assert seen == [(4, 3)]
    h.remove()
    with h2:
        pass
    np.testing.assert_allclose(lin(tm.ones(1, 3)).detach().numpy(), 4.0)
    assert seen == [(4, 3)]
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Linear(2, 1)))
    assert model.get_submodule("1.1") is model[1][1]
    assert model.get_parameter("1.1.bias") is model[1][1].bias
    with pytest.raises(AttributeError, match="no attribute `2`"):
        model.get_submodule("1.2")


@needs_torch
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 4])
def test_embedding_bag_matches_torch(mode, padding_idx):
    idx = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0])
    off = np.array([0, 4, 4, 7])  # bag 1 is empty
    check_op([(10, 3)], lambda w: F.embedding_bag(tm.tensor(idx), w, tm.tensor(off), mode=mode, padding_idx=padding_idx),
             lambda w: TF.embedding_bag(torch.tensor(idx), w, torch.tensor(off), mode=mode, padding_idx=padding_idx))
    idx2 = np.array([[1, 4, 3], [4, 4, 0]])
    check_op([(10, 3)], lambda w: F.embedding_bag(tm.tensor(idx2), w, mode=mode, padding_idx=padding_idx),
             lambda w: TF.embedding_bag(torch.tensor(idx2), w, mode=mode, padding_idx=padding_idx))
    if mode == "sum":
        check_op([(10, 3), (idx.size,)],
                 lambda w, p: F.embedding_bag(tm.tensor(idx), w, tm.tensor(np.append(off, 9)), mode="sum",
                                              per_sample_weights=p, include_last_offset=True),
                 lambda w, p: TF.embedding_bag(torch.tensor(idx), w, torch.tensor(np.append(off, 9)), mode="sum",
                                               per_sample_weights=p, include_last_offset=True))
    m, t = nn.EmbeddingBag(10, 3, mode=mode, padding_idx=padding_idx), torch.nn.EmbeddingBag(10, 3, mode=mode,
                                                                                              padding_idx=padding_idx)
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    np.testing.assert_allclose(m(tm.tensor(idx), tm.tensor(off)).detach().numpy(),
                               t(torch.tensor(idx), torch.tensor(off)).detach().numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="offsets has to be None"):
        F.embedding_bag(tm.tensor(idx2), m.weight, tm.tensor(off))


@needs_torch
@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_matches_torch(align_corners):
    check_op([(2, 2, 3)], lambda t: F.affine_grid(t, (2, 3, 4, 5), align_corners),
             lambda t: TF.affine_grid(t, [2, 3, 4, 5], align_corners=align_corners))
    with pytest.raises(RuntimeError, match="Nx2x3"):
        F.affine_grid(tm.randn(2, 3, 3), (2, 3, 4, 5))
    check_op([(2, 3, 4)], lambda t: F.affine_grid(t, (2, 3, 4, 5, 3), align_corners),
             lambda t: TF.affine_grid(t, [2, 3, 4, 5, 3], align_corners=align_corners))
    with pytest.raises(RuntimeError, match="Nx3x4"):
        F.affine_grid(tm.randn(2, 2, 3), (2, 3, 4, 5, 3))


@needs_torch
@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_matches_torch(mode, padding_mode, align_corners):
    x = np.random.default_rng(14).standard_normal((2, 3, 5, 6)).astype(np.float32)
    grid = np.random.default_rng(15).uniform(-1.4, 1.4, (2, 4, 3, 2)).astype(np.float32)
    check_op(None, lambda a, g: F.grid_sample(a, g, mode, padding_mode, align_corners),
             lambda a, g: TF.grid_sample(a, g, mode, padding_mode, align_corners), inputs=[x, grid],
             gradcheck=mode == "bilinear" or (mode == "bicubic" and not align_corners))  # (kept fast)
    with pytest.raises(RuntimeError, match="grid must be"):
        F.grid_sample(tm.tensor(x), tm.tensor(grid[..., :1]))


@needs_torch
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_of_a_volume_matches_torch(mode, padding_mode):
    x = np.random.default_rng(16).standard_normal((2, 2, 3, 4, 3)).astype(np.float32)
    grid = np.random.default_rng(17).uniform(-1.3, 1.3, (2, 2, 3, 2, 3)).astype(np.float32)
    for align_corners in (False, True):
        check_op(None, lambda a, g: F.grid_sample(a, g, mode, padding_mode, align_corners),
                 lambda a, g: TF.grid_sample(a, g, mode, padding_mode, align_corners), inputs=[x, grid],
                 gradcheck=False)
    with pytest.raises(RuntimeError, match="bicubic interpolation only supports 4D"):
        F.grid_sample(tm.tensor(x), tm.tensor(grid), mode="bicubic")


def test_nearest_grid_sample_gives_the_grid_a_zero_gradient():
    g = tm.zeros(1, 2, 2, 2, requires_grad=True)
    F.grid_sample(tm.randn(1, 1, 3, 3), g, mode="nearest", align_corners=False).sum().backward()
    assert g.grad is not None and not g.grad.numpy().any()


CTC_TARGETS = np.array([[1, 2, 2], [3, 0, 0], [4, 1, 0]])
CTC_TARGET_LENGTHS = np.array([3, 1, 2])
CTC_INPUT_LENGTHS = np.array([7, 5, 6])


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("concatenated", [False, True])
@pytest.mark.parametrize("target_lengths", [CTC_TARGET_LENGTHS, np.array([3, 0, 2])])  # an empty target too
def test_ctc_loss_matches_torch_through_log_softmax(reduction, concatenated, target_lengths):
    tg = CTC_TARGETS
    if concatenated:
        tg = np.concatenate([tg[n, :k] for n, k in enumerate(target_lengths)])
    check_op([(7, 3, 5)],
             lambda x: F.ctc_loss(x.log_softmax(-1), tm.tensor(tg), CTC_INPUT_LENGTHS, target_lengths,
                                  reduction=reduction),
             lambda x: TF.ctc_loss(x.log_softmax(-1), torch.tensor(tg), torch.tensor(CTC_INPUT_LENGTHS),
                                   torch.tensor(target_lengths), reduction=reduction))


def test_ctc_loss_gradient_through_log_softmax_is_the_true_one():
    # PyTorch folds log_softmax into its log_probs gradient (as tinymm does, test_probe6_fixes);
    # through log_softmax the logits' gradient passes a finite-difference check
    x = np.random.default_rng(16).standard_normal((7, 3, 5))
    tm.gradcheck(lambda x: F.ctc_loss(x.log_softmax(-1), tm.tensor(CTC_TARGETS), CTC_INPUT_LENGTHS,
                                      CTC_TARGET_LENGTHS), [tm.tensor(x, requires_grad=True)])


@needs_torch
def test_ctc_loss_impossible_alignments_and_module():
    lp = np.log(np.random.default_rng(17).dirichlet(np.ones(4), size=(2, 1))).astype(np.float32)  # T = 2
    tg, il, tl = np.array([[1, 1]]), np.array([2]), np.array([2])  # a repeat needs 3 frames
    assert np.isinf(F.ctc_loss(tm.tensor(lp), tm.tensor(tg), il, tl, reduction="sum").detach().numpy())
    x = tm.tensor(lp, requires_grad=True)
    z = nn.CTCLoss(zero_infinity=True)(x, tm.tensor(tg), il, tl)
    z.backward()
    assert float(z.detach().numpy()) == 0.0 and not x.grad.numpy().any()
    lp2 = np.log(np.random.default_rng(18).dirichlet(np.ones(4), size=6)).astype(np.float32)  # unbatched (T, C)
    ours = nn.CTCLoss(blank=3)(tm.tensor(lp2), tm.tensor(np.array([0, 1, 1])), np.array([6]), np.array([3]))
    theirs = torch.nn.CTCLoss(blank=3)(torch.tensor(lp2), torch.tensor([0, 1, 1]), torch.tensor([6]),
                                       torch.tensor([3]))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="other than blank=0"):
        F.ctc_loss(tm.tensor(lp), tm.tensor(np.array([[0, 1]])), il, tl)
    with pytest.raises(RuntimeError, match="input_lengths must be in"):
        F.ctc_loss(tm.tensor(lp), tm.tensor(tg), np.array([3]), tl)


@needs_torch
@pytest.mark.filterwarnings("ignore:.*weight_norm. is deprecated")
@pytest.mark.parametrize("dim", [0, 1, None, -1])  # PyTorch's -1 means None: a scalar g
def test_weight_norm_matches_torch_and_removes(dim):
    theirs = torch.nn.utils.weight_norm(torch.nn.Conv1d(3, 4, 2), dim=dim)
    ours = nn.utils.weight_norm(nn.Conv1d(3, 4, 2), dim=dim)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict()) == ["bias", "weight_g", "weight_v"]
    assert ours.weight_g.shape == tuple(theirs.weight_g.shape)
    tp = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(3, 4, 2), dim=dim)
    op = nn.utils.parametrizations.weight_norm(nn.Conv1d(3, 4, 2), dim=dim)
    assert op.parametrizations.weight.original0.shape == tuple(tp.parametrizations.weight.original0.shape)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(19).standard_normal((2, 3, 5)).astype(np.float32)
    y, yt = ours(tm.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), atol=1e-6)
    y.sum().backward(), yt.sum().backward()
    for name in ("weight_g", "weight_v"):
        np.testing.assert_allclose(getattr(ours, name).grad.numpy(), getattr(theirs, name).grad.numpy(), atol=1e-5)
    w = ours.weight.detach().numpy()
    nn.utils.remove_weight_norm(ours)
    assert sorted(ours.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(ours.weight.detach().numpy(), w, rtol=1e-6)
    with pytest.raises(ValueError, match="not found"):
        nn.utils.remove_weight_norm(ours)


@needs_torch
def test_spectral_norm_matches_torch_in_train_and_eval():
    theirs = torch.nn.utils.spectral_norm(torch.nn.Linear(5, 4))
    ours = nn.utils.spectral_norm(nn.Linear(5, 4))
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(20).standard_normal((2, 5)).astype(np.float32)
    for _ in range(3):  # each training call refines u and v
        y, yt = ours(tm.tensor(x)), theirs(torch.tensor(x))
        np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), atol=1e-6)
    y.sum().backward(), yt.sum().backward()
    np.testing.assert_allclose(ours.weight_orig.grad.numpy(), theirs.weight_orig.grad.numpy(), atol=1e-5)
    np.testing.assert_allclose(ours.weight_u.detach().numpy(), theirs.weight_u.detach().numpy(), atol=1e-6)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(tm.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-6)
    W, u, v = ours.weight_orig.detach().numpy(), ours.weight_u.detach().numpy(), ours.weight_v.detach().numpy()
    np.testing.assert_allclose(ours.weight.detach().numpy(), W / (u @ W @ v), rtol=1e-5)  # σ = uᵀ·W·v
    nn.utils.remove_spectral_norm(ours)
    assert sorted(ours.state_dict()) == ["bias", "weight"]


POOL3D = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
          dict(kernel_size=(3, 2, 2), stride=(2, 1, 2), padding=(1, 1, 0), ceil_mode=True)]


@needs_torch
@pytest.mark.parametrize("kw", POOL3D)
def test_pool3d_matches_torch(kw):
    check_op([(1, 2, 5, 4, 3)], lambda x: F.max_pool3d(x, **kw), lambda x: TF.max_pool3d(x, **kw))
    for cip in (True, False):
        check_op([(1, 2, 5, 4, 3)], lambda x: F.avg_pool3d(x, count_include_pad=cip, **kw),
                 lambda x: TF.avg_pool3d(x, count_include_pad=cip, **kw))
    check_op([(2, 5, 4, 4)], lambda x: nn.AvgPool3d(divisor_override=3, **kw)(x),
             lambda x: torch.nn.AvgPool3d(divisor_override=3, **kw)(x), gradcheck=False)
    check_op([(2, 5, 4, 4)], lambda x: nn.MaxPool3d(dilation=(2, 1, 1), **kw)(x),
             lambda x: torch.nn.MaxPool3d(dilation=(2, 1, 1), **kw)(x), gradcheck=False)


@needs_torch
@pytest.mark.parametrize("out", [(3, 2, 4), 1, (None, 4, 2)])
def test_adaptive_pool3d_matches_torch(out):
    check_op([(1, 2, 7, 6, 5)], lambda x: nn.AdaptiveAvgPool3d(out)(x), lambda x: torch.nn.AdaptiveAvgPool3d(out)(x),
             gradcheck=False)
    check_op([(2, 5, 4, 3)], lambda x: nn.AdaptiveMaxPool3d(out)(x), lambda x: torch.nn.AdaptiveMaxPool3d(out)(x))


@needs_torch
def test_lazy_modules_become_their_eager_twins():
    m = nn.Sequential(nn.LazyConv2d(4, 3, padding=1), nn.LazyBatchNorm2d(), nn.Flatten(), nn.LazyLinear(5))
    opt = tm.optim.SGD(m.parameters(), lr=0.1)  # built before the first call: the same Parameters get filled
    y = m(tm.randn(2, 3, 6, 6))
    assert y.shape == (2, 5)
    assert [type(c).__name__ for c in m] == ["Conv2d", "BatchNorm2d", "Flatten", "Linear"]
    assert m[3].in_features == 144 and m[0].in_channels == 3
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                 torch.nn.Linear(144, 5))
    assert list(m.state_dict()) == list(theirs.state_dict())
    bound = 1 / np.sqrt(144)
    assert np.abs(m[3].weight.detach().numpy()).max() <= bound
    y.sum().backward()
    opt.step()
    assert [tuple(p.shape) for p in opt.param_groups[0]["params"]] == [(4, 3, 3, 3), (4,), (4,), (4,), (5, 144), (5,)]
    x = np.random.default_rng(21).standard_normal((3, 5)).astype(np.float32)
    assert nn.LazyInstanceNorm1d()(tm.tensor(x)).shape == (3, 5)  # unbatched (C, L)


def test_sync_batchnorm_is_batchnorm_in_one_process():
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3))
    w = model[1].weight
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert type(model[1]).__name__ == "SyncBatchNorm" and model[1].weight is w
    x = tm.randn(4, 3, 2, 2)
    ref = nn.BatchNorm2d(3)
    np.testing.assert_allclose(model[1](x).detach().numpy(), ref(x).detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(model[1].running_mean.detach().numpy(), ref.running_mean.detach().numpy(), atol=1e-7)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_multilabel_margin_and_triplet_with_distance_match_torch(reduction):
    target = np.array([[3, 0, -1, 1], [1, 2, 3, 0], [-1, 1, 2, 3]])  # a -1 ends the list
    check_op([(3, 4)], lambda x: F.multilabel_margin_loss(x, tm.tensor(target), reduction=reduction),
             lambda x: TF.multilabel_margin_loss(x, torch.tensor(target), reduction=reduction))
    check_op([(4,)], lambda x: nn.MultiLabelMarginLoss(reduction=reduction)(x, tm.tensor(target[0])),
             lambda x: torch.nn.MultiLabelMarginLoss(reduction=reduction)(x, torch.tensor(target[0])))
    l1 = lambda a, b: (a - b).abs().sum(dim=-1)  # noqa: E731
    for swap in (False, True):
        check_op([(4, 3), (4, 3), (4, 3)],
                 lambda a, p, n: F.triplet_margin_with_distance_loss(a, p, n, distance_function=l1, margin=0.5,
                                                                     swap=swap, reduction=reduction),
                 lambda a, p, n: TF.triplet_margin_with_distance_loss(a, p, n, distance_function=l1, margin=0.5,
                                                                      swap=swap, reduction=reduction))
    check_op([(4, 3), (4, 3), (4, 3)], lambda a, p, n: nn.TripletMarginWithDistanceLoss()(a, p, n),
             lambda a, p, n: torch.nn.TripletMarginWithDistanceLoss()(a, p, n))


@needs_torch
def test_parametrizations_weight_and_spectral_norm_load_torch_state_dicts():
    for make in (lambda lib: lib.nn.utils.parametrizations.weight_norm(lib.nn.Linear(4, 3)),
                 lambda lib: lib.nn.utils.parametrizations.spectral_norm(lib.nn.Linear(4, 3))):
        theirs, ours = make(torch), make(tm)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        x = np.random.default_rng(22).standard_normal((2, 4)).astype(np.float32)
        for _ in range(2):
            y, yt = ours(tm.tensor(x)), theirs(torch.tensor(x))
            np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), atol=1e-6)
        y.sum().backward(), yt.sum().backward()
        for name, p in theirs.named_parameters():
            np.testing.assert_allclose(dict(ours.named_parameters())[name].grad.numpy(), p.grad.numpy(), atol=1e-5)


def test_register_parametrization_chains_assigns_and_removes():
    from tinymm.nn.utils import parametrize

    class Symmetric(nn.Module):
        def forward(self, X):
            return X.triu() + X.triu(1).transpose(-1, -2)

    class Scale(nn.Module):
        def forward(self, X):
            return X * 2

        def right_inverse(self, X):
            return X / 2

    layer = nn.Linear(3, 3)
    w0 = layer.weight
    parametrize.register_parametrization(layer, "weight", Symmetric())
    assert parametrize.is_parametrized(layer, "weight") and not parametrize.is_parametrized(layer, "bias")
    assert layer.parametrizations.weight.original is w0  # the optimizer's Parameter is kept
    W = layer.weight.detach().numpy()
    np.testing.assert_array_equal(W, W.T)
    parametrize.register_parametrization(layer, "weight", Scale())
    np.testing.assert_allclose(layer.weight.detach().numpy(), 2 * W)
    layer.weight = tm.tensor(np.eye(3, dtype=np.float32) * 4)  # stored through right_inverse
    np.testing.assert_allclose(layer.weight.detach().numpy(), np.eye(3) * 4)
    out = layer(tm.ones(1, 3))
    out.sum().backward()
    assert w0.grad is not None
    parametrize.remove_parametrizations(layer, "weight")
    assert type(layer).__name__ == "Linear" and sorted(layer.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(layer.weight.detach().numpy(), np.eye(3) * 4)
    with pytest.raises(ValueError, match="does not have a parametrization"):
        parametrize.remove_parametrizations(layer, "weight")


@needs_torch
@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("input_grad", [True, False])
def test_full_backward_hook_matches_torch(input_grad):
    rng = np.random.default_rng(23)
    w, b, x = (rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (3,), (2, 4)))
    seen = {}
    for lib, mod in ((tm, nn), (torch, torch.nn)):
        m = mod.Linear(4, 3)
        m.load_state_dict({"weight": lib.tensor(w), "bias": lib.tensor(b)})
        record = seen.setdefault(lib.__name__, [])

        def hook(module, grad_input, grad_output, record=record):
            record.append([None if g is None else g.detach().numpy().copy() for g in grad_input + grad_output])
            return None if grad_input[0] is None else (grad_input[0] * 3,)

        def pre_hook(module, grad_output, record=record):  # runs first; its grad_output is what hook sees
            record.append([grad_output[0].detach().numpy().copy()])
            return (grad_output[0] * 0.5,)

        handle = m.register_full_backward_hook(hook)
        pre = m.register_full_backward_pre_hook(pre_hook)
        xi = lib.tensor(x, requires_grad=input_grad)
        y = m(xi)
        (y * y).sum().backward()
        record.append([m.weight.grad.numpy().copy()])  # the halved grad_output reached the weight
        if input_grad:
            record.append([xi.grad.numpy().copy()])  # the hook's replacement reached the input
        handle.remove()
        pre.remove()
        y = m(xi)
        (y * y).sum().backward()  # removed: not called again
    ours, theirs = seen["tinymm"], seen["torch"]
    assert len(ours) == len(theirs)
    for a, t in zip(ours, theirs):
        for u, v in zip(a, t):
            assert (u is None) == (v is None)
            if u is not None:
                np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


@needs_torch
@pytest.mark.parametrize("name", ["ReflectionPad3d", "ReplicationPad3d", "CircularPad3d", "ZeroPad3d"])
def test_pad3d_modules_match_torch(name):
    pad = (1, 2, 1, 0, 2, 1)
    check_op([(1, 2, 3, 4, 5)], lambda x: getattr(nn, name)(pad)(x), lambda x: getattr(torch.nn, name)(pad)(x),
             gradcheck=False)
    check_op([(2, 3, 3, 3)], lambda x: nn.ConstantPad3d(1, 2.5)(x), lambda x: torch.nn.ConstantPad3d(1, 2.5)(x),
             gradcheck=False)


def _training_script(torch, X, Y, state=None):
    """PyTorch code, run unchanged with ``torch`` = PyTorch or tinymm."""
    nn, F = torch.nn, torch.nn.functional
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.SiLU(),
                          nn.ConvTranspose2d(4, 2, 2, stride=2), nn.Dropout2d(0.0), nn.Flatten(), nn.Linear(128, 3))
    if state is not None:
        model.load_state_dict(state)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-2, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.002, total_steps=6)
    x, y = torch.tensor(X), torch.tensor(Y)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = F.smooth_l1_loss(model(x), y, beta=0.5)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.item()))
    return start, losses


@needs_torch
def test_a_pytorch_training_script_runs_unchanged_and_follows_pytorch():
    rng = np.random.default_rng(24)
    X = rng.standard_normal((4, 2, 4, 4)).astype(np.float32)
    Y = rng.standard_normal((4, 3)).astype(np.float32)
    start, theirs = _training_script(torch, X, Y)
    _, ours = _training_script(tm, X, Y, {k: v.detach().numpy() for k, v in start.items()})
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    assert ours[-1] < ours[0]


@needs_torch
def test_get_total_norm_and_clip_grads_with_norm_match_torch():
    rng = np.random.default_rng(25)
    gs = [rng.standard_normal(s).astype(np.float32) for s in ((3, 2), (4,))]
    ps = [nn.Parameter(np.zeros(g.shape, np.float32)) for g in gs]
    tps = [torch.nn.Parameter(torch.zeros(g.shape)) for g in gs]
    for p, tp, g in zip(ps, tps, gs):
        p.grad, tp.grad = tm.tensor(g), torch.tensor(g)
    for norm_type in (2.0, 1.0, float("inf")):
        ours = nn.utils.get_total_norm([p.grad for p in ps], norm_type)
        theirs = torch.nn.utils.get_total_norm([tp.grad for tp in tps], norm_type)
        assert float(ours.detach().numpy()) == pytest.approx(float(theirs), rel=1e-6)
    nn.utils.clip_grads_with_norm_(ps, 1.0, nn.utils.get_total_norm([p.grad for p in ps]))
    torch.nn.utils.clip_grads_with_norm_(tps, 1.0, torch.nn.utils.get_total_norm([tp.grad for tp in tps]))
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-6)


def test_deprecated_init_names_warn_and_work():
    w = nn.Parameter(np.zeros((3, 3), np.float32))
    with pytest.warns(FutureWarning, match="nn.init.xavier_uniform_"):
        nn.init.xavier_uniform(w)
    assert np.abs(w.detach().numpy()).max() > 0
    with pytest.warns(FutureWarning):
        nn.init.constant(w, 2.0)
    assert (w.detach().numpy() == 2).all()
