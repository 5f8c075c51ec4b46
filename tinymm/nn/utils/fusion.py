"""Folding an eval-mode BatchNorm into the convolution or linear layer before it, as
``torch.nn.utils.fusion``:

    y = γ·(W·x + b − μ)/√(σ² + ε) + β  =  W'·x + b'
    W' = W · γ/√(σ² + ε)   (per output channel: dim 0 of a conv weight, dim 1 when ``transpose``)
    b' = (b − μ)·γ/√(σ² + ε) + β

The fused parameters keep the weight's dtype and ``requires_grad``; a missing conv/linear bias
counts as zeros, a missing BatchNorm weight/bias as ones/zeros.
"""
from __future__ import annotations

import copy

from tinymm import ops as O
from tinymm.factories import ones_like, zeros_like
from tinymm.nn.parameter import Parameter


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose: bool = False):
    """``(Parameter W', Parameter b')`` of a convolution followed by an eval BatchNorm."""
    dtype = conv_w.dtype
    conv_b = zeros_like(bn_rm) if conv_b is None else conv_b
    bn_w = ones_like(bn_rm) if bn_w is None else bn_w
    bn_b = zeros_like(bn_rm) if bn_b is None else bn_b
    rsqrt = O.rsqrt(bn_rv + bn_eps)
    shape = ([1, -1] if transpose else [-1, 1]) + [1] * (conv_w.ndim - 2)
    fused_w = O.cast(conv_w * O.reshape(bn_w * rsqrt, *shape), dtype)
    fused_b = O.cast((conv_b - bn_rm) * rsqrt * bn_w + bn_b, dtype)
    return Parameter(fused_w.detach(), conv_w.requires_grad), Parameter(fused_b.detach(), conv_b.requires_grad)


def fuse_conv_bn_eval(conv, bn, transpose: bool = False):
    """A copy of ``conv`` with ``bn`` (both in eval mode) folded into its weight and bias."""
    if conv.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    fused = copy.deepcopy(conv)
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("fuse_conv_bn_eval: the BatchNorm must track running statistics")
    fused.weight, fused.bias = fuse_conv_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """``(Parameter W', Parameter b')`` of a linear layer followed by an eval BatchNorm1d."""
    linear_b = zeros_like(bn_rm) if linear_b is None else linear_b
    scale = bn_w * O.rsqrt(bn_rv + bn_eps)
    fused_w = linear_w * O.unsqueeze(scale, -1)
    fused_b = (linear_b - bn_rm) * scale + bn_b
    return Parameter(fused_w.detach(), linear_w.requires_grad), Parameter(fused_b.detach(), linear_b.requires_grad)


def fuse_linear_bn_eval(linear, bn):
    """A copy of ``linear`` with ``bn`` (both in eval mode) folded in; ``bn`` must have
    ``linear.out_features`` features, or one (broadcast)."""
    if linear.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    if not (linear.out_features == bn.num_features or bn.num_features == 1):
        raise AssertionError("To fuse, linear.out_features must equal bn.num_features or bn.num_features must be 1")
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("fuse_linear_bn_eval: the BatchNorm must track running statistics")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    return fused
