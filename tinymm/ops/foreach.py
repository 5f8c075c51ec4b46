"""``torch._foreach_*``: one op over a list of tensors, as optimizers and EMA code call them.

    torch._foreach_lerp_(ema_params, model_params, weight=1 - decay)    # timm's ModelEmaV3
    torch._foreach_add_(params, grads, alpha=-lr)

PyTorch fuses these into multi-tensor kernels; here each is the same op applied tensor by
tensor (through the Tensor methods, so autograd, version counters and the leaf checks are the
ordinary ones). What is PyTorch's and kept exactly is the calling convention:

- the second operand of a binary op is a Python number, a list of numbers (one per tensor), a
  list of tensors (broadcast against each), or a 0-dim Tensor; ``alpha=`` (add/sub) goes only
  with tensors, as in PyTorch (a TypeError otherwise);
- ``lerp``'s weight is a number, a list of numbers or a list of tensors; ``addcmul``/``addcdiv``
  take ``value`` as a number, a list of numbers, or a 1-D Tensor of them;
- lists must be non-empty and of equal length (RuntimeError with PyTorch's message);
- the in-place ops (``_``) return the list, and refuse a result their dtype cannot hold
  (``result type Float can't be cast to the desired output type Long``); the others return a
  tuple of new tensors.
"""
from __future__ import annotations

import numbers

import numpy as np

from tinymm.ops._util import broadcasts_to, check_fits, torch_dtype_name
from tinymm.ops.matrix_norms import vector_norm
from tinymm.ops.promotion import result_type
from tinymm.tensor import Tensor

def _is_number(x) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, Tensor)


