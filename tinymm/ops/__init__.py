"""Floor 3: every tensor op, each defined in one place, and the table that publishes them.

Where an op lives
-----------------
An op is a ``Function`` subclass (``tinymm.autograd``: ``forward(ctx, ...)`` on arrays,
``backward(ctx, grad)``) and, right below it in the same module, the public function that
checks the arguments once and calls ``Function.apply``. The module is named for the family:

- ``convert``     operand rules (``as_tensor``, ``operands``), ``cast``, ``to``, ``clone``, ``contiguous``
- ``elementwise`` arithmetic, exp/log/sqrt/tanh, activations, comparisons
- ``maths``       trigonometry, rounding, logs/exps, remainders, bitwise/logical, isclose, norm
- ``reduce``      sum, mean, var/std, max/min/amax/amin, logsumexp, softmax/log-softmax
- ``scan``        prod, any/all, cumsum/cumprod/cummax/cummin/logcumsumexp, sort/argsort/topk
- ``linalg``      matmul, einsum
- ``shape``       reshape, permute, expand, cat/stack/split, pad
- ``layout``      flip, roll, repeat, repeat_interleave, tril/triu, diag/diagonal, unfold, meshgrid
- ``index``       getitem, where, masked_fill, one_hot, gather/scatter, index_select, nonzero
- ``sampling``    multinomial, bernoulli
- ``inplace``     ``__setitem__`` and the ``*_`` methods (random fills too), which bump the version counters

An op that is a Tensor method or a ``tinymm.*`` function lives here (floor 3), whether or not
a kernel backs it (softmax calls ``tinymm.kernels.softmax``). An op only
``torch.nn.functional`` has lives on floor 4, in ``tinymm/nn/functional/<family>.py``, by the
same pattern. A kernel-backed Function calls ``tinymm.kernels.<family>.forward/backward`` and
nothing else of floor 1; the public function validates, the Function and kernel trust it.

How to add an op (two source files and one test line)
-----------------------------------------------------
1. In the family's module, write ``class Foo(Function)`` and below it ``def foo(x, ...)``.
2. Add one row to ``OPS`` below: ``(foo, "foo", True)`` gives ``x.foo()`` and ``tinymm.foo``.
3. Add one ``check_op`` line to the family's test (``tests/test_ops_*.py``).

``OPS`` and ``OPERATORS`` are the only place Tensor methods are defined: ``tinymm.tensor``
never imports this package (imports run one way, ops → tensor → backend); importing
``tinymm.ops`` binds the methods. ``__all__`` (what ``tinymm/__init__`` re-exports) comes
from the same table.
"""
from functools import partialmethod

import numpy as np

from tinymm import factories
from tinymm.autograd import run_backward
from tinymm.ops._util import DTypeError, ShapeError
from tinymm.ops.convert import as_tensor, cast, check_pair, clone, contiguous, operands, to, to_device, to_float, type_as
from tinymm.ops.elementwise import (
    abs,
    add,
    clamp,
    compare,
    exp,
    gelu,
    log,
    logical_not,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    silu,
    sqrt,
    sub,
    tanh,
)
from tinymm.ops.elementwise import div as true_divide
from tinymm.ops.index import (
    add_at,
    argwhere,
    array_index,
    gather,
    getitem,
    index_select,
    masked_fill,
    nonzero,
    one_hot,
    scatter,
    scatter_add,
    scatter_reduce,
    take_along_dim,
    where,
)
from tinymm.ops.inplace import (
    add_,
    masked_fill_,
    pow_,
    scatter_,
    scatter_add_,
    bernoulli_,
    clamp_,
    copy_,
    div_,
    exponential_,
    fill_,
    mul_,
    normal_,
    setitem,
    sub_,
    uniform_,
    zero_,
)
from tinymm.ops.layout import (
    diag,
    diagonal,
    flip,
    fliplr,
    flipud,
    masked_select,
    meshgrid,
    movedim,
    narrow,
    repeat,
    repeat_interleave,
    reshape_as,
    roll,
    swapaxes,
    t,
    tile,
    tril,
    triu,
    unflatten,
    unfold,
    view_as,
)
from tinymm.ops.linalg import einsum, matmul
from tinymm.ops.maths import (
    acos,
    acosh,
    allclose,
    asin,
    asinh,
    atan,
    atanh,
    bitwise_and,
    bitwise_left_shift,
    bitwise_not,
    bitwise_or,
    bitwise_right_shift,
    bitwise_xor,
    ceil,
    copysign,
    cos,
    cosh,
    div,
    equal,
    erf,
    exp2,
    expm1,
    fix,
    floor,
    floor_divide,
    fmod,
    isclose,
    isfinite,
    isinf,
    isnan,
    isneginf,
    isposinf,
    lerp,
    log1p,
    log2,
    log10,
    logaddexp,
    logical_and,
    logical_or,
    logical_xor,
    norm,
    reciprocal,
    remainder,
    round,
    rsqrt,
    sgn,
    sign,
    sin,
    sinh,
    square,
    tan,
    trunc,
)
from tinymm.ops.reduce import (
    MaxResult,
    amax,
    amin,
    argmax,
    argmin,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    softmax,
    std,
    sum,
    var,
)
from tinymm.ops.sampling import bernoulli, multinomial, poisson
from tinymm.ops.scan import (
    SortResult,
    all,
    any,
    argsort,
    count_nonzero,
    cummax,
    cummin,
    cumprod,
    cumsum,
    kthvalue,
    logcumsumexp,
    median,
    msort,
    prod,
    sort,
    std_mean,
    topk,
    var_mean,
)
from tinymm.ops.shape import (
    cat,
    chunk,
    concat,
    expand,
    expand_as,
    flatten,
    pad,
    permute,
    reshape,
    reverse_dims,
    split,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)
