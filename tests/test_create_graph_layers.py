"""Higher-order gradients through the layers (``create_graph=True``): convolutions (1-D, 2-D,
3-D, transposed; stride, padding, dilation, groups), pooling (max, average, adaptive, 3-D),
batch/instance/group norm, recurrent layers, embedding, logsumexp, gather/scatter/index_add,
sort/topk, einsum, attention and the losses (cross-entropy with weights, label smoothing,
probabilities), each against PyTorch's double backward and against finite differences of the
first gradient (``test_create_graph._check``); the gradient as a function of the inputs and of
grad_output checked with ``gradcheck`` (PyTorch's gradgradcheck), and one order higher; and
two end-to-end scenarios, a WGAN-GP conv critic and a MAML inner step of an Omniglot-style
conv net with batch norm and max pooling, matching PyTorch's losses and parameter gradients."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import TORCH_REASON, torch
from test_create_graph import _Fn, _check, _lib, _np

import tinymm as tm
import tinymm.nn.functional as F

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

R = np.random.default_rng(7)
X3, X4, X5 = R.standard_normal((2, 2, 7)), R.standard_normal((2, 3, 5, 6)), R.standard_normal((1, 2, 4, 5, 4))
A, T = R.standard_normal((3, 4)), R.uniform(0, 1, (3, 4))
W2, B2, RM, RV = R.uniform(0.5, 1.5, 2), R.standard_normal(2), R.standard_normal(2), R.uniform(0.5, 2, 2)
Q, K, V = R.standard_normal((1, 2, 3, 4)), R.standard_normal((1, 2, 5, 4)), R.standard_normal((1, 2, 5, 3))
MASK_B = R.uniform(size=(3, 5)) > 0.3
MASK_B[:, 0] = True
MASK_F, POS_W, PROBS = R.standard_normal((3, 5)), R.uniform(0.5, 2, 4), R.dirichlet(np.ones(4), 3)


def _stats(x):
    lib = _lib(x)
    return lib.tensor(RM, dtype=lib.float64), lib.tensor(RV, dtype=lib.float64)


CONV = {
    "conv2d_stride_pad_groups": (
        lambda x, w, b: _Fn(x).conv2d(x, w, b, stride=2, padding=1, groups=2).tanh(),
        [R.standard_normal((2, 4, 5, 6)), R.standard_normal((4, 2, 3, 2)), R.standard_normal(4)]),
    "conv2d_dilation": (lambda x, w: _Fn(x).conv2d(x, w, None, stride=(1, 2), padding=(2, 1), dilation=(2, 1)) ** 2,
                        [R.standard_normal((1, 2, 5, 6)), R.standard_normal((3, 2, 2, 3))]),
    "conv2d_unbatched": (lambda x, w: _Fn(x).conv2d(x, w, padding=1) ** 2,
                         [R.standard_normal((2, 4, 3)), R.standard_normal((2, 2, 3, 3))]),
    "conv1d_stride": (lambda x, w, b: _Fn(x).conv1d(x, w, b, stride=3, padding=2).tanh(),
                      [R.standard_normal((2, 2, 9)), R.standard_normal((3, 2, 3)), R.standard_normal(3)]),
    "conv1d_same_even": (lambda x, w: _Fn(x).conv1d(x, w, padding="same") ** 2,
                         [R.standard_normal((2, 2, 7)), R.standard_normal((3, 2, 4))]),
    "conv3d": (lambda x, w: _Fn(x).conv3d(x, w, None, stride=2, padding=1) ** 2,
               [R.standard_normal((1, 2, 4, 4, 3)), R.standard_normal((2, 2, 2, 3, 2))]),
    "conv_transpose2d_output_padding": (
        lambda x, w, b: _Fn(x).conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1).tanh(),
        [R.standard_normal((2, 2, 3, 4)), R.standard_normal((2, 3, 3, 3)), R.standard_normal(3)]),
    "conv_transpose1d_groups_dilation": (
        lambda x, w: _Fn(x).conv_transpose1d(x, w, None, stride=2, output_padding=1, groups=2, dilation=2) ** 2,
        [R.standard_normal((1, 4, 5)), R.standard_normal((4, 1, 3))]),
    "conv_transpose3d": (lambda x, w: _Fn(x).conv_transpose3d(x, w, None, stride=2, padding=1) ** 2,
                         [R.standard_normal((1, 2, 2, 3, 2)), R.standard_normal((2, 1, 2, 2, 3))]),
}

POOL = {
    "max_pool2d_ceil": (lambda x: _Fn(x).max_pool2d(x * x, 3, 2, 1, ceil_mode=True) ** 2, [X4]),
    "max_pool2d_dilation": (lambda x: _Fn(x).max_pool2d(x, 2, 1, dilation=2) ** 3, [X4]),
    "max_pool1d": (lambda x: _Fn(x).max_pool1d(x.tanh(), 2) * _Fn(x).max_pool1d(x, 2), [X3]),
    "avg_pool2d_no_pad_count": (lambda x: _Fn(x).avg_pool2d(x, 3, 2, 1, count_include_pad=False) ** 3, [X4]),
    "avg_pool2d_divisor": (lambda x: _Fn(x).avg_pool2d(x, 2, divisor_override=3) ** 3, [X4]),
    "avg_pool1d": (lambda x: _Fn(x).avg_pool1d(x, 3, 2, ceil_mode=True) ** 3, [X3]),
    "adaptive_avg_pool2d": (lambda x: _Fn(x).adaptive_avg_pool2d(x, (2, 4)) ** 3, [X4]),
    "adaptive_avg_pool1d": (lambda x: _Fn(x).adaptive_avg_pool1d(x, 3) ** 3, [X3]),
    "adaptive_max_pool2d_uneven": (lambda x: _Fn(x).adaptive_max_pool2d(x, (2, 4)) ** 3, [X4]),
    "adaptive_max_pool1d_even": (lambda x: _Fn(x).adaptive_max_pool1d(x * x, 7) ** 3, [X3]),
    "max_pool3d": (lambda x: _Fn(x).max_pool3d(x, 2) ** 3, [X5]),
    "avg_pool3d": (lambda x: _Fn(x).avg_pool3d(x, 2, 1) ** 3, [X5]),
    "adaptive_avg_pool3d": (lambda x: _Fn(x).adaptive_avg_pool3d(x, (3, 2, 2)) ** 3, [X5]),
}

NORM = {
    "batch_norm_train": (lambda x, w, b: _Fn(x).batch_norm(x, *_stats(x), w, b, training=True).tanh() * x,
                         [R.standard_normal((3, 2, 2, 3)), W2, B2]),
    "batch_norm_train_2d_input": (lambda x, w: _Fn(x).batch_norm(x, None, None, w, None, training=True) ** 3,
                                  [R.standard_normal((4, 2)), W2]),
    "batch_norm_eval": (lambda x, w, b: _Fn(x).batch_norm(x, *_stats(x), w, b, training=False).tanh() * x,
                        [R.standard_normal((3, 2, 2, 3)), W2, B2]),
    "batch_norm_non_contiguous": (lambda x: _Fn(x).batch_norm(x.transpose(2, 3), None, None, training=True) ** 3,
                                  [R.standard_normal((3, 2, 2, 3))]),
    "instance_norm_affine": (lambda x, w, b: _Fn(x).instance_norm(x, weight=w, bias=b).tanh() * x,
                             [R.standard_normal((3, 2, 2, 3)), W2, B2]),
    "group_norm": (lambda x, w, b: _Fn(x).group_norm(x, 1, w, b).tanh() * x, [R.standard_normal((3, 2, 2, 3)), W2, B2]),
}

MISC = {
    "embedding_padding_idx": (lambda w: _Fn(w).embedding(_lib(w).tensor([[0, 2], [2, 3]]), w, padding_idx=3) ** 3,
                              [R.standard_normal((4, 3))]),
    "embedding_scale_grad_by_freq": (
        lambda w: _Fn(w).embedding(_lib(w).tensor([[0, 2], [2, 1]]), w, scale_grad_by_freq=True) ** 3,
        [R.standard_normal((4, 3))]),
    "logsumexp": (lambda x: (x.logsumexp(dim=1) ** 2).unsqueeze(1) + x.logsumexp(dim=0, keepdim=True) * x, [A]),
    "max_min_dim": (lambda x: (x.max(dim=1)[0] ** 3).unsqueeze(1) + x.min(dim=0, keepdim=True)[0] * x, [A]),
    "amax": (lambda x: x.amax(dim=1) ** 3, [A]), "max_all": (lambda x: x.max() ** 3 * x, [A]),
    "gather": (lambda x: x.gather(1, _lib(x).tensor([[0, 2, 1], [3, 3, 0]])) ** 3, [A[:2]]),
    "scatter": (lambda x, s: x.scatter(1, _lib(x).tensor([[0, 2], [3, 1]]), s) ** 3, [A[:2], A[:2, :2] + 1]),
    "scatter_add": (lambda x, s: x.scatter_add(1, _lib(x).tensor([[0, 2, 1], [3, 3, 0]]), s) ** 3, [A[:2], A[1:, :3]]),
    "index_add": (lambda x, s: x.index_add(0, _lib(x).tensor([1, 0, 1]), s, alpha=2.0) ** 3, [A[:2], A]),
    "index_select": (lambda x: x.index_select(1, _lib(x).tensor([3, 0, 3])) ** 3, [A]),
    "masked_fill": (lambda x: x.masked_fill(_lib(x).tensor([True, False, True, False]), 0.5) ** 3, [A]),
    "repeat": (lambda x: x.repeat(2, 1, 3) ** 3, [A]),
    "flip_roll": (lambda x: x.flip(1) ** 3 * x.roll(1, 0), [A]),
    "tril_triu": (lambda x: x[:, :3].tril(-1) ** 3 + x[:, :3].triu(1) * x[:, 1:], [A]),
    "unfold": (lambda x: _Fn(x).unfold(x, 2, padding=1, stride=2) ** 3, [X4[:1]]),
    "fold": (lambda x: _Fn(x).fold(x, (3, 4), 2, padding=1, stride=2) ** 3, [R.standard_normal((1, 8, 6))]),
    "pad": (lambda x: _Fn(x).pad(x, (1, 2, 0, 1)) ** 3, [A]),
    "dropout_p0": (lambda x: _Fn(x).dropout(x, 0.0) ** 3, [A]),
    "sdpa": (lambda q, k, v: _Fn(q).scaled_dot_product_attention(q, k, v) ** 2, [Q, K, V]),
    "sdpa_causal_scale": (lambda q, k, v: _Fn(q).scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3) ** 2,
                          [Q, K, V]),
    "sdpa_bool_mask": (lambda q, k, v: _Fn(q).scaled_dot_product_attention(q, k, v, attn_mask=_lib(q).tensor(MASK_B)) ** 2,
                       [Q, K, V]),
    "sdpa_float_mask_3d": (
        lambda q, k, v: _Fn(q).scaled_dot_product_attention(q, k, v, attn_mask=_lib(q).tensor(MASK_F)) ** 2,
        [Q[0], K[0], V[0]]),
    "bce": (lambda x, t: _Fn(x).binary_cross_entropy(x, t, reduction="none") * x, [T * 0.8 + 0.1, T[::-1].copy()]),
    "bce_with_logits_pos_weight": (
        lambda x, t: _Fn(x).binary_cross_entropy_with_logits(x, t, pos_weight=_lib(x).tensor(POS_W), reduction="none") * x,
        [A, T]),
    "bce_with_logits_mean": (lambda x, t: _Fn(x).binary_cross_entropy_with_logits(x * x, t), [A, T]),
    "mse": (lambda x, t: _Fn(x).mse_loss(x.tanh(), t), [A, T]),
    "l1": (lambda x, t: _Fn(x).l1_loss(x * x, t), [A, T]),
    "smooth_l1": (lambda x, t: _Fn(x).smooth_l1_loss(x * x, t, beta=0.5), [A, T]),
    "huber": (lambda x, t: _Fn(x).huber_loss(x * x, t, delta=0.5), [A, T]),
    "nll": (lambda x: _Fn(x).nll_loss(_Fn(x).log_softmax(x, 1), _lib(x).tensor([0, 3, 1])), [A]),
    "kl_div": (lambda x, t: _Fn(x).kl_div(_Fn(x).log_softmax(x, 1), t, reduction="batchmean"), [A, T]),
    "cross_entropy_label_smoothing": (
        lambda x: _Fn(x).cross_entropy(x, _lib(x).tensor([0, 3, 1]), label_smoothing=0.1), [A]),
    "cross_entropy_weight_smoothing_ignore": (
        lambda x: _Fn(x).cross_entropy(x * x, _lib(x).tensor([0, -100, 3]), weight=_lib(x).tensor(POS_W),
                                       label_smoothing=0.2), [A]),
    "cross_entropy_weight_none": (
        lambda x: _Fn(x).cross_entropy(x, _lib(x).tensor([0, 2, 1]), weight=_lib(x).tensor(POS_W),
                                       reduction="none") * x.sum(1), [A]),
    "cross_entropy_probabilities": (lambda x, t: _Fn(x).cross_entropy(x * x, t, label_smoothing=0.3), [A, PROBS]),
    "cross_entropy_probabilities_weight_none": (
        lambda x, t: _Fn(x).cross_entropy(x, t, weight=_lib(x).tensor(POS_W), reduction="none") * x.sum(1), [A, PROBS]),
    "sort_topk": (lambda x: x.sort(1)[0] ** 3 + x.topk(4, 1)[0] * x, [A]),
    "sign_round": (lambda x: x.sign() * x ** 3 + x.round() * x, [A]),
    "einsum": (lambda x, y: _lib(x).einsum("ij,kj->ik", x, y) ** 2 * _lib(x).einsum("ij,ij->", x, y), [A, A[::-1].copy()]),
    "einsum_diagonal_broadcast": (lambda x, y: _lib(x).einsum("ii,k->ik", x[:, :3], y[0]) ** 3, [A, A]),
    "lp_pool2d": (lambda x: _Fn(x).lp_pool2d(x * x + 0.1, 2, 2) ** 3, [X4]),
}

ALL = {**CONV, **POOL, **NORM, **MISC}


@pytest.mark.parametrize("name", sorted(ALL))
def test_layer_double_backward(name):
    f, arrays = ALL[name]
    # PyTorch's double backward of abs imports torch._dynamo (3 s): these against finite
    # differences only (abs itself is compared with PyTorch in test_create_graph)
    _check(f, f, arrays, vs_torch=name not in ("l1", "lp_pool2d"))


# ----------------------------------------------------------------------------- gradgradcheck


GRADGRAD = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
               [(1, 2, 4, 3), (2, 1, 2, 2), (2,)]),
    "conv1d_dilation": (lambda x, w: F.conv1d(x, w, None, padding=1, dilation=2), [(1, 2, 5), (2, 2, 2)]),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, output_padding=1),
                         [(1, 2, 2, 2), (2, 1, 2, 2), (1,)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2, 1, padding=1), [(1, 2, 3, 3)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2, 1, padding=1, count_include_pad=False), [(1, 2, 3, 3)]),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(3, 2, 2), (2,), (2,)]),
    "sdpa": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [(1, 3, 2), (1, 3, 2), (1, 3, 2)]),
    "embedding": (lambda w: F.embedding(tm.tensor([[0, 2], [2, 1]]), w, padding_idx=1), [(3, 2)]),
    "bce_with_logits": (lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"), [(2, 3), (2, 3)]),
}


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("name", sorted(GRADGRAD))
def test_gradient_is_differentiable_in_inputs_and_grad_output(name, order):
    # order 2 is PyTorch's gradgradcheck: the first gradient as a function of the inputs AND
    # of grad_output, its own gradient against central finite differences. Order 3 does the
    # same one level up, for op(x)³ (so that a linear op's gradient still depends on x): the
    # second gradient taken with create_graph (the backward ops' own backward_graph) must equal
    # the plain one, and its gradient must match finite differences.
    f, shapes = GRADGRAD[name]
    r = np.random.default_rng(3)
    xs = [tm.tensor(r.standard_normal(s), dtype=tm.float64, requires_grad=True) for s in shapes]
    with tm.no_grad():
        out_shape = f(*xs).shape
    go = tm.tensor(r.standard_normal(out_shape), dtype=tm.float64, requires_grad=True)
    us = [tm.tensor(r.standard_normal(s), dtype=tm.float64) for s in shapes]

    def derivative(*args, create_graph=True):
        with tm.enable_grad():  # gradcheck perturbs under no_grad
            y = f(*args[:-1])
            gs = tm.autograd.grad(y if order == 2 else y ** 3, args[:-1], args[-1], create_graph=True)
            if order == 2:
                return gs
            s = sum((g * u).sum() for g, u in zip(gs, us))
            hs = tm.autograd.grad(s, args, create_graph=create_graph, allow_unused=True)
            return tuple(h for h in hs if h is not None)

    if order == 3:
        for a, b in zip(derivative(*xs, go), derivative(*xs, go, create_graph=False)):
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-12, atol=1e-12)
    assert tm.autograd.gradcheck(derivative, xs + [go], atol=1e-6, rtol=1e-5)


# ----------------------------------------------------------------------------- end-to-end scenarios


def _twin(build, seed):
    """A tinymm and a PyTorch module (float64) built by ``build(nn)``, holding the same values."""
    net_tm = build(tm.nn).double()
    net_t = build(torch.nn).double()
    r = np.random.default_rng(seed)
    for (name, p), (name_t, q) in zip(net_tm.named_parameters(), net_t.named_parameters()):
        assert name == name_t and tuple(p.shape) == tuple(q.shape)
        value = r.standard_normal(p.shape) * (0.5 if p.ndim > 1 else 0.1)
        p._data[...] = value
        with torch.no_grad():
            q.copy_(torch.tensor(value))
    return net_tm, net_t


def _same_grads(net_tm, net_t, rtol=1e-9):
    for (name, p), q in zip(net_tm.named_parameters(), net_t.parameters()):
        np.testing.assert_allclose(_np(p.grad), q.grad.numpy(), rtol=rtol, atol=1e-11, err_msg=name)


def _conv_critic(nn):
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.LeakyReLU(0.2), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(16, 1))


def _wgan_gp(lib, critic, real, fake, alpha):
    real, fake = lib.tensor(real, dtype=lib.float64), lib.tensor(fake, dtype=lib.float64)
    a = lib.tensor(alpha, dtype=lib.float64)
    interp = (a * real + (1 - a) * fake).requires_grad_(True)
    out = critic(interp)
    (g,) = lib.autograd.grad(out, interp, lib.ones_like(out), create_graph=True)
    gp = ((g.reshape(g.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()
    loss = critic(fake).mean() - critic(real).mean() + 10 * gp
    loss.backward()
    return loss


@needs_torch
def test_wgan_gp_with_a_conv_critic():
    critic_tm, critic_t = _twin(_conv_critic, 11)
    r = np.random.default_rng(12)
    real, fake, alpha = r.standard_normal((3, 1, 8, 8)), r.standard_normal((3, 1, 8, 8)), r.uniform(size=(3, 1, 1, 1))
    l_tm, l_t = _wgan_gp(tm, critic_tm, real, fake, alpha), _wgan_gp(torch, critic_t, real, fake, alpha)
    np.testing.assert_allclose(float(l_tm), float(l_t.detach()), rtol=1e-10)
    _same_grads(critic_tm, critic_t)


def _omniglot_net(nn):
    """MAML's Omniglot-style block twice (conv 3x3, batch norm, ReLU, 2x2 max pool), a linear head."""
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(12, 3))


