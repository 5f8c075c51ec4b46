"""The public op functions: argument checking and spelling, then one ``Function.apply``.

Rules that hold for every op here:
- devices never mix: two tensors on different devices raise an error naming both;
- two different floating dtypes never mix silently (float32 + float64 raises: convert one);
  an integer or bool operand meeting a floating one is promoted to that floating dtype;
- ops that only make sense on floats (exp, log, mean, softmax, ...) promote integer input to
  the default float dtype, as PyTorch does for its float-only ops;
- Python scalars are constants in the tensor's dtype.
"""
from __future__ import annotations

import builtins
import collections

import numpy as np

from tinymm.backend import get_default_dtype
from tinymm.ops import elementwise as E
from tinymm.ops import index as I
from tinymm.ops import linalg as L
from tinymm.ops import reduce as R
from tinymm.ops import shape as S
from tinymm.ops._util import is_scalar, keep_flag, normalize_dim, normalize_dims, xp_of
from tinymm.tensor import Tensor

# ----------------------------------------------------------------------------- operands


def as_tensor(x, name: str = "op") -> Tensor:
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor(x)
    except TypeError as e:
        raise TypeError(f"{name}: cannot use a {type(x).__name__} as a tensor ({e})") from None


def _float(x: Tensor) -> Tensor:
    """Integer/bool tensors are promoted to the default float dtype by float-only ops."""
    return x if x.data.dtype.kind == "f" else cast(x, get_default_dtype())


def _check_pair(name: str, a: Tensor, b: Tensor):
    if type(a.data) is not type(b.data):
        raise ValueError(f"{name}: tensors are on different devices: {a.device} and {b.device}")
    da, db = a.data.dtype, b.data.dtype
    if da == db:
        return a, b
    if da.kind == "f" and db.kind == "f":
        raise TypeError(
            f"{name}: dtype mismatch: {da} and {db}; convert one first, e.g. with .to({da}) or .to({db})"
        )
    if da.kind == "f":
        return a, cast(b, da)
    if db.kind == "f":
        return cast(a, db), b
    return a, b  # two non-float dtypes: NumPy's integer promotion, no gradient involved


def _operands(name: str, a, b):
    """Normalise a binary op's operands; Python scalars pass through as constants."""
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb:
        if type(a.data) is type(b.data) and a.data.dtype == b.data.dtype:
            return a, b
        return _check_pair(name, a, b)
    if not ta and not is_scalar(a):
        return _check_pair(name, as_tensor(a, name), b if tb else as_tensor(b, name))
    if not tb and not is_scalar(b):
        return _check_pair(name, a if ta else as_tensor(a, name), as_tensor(b, name))
    if not ta and not tb:
        raise TypeError(f"{name}: at least one operand must be a tensor")
    # One tensor and one Python scalar: a float scalar turns an integer tensor into floats.
    t, s = (a, b) if ta else (b, a)
    if t.data.dtype.kind != "f" and isinstance(s, (float, np.floating)):
        t = cast(t, get_default_dtype())
        return (t, s) if ta else (s, t)
    return a, b


def _binary(name, fn, a, b):
    a, b = _operands(name, a, b)
    return fn.apply(a, b)


def add(a, b):
    return _binary("add", E.Add, a, b)


def sub(a, b):
    return _binary("sub", E.Sub, a, b)


def mul(a, b):
    return _binary("mul", E.Mul, a, b)


def div(a, b):
    a, b = _operands("div", a, b)
    # True division of integers gives floats, as in PyTorch.
    if isinstance(a, Tensor) and a.data.dtype.kind != "f":
        a = cast(a, get_default_dtype())
    if isinstance(b, Tensor) and b.data.dtype.kind != "f":
        b = cast(b, get_default_dtype() if not isinstance(a, Tensor) else a.dtype)
    return E.Div.apply(a, b)


def pow(a, b):
    return _binary("pow", E.Pow, a, b)


def maximum(a, b):
    return _binary("maximum", E.Maximum, a, b)


def minimum(a, b):
    return _binary("minimum", E.Minimum, a, b)


def neg(x):
    return E.Neg.apply(as_tensor(x, "neg"))


def exp(x):
    return E.Exp.apply(_float(as_tensor(x, "exp")))


def log(x):
    return E.Log.apply(_float(as_tensor(x, "log")))


