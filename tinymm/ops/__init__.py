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
- ``linalg``      matmul, einsum, mm/bmm/dot/mv/outer/addmm/baddbmm, kron, tensordot, cross, trace, cdist
- ``special``     erfinv, lgamma, digamma, logit
- ``stats``       nansum/nanmean, quantile, mode, unique, bincount, histc
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
import numbers
from functools import partialmethod

import numpy as np

from tinymm import factories
from tinymm.autograd import tensor_backward
from tinymm.ops._util import DTypeError, ShapeError
from tinymm.ops.convert import (
    as_tensor,
    as_tensor_shared,
    cast,
    check_pair,
    clone,
    contiguous,
    operands,
    tensor_type,
    to,
    to_device,
    to_float,
    type_as,
)
from tinymm.ops.elementwise import (
    abs,
    add,
    addcdiv,
    addcmul,
    clamp,
    compare,
    eq,
    exp,
    ge,
    gelu,
    gt,
    le,
    log,
    logical_not,
    lt,
    maximum,
    minimum,
    mul,
    ne,
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
    bucketize,
    gather,
    getitem,
    index_add,
    index_select,
    masked_fill,
    nonzero,
    one_hot,
    scatter,
    scatter_add,
    scatter_reduce,
    searchsorted,
    take,
    take_along_dim,
    where,
)
from tinymm.ops.inplace import (
    add_,
    bernoulli_,
    clamp_,
    copy_,
    div_,
    exponential_,
    fill_,
    index_add_,
    inplace_of,
    masked_fill_,
    mul_,
    normal_,
    pow_,
    scatter_,
    scatter_add_,
    setitem,
    sub_,
    uniform_,
    zero_,
)
from tinymm.ops.layout import (
    block_diag,
    cartesian_prod,
    combinations,
    diag,
    diag_embed,
    diagonal,
    diff,
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
    rot90,
    swapaxes,
    t,
    tile,
    tril,
    tril_indices,
    triu,
    triu_indices,
    unflatten,
    unfold,
    view_as,
)
from tinymm.ops.linalg import (
    addmm,
    addmv,
    baddbmm,
    bmm,
    cdist,
    cross,
    dot,
    einsum,
    kron,
    matmul,
    mm,
    mv,
    outer,
    tensordot,
    trace,
)
from tinymm.ops.maths import (
    acos,
    acosh,
    allclose,
    asin,
    asinh,
    atan,
    atan2,
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
    frac,
    hypot,
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
    nan_to_num,
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
    atleast_1d,
    atleast_2d,
    atleast_3d,
    broadcast_tensors,
    broadcast_to,
    cat,
    chunk,
    column_stack,
    concat,
    concatenate,
    dstack,
    expand,
    expand_as,
    flatten,
    hstack,
    pad,
    permute,
    reshape,
    reverse_dims,
    split,
    squeeze,
    stack,
    sum_to_size,
    transpose,
    unbind,
    unsqueeze,
    vstack,
    view,
)
from tinymm.ops.special import digamma, erfinv, lgamma, logit
from tinymm.ops.stats import (
    bincount,
    histc,
    mode,
    nanmean,
    nanquantile,
    nansum,
    quantile,
    unique,
    unique_consecutive,
)
# opsc: linear algebra, more special functions and number-representation ops
from tinymm.ops.decompositions import cholesky_legacy, lu_legacy, lu_unpack, qr_legacy, svd_legacy
from tinymm.ops.decompositions import geqrf  # lead
from tinymm.ops.matrix_solve import (
    cholesky_inverse,
    cholesky_solve,
    det,
    inverse,
    logdet,
    lu_solve_legacy,
    matrix_exp,
    matrix_power,
    pinverse,
    slogdet_legacy,
    triangular_solve,
)
from tinymm.ops.numeric_fns import (
    deg2rad,
    float_power,
    float_power_,
    fmax,
    fmin,
    frexp,
    gcd,
    heaviside,
    lcm,
    ldexp,
    logaddexp2,
    nextafter,
    rad2deg,
    signbit,
)
from tinymm.ops.products import addbmm, addr, chain_matmul, corrcoef, cov, dist, inner, renorm, vander
from tinymm.ops.special_fns import (
    erfc,
    i0,
    igamma,
    igammac,
    mvlgamma,
    polygamma,
    polygamma_method,
    sinc,
    xlogy,
)
from tinymm.tensor import Tensor