def _functional_forward(Fn, x, p):
    """The net of ``_omniglot_net`` run on the parameter list ``p`` (MAML's fast weights),
    batch norm with the batch's statistics and no running ones, as the MAML reference code."""
    for i in (0, 4):
        x = Fn.conv2d(x, p[i], p[i + 1], padding=1)
        x = Fn.batch_norm(x, None, None, p[i + 2], p[i + 3], training=True)
        x = Fn.max_pool2d(Fn.relu(x), 2)
    return Fn.linear(x.flatten(1), p[8], p[9])


def _maml(lib, Fn, net, tasks, inner_steps=2, lr=0.4):
    params = list(net.parameters())
    outer = 0
    for xs, ys, xq, yq in tasks:
        xs, xq = lib.tensor(xs, dtype=lib.float64), lib.tensor(xq, dtype=lib.float64)
        ys, yq = lib.tensor(ys), lib.tensor(yq)
        fast = params
        for _ in range(inner_steps):
            inner = Fn.cross_entropy(_functional_forward(Fn, xs, fast), ys)
            grads = lib.autograd.grad(inner, fast, create_graph=True)
            fast = [p - lr * g for p, g in zip(fast, grads)]
        outer = outer + Fn.cross_entropy(_functional_forward(Fn, xq, fast), yq)
    outer.backward()
    return outer