def sqrt(x):
    return E.Sqrt.apply(_float(as_tensor(x, "sqrt")))


def abs(x):
    return E.Abs.apply(as_tensor(x, "abs"))


def tanh(x):
    return E.Tanh.apply(_float(as_tensor(x, "tanh")))


def sigmoid(x):
    return E.Sigmoid.apply(_float(as_tensor(x, "sigmoid")))


def relu(x):
    return E.Relu.apply(as_tensor(x, "relu"))


def silu(x):
    return E.Silu.apply(_float(as_tensor(x, "silu")))


def gelu(x, approximate: str = "none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return E.Gelu.apply(_float(as_tensor(x, "gelu")), approximate)


def clamp(x, min=None, max=None):
    x = as_tensor(x, "clamp")
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    return E.Clamp.apply(x, min, max)


def cast(x: Tensor, dtype) -> Tensor:
    dtype = np.dtype(dtype)
    if x.data.dtype == dtype:
        return x
    if dtype.kind != "f" or x.data.dtype.kind != "f":
        return Tensor._wrap(x.data.astype(dtype))  # no gradient through non-float casts
    return E.Cast.apply(x, dtype)


def to_device(x: Tensor, device: str) -> Tensor:
    return E.ToDevice.apply(x, device)


def clone(x: Tensor) -> Tensor:
    return E.Clone.apply(x)


# ----------------------------------------------------------------------------- comparisons

_CMP = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal"}


def compare(a, b, op: str) -> Tensor:
    """Elementwise comparison; a boolean tensor with no gradient."""
    a, b = _operands(op, a, b)
    ad = a.data if isinstance(a, Tensor) else a
    bd = b.data if isinstance(b, Tensor) else b
    xp = xp_of(ad if isinstance(a, Tensor) else bd)
    return Tensor._wrap(getattr(xp, _CMP[op])(ad, bd))


def logical_not(x) -> Tensor:
    x = as_tensor(x, "logical_not")
    if x.dtype.kind == "b":
        return Tensor._wrap(~x.data)
    return Tensor._wrap(x.data == 0)


def logical(a, b, op: str) -> Tensor:
    a, b = _operands(f"logical_{op}", a, b)
    ad = a.data if isinstance(a, Tensor) else a
    bd = b.data if isinstance(b, Tensor) else b
    return Tensor._wrap((ad & bd) if op == "and" else (ad | bd))


# ----------------------------------------------------------------------------- reductions


def sum(x, dim=None, keepdim=False, **np_style):
    x = as_tensor(x, "sum")
    axes = normalize_dims("sum", x.ndim, dim, np_style.get("axis"))
    keep = keep_flag(keepdim, np_style)
    if x.data.dtype.kind != "f":
        return Tensor._wrap(x.data.sum(axis=axes, keepdims=keep))
    return R.Sum.apply(x, axes, keep)


def mean(x, dim=None, keepdim=False, **np_style):
    x = _float(as_tensor(x, "mean"))
    axes = normalize_dims("mean", x.ndim, dim, np_style.get("axis"))
    return R.Mean.apply(x, axes, keep_flag(keepdim, np_style))


def _correction(unbiased, correction, np_style) -> int:
    ddof = np_style.pop("ddof", None)
    given = [v for v in (unbiased, correction, ddof) if v is not None]
    if len(given) > 1:
        raise TypeError("var/std: give only one of unbiased, correction, ddof")
    if correction is not None:
        return int(correction)
    if ddof is not None:
        return int(ddof)
    if unbiased is not None:
        return 1 if unbiased else 0
    return 1  # PyTorch's default: the unbiased (Bessel-corrected) estimate


def var(x, dim=None, keepdim=False, *, unbiased=None, correction=None, **np_style):
    x = _float(as_tensor(x, "var"))
    c = _correction(unbiased, correction, np_style)
    axes = normalize_dims("var", x.ndim, dim, np_style.get("axis"))
    return R.Var.apply(x, axes, keep_flag(keepdim, np_style), c)


def std(x, dim=None, keepdim=False, *, unbiased=None, correction=None, **np_style):
    return sqrt(var(x, dim, keepdim, unbiased=unbiased, correction=correction, **np_style))


MaxResult = collections.namedtuple("MaxResult", ["values", "indices"])


def _max_min(which, x, dim, keepdim, np_style):
    if isinstance(dim, Tensor):  # torch.max(a, b) is the elementwise maximum
        return (maximum if which == "max" else minimum)(x, dim)
    x = as_tensor(x, which)
    axis = np_style.get("axis")
    keep = keep_flag(keepdim, np_style)
    if x.data.size == 0:
        raise ValueError(f"{which}: the tensor is empty")
    if dim is None:
        # No dim (or NumPy's axis=): values only, as numpy.max returns.
        axes = normalize_dims(which, x.ndim, None, axis)
        if x.data.dtype.kind != "f":
            return Tensor._wrap(getattr(x.data, which)(axis=axes, keepdims=keep))
        return R.MaxMinAll.apply(x, axes, keep, which)
    # PyTorch's dim=: (values, indices) along one axis.
    d = normalize_dim(which, x.ndim, dim)
    if x.data.dtype.kind != "f":
        xp = xp_of(x.data)
        idx = (xp.argmax if which == "max" else xp.argmin)(x.data, axis=d)
        vals = xp.take_along_axis(x.data, xp.expand_dims(idx, d), axis=d)
        if not keep:
            vals = vals.squeeze(d)
        else:
            idx = xp.expand_dims(idx, d)
        return MaxResult(Tensor._wrap(vals), Tensor._wrap(idx.astype(np.int64)))
    values, indices = R.MaxMinDim.apply(x, d, keep, which)
    return MaxResult(values, indices)


def max(x, dim=None, keepdim=False, **np_style):
    """``x.max()`` → the max; ``x.max(dim)`` → (values, indices); ``x.max(axis=...)`` → values
    (NumPy's spelling gets NumPy's return); ``max(a, b)`` with a tensor b → elementwise."""
    return _max_min("max", x, dim, keepdim, np_style)


def min(x, dim=None, keepdim=False, **np_style):
    return _max_min("min", x, dim, keepdim, np_style)


def _arg(which, x, dim, keepdim, np_style):
    x = as_tensor(x, which)
    axis = np_style.get("axis")
    keep = keep_flag(keepdim, np_style)
    d = dim if dim is not None else axis
    xp = xp_of(x.data)
    f = xp.argmax if which == "argmax" else xp.argmin
    if d is None:
        out = f(x.data.reshape(-1))
        return Tensor._wrap(xp.asarray(out, dtype=np.int64).reshape((1,) * x.ndim if keep else ()))
    d = normalize_dim(which, x.ndim, d)
    return Tensor._wrap(f(x.data, axis=d, keepdims=keep).astype(np.int64))


def argmax(x, dim=None, keepdim=False, **np_style):
    return _arg("argmax", x, dim, keepdim, np_style)


def argmin(x, dim=None, keepdim=False, **np_style):
    return _arg("argmin", x, dim, keepdim, np_style)


def logsumexp(x, dim=None, keepdim=False, **np_style):
    x = _float(as_tensor(x, "logsumexp"))
    axes = normalize_dims("logsumexp", x.ndim, dim, np_style.get("axis"))
    return R.LogSumExp.apply(x, axes, keep_flag(keepdim, np_style))


def softmax(x, dim=-1):
    x = _float(as_tensor(x, "softmax"))
    if x.ndim == 0:
        raise ValueError("softmax: needs at least one dimension")
    return R.Softmax.apply(x, normalize_dim("softmax", x.ndim, dim))


def log_softmax(x, dim=-1):
    x = _float(as_tensor(x, "log_softmax"))
    if x.ndim == 0:
        raise ValueError("log_softmax: needs at least one dimension")
    return R.LogSoftmax.apply(x, normalize_dim("log_softmax", x.ndim, dim))


# ----------------------------------------------------------------------------- linalg


def matmul(a, b):
    a, b = _operands("matmul", as_tensor(a, "matmul"), as_tensor(b, "matmul"))
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not line up ({ka} != {kb})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
    return L.MatMul.apply(a, b)


# ----------------------------------------------------------------------------- shapes


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def reshape(x, *shape):
    x = as_tensor(x, "reshape")
    shape = _shape_arg(shape)
    known = int(np.prod([s for s in shape if s != -1])) if shape else 1
    if shape.count(-1) > 1 or (
        -1 not in shape and known != x.data.size or -1 in shape and (known == 0 or x.data.size % known)
    ):
        raise ValueError(f"reshape: cannot view a tensor of shape {x.shape} ({x.data.size} elements) as {shape}")
    return S.Reshape.apply(x, shape)


def flatten(x, start_dim=0, end_dim=-1):
    x = as_tensor(x, "flatten")
    if x.ndim == 0:
        return reshape(x, 1)
    s = normalize_dim("flatten", x.ndim, start_dim)
    e = normalize_dim("flatten", x.ndim, end_dim)
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, x.shape[:s] + (-1 if x.data.size else 0,) + x.shape[e + 1 :])


