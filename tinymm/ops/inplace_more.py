"""The rest of PyTorch's ``*_`` methods: each is its out-of-place op written back into ``x``.

Most are ``inplace.inplace_of(name, op)`` (``x.exp_()`` is ``x = exp(x)`` written into x's
memory, recorded in the graph when x carries one, the version counter bumped; a floating
result refused for an integer x, as PyTorch). Four kinds need more than that:

- the metadata ops ``t_``, ``transpose_``, ``swapaxes_``/``swapdims_``, ``squeeze_``,
  ``unsqueeze_``: x keeps its storage but takes the view's shape and strides, becomes the
  view's graph node, and its version is bumped (as PyTorch's, so a Function that saved x
  before refuses to backward); on a leaf that requires grad they raise, as PyTorch;
- ``detach_``: x leaves the graph (``requires_grad`` False, no node) in place;
- ``fill_diagonal_(value, wrap=False)``: PyTorch's definition, all dims equal for ndim > 2,
  ``wrap`` restarting the diagonal every ``cols + 1`` rows of a tall matrix;
- ``clamp_min``/``clamp_max`` and their ``_`` forms: ``clamp`` with one bound.

``INPLACE_OPS`` is the table ``tinymm.ops`` adds to its ``OPS``: (function, method name,
exported name or False), the exported ones being those ``torch.*`` has.
"""
from __future__ import annotations

import numpy as np

from tinymm import autograd, backend
from tinymm.ops import elementwise as E
from tinymm.ops import maths as M
from tinymm.ops._util import ShapeError
from tinymm.ops.convert import as_tensor
from tinymm.ops.elementwise import clamp
from tinymm.ops.index import masked_fill
from tinymm.ops.inplace import clamp_, inplace_of, sub_
from tinymm.ops.layout import swapaxes, t, tril, triu
from tinymm.ops.scan import cumprod, cumsum
from tinymm.ops.shape import squeeze, transpose, unsqueeze
from tinymm.ops.special import logit
from tinymm.ops.scalar_fit import check_scalar_fits
from tinymm.tensor import Tensor, bump_version


def clamp_min(x, min):
    """``clamp(x, min=min)``: elementwise max with a number or a broadcastable tensor."""
    return clamp(x, min=min)


def clamp_max(x, max):
    """``clamp(x, max=max)``."""
    return clamp(x, max=max)


def clamp_min_(x, min):
    return clamp_(x, min=min)


def clamp_max_(x, max):
    return clamp_(x, max=max)


def subtract_(x, other, *, alpha=1):
    return sub_(x, other, alpha=alpha)


# ----------------------------------------------------------------------------- metadata


def _restride_(name: str, x: Tensor, view_fn) -> Tensor:
    """x takes the shape/strides of ``view_fn(x)`` (same storage) and, with a graph, its node."""
    if x.requires_grad and autograd.is_grad_enabled():
        if x._node is None:
            raise RuntimeError(
                f"{name}: a leaf Variable that requires grad is being used in an in-place operation; "
                "do it under tinymm.no_grad() or on a clone()")
        old = Tensor._wrap(x._data)
        old.requires_grad = True
        old._node = x._node
        old._view_src = x._view_src  # x viewed another tensor: old x did too
        out = view_fn(old)
        # x is now a view of old x (reshape/permute record that): an in-place write into x
        # later replays it on old x's history, as PyTorch's restrided tensor keeps its base's
        x._data, x._node, x._view_src = out._data, out._node, out._view_src
    else:
        with autograd.no_grad():
            x._data = view_fn(Tensor._wrap(x._data))._data
    bump_version(x._data)
    return x


def t_(x):
    """``t()`` in place: x becomes its own transpose (0-, 1- or 2-d)."""
    return _restride_("t_", x, t)


def transpose_(x, dim0, dim1):
    return _restride_("transpose_", x, lambda v: transpose(v, dim0, dim1))


def swapaxes_(x, axis0, axis1):
    return _restride_("swapaxes_", x, lambda v: swapaxes(v, axis0, axis1))


def swapdims_(x, dim0, dim1):
    return _restride_("swapdims_", x, lambda v: swapaxes(v, dim0, dim1))


def squeeze_(x, dim=None):
    return _restride_("squeeze_", x, lambda v: squeeze(v, dim))


def unsqueeze_(x, dim):
    return _restride_("unsqueeze_", x, lambda v: unsqueeze(v, dim))


def detach_(x):
    """Cut x from the graph in place: no node, ``requires_grad`` False; returns x."""
    x._node = None
    x.requires_grad = False
    return x


# ----------------------------------------------------------------------------- diagonal


def _diagonal_mask(shape, wrap: bool):
    """Where ``fill_diagonal_`` writes: ``[i, i, ..., i]``; with ``wrap`` on a tall matrix
    the diagonal restarts every ``cols + 1`` rows (NumPy's ``fill_diagonal`` rule, as PyTorch)."""
    mask = np.zeros(shape, dtype=bool)
    if len(shape) == 2 and wrap and shape[0] > shape[1] + 1:
        mask.reshape(-1)[:: shape[1] + 1] = True
    else:
        mask[(tuple(range(min(shape))),) * len(shape)] = True
    return mask


