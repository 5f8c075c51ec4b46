"""Floor 4: the layer functions ``torch.*`` exposes at top level (``torch.conv2d``,
``torch.batch_norm``, ``torch.dropout``, ...), with the signatures of those ``torch.*`` forms.

Most share ``torch.nn.functional``'s signature and are the same function. A few of PyTorch's
top-level forms are the ATen ops underneath, with other argument orders or types, and get a
small adapter here: ``batch_norm``/``instance_norm`` (weight and bias first, every argument
positional, plus ``cudnn_enabled``), ``dropout``/``alpha_dropout``/``feature_alpha_dropout``
(``train`` required), ``embedding(weight, indices, padding_idx=-1)``, and the losses whose
``reduction`` is an integer (0 none, 1 mean, 2 sum).

``tinymm`` (floor 3) cannot import this floor; it resolves the names in ``TORCH_FUNCTIONS``
lazily, on first use (``tinymm.__getattr__``), as it does for ``tinymm.nn``.
"""
from __future__ import annotations

from tinymm import ops as O
from tinymm.ops.inplace import inplace_of

from tinymm.nn.functional import activations as A
from tinymm.nn.functional import activations_inplace as AI
from tinymm.nn.functional import batchnorm, conv, layers, losses, norm, pool, pool_more, vision
from tinymm.nn.functional.conv_tbc import conv_tbc

_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _reduction(name, reduction):
    if isinstance(reduction, str):
        return reduction
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 0 (none), 1 (mean) or 2 (sum), got {reduction!r}")
    return _REDUCTIONS[reduction]


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled=True):
    """``torch.batch_norm``: ``F.batch_norm`` with the ATen argument order."""
    return batchnorm.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps,
                  cudnn_enabled=True):
    return batchnorm.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    return norm.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):
    return norm.group_norm(input, num_groups, weight, bias, eps)


def dropout(input, p, train):
    return layers.dropout(input, p, train)


def alpha_dropout(input, p, train):
    return layers.alpha_dropout(input, p, train)


def feature_alpha_dropout(input, p, train):
    return layers.feature_alpha_dropout(input, p, train)


dropout_ = inplace_of("dropout_", dropout)
alpha_dropout_ = inplace_of("alpha_dropout_", alpha_dropout)
feature_alpha_dropout_ = inplace_of("feature_alpha_dropout_", feature_alpha_dropout)


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """``torch.embedding``: the rows of ``weight`` at ``indices``; ``padding_idx`` -1 is none."""
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse are not supported")
    return layers.embedding(indices, weight, None if padding_idx is None or padding_idx < 0 else padding_idx)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=1):
    return losses.binary_cross_entropy_with_logits(
        input, target, weight, reduction=_reduction("binary_cross_entropy_with_logits", reduction),
        pos_weight=pos_weight)


def kl_div(input, target, reduction=1, *, log_target=False):
    return losses.kl_div(input, target, reduction=_reduction("kl_div", reduction), log_target=log_target)


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=1):
    return losses.margin_ranking_loss(input1, input2, target, margin,
                                      reduction=_reduction("margin_ranking_loss", reduction))


def hinge_embedding_loss(input, target, margin=1.0, reduction=1):
    return losses.hinge_embedding_loss(input, target, margin, reduction=_reduction("hinge_embedding_loss", reduction))


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=1):
    return losses.cosine_embedding_loss(input1, input2, target, margin,
                                        reduction=_reduction("cosine_embedding_loss", reduction))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction=1):
    return losses.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                      reduction=_reduction("triplet_margin_loss", reduction))


def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    return losses.poisson_nll_loss(input, target, log_input, full, eps=eps,
                                   reduction=_reduction("poisson_nll_loss", reduction))


def constant_pad_nd(input, pad, value=0):
    """``F.pad(input, pad, "constant", value)``."""
    return O.pad(input, pad, "constant", value)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    if generator is not None:
        raise NotImplementedError("rrelu: generator= is not supported")
    return A.rrelu(input, lower, upper, training)


def celu(input, alpha=1.0):
    return A.celu(input, alpha)


def selu(input):
    return A.selu(input)


def threshold(input, threshold, value):
    return A.threshold(input, threshold, value)


def max_pool1d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return pool.max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool2d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return pool.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool3d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return pool.max_pool3d(input, kernel_size, None if stride == () else stride, padding, dilation, ceil_mode)


def max_pool1d_with_indices(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return pool_more.max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)


def adaptive_max_pool1d(input, output_size):
    """``torch.adaptive_max_pool1d`` returns (values, indices), as the ATen op."""
    return pool.adaptive_max_pool1d(input, output_size, return_indices=True)


TORCH_FUNCTIONS = {
    # the same signature as torch.nn.functional's
    "conv1d": conv.conv1d,
    "conv2d": conv.conv2d,
    "conv3d": conv.conv3d,
    "conv_transpose1d": conv.conv_transpose1d,
    "conv_transpose2d": conv.conv_transpose2d,
    "conv_transpose3d": conv.conv_transpose3d,
    "cosine_similarity": norm.cosine_similarity,
    "pairwise_distance": norm.pairwise_distance,
    "pdist": norm.pdist,
    "rms_norm": norm.rms_norm,
    "bilinear": layers.bilinear,
    "avg_pool1d": pool.avg_pool1d,
    "adaptive_avg_pool1d": pool.adaptive_avg_pool1d,
    "pixel_shuffle": vision.pixel_shuffle,
    "pixel_unshuffle": vision.pixel_unshuffle,
    "channel_shuffle": vision.channel_shuffle,
    "celu_": AI.celu_,
    "selu_": AI.selu_,
    "rrelu_": AI.rrelu_,
    "threshold_": AI.threshold_,
    # the ATen forms (adapters above)
    "batch_norm": batch_norm,
    "instance_norm": instance_norm,
    "layer_norm": layer_norm,
    "group_norm": group_norm,
    "dropout": dropout,
    "dropout_": dropout_,
    "alpha_dropout": alpha_dropout,
    "alpha_dropout_": alpha_dropout_,
    "feature_alpha_dropout": feature_alpha_dropout,
    "feature_alpha_dropout_": feature_alpha_dropout_,
    "embedding": embedding,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "kl_div": kl_div,
    "margin_ranking_loss": margin_ranking_loss,
    "hinge_embedding_loss": hinge_embedding_loss,
    "cosine_embedding_loss": cosine_embedding_loss,
    "triplet_margin_loss": triplet_margin_loss,
    "poisson_nll_loss": poisson_nll_loss,
    "constant_pad_nd": constant_pad_nd,
    "rrelu": rrelu,
    "celu": celu,
    "selu": selu,
    "threshold": threshold,
    "max_pool1d": max_pool1d,
    "max_pool2d": max_pool2d,
    "max_pool3d": max_pool3d,
    "max_pool1d_with_indices": max_pool1d_with_indices,
    "adaptive_max_pool1d": adaptive_max_pool1d,
    "conv_tbc": conv_tbc,  # probe10: fairseq's time-major convolution
}
