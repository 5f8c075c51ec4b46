"""Floor 3: every tensor op, each defined in one place, and the table that publishes them.

Where an op lives
-----------------
An op is a ``Function`` subclass (``tinymm.autograd``: ``forward(ctx, ...)`` on arrays,
``backward(ctx, grad)``) and, right below it in the same module, the public function that
checks the arguments once and calls ``Function.apply``. The module is named for the family:

- ``convert``     operand rules (``as_tensor``, ``operands``), ``cast``, ``to``, ``clone``, ``contiguous``
- ``elementwise`` arithmetic, unary maths, activations, comparisons
- ``reduce``      sum, mean, var/std, max/min, logsumexp, softmax/log-softmax
- ``linalg``      matmul
- ``shape``       reshape, permute, expand, cat/stack/split, pad
- ``index``       getitem, where, masked_fill, one_hot
- ``inplace``     ``__setitem__`` and the ``*_`` methods, which bump the version counters

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

from tinymm.autograd import run_backward
from tinymm.ops.convert import as_tensor, cast, check_pair, clone, contiguous, operands, to, to_device, to_float, type_as
from tinymm.ops.elementwise import (
    abs,
    add,
    clamp,
    compare,
    div,
    exp,
    gelu,
    log,
    logical,
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
from tinymm.ops.index import array_index, getitem, masked_fill, one_hot, scatter_add, where
from tinymm.ops.inplace import add_, clamp_, copy_, div_, fill_, mul_, setitem, sub_, zero_
from tinymm.ops.linalg import matmul
from tinymm.ops.reduce import (
    MaxResult,
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
    # linalg
    (matmul, "matmul", True),
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
    # index
    (where, None, True),
    (masked_fill, "masked_fill", True),
    (one_hot, None, False),
    # inplace
    (add_, "add_", False),
    (sub_, "sub_", False),
    (mul_, "mul_", False),
    (div_, "div_", False),
    (clamp_, "clamp_", False),
    (copy_, "copy_", False),
    (fill_, "fill_", False),
    (zero_, "zero_", False),
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
    "__truediv__": div,
    "__rtruediv__": _swapped(div),
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
    "__invert__": logical_not,
    "__and__": partialmethod(logical, op="and"),
    "__or__": partialmethod(logical, op="or"),
    "T": property(reverse_dims),
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

__all__ = sorted({exported if isinstance(exported, str) else fn.__name__ for fn, _, exported in OPS if exported})