def _tensors(fn: str, position: int, value) -> list:
    """A non-empty list/tuple of Tensors (``TypeError`` for another type, as PyTorch's parser)."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{fn}(): argument {position} must be tuple of Tensors, not {type(value).__name__}")
    for i, t in enumerate(value):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument {position}, but got {type(t).__name__}")
    if not value:
        raise RuntimeError("Tensor list must have at least one tensor.")
    return list(value)


def _same_length(first: list, other: list) -> None:
    if len(first) != len(other):
        raise RuntimeError(f"Tensor lists must have the same number of tensors, got {len(first)} and {len(other)}")


def _scalar_tensor(t: Tensor) -> Tensor:
    if t.ndim != 0:
        raise RuntimeError(f"scalar tensor expected to be 0 dim but it has {t.ndim} dimensions and {t.numel()} elements.")
    return t


def _seconds(fn: str, tensors: list, other, *, alpha_given: bool = False) -> list:
    """The per-tensor second operand of a binary op (see the module docstring)."""
    if isinstance(other, Tensor):
        return [_scalar_tensor(other)] * len(tensors)
    if _is_number(other):
        if alpha_given:
            raise TypeError(f"{fn}(): alpha= is accepted only with a list of tensors or a Tensor, not a number")
        return [other] * len(tensors)
    if isinstance(other, (list, tuple)) and other and all(_is_number(o) for o in other):
        if alpha_given:
            raise TypeError(f"{fn}(): alpha= is accepted only with a list of tensors or a Tensor, not a list of numbers")
        if len(other) != len(tensors):
            raise RuntimeError("Tensor list must have same number of elements as scalar list.")
        return list(other)
    if isinstance(other, (list, tuple)):
        others = _tensors(fn, 2, other)
        _same_length(tensors, others)
        return others
    raise TypeError(f"{fn}(): expected a number, a list of numbers, a list of tensors or a Tensor as the second "
                    f"argument, got {type(other).__name__}")


def _check_inplace(t: Tensor, *operands) -> None:
    """PyTorch's in-place rule: the result dtype must cast to the tensor's own."""
    for o in operands:
        check_fits(np.dtype(result_type(t, o)), t._data.dtype)


def _float_result(t: Tensor) -> None:
    """A float-only op (sqrt, exp) done in place on an integer tensor cannot hold its result."""
    if t.dtype.kind not in "fc":
        raise RuntimeError(f"result type Float can't be cast to the desired output type {torch_dtype_name(t.dtype)}")


# ----------------------------------------------------------------------------- binary ops


def _binary(name: str, method: str, inplace: bool, takes_alpha: bool):
    fn_name = f"_foreach_{name}{'_' if inplace else ''}"

    def op(self, other, *, alpha=None):
        tensors = _tensors(fn_name, 1, self)
        if alpha is not None and not takes_alpha:
            raise TypeError(f"{fn_name}() got an unexpected keyword argument 'alpha'")
        if alpha is not None and method == "sub" and isinstance(other, Tensor):
            raise TypeError(f"{fn_name}(): alpha= goes with a list of tensors here (PyTorch has no Tensor overload)")
        seconds = _seconds(fn_name, tensors, other, alpha_given=alpha is not None)
        kw = {} if alpha is None else {"alpha": alpha}
        if inplace:
            for t, o in zip(tensors, seconds):
                _check_inplace(t, o)
            for t, o in zip(tensors, seconds):
                getattr(t, method + "_")(o, **kw)
            return self if isinstance(self, list) else tensors
        return tuple(getattr(t, method)(o, **kw) for t, o in zip(tensors, seconds))

    op.__name__ = op.__qualname__ = fn_name
    op.__doc__ = (f"``torch.{fn_name}(self, other{', *, alpha=1' if takes_alpha else ''})``: ``{method}`` of each "
                  f"tensor with its operand{' (in place)' if inplace else ''}.")
    return op


def _maximum(t: Tensor, o):
    return t.clamp_min(o) if _is_number(o) else t.maximum(o)


def _maximum_(t: Tensor, o):
    return t.clamp_min_(o) if _is_number(o) else t.copy_(t.maximum(o))


def _binary_via(name: str, inplace: bool):
    fn_name = f"_foreach_{name}{'_' if inplace else ''}"
    apply = _maximum_ if inplace else _maximum  # clamp_min with a tensor is the elementwise maximum

    def op(self, other):
        tensors = _tensors(fn_name, 1, self)
        seconds = _seconds(fn_name, tensors, other)
        if inplace:
            for t, o in zip(tensors, seconds):
                _check_inplace(t, o)
            for t, o in zip(tensors, seconds):
                apply(t, o)
            return self if isinstance(self, list) else tensors
        return tuple(apply(t, o) for t, o in zip(tensors, seconds))

    op.__name__ = op.__qualname__ = fn_name
    op.__doc__ = f"``torch.{fn_name}(self, other)``: the elementwise maximum of each tensor and its operand."
    return op


_foreach_add = _binary("add", "add", False, True)
_foreach_add_ = _binary("add", "add", True, True)
_foreach_sub = _binary("sub", "sub", False, True)
_foreach_sub_ = _binary("sub", "sub", True, True)
_foreach_mul = _binary("mul", "mul", False, False)
_foreach_mul_ = _binary("mul", "mul", True, False)
_foreach_div = _binary("div", "div", False, False)
_foreach_div_ = _binary("div", "div", True, False)
_foreach_maximum = _binary_via("maximum", False)
_foreach_maximum_ = _binary_via("maximum", True)
_foreach_clamp_min = _binary_via("clamp_min", False)
_foreach_clamp_min_ = _binary_via("clamp_min", True)


# ----------------------------------------------------------------------------- unary ops


def _unary(method: str, inplace: bool, float_only: bool):
    fn_name = f"_foreach_{method}{'_' if inplace else ''}"

    def op(self):
        tensors = _tensors(fn_name, 1, self)
        if method == "neg" and any(t.dtype.kind == "b" for t in tensors):
            raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
                               "invert a mask, use the `~` or `logical_not()` operator instead.")
        if inplace:
            if float_only:
                for t in tensors:
                    _float_result(t)
            for t in tensors:
                getattr(t, method + "_")()
            return self if isinstance(self, list) else tensors
        return tuple(getattr(t, method)() for t in tensors)

    op.__name__ = op.__qualname__ = fn_name
    op.__doc__ = f"``torch.{fn_name}(self)``: ``{method}`` of each tensor{' (in place)' if inplace else ''}."
    return op


_foreach_sqrt = _unary("sqrt", False, True)
_foreach_sqrt_ = _unary("sqrt", True, True)
_foreach_exp = _unary("exp", False, True)
_foreach_exp_ = _unary("exp", True, True)
_foreach_neg = _unary("neg", False, False)
_foreach_neg_ = _unary("neg", True, False)
_foreach_abs = _unary("abs", False, False)
_foreach_abs_ = _unary("abs", True, False)


def _foreach_zero_(self):
    """``torch._foreach_zero_(self)``: fill every tensor with zeros."""
    tensors = _tensors("_foreach_zero_", 1, self)
    for t in tensors:
        t.zero_()
    return self if isinstance(self, list) else tensors


def _foreach_copy_(self, src, non_blocking: bool = False):
    """``torch._foreach_copy_(self, src)``: copy each ``src[i]`` (broadcast, cast) into ``self[i]``."""
    tensors = _tensors("_foreach_copy_", 1, self)
    sources = _tensors("_foreach_copy_", 2, src)
    _same_length(tensors, sources)
    for t, s in zip(tensors, sources):
        if not broadcasts_to(s.shape, t.shape):
            raise RuntimeError(f"_foreach_copy_: the size of src {tuple(s.shape)} does not broadcast to the "
                               f"tensor's size {tuple(t.shape)}")
    for t, s in zip(tensors, sources):
        t.copy_(s)
    return self if isinstance(self, list) else tensors


def _foreach_norm(self, ord=2, dtype=None):
    """``torch._foreach_norm(self, ord=2, dtype=None)``: each tensor's ``linalg.vector_norm``
    over all its elements, as a tuple of 0-dim tensors."""
    tensors = _tensors("_foreach_norm", 1, self)
    return tuple(vector_norm(t, ord, dtype=dtype) for t in tensors)


# ----------------------------------------------------------------------------- ternary ops


def _lerp(inplace: bool):
    fn_name = f"_foreach_lerp{'_' if inplace else ''}"

    def op(self, tensors1, weight):
        tensors = _tensors(fn_name, 1, self)
        ends = _tensors(fn_name, 2, tensors1)
        _same_length(tensors, ends)
        if _is_number(weight):
            weights = [weight] * len(tensors)
        elif isinstance(weight, (list, tuple)) and weight and all(_is_number(w) for w in weight):
            if len(weight) != len(tensors):
                raise RuntimeError("Tensor list must have same number of elements as scalar list.")
            weights = list(weight)
        else:
            weights = _tensors(fn_name, 3, weight)
            _same_length(tensors, weights)
        if inplace:
            for t, e, w in zip(tensors, ends, weights):
                _check_inplace(t, e, w)
            for t, e, w in zip(tensors, ends, weights):
                t.lerp_(e, w)
            return self if isinstance(self, list) else tensors
        return tuple(t.lerp(e, w) for t, e, w in zip(tensors, ends, weights))

    op.__name__ = op.__qualname__ = fn_name
    op.__doc__ = (f"``torch.{fn_name}(self, tensors1, weight)``: ``self[i] + weight * (tensors1[i] - self[i])`` "
                  f"with ``weight`` a number, a list of numbers or a list of tensors.")
    return op


def _values(fn: str, n: int, value) -> list:
    """``addcmul``/``addcdiv``'s ``value``: a number, a list of numbers, or a 1-D Tensor of them."""
    if _is_number(value):
        return [value] * n
    if isinstance(value, Tensor):
        if value.ndim != 1:
            raise RuntimeError(f"Expected packed scalar Tensor to be of dimension 1. Got {value.ndim} instead.")
        if value.numel() != n:
            raise RuntimeError(f"Expected length of scalars to match input of length {n} but got {value.numel()} instead.")
        return value.tolist()
    if isinstance(value, (list, tuple)) and all(_is_number(v) for v in value):
        if len(value) != n:
            raise RuntimeError("Tensor list must have same number of elements as scalar list.")
        return list(value)
    raise TypeError(f"{fn}(): value must be a number, a list of numbers or a 1-D Tensor, got {type(value).__name__}")