@needs_torch
def test_maml_second_order_with_conv_batch_norm_and_max_pool():
    net_tm, net_t = _twin(_omniglot_net, 13)
    r = np.random.default_rng(14)
    tasks = [(r.standard_normal((6, 1, 8, 8)), r.integers(0, 3, 6), r.standard_normal((6, 1, 8, 8)),
              r.integers(0, 3, 6)) for _ in range(2)]
    l_tm = _maml(tm, F, net_tm, tasks)
    l_t = _maml(torch, torch.nn.functional, net_t, tasks)
    np.testing.assert_allclose(float(l_tm), float(l_t.detach()), rtol=1e-10)
    _same_grads(net_tm, net_t, rtol=1e-8)


# ----------------------------------------------------------------------------- recurrent layers


def _rnn_second_order(lib, net, x, lengths):
    """First gradients of a loss through the layer (create_graph) wrt input and weights, then
    the gradient of their squared norm (a gradient penalty)."""
    x = lib.tensor(x, dtype=lib.float64, requires_grad=True)
    inp = x if lengths is None else lib.nn.utils.rnn.pack_padded_sequence(x, lib.tensor(lengths),
                                                                           enforce_sorted=False)
    out, h_n = net(inp)
    if lengths is not None:
        out, _ = lib.nn.utils.rnn.pad_packed_sequence(out)
    h_n = h_n[0] if isinstance(h_n, tuple) else h_n
    wrt = [x] + list(net.parameters())
    gs = lib.autograd.grad((out.tanh() ** 2).sum() + (h_n ** 3).sum(), wrt, create_graph=True)
    hs = lib.autograd.grad(sum((g ** 2).sum() for g in gs), wrt)
    return [_np(g) for g in gs + hs]