def fill_diagonal_(x, fill_value, wrap: bool = False):
    """Set the main diagonal (``x[i, i, ..., i]``) to ``fill_value`` in place. Needs ndim ≥ 2
    and, for ndim > 2, all dims equal (RuntimeError otherwise, as PyTorch)."""
    x = as_tensor(x, "fill_diagonal_")
    if x.ndim < 2:
        raise ShapeError(f"fill_diagonal_: dimensions must larger than 1, got a {x.ndim}-d tensor")
    if x.ndim > 2 and len(set(x.shape)) != 1:
        raise ShapeError(f"fill_diagonal_: all dimensions of input must be of equal length, got shape {tuple(x.shape)}")
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    # refused or rounded here as fill_ does (float16 checked unless one element), since the
    # masked_fill below would always check float16
    fill_value = check_scalar_fits(fill_value, x._data.dtype, half_overflows=x._data.size != 1)
    mask = Tensor._wrap(backend.to_device(_diagonal_mask(tuple(x.shape), wrap), x.device))
    return inplace_of("fill_diagonal_", lambda v: masked_fill(v, mask, fill_value))(x)


# ----------------------------------------------------------------------------- the table

_UNARY = (
    ("abs_", E.abs), ("absolute_", E.abs), ("neg_", E.neg), ("negative_", E.neg),
    ("exp_", E.exp), ("log_", E.log), ("sqrt_", E.sqrt), ("tanh_", E.tanh),
    ("sigmoid_", E.sigmoid), ("relu_", E.relu),
    ("log1p_", M.log1p), ("log2_", M.log2), ("log10_", M.log10), ("exp2_", M.exp2), ("expm1_", M.expm1),
    ("rsqrt_", M.rsqrt), ("reciprocal_", M.reciprocal), ("square_", M.square), ("erf_", M.erf),
    ("sin_", M.sin), ("cos_", M.cos), ("tan_", M.tan), ("asin_", M.asin), ("acos_", M.acos),
    ("atan_", M.atan), ("arcsin_", M.asin), ("arccos_", M.acos), ("arctan_", M.atan),
    ("sinh_", M.sinh), ("cosh_", M.cosh), ("asinh_", M.asinh), ("acosh_", M.acosh), ("atanh_", M.atanh),
    ("arcsinh_", M.asinh), ("arccosh_", M.acosh), ("arctanh_", M.atanh),
    ("floor_", M.floor), ("ceil_", M.ceil), ("trunc_", M.trunc), ("fix_", M.fix), ("round_", M.round),
    ("sign_", M.sign), ("sgn_", M.sgn), ("bitwise_not_", M.bitwise_not), ("logical_not_", E.logical_not),
)
_BINARY = (
    ("multiply_", E.mul), ("divide_", M.div), ("true_divide_", E.div), ("floor_divide_", M.floor_divide),
    ("fmod_", M.fmod), ("remainder_", M.remainder), ("lerp_", M.lerp), ("arctan2_", M.atan2),
    ("greater_", E.gt), ("greater_equal_", E.ge), ("less_", E.lt), ("less_equal_", E.le), ("not_equal_", E.ne),
    ("logical_and_", M.logical_and), ("logical_or_", M.logical_or), ("logical_xor_", M.logical_xor),
    ("bitwise_and_", M.bitwise_and), ("bitwise_or_", M.bitwise_or), ("bitwise_xor_", M.bitwise_xor),
    ("bitwise_left_shift_", M.bitwise_left_shift), ("bitwise_right_shift_", M.bitwise_right_shift),
    ("cumsum_", cumsum), ("cumprod_", cumprod), ("tril_", tril), ("triu_", triu),
    ("clip_", clamp),
)
# In-place forms torch also has as ``torch.<name>`` functions.
_TORCH_FUNCTIONS = {
    "abs_", "neg_", "negative_", "exp_", "log_", "sqrt_", "tanh_", "sigmoid_", "relu_", "log1p_", "log2_",
    "log10_", "exp2_", "expm1_", "rsqrt_", "reciprocal_", "square_", "erf_", "sin_", "cos_", "tan_", "asin_",
    "acos_", "atan_", "arcsin_", "arccos_", "arctan_", "sinh_", "cosh_", "asinh_", "acosh_", "atanh_",
    "arcsinh_", "arccosh_", "arctanh_", "floor_", "ceil_", "trunc_", "fix_", "round_", "clip_",
}

INPLACE_OPS = (
    *((inplace_of(name, fn), name, name if name in _TORCH_FUNCTIONS else False) for name, fn in _UNARY + _BINARY),
    # torch.* forms of in-place methods defined elsewhere
    *((inplace_of(name, fn), None, name) for name, fn in (
        ("frac_", M.frac), ("logit_", logit), ("nan_to_num_", M.nan_to_num))),
    (clamp_min, "clamp_min", "clamp_min"),
    (clamp_max, "clamp_max", "clamp_max"),
    (clamp_min_, "clamp_min_", "clamp_min_"),
    (clamp_max_, "clamp_max_", "clamp_max_"),
    (clamp_, None, "clamp_"),
    (subtract_, "subtract_", False),
    (t_, "t_", False),
    (transpose_, "transpose_", False),
    (swapaxes_, "swapaxes_", False),
    (swapdims_, "swapdims_", False),
    (squeeze_, "squeeze_", False),
    (unsqueeze_, "unsqueeze_", False),
    (detach_, "detach_", "detach_"),
    (fill_diagonal_, "fill_diagonal_", False),
)