def _addc(name: str, inplace: bool):
    fn_name = f"_foreach_{name}{'_' if inplace else ''}"

    def op(self, tensor1, tensor2, value=1):
        tensors = _tensors(fn_name, 1, self)
        t1s, t2s = _tensors(fn_name, 2, tensor1), _tensors(fn_name, 3, tensor2)
        _same_length(tensors, t1s)
        _same_length(tensors, t2s)
        values = _values(fn_name, len(tensors), value)
        if inplace:
            for t, a, b in zip(tensors, t1s, t2s):
                _check_inplace(t, a, b)
            for t, a, b, v in zip(tensors, t1s, t2s, values):
                getattr(t, name + "_")(a, b, value=v)
            return self if isinstance(self, list) else tensors
        return tuple(getattr(t, name)(a, b, value=v) for t, a, b, v in zip(tensors, t1s, t2s, values))

    op.__name__ = op.__qualname__ = fn_name
    op.__doc__ = f"``torch.{fn_name}(self, tensor1, tensor2, value=1)``: ``{name}`` of each triple."
    return op


_foreach_lerp = _lerp(False)
_foreach_lerp_ = _lerp(True)
_foreach_addcmul = _addc("addcmul", False)
_foreach_addcmul_ = _addc("addcmul", True)
_foreach_addcdiv = _addc("addcdiv", False)
_foreach_addcdiv_ = _addc("addcdiv", True)

FOREACH_OPS = tuple((fn, None, fn.__name__) for fn in (
    _foreach_add, _foreach_add_, _foreach_sub, _foreach_sub_, _foreach_mul, _foreach_mul_, _foreach_div,
    _foreach_div_, _foreach_maximum, _foreach_maximum_, _foreach_clamp_min, _foreach_clamp_min_, _foreach_sqrt,
    _foreach_sqrt_, _foreach_exp, _foreach_exp_, _foreach_neg, _foreach_neg_, _foreach_abs, _foreach_abs_,
    _foreach_zero_, _foreach_copy_, _foreach_norm, _foreach_lerp, _foreach_lerp_, _foreach_addcmul,
    _foreach_addcmul_, _foreach_addcdiv, _foreach_addcdiv_))