def permute(x, *dims):
    x = as_tensor(x, "permute")
    dims = _shape_arg(dims)
    norm = tuple(normalize_dim("permute", x.ndim, d) for d in dims)
    if sorted(norm) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dims of a tensor of shape {x.shape}")
    return S.Permute.apply(x, norm)


def transpose(x, dim0, dim1):
    x = as_tensor(x, "transpose")
    d0, d1 = normalize_dim("transpose", x.ndim, dim0), normalize_dim("transpose", x.ndim, dim1)
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return S.Permute.apply(x, tuple(dims))


def unsqueeze(x, dim):
    x = as_tensor(x, "unsqueeze")
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor with {x.ndim} dimensions")
    d = dim % (x.ndim + 1)
    return S.Reshape.apply(x, x.shape[:d] + (1,) + x.shape[d:])


def squeeze(x, dim=None):
    x = as_tensor(x, "squeeze")
    if dim is None:
        return S.Reshape.apply(x, tuple(s for s in x.shape if s != 1))
    dims = normalize_dims("squeeze", x.ndim, dim)
    return S.Reshape.apply(x, tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1)))


def expand(x, *shape):
    x = as_tensor(x, "expand")
    shape = _shape_arg(shape)
    if len(shape) < x.ndim:
        raise ValueError(f"expand: target {shape} has fewer dims than the tensor's shape {x.shape}")
    lead = len(shape) - x.ndim
    full = []
    for i, s in enumerate(shape):
        if s == -1:
            if i < lead:
                raise ValueError(f"expand: -1 is not allowed for the new leading dim {i} in {shape}")
            s = x.shape[i - lead]
        elif i >= lead and x.shape[i - lead] not in (1, s):
            raise ValueError(f"expand: cannot expand shape {x.shape} to {shape} (dim {i}: {x.shape[i - lead]} vs {s})")
        full.append(s)
    return S.Expand.apply(x, tuple(full))