from tinymm.ops.inplace_more import INPLACE_OPS  # opse  # noqa: E402
from tinymm.ops.tensor_more import TENSOR_MORE_OPS, TENSOR_MORE_PROPERTIES  # opse  # noqa: E402
from tinymm.ops.indexing_more import INDEXING_OPS  # opse  # noqa: E402
from tinymm.ops.functions_more import FUNCTIONS_MORE_OPS  # opse  # noqa: E402
from tinymm.ops.isin_normal import ISIN_NORMAL_OPS  # probe  # noqa: E402
# shims: torch._foreach_*, torch.result_type/promote_types, Tensor.is_sparse & co.
from tinymm.ops.foreach import FOREACH_OPS  # noqa: E402
from tinymm.ops.promotion import PROMOTION_OPS  # noqa: E402
from tinymm.ops.tensor_flags import TENSOR_FLAG_PROPERTIES  # noqa: E402
# cplx: complex tensors (real/imag, conj, angle, polar, complex, view_as_real/complex)
from tinymm.ops.complex_ops import COMPLEX_OPS, COMPLEX_PROPERTIES  # noqa: E402
from tinymm.ops.tensor_more import positive  # hostile: Tensor.__pos__  # noqa: E402
from tinymm.ops import complex_grad_marks  # noqa: E402,F401
from tinymm.ops.spectral import SPECTRAL_OPS  # noqa: E402  (stft, istft)
# modapi: empty_strided, scalar_tensor, frombuffer, unravel_index, diagflat, vdot, rsub, binomial,
# gradient, histogramdd, is_inference
from tinymm.ops.creation_more import CREATION_MORE_OPS  # modapi  # noqa: E402
from tinymm.ops.numeric_more import NUMERIC_MORE_OPS  # modapi  # noqa: E402
# lead: storage and memory methods (untyped_storage, storage, to_dense, is_pinned, nonzero_static, ...)
from tinymm.ops.storage_api import STORAGE_OPS, STORAGE_PROPERTIES  # noqa: E402

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
    (view, "view", False),
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
    (tensor_backward, "backward", False),
    # PyTorch surface, second pass: conversions and comparisons
    # tinymm.as_tensor is this function too (set in tinymm/__init__: here ``as_tensor`` names
    # the operand helper every op module calls as ``ops.as_tensor(x, name)``).
    (as_tensor_shared, None, "asarray"),
    (tensor_type, "type", False),
    (eq, "eq", True),
    (ne, "ne", True),
    (lt, "lt", True),
    (le, "le", True),
    (gt, "gt", True),
    (ge, "ge", True),
    (ne, "not_equal", "not_equal"),
    (lt, "less", "less"),
    (le, "less_equal", "less_equal"),
    (gt, "greater", "greater"),
    (ge, "greater_equal", "greater_equal"),
    (addcmul, "addcmul", True),
    (addcdiv, "addcdiv", True),
    # products (linalg)
    (mm, "mm", True),
    (bmm, "bmm", True),
    (dot, "dot", True),
    (mv, "mv", True),
    (outer, "outer", True),
    (outer, "ger", "ger"),
    (addmm, "addmm", True),
    (addmv, "addmv", True),
    (baddbmm, "baddbmm", True),
    (kron, "kron", True),
    (tensordot, None, True),
    (cross, "cross", True),
    (trace, "trace", True),
    (cdist, None, True),
    # maths and special functions
    (atan2, "atan2", True),
    (atan2, "arctan2", "arctan2"),
    (hypot, "hypot", True),
    (frac, "frac", True),
    (nan_to_num, "nan_to_num", True),
    (erfinv, "erfinv", True),
    (lgamma, "lgamma", True),
    (digamma, "digamma", True),
    (logit, "logit", True),
    # statistics
    (nansum, "nansum", True),
    (nanmean, "nanmean", True),
    (quantile, "quantile", True),
    (nanquantile, "nanquantile", True),
    (mode, "mode", True),
    (unique, "unique", True),
    (unique_consecutive, "unique_consecutive", True),
    (bincount, "bincount", True),
    (histc, "histc", True),
    # index
    (index_add, "index_add", True),
    (index_add_, "index_add_", False),
    (take, "take", True),
    (searchsorted, None, True),
    (bucketize, None, True),
    # shape and layout
    (unbind, "unbind", True),
    (broadcast_to, "broadcast_to", True),
    (broadcast_tensors, None, True),
    (sum_to_size, "sum_to_size", False),
    (atleast_1d, None, True),
    (atleast_2d, None, True),
    (atleast_3d, None, True),
    (hstack, None, True),
    (vstack, None, True),
    (vstack, None, "row_stack"),
    (dstack, None, True),
    (column_stack, None, True),
    (concatenate, None, "concatenate"),
    (rot90, "rot90", True),
    (diag_embed, "diag_embed", True),
    (block_diag, None, True),
    (tril_indices, None, True),
    (triu_indices, None, True),
    (cartesian_prod, None, True),
    (combinations, None, True),
    (diff, "diff", True),
    # in-place variants of the second-pass ops (x.atan2_(y), x.lt_(0), ...)
    *((inplace_of(f"{fn.__name__}_", fn), f"{fn.__name__}_", False) for fn in (
        eq, ne, lt, le, gt, ge, addcmul, addcdiv, addmm, addmv, baddbmm,
        atan2, hypot, frac, nan_to_num, erfinv, lgamma, digamma, logit)),
    # opsc: linear algebra (torch.* spellings; torch.linalg's are in tinymm.linalg)
    (det, "det", True),
    (logdet, "logdet", True),
    (slogdet_legacy, "slogdet", "slogdet"),
    (inverse, "inverse", True),
    (pinverse, "pinverse", True),
    (cholesky_legacy, "cholesky", "cholesky"),
    (cholesky_solve, "cholesky_solve", True),
    (cholesky_inverse, "cholesky_inverse", True),
    (qr_legacy, "qr", "qr"),
    (svd_legacy, "svd", "svd"),
    (lu_legacy, "lu", "lu"),
    (lu_solve_legacy, "lu_solve", "lu_solve"),
    (lu_unpack, None, True),
    (triangular_solve, "triangular_solve", True),
    (matrix_power, "matrix_power", True),
    (matrix_exp, "matrix_exp", True),
    (inner, "inner", True),
    (dist, "dist", True),
    (renorm, "renorm", True),
    (addr, "addr", True),
    (addbmm, "addbmm", True),
    (cov, "cov", True),
    (corrcoef, "corrcoef", True),
    (chain_matmul, None, True),
    (vander, None, True),
    # opsc: special functions and number-representation ops
    (erfc, "erfc", True),
    (i0, "i0", True),
    (sinc, "sinc", True),
    (xlogy, "xlogy", True),
    (polygamma, None, True),
    (polygamma_method, "polygamma", False),
    (mvlgamma, "mvlgamma", True),
    (igamma, "igamma", True),
    (igammac, "igammac", True),
    (deg2rad, "deg2rad", True),
    (rad2deg, "rad2deg", True),
    (heaviside, "heaviside", True),
    (float_power, "float_power", True),
    (float_power_, "float_power_", False),
    (nextafter, "nextafter", True),
    (ldexp, "ldexp", True),
    (frexp, "frexp", True),
    (signbit, "signbit", True),
    (gcd, "gcd", True),
    (lcm, "lcm", True),
    (fmax, "fmax", True),
    (fmin, "fmin", True),
    (logaddexp2, "logaddexp2", True),
    *((inplace_of(f"{fn.__name__}_", fn), f"{fn.__name__}_", False) for fn in (
        erfc, i0, sinc, xlogy, mvlgamma, igamma, igammac, deg2rad, rad2deg, heaviside, copysign, nextafter,
        ldexp, gcd, lcm, renorm, addr, addbmm)),
    (inplace_of("polygamma_", polygamma_method), "polygamma_", False),
    # opse: the remaining in-place methods, indexing/scatter family and misc Tensor methods
    *INPLACE_OPS,
    *INDEXING_OPS,
    *TENSOR_MORE_OPS,
    *FUNCTIONS_MORE_OPS,
    *ISIN_NORMAL_OPS,  # probe: torch.isin, torch.normal
    *FOREACH_OPS,  # shims
    *PROMOTION_OPS,  # shims
    *COMPLEX_OPS,  # cplx
    *SPECTRAL_OPS,  # cplx
    *CREATION_MORE_OPS,  # modapi
    *NUMERIC_MORE_OPS,  # modapi
    *STORAGE_OPS,  # lead
    (geqrf, "geqrf", "geqrf"),  # lead
)