from tinymm.tensor import Tensor

# (public function, its Tensor method name or None, exported as tinymm.<function name>: True/False
#  or as the name given)
OPS = (
    # convert
    (clone, "clone", True),
    (contiguous, "contiguous", False),
    (to, "to", False),
    (type_as, "type_as", False),
    # elementwise
    (add, "add", True),
    (sub, "sub", True),
    (mul, "mul", True),
    (div, "div", True),
    (pow, "pow", True),
    (neg, "neg", True),
    (maximum, "maximum", True),
    (minimum, "minimum", True),
    (exp, "exp", True),
    (log, "log", True),
    (sqrt, "sqrt", True),
    (abs, "abs", True),
    (tanh, "tanh", True),
    (sigmoid, "sigmoid", True),
    (relu, "relu", True),
    (silu, "silu", False),  # torch.nn.functional.silu; tinymm.nn.functional re-exports it
    (gelu, "gelu", False),
    (clamp, "clamp", True),
    (clamp, "clip", False),
    (clamp, None, "clip"),
    (div, "divide", "divide"),
    (true_divide, "true_divide", "true_divide"),
    (mul, "multiply", "multiply"),
    (sub, "subtract", "subtract"),
    (neg, "negative", "negative"),
    (abs, "absolute", "absolute"),
    # maths
    (sin, "sin", True),
    (cos, "cos", True),
    (tan, "tan", True),
    (asin, "asin", True),
    (acos, "acos", True),
    (atan, "atan", True),
    (asin, "arcsin", "arcsin"),
    (acos, "arccos", "arccos"),
    (atan, "arctan", "arctan"),
    (sinh, "sinh", True),
    (cosh, "cosh", True),
    (asinh, "asinh", True),
    (acosh, "acosh", True),
    (atanh, "atanh", True),
    (asinh, "arcsinh", "arcsinh"),
    (acosh, "arccosh", "arccosh"),
    (atanh, "arctanh", "arctanh"),
    (rsqrt, "rsqrt", True),
    (reciprocal, "reciprocal", True),
    (square, "square", True),
    (exp2, "exp2", True),
    (log2, "log2", True),
    (log10, "log10", True),
    (log1p, "log1p", True),
    (expm1, "expm1", True),
    (erf, "erf", True),
    (floor, "floor", True),
    (ceil, "ceil", True),
    (trunc, "trunc", True),
    (fix, "fix", "fix"),
    (round, "round", True),
    (sign, "sign", True),
    (sgn, "sgn", True),
    (copysign, "copysign", True),
    (logaddexp, "logaddexp", True),
    (lerp, "lerp", True),
    (remainder, "remainder", True),
    (fmod, "fmod", True),
    (floor_divide, "floor_divide", True),
    (bitwise_and, "bitwise_and", True),
    (bitwise_or, "bitwise_or", True),
    (bitwise_xor, "bitwise_xor", True),
    (bitwise_not, "bitwise_not", True),
    (bitwise_left_shift, "bitwise_left_shift", True),
    (bitwise_right_shift, "bitwise_right_shift", True),
    (logical_not, "logical_not", True),
    (logical_and, "logical_and", True),
    (logical_or, "logical_or", True),
    (logical_xor, "logical_xor", True),
    (isnan, "isnan", True),
    (isinf, "isinf", True),
    (isfinite, "isfinite", True),
    (isposinf, "isposinf", True),
    (isneginf, "isneginf", True),
    (isclose, "isclose", True),
    (allclose, "allclose", True),
    (equal, "equal", True),
    (norm, "norm", True),
    # reduce
    (sum, "sum", True),
    (mean, "mean", True),
    (var, "var", True),
    (std, "std", True),
    (max, "max", True),
    (min, "min", True),
    (argmax, "argmax", True),
    (argmin, "argmin", True),
    (logsumexp, "logsumexp", True),
    (softmax, "softmax", True),
    (log_softmax, "log_softmax", True),
    (amax, "amax", True),
    (amin, "amin", True),
    # scan
    (prod, "prod", True),
    (any, "any", True),
    (all, "all", True),
    (count_nonzero, "count_nonzero", True),
    (var_mean, None, True),
    (std_mean, None, True),
    (cumsum, "cumsum", True),
    (cumprod, "cumprod", True),
    (cummax, "cummax", True),
    (cummin, "cummin", True),
    (logcumsumexp, "logcumsumexp", True),
    (sort, "sort", True),
    (argsort, "argsort", True),
    (msort, "msort", True),
    (topk, "topk", True),
    (kthvalue, "kthvalue", True),
    (median, "median", True),
    # linalg
    (matmul, "matmul", True),
    (einsum, None, True),
    # shape
    (reshape, "reshape", True),
    (reshape, "view", False),
    (flatten, "flatten", True),
    (permute, "permute", True),
    (transpose, "transpose", True),
    (unsqueeze, "unsqueeze", True),
    (squeeze, "squeeze", True),
    (expand, "expand", False),
    (expand_as, "expand_as", False),
    (cat, None, True),
    (concat, None, "concat"),
    (stack, None, True),
    (split, "split", True),
    (chunk, "chunk", True),
    (pad, None, False),
    # layout
    (flip, "flip", True),
    (fliplr, "fliplr", True),
    (flipud, "flipud", True),
    (roll, "roll", True),
    (repeat, "repeat", False),
    (tile, "tile", True),
    (repeat_interleave, "repeat_interleave", True),
    (tril, "tril", True),
    (triu, "triu", True),
    (diag, "diag", True),
    (diagonal, "diagonal", True),
    (unfold, "unfold", False),
    (unflatten, "unflatten", True),
    (meshgrid, None, True),
    (movedim, "movedim", True),
    (movedim, "moveaxis", "moveaxis"),
    (swapaxes, "swapaxes", True),
    (swapaxes, "swapdims", "swapdims"),
    (narrow, "narrow", True),
    (t, "t", True),
    (view_as, "view_as", False),
    (reshape_as, "reshape_as", False),
    # index
    (where, None, True),
    (masked_fill, "masked_fill", True),
    (one_hot, None, False),
    (gather, "gather", True),
    (take_along_dim, "take_along_dim", True),
    (scatter, "scatter", True),
    (scatter_add, "scatter_add", True),
    (scatter_reduce, "scatter_reduce", True),
    (index_select, "index_select", True),
    (masked_select, "masked_select", True),
    (nonzero, "nonzero", True),
    (argwhere, "argwhere", True),
    # sampling
    (multinomial, "multinomial", True),
    (bernoulli, "bernoulli", True),
    (poisson, None, True),
    # inplace
    (add_, "add_", False),
    (sub_, "sub_", False),
    (mul_, "mul_", False),
    (div_, "div_", False),
    (clamp_, "clamp_", False),
    (copy_, "copy_", False),
    (fill_, "fill_", False),
    (zero_, "zero_", False),
    (masked_fill_, "masked_fill_", False),
    (scatter_, "scatter_", False),
    (scatter_add_, "scatter_add_", False),
    (pow_, "pow_", False),
    (normal_, "normal_", False),
    (uniform_, "uniform_", False),
    (exponential_, "exponential_", False),
    (bernoulli_, "bernoulli_", False),
    # autograd
    (run_backward, "backward", False),
)