def _same_kind(name, tensors):
    tensors = [as_tensor(t, name) for t in tensors]
    if not tensors:
        raise ValueError(f"{name}: needs at least one tensor")
    first = tensors[0]
    for i, t in enumerate(tensors[1:], 1):
        if type(t.data) is not type(first.data):
            raise ValueError(f"{name}: tensor {i} is on {t.device}, tensor 0 on {first.device}")
        if t.dtype != first.dtype:
            raise TypeError(f"{name}: tensor {i} is {t.dtype}, tensor 0 is {first.dtype}")
        if t.ndim != first.ndim:
            raise ValueError(f"{name}: tensor {i} has {t.ndim} dims, tensor 0 has {first.ndim}")
    return tensors


def cat(tensors, dim=0, **np_style):
    tensors = _same_kind("cat", list(tensors))
    d = normalize_dim("cat", tensors[0].ndim, np_style.pop("axis", dim))
    for i, t in enumerate(tensors[1:], 1):
        a, b = list(t.shape), list(tensors[0].shape)
        a[d] = b[d] = 0
        if a != b:
            raise ValueError(f"cat: tensor {i} has shape {t.shape}, incompatible with {tensors[0].shape} outside dim {d}")
    return S.Concat.apply(*tensors, axis=d)


concat = cat


def stack(tensors, dim=0, **np_style):
    tensors = _same_kind("stack", list(tensors))
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, tensor 0 has {tensors[0].shape}")
    dim = np_style.pop("axis", dim)
    if not -tensors[0].ndim - 1 <= dim <= tensors[0].ndim:
        raise IndexError(f"stack: dim {dim} is out of range")
    return S.Stack.apply(*tensors, axis=dim % (tensors[0].ndim + 1))