def _foreign(other) -> bool:
    """Whether a binary operator should hand ``other`` back to Python (NotImplemented), so that
    its own reflected method runs, as PyTorch does for what is not a tensor, number or array."""
    return not isinstance(other, (Tensor, numbers.Number, np.ndarray, np.generic)) and not hasattr(
        other, "__cuda_array_interface__")


def _operator(fn):
    def forward(self, other):
        if type(other) is not float and _foreign(other):
            return NotImplemented
        return fn(self, other)

    forward.__name__ = forward.__qualname__ = fn.__name__
    return forward


def _swapped(fn):
    def reflected(self, other):
        if type(other) is not float and _foreign(other):
            return NotImplemented
        return fn(other, self)

    reflected.__name__ = reflected.__qualname__ = f"reflected_{fn.__name__}"
    return reflected


# Python's operator protocol, and the methods that are a fixed argument away from a table op.
OPERATORS = {
    "__add__": _operator(add),
    "__radd__": _swapped(add),
    "__sub__": _operator(sub),
    "__rsub__": _swapped(sub),
    "__mul__": _operator(mul),
    "__rmul__": _swapped(mul),
    "__truediv__": _operator(true_divide),
    "__rtruediv__": _swapped(true_divide),
    "__floordiv__": _operator(floor_divide),
    "__rfloordiv__": _swapped(floor_divide),
    "__mod__": _operator(remainder),
    "__rmod__": _swapped(remainder),
    "__pow__": _operator(pow),
    "__rpow__": _swapped(pow),
    "__matmul__": _operator(matmul),
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
    "__and__": _operator(bitwise_and),
    "__rand__": _swapped(bitwise_and),
    "__or__": _operator(bitwise_or),
    "__ror__": _swapped(bitwise_or),
    "__xor__": _operator(bitwise_xor),
    "__rxor__": _swapped(bitwise_xor),
    "__lshift__": _operator(bitwise_left_shift),
    "__rlshift__": _swapped(bitwise_left_shift),
    "__rshift__": _operator(bitwise_right_shift),
    "__rrshift__": _swapped(bitwise_right_shift),
    # x += y writes into x, as in PyTorch (a parameter updated under no_grad stays itself).
    "__iadd__": add_,
    "__isub__": sub_,
    "__imul__": mul_,
    "__itruediv__": div_,
    "T": property(reverse_dims),
    "mT": property(lambda self: transpose(self, -2, -1)),
    # Conjugate transposes: real tensors only here, so plain transposes (H needs 2-D, as PyTorch).
    "H": property(t),
    "mH": property(lambda self: transpose(self, -2, -1)),
    "where": lambda self, condition, other: where(condition, self, other),
    "half": partialmethod(to, np.float16),
    # x.new_zeros(...): a new tensor on x's device with x's dtype unless one is given.
    # (an explicit device= wins: FlexAttention's noop_mask calls b.new_ones(size=(), device=b.device))
    "new_zeros": lambda self, *size, dtype=None, device=None, **kw: factories.zeros(
        *size, dtype=dtype or self.dtype, device=device or self.device, **kw),
    "new_ones": lambda self, *size, dtype=None, device=None, **kw: factories.ones(
        *size, dtype=dtype or self.dtype, device=device or self.device, **kw),
    "new_empty": lambda self, *size, dtype=None, device=None, **kw: factories.empty(
        *size, dtype=dtype or self.dtype, device=device or self.device, **kw),
    "new_full": lambda self, size, fill_value, dtype=None, device=None, **kw: factories.full(
        size, fill_value, dtype=dtype or self.dtype, device=device or self.device, **kw),
    "new_tensor": lambda self, data, dtype=None, device=None, **kw: factories.tensor(
        data, dtype=dtype or self.dtype, device=device or self.device, **kw),
    "cpu": partialmethod(to, "cpu"),
    "cuda": partialmethod(to, "cuda"),
    "float": partialmethod(to, np.float32),
    "double": partialmethod(to, np.float64),
    "long": partialmethod(to, np.int64),
    "int": partialmethod(to, np.int32),
    "bool": partialmethod(to, np.bool_),
    "__pos__": positive,  # hostile
}