RNNS = {
    "lstm": ("LSTM", {}, None), "gru": ("GRU", {}, None), "rnn_tanh": ("RNN", {}, None),
    "rnn_relu_no_bias": ("RNN", {"nonlinearity": "relu", "bias": False}, None),
    "lstm_proj": ("LSTM", {"proj_size": 2}, None), "lstm_bidirectional": ("LSTM", {"bidirectional": True}, None),
    "gru_two_layers_bidirectional_packed": ("GRU", {"bidirectional": True, "num_layers": 2}, [4, 2]),
    "lstm_packed": ("LSTM", {}, [3, 4]),
}


@needs_torch
@pytest.mark.parametrize("name", sorted(RNNS))
def test_recurrent_layer_double_backward(name):
    kind, kw, lengths = RNNS[name]
    net_tm, net_t = _twin(lambda nn: getattr(nn, kind)(3, 3, **kw), 15)
    x = np.random.default_rng(16).standard_normal((4, 2, 3))
    for a, b in zip(_rnn_second_order(tm, net_tm, x, lengths), _rnn_second_order(torch, net_t, x, lengths)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 1.5, float("inf")])
def test_cdist_double_backward(p):
    # PyTorch has no double backward for cdist ("the derivative for '_cdist_backward' is not
    # implemented"): the p-norm of the pairwise differences is the oracle, |δ| written as
    # √(δ²) (PyTorch's abs double backward imports torch._dynamo, 3 s)
    x1, x2 = R.standard_normal((2, 3, 4)), R.standard_normal((1, 5, 4))

    def f_tm(a, b):
        return tm.cdist(a * a, b, p=p).tanh()

    def f_torch(a, b):
        sq = ((a * a)[..., :, None, :] - b[..., None, :, :]).square()
        d = sq.amax(-1).sqrt() if p == float("inf") else (sq ** (p / 2)).sum(-1) ** (1 / p)
        return d.tanh()

    _check(f_tm, f_torch, [x1, x2])


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin"])
def test_scatter_reduce_double_backward(reduce, include_self):
    def f(x, src):
        index = _lib(x).tensor([[0, 2, 2], [3, 3, 0]])
        return x.scatter_reduce(1, index, src, reduce, include_self=include_self) ** 3 * x

    _check(f, f, [A[:2], A[1:, 1:]])