def split(x, split_size_or_sections, dim=0):
    """PyTorch's split: an int gives pieces of that size (the last may be smaller); a list
    gives exactly those sizes."""
    x = as_tensor(x, "split")
    d = normalize_dim("split", x.ndim, dim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sections {sizes} sum to {builtins.sum(sizes)}, but dim {d} has size {n}")
    if len(sizes) == 1:
        return (x,)
    return S.Split.apply(x, sizes, d)


def chunk(x, chunks: int, dim=0):
    x = as_tensor(x, "chunk")
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[normalize_dim("chunk", x.ndim, dim)]
    return split(x, builtins.max(1, -(-n // chunks)), dim)


def pad(x, pad, mode: str = "constant", value: float = 0.0):
    """PyTorch's ``F.pad``: ``pad`` lists (before, after) pairs starting from the LAST dim."""
    x = as_tensor(x, "pad")
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported (only 'constant')")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: needs an even number of values, at most 2 per dim; got {len(pad)} for {x.ndim} dims")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        b, a = int(pad[2 * i]), int(pad[2 * i + 1])
        if b < 0 or a < 0:
            raise ValueError(f"pad: negative padding {pad} is not supported")
        widths[x.ndim - 1 - i] = (b, a)
    return S.Pad.apply(x, tuple(widths), value)


# ----------------------------------------------------------------------------- indexing


def array_index(index):
    """Replace Tensors inside an index by their arrays (lists become integer arrays)."""
    if isinstance(index, tuple):
        return tuple(array_index(i) for i in index)
    if isinstance(index, Tensor):
        if index.dtype.kind not in "iub":
            raise IndexError(f"index tensors must be integer or bool, got {index.dtype}")
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def getitem(x, index):
    x = as_tensor(x, "getitem")
    index = array_index(index)
    items = index if isinstance(index, tuple) else (index,)
    if type(x.data) is np.ndarray:
        if any(hasattr(i, "__cuda_array_interface__") for i in items):
            raise ValueError("getitem: a CUDA index cannot index a tensor on cpu")
    else:  # host index arrays are copied to the GPU tensor's device
        xp = xp_of(x.data)
        moved = tuple(xp.asarray(i) if isinstance(i, np.ndarray) else i for i in items)
        index = moved if isinstance(index, tuple) else moved[0]
    if x.data.dtype.kind != "f":
        return Tensor._wrap(x.data[index])
    return I.GetItem.apply(x, index)


def where(condition, a, b):
    cond = as_tensor(condition, "where")
    if cond.dtype.kind != "b":
        raise TypeError(f"where: condition must be bool, got {cond.dtype}")
    a, b = _operands("where", a, b)
    for t in (a, b):
        if isinstance(t, Tensor) and type(t.data) is not type(cond.data):
            raise ValueError(f"where: condition is on {cond.device}, a value on {t.device}")
    return I.Where.apply(cond, a, b)


def masked_fill(x, mask, value):
    x = as_tensor(x, "masked_fill")
    mask = as_tensor(mask, "masked_fill")
    if mask.dtype.kind != "b":
        raise TypeError(f"masked_fill: mask must be bool, got {mask.dtype}")
    if type(mask.data) is not type(x.data):
        raise ValueError(f"masked_fill: mask is on {mask.device}, the tensor on {x.device}")
    try:
        ok = np.broadcast_shapes(mask.shape, x.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast to the tensor's shape {x.shape}")
    if isinstance(value, Tensor):
        value = value.item()
    if x.data.dtype.kind != "f":
        return Tensor._wrap(xp_of(x.data).where(mask.data, value, x.data).astype(x.dtype))
    return I.MaskedFill.apply(x, mask, value)


def one_hot(x, num_classes: int = -1) -> Tensor:
    """Integer class indices (...,) → int64 one-hot (..., num_classes), as ``F.one_hot``."""
    x = as_tensor(x, "one_hot")
    if x.dtype.kind not in "iu":
        raise TypeError(f"one_hot: needs an integer tensor, got {x.dtype}")
    xp = xp_of(x.data)
    if num_classes == -1:
        num_classes = int(x.data.max()) + 1 if x.data.size else 0
    if x.data.size and (int(x.data.min()) < 0 or int(x.data.max()) >= num_classes):
        raise ValueError(
            f"one_hot: class values must be in [0, {num_classes}), got min {int(x.data.min())}, max {int(x.data.max())}"
        )
    return Tensor._wrap((x.data[..., None] == xp.arange(num_classes)).astype(np.int64))