def _bind_tensor_methods() -> None:
    for fn, method, _ in OPS:
        if method is not None:
            setattr(Tensor, method, fn)
    for name, fn in OPERATORS.items():
        setattr(Tensor, name, fn)
    for name, prop in TENSOR_MORE_PROPERTIES.items():  # opse
        setattr(Tensor, name, prop)
    for name, prop in STORAGE_PROPERTIES.items():  # lead
        setattr(Tensor, name, prop)
    # Defining __eq__ removes the inherited hash; tensors hash by identity, as in PyTorch.
    Tensor.__hash__ = object.__hash__


_bind_tensor_methods()
for _name, _prop in TENSOR_FLAG_PROPERTIES.items():  # shims: is_sparse, is_quantized, is_meta, ... (False)
    setattr(Tensor, _name, _prop)
# cplx: z.real / z.imag (readable and writable), and H / mH conjugating complex tensors
for _name, _prop in COMPLEX_PROPERTIES.items():
    setattr(Tensor, _name, _prop)
# Exports under another name (``tinymm.arcsin`` is ``asin``) are names of this module too.
globals().update({exported: fn for fn, _, exported in OPS if isinstance(exported, str)})

__all__ = sorted({exported if isinstance(exported, str) else fn.__name__ for fn, _, exported in OPS if exported})