def test_scatter_reduce_prod_gives_first_order_then_raises():
    x = tm.tensor(A[:2], dtype=tm.float64, requires_grad=True)
    index = tm.tensor([[0, 2, 2], [3, 3, 0]])
    (g,) = tm.autograd.grad((x.scatter_reduce(1, index, x[:, :3] + 1, "prod") ** 2).sum(), x, create_graph=True)
    (plain,) = tm.autograd.grad((x.scatter_reduce(1, index, x[:, :3] + 1, "prod") ** 2).sum(), x)
    np.testing.assert_allclose(_np(g), _np(plain))
    with pytest.raises(NotImplementedError, match="ScatterReduceBackward0"):
        g.sum().backward()


def _linalg(x):
    return tm.linalg if _lib(x) is tm else torch.linalg


M33, B32 = R.standard_normal((2, 3, 3)) + 3 * np.eye(3), R.standard_normal((2, 3, 2))
LINALG = {
    "inv": (lambda a: _linalg(a).inv(a) ** 2, [M33]),
    "det": (lambda a: _linalg(a).det(a) ** 2 * a.sum(), [M33]),
    "slogdet": (lambda a: _linalg(a).slogdet(a)[1] ** 2, [M33]),
    "solve": (lambda a, b: _linalg(a).solve(a, b) ** 2, [M33, B32]),
    "solve_broadcast": (lambda a, b: _linalg(a).solve(a, b) ** 2, [M33[:1], B32]),
    "solve_vector": (lambda a, b: _linalg(a).solve(a, b) ** 2, [M33, B32[..., 0]]),
}