def _swapped(fn):
    def reflected(self, other):
        return fn(other, self)

    reflected.__name__ = reflected.__qualname__ = f"reflected_{fn.__name__}"
    return reflected


# Python's operator protocol, and the methods that are a fixed argument away from a table op.
OPERATORS = {
    "__add__": add,
    "__radd__": _swapped(add),
    "__sub__": sub,
    "__rsub__": _swapped(sub),
    "__mul__": mul,
    "__rmul__": _swapped(mul),
    "__truediv__": true_divide,
    "__rtruediv__": _swapped(true_divide),
    "__floordiv__": floor_divide,
    "__rfloordiv__": _swapped(floor_divide),
    "__mod__": remainder,
    "__rmod__": _swapped(remainder),
    "__pow__": pow,
    "__rpow__": _swapped(pow),
    "__matmul__": matmul,
    "__rmatmul__": _swapped(matmul),
    "__neg__": neg,
    "__abs__": abs,
    "__getitem__": getitem,
    "__setitem__": setitem,
    "__eq__": partialmethod(compare, op="eq"),
    "__ne__": partialmethod(compare, op="ne"),
    "__lt__": partialmethod(compare, op="lt"),
    "__le__": partialmethod(compare, op="le"),
    "__gt__": partialmethod(compare, op="gt"),
    "__ge__": partialmethod(compare, op="ge"),
    "__invert__": bitwise_not,
    "__and__": bitwise_and,
    "__rand__": _swapped(bitwise_and),
    "__or__": bitwise_or,
    "__ror__": _swapped(bitwise_or),
    "__xor__": bitwise_xor,
    "__rxor__": _swapped(bitwise_xor),
    "__lshift__": bitwise_left_shift,
    "__rlshift__": _swapped(bitwise_left_shift),
    "__rshift__": bitwise_right_shift,
    "__rrshift__": _swapped(bitwise_right_shift),
    # x += y writes into x, as in PyTorch (a parameter updated under no_grad stays itself).
    "__iadd__": add_,
    "__isub__": sub_,
    "__imul__": mul_,
    "__itruediv__": div_,
    "T": property(reverse_dims),
    "mT": property(lambda self: transpose(self, -2, -1)),
    "where": lambda self, condition, other: where(condition, self, other),
    "half": partialmethod(to, np.float16),
    # x.new_zeros(...): a new tensor on x's device with x's dtype unless one is given.
    "new_zeros": lambda self, *size, dtype=None, **kw: factories.zeros(*size, dtype=dtype or self.dtype, device=self.device, **kw),
    "new_ones": lambda self, *size, dtype=None, **kw: factories.ones(*size, dtype=dtype or self.dtype, device=self.device, **kw),
    "new_empty": lambda self, *size, dtype=None, **kw: factories.empty(*size, dtype=dtype or self.dtype, device=self.device, **kw),
    "new_full": lambda self, size, fill_value, dtype=None, **kw: factories.full(
        size, fill_value, dtype=dtype or self.dtype, device=self.device, **kw),
    "new_tensor": lambda self, data, dtype=None, **kw: factories.tensor(data, dtype=dtype or self.dtype, device=self.device, **kw),
    "cpu": partialmethod(to, "cpu"),
    "cuda": partialmethod(to, "cuda"),
    "float": partialmethod(to, np.float32),
    "double": partialmethod(to, np.float64),
    "long": partialmethod(to, np.int64),
    "int": partialmethod(to, np.int32),
    "bool": partialmethod(to, np.bool_),
}


def _bind_tensor_methods() -> None:
    for fn, method, _ in OPS:
        if method is not None:
            setattr(Tensor, method, fn)
    for name, fn in OPERATORS.items():
        setattr(Tensor, name, fn)
    # Defining __eq__ removes the inherited hash; tensors hash by identity, as in PyTorch.
    Tensor.__hash__ = object.__hash__


_bind_tensor_methods()
# Exports under another name (``tinymm.arcsin`` is ``asin``) are names of this module too.
globals().update({exported: fn for fn, _, exported in OPS if isinstance(exported, str)})

__all__ = sorted({exported if isinstance(exported, str) else fn.__name__ for fn, _, exported in OPS if exported})