@pytest.mark.parametrize("name", sorted(LINALG))
def test_linalg_double_backward(name):
    f, arrays = LINALG[name]
    _check(f, f, arrays)


def test_det_of_a_singular_matrix_gives_first_order_then_raises():
    # det·A⁻ᵀ is not the adjugate there: the first gradient is right, a second one refused
    a = tm.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=tm.float64, requires_grad=True)
    (g,) = tm.autograd.grad(tm.linalg.det(a), a, create_graph=True)
    np.testing.assert_allclose(_np(g), [[4.0, -2.0], [-2.0, 1.0]])
    with pytest.raises(NotImplementedError, match="DetBackward0"):
        g.sum().backward()


@needs_torch
def test_multihead_attention_and_encoder_layer_gradient_penalty():
    # a gradient penalty through nn.MultiheadAttention inside a TransformerEncoderLayer
    def build(nn):
        return nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True)

    net_tm, net_t = _twin(build, 17)
    x = np.random.default_rng(18).standard_normal((2, 3, 4))
    from torch.nn.attention import SDPBackend, sdpa_kernel

    for lib, net in ((tm, net_tm), (torch, net_t)):
        xt = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        # PyTorch's fused CPU attention has no double backward: its math path does
        with sdpa_kernel(SDPBackend.MATH):
            (g,) = lib.autograd.grad((net(xt).tanh() ** 2).sum(), xt, create_graph=True)
            ((g ** 2).sum() + net(xt).sum()).backward()
    _same_grads(net_tm, net_t, rtol=1e-8)


@pytest.mark.parametrize("layer", ["batch_norm", "conv2d", "layer_norm"])
def test_inplace_change_of_a_non_contiguous_input_raises(layer):
    # forward copied the transposed input, so the copy's version says nothing: the values are
    # compared when the differentiable backward reads the input again
    x0 = tm.randn(2, 2, 3, 4, dtype=tm.float64, requires_grad=True)
    x = x0.transpose(2, 3)
    w = tm.randn(2, 2, 2, 2, dtype=tm.float64, requires_grad=True)
    y = {"batch_norm": lambda: F.batch_norm(x, None, None, training=True), "conv2d": lambda: F.conv2d(x, w),
         "layer_norm": lambda: F.layer_norm(x, (3,))}[layer]()
    with tm.no_grad():
        x.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tm.autograd.grad((y ** 3).sum(), [x0, w] if layer == "conv2d" else x0, create_graph=True)
