"""Matrix product with NumPy's rules: batched, broadcast batch dims, and the 1-D cases.

For C = A·B: dA = dC·Bᵀ and dB = Aᵀ·dC, summed over any batch dims that broadcasting
stretched. A 1-D operand is treated as a row (left) or column (right) vector whose extra
axis is removed from the result, exactly as ``numpy.matmul`` does.

Below matmul: ``einsum``; PyTorch's fixed-rank products (mm, bmm, dot, mv, outer, addmm,
baddbmm, addmv), ``kron``, ``tensordot``, ``cross`` and ``trace``, each built on matmul or
elementwise ops so their gradients come with them; and ``cdist``, pairwise p-norm distances,
a Function of its own (its gradient at distance 0 is 0, which a composition would give as NaN).
"""
from __future__ import annotations

import math

import numpy as np

from tinymm.autograd import Function
from tinymm.autograd_graph import operand, pair, sum_to
from tinymm.ops._util import DTypeError, DTypeNotImplementedError, ValueRangeError, broadcasts_to, ShapeError, conj, normalize_dim, unbroadcast, xp_of
from tinymm.ops.convert import as_tensor, check_pair, operands
from tinymm.ops.index import where
from tinymm.tensor import Tensor


class MatMul(Function):
    """Saves only what the wanted gradients need: b for dA, a for dB (as PyTorch); complex:
    dA = G·B^H, dB = A^H·G."""

    complex_grad = True  # cplx

    @staticmethod
    def forward(ctx, a, b):
        na, nb = ctx.needs_input_grad
        ctx.shapes = (a.shape, b.shape)
        ctx.save_for_backward(a if nb else None, b if na else None)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        # Restore the axes the 1-D rules removed from the output.
        if len(sa) == 1:
            g = g[..., None, :] if len(sb) > 1 else g[..., None]
        if len(sb) == 1:
            g = g[..., None]
        ga = gb = None
        if na:
            b2 = b[:, None] if b.ndim == 1 else b  # (k,) -> (k, 1)
            ga = unbroadcast(g @ conj(b2.swapaxes(-1, -2)), (1,) + sa if len(sa) == 1 else sa).reshape(sa)
        if nb:
            a2 = a[None, :] if a.ndim == 1 else a  # (k,) -> (1, k)
            gb = unbroadcast(conj(a2.swapaxes(-1, -2)) @ g, sb + (1,) if len(sb) == 1 else sb).reshape(sb)
        return ga, gb

    @staticmethod
    def backward_graph(ctx, g):
        A, B = pair(ctx)
        (sa, sb), (na, nb) = ctx.shapes, ctx.needs_input_grad
        if len(sa) == 1:
            g = g.unsqueeze(-2) if len(sb) > 1 else g.unsqueeze(-1)
        if len(sb) == 1:
            g = g.unsqueeze(-1)
        ga = gb = None
        if na:
            b2 = B.unsqueeze(-1) if B.ndim == 1 else B
            ga = sum_to(g @ b2.transpose(-1, -2), (1,) + sa if len(sa) == 1 else sa).reshape(sa)
        if nb:
            a2 = A.unsqueeze(0) if A.ndim == 1 else A
            gb = sum_to(a2.transpose(-1, -2) @ g, sb + (1,) if len(sb) == 1 else sb).reshape(sb)
        return ga, gb


def matmul(a, b):
    if getattr(a, "is_sparse", False) is True or getattr(b, "is_sparse", False) is True:
        return a.mm(b) if getattr(a, "is_sparse", False) is True else b.__rmatmul__(a)  # tinymm.sparse
    a, b = as_tensor(a, "matmul"), as_tensor(b, "matmul")
    if a.dtype != b.dtype:  # PyTorch does not promote here: float32 @ float64 is a mistake
        raise DTypeError(f"matmul: expected both operands to have the same dtype, but got {a.dtype} and {b.dtype}")
    a, b = operands("matmul", a, b, broadcast=False)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both operands need at least 1 dimension, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.ndim == 1 and b.ndim == 1:
        _refuse_bool("matmul", "dot", a)
    elif a.ndim <= 2 and b.ndim <= 2:
        _refuse_bool("matmul", "addmv_impl_cpu" if 1 in (a.ndim, b.ndim) else "addmm_impl_cpu_", a)
    else:
        _refuse_bool("matmul", "bmm", a)
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not line up ({ka} != {kb})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ShapeError(f"matmul: batch dimensions of {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None
    return MatMul.apply(a, b)


# ----------------------------------------------------------------------------- einsum


def _parse_einsum(equation: str, ndims):
    """Explicit subscripts (one string per operand, and the output) with '...' expanded to
    letters not used elsewhere, and the implicit output (letters seen once, sorted) filled in."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(ndims):
        raise ValueRangeError(f"einsum: the equation names {len(ins)} operands, {len(ndims)} were given")
    used = set(c for c in eq if c.isalpha())
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used]
    n_ell = 0
    for s, nd in zip(ins, ndims):
        if "..." in s:
            n_ell = max(n_ell, nd - (len(s) - 3))
    ell = "".join(spare[:n_ell])
    out_ins = []
    for s, nd in zip(ins, ndims):
        if "..." in s:
            k = nd - (len(s) - 3)
            s = s.replace("...", ell[n_ell - k :] if k else "")
        if len(s) != nd:
            raise ShapeError(f"einsum: subscripts {s!r} name {len(s)} dims for an operand of {nd} dims")
        out_ins.append(s)
    if arrow:
        out = rhs.replace("...", ell)
        missing = sorted(set(out) - set("".join(out_ins)))
        if missing:
            raise ValueRangeError(f"einsum: output subscript {missing[0]} does not appear in the equation for any input operand")
    else:
        letters = "".join(out_ins)
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell))
    return out_ins, out


def _einsum_grad(g, out_sub, operands, subs, k, run=None):
    """d(einsum)/d(operand k): the einsum of g with the other operands onto operand k's
    subscripts; letters only operand k has are broadcast back, and a repeated letter (a
    diagonal) is written onto that diagonal through an identity matrix. ``run(equation,
    *operands)`` does each einsum: NumPy's/CuPy's on arrays (None), ``_tensor_einsum`` on
    Tensors for ``create_graph``."""
    data = g._data if isinstance(g, Tensor) else g
    xp = xp_of(data)
    run = run or xp.einsum
    target = subs[k]
    present = set(out_sub).union(*(set(s) for i, s in enumerate(subs) if i != k))
    uniq = "".join(dict.fromkeys(c for c in target if c in present))
    terms = [out_sub] + [s for i, s in enumerate(subs) if i != k]
    arrays = [g] + [a for i, a in enumerate(operands) if i != k]
    gu = run(",".join(terms) + "->" + uniq, *arrays)
    sizes = dict(zip(target, operands[k].shape))
    # Letters of operand k that appear nowhere else were summed over: broadcast back.
    missing = "".join(dict.fromkeys(c for c in target if c not in present))
    if missing:
        gu = run(uniq + "," + missing + "->" + uniq + missing, gu, xp.ones([sizes[c] for c in missing], data.dtype))
        uniq += missing
    # Repeated letters: spread onto the diagonal with identity matrices.
    fresh = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in target and c not in out_sub]
    seen, full, eyes, eye_subs = set(), "", [], []
    for c in target:
        if c in seen:
            f = fresh.pop()
            full += f
            eyes.append(xp.eye(sizes[c], dtype=data.dtype))
            eye_subs.append(c + f)
        else:
            seen.add(c)
            full += c
    if eyes:
        gu = run(",".join([uniq] + eye_subs) + "->" + full, gu, *eyes)
    elif uniq != target:
        gu = run(uniq + "->" + target, gu)
    return gu


def _tensor_einsum(equation, *operands):
    """``einsum`` of Tensors (and constant arrays) in explicit form "ab,bc->ac", recorded."""
    inputs, out_sub = equation.split("->")
    return Einsum.apply(*operands, subs=inputs.split(","), out_sub=out_sub)


def _fit_einsum_grad(g, shape):
    """An operand's gradient brought to its shape. A size-1 subscript meeting another size in
    a second operand broadcasts (as in PyTorch), so (probe16: ``einsum("ij,jk", (2, 0), (1, 3))``
    gave gradients of the wrong shape) the size-1 side's gradient is summed back to 1, and the
    other side's, computed against the size-1 partner, is spread over its own size (0 included)."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    axes = tuple(i for i, (n, m) in enumerate(zip(g.shape, shape)) if m == 1 and n != 1)
    if axes:
        g = g.sum(axes, keepdims=True) if not isinstance(g, Tensor) else g.sum(dim=axes, keepdim=True)
    if tuple(g.shape) != shape:
        g = xp_of(g).broadcast_to(g, shape).copy() if not isinstance(g, Tensor) else g.expand(*shape) * 1
    return g


class Einsum(Function):
    complex_grad = True  # cplx: each gradient is the einsum of g with the other operands conjugated

    @staticmethod
    def forward(ctx, *operands, subs, out_sub):
        ctx.meta = (subs, out_sub)
        ctx.save_for_backward(*operands)
        eq = ",".join(subs) + "->" + out_sub
        return xp_of(operands[0]).einsum(eq, *operands, optimize=len(operands) > 2)

    @staticmethod
    def backward(ctx, g):
        subs, out_sub = ctx.meta
        ops = [conj(a) for a in ctx.saved_arrays]
        return tuple(
            _fit_einsum_grad(_einsum_grad(g, out_sub, ops, subs, k), a.shape).astype(g.dtype, copy=False)
            if need else None
            for k, (need, a) in enumerate(zip(ctx.needs_input_grad, ctx.saved_arrays))
        )

    @staticmethod
    def backward_graph(ctx, g):
        """d/d(operand k) as ``_einsum_grad`` builds it, each einsum a recorded ``einsum`` of
        Tensors (the operands that require grad as themselves), so it nests to any order."""
        subs, out_sub = ctx.meta
        ops = [operand(ctx, i, a) for i, a in enumerate(ctx.saved_arrays)]
        return tuple(_fit_einsum_grad(_einsum_grad(g, out_sub, ops, subs, k, _tensor_einsum), a.shape)
                     if need else None
                     for k, (need, a) in enumerate(zip(ctx.needs_input_grad, ctx.saved_arrays)))


def einsum(equation: str, *operands):
    """Einstein summation (PyTorch's ``torch.einsum``): ``einsum("bij,bjk->bik", a, b)``;
    '...' and the implicit output are supported; operands may be given as one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ts = [as_tensor(t, "einsum") for t in operands]
    if not ts:
        raise ValueRangeError("einsum: needs at least one operand")
    if len({t.dtype for t in ts}) > 1:  # as PyTorch: no promotion (an int with a float operand is refused too)
        raise DTypeError(f"einsum: expected all operands to have one dtype, got {[str(t.dtype) for t in ts]}")
    if len(ts) > 1:
        ts = [ts[0]] + [check_pair("einsum", ts[0], t)[1] for t in ts[1:]]
        _refuse_bool("einsum", "bmm", ts[0])
    subs, out_sub = _parse_einsum(equation, [t.ndim for t in ts])
    sizes = {}
    for s, t in zip(subs, ts):
        for c, n in zip(s, t.shape):
            if sizes.setdefault(c, n) != n and n != 1 and sizes[c] != 1:
                raise ShapeError(f"einsum: subscript {c!r} has size {sizes[c]} in one operand and {n} in another "
                                 f"(shapes {[t.shape for t in ts]})")
    return Einsum.apply(*ts, subs=subs, out_sub=out_sub)


# ----------------------------------------------------------------------------- named products
# PyTorch's fixed-rank spellings of matmul. Each checks its ranks and (as PyTorch) refuses
# two different dtypes instead of promoting, then is matmul/mul, so autograd comes with it.


def _refuse_bool(name, kernel, t):
    """PyTorch has no bool matrix product (its BLAS kernels stop at integers): a NotImplementedError
    naming the kernel, where NumPy would silently compute a logical or-of-ands."""
    if t._data.dtype.kind == "b":
        raise DTypeNotImplementedError(f"\"{kernel}\" not implemented for 'Bool' ({name} of bool tensors; "
                                       f"cast them with .float() or .long() first)")


_BOOL_KERNELS = {"mm": "addmm_impl_cpu_", "bmm": "bmm", "dot": "dot", "mv": "addmv_impl_cpu"}


def _same_dtype(name, a, b):
    if a.dtype != b.dtype:
        raise DTypeError(f"{name}: expected both operands to have the same dtype, but found {a.dtype} and {b.dtype}")
    if name in _BOOL_KERNELS:
        _refuse_bool(name, _BOOL_KERNELS[name], a)
    if type(a._data) is not type(b._data):
        raise ValueError(f"{name}: tensors are on different devices: {a.device} and {b.device}")


def _ranked(name, ndim, *tensors, names=("self", "mat2")):
    ts = [as_tensor(t, name) for t in tensors]
    for t, n in zip(ts, names):
        if t.ndim != ndim:
            kind = {1: "a vector (1-D)", 2: "a matrix", 3: "a 3-D tensor"}[ndim]
            raise ShapeError(f"{name}: {n} must be {kind}, got shape {tuple(t.shape)}")
    for t in ts[1:]:
        _same_dtype(name, ts[0], t)
    return ts


def mm(input, mat2):
    """Matrix product of two 2-D tensors: (n, m) @ (m, p) -> (n, p); either may be sparse."""
    if getattr(input, "is_sparse", False) is True or getattr(mat2, "is_sparse", False) is True:
        return input.mm(mat2) if input.is_sparse else mat2.__rmatmul__(input)  # tinymm.sparse
    a, b = _ranked("mm", 2, input, mat2)
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"mm: mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
                         f"{b.shape[0]}x{b.shape[1]})")
    return MatMul.apply(a, b)


def bmm(input, mat2):
    """Batched matrix product of 3-D tensors: (b, n, m) @ (b, m, p) -> (b, n, p); no broadcasting."""
    a, b = _ranked("bmm", 3, input, mat2, names=("batch1", "batch2"))
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ShapeError(f"bmm: batch1 {tuple(a.shape)} and batch2 {tuple(b.shape)} do not fit "
                         f"(expected (b, n, m) and (b, m, p))")
    return MatMul.apply(a, b)


def dot(input, other):
    """Inner product of two 1-D tensors of the same length (a 0-d tensor)."""
    a, b = _ranked("dot", 1, input, other, names=("self", "other"))
    if a.shape[0] != b.shape[0]:
        raise ShapeError(f"dot: inconsistent tensor size, expected tensors of the same number of elements, "
                         f"got {a.shape[0]} and {b.shape[0]}")
    return MatMul.apply(a, b)


def mv(input, vec):
    """Matrix-vector product: (n, m) @ (m,) -> (n,)."""
    a = _ranked("mv", 2, input, names=("self",))[0]
    v = _ranked("mv", 1, vec, names=("vec",))[0]
    _same_dtype("mv", a, v)
    if a.shape[1] != v.shape[0]:
        raise ShapeError(f"mv: size mismatch, matrix {tuple(a.shape)} and vector {tuple(v.shape)}")
    return MatMul.apply(a, v)


def outer(input, vec2):
    """Outer product of two 1-D tensors: (n,) x (m,) -> (n, m)."""
    a, b = as_tensor(input, "outer"), as_tensor(vec2, "outer")
    for t, n in ((a, "self"), (b, "vec2")):
        if t.ndim != 1:
            raise ShapeError(f"outer: {n} must be a vector (1-D), got shape {tuple(t.shape)}")
    return a.reshape(-1, 1) * b.reshape(1, -1)  # promotes as mul does (int with float: float)


def _scaled_sum(name, input, product, beta, alpha):
    """beta * input + alpha * product; with beta == 0 the input is ignored (NaN in it too),
    as in PyTorch."""
    out = product if alpha == 1 else product * alpha
    input = as_tensor(input, name)
    if not broadcasts_to(input.shape, out.shape):
        raise ShapeError(f"{name}: input of shape {tuple(input.shape)} does not broadcast to the product's "
                         f"shape {tuple(out.shape)}")
    if beta == 0:
        if input.requires_grad:  # input's gradient is zeros, as PyTorch (its NaNs still ignored)
            return out + where(Tensor._wrap(xp_of(out._data).zeros((), bool)), input, 0)
        return out
    return (input if beta == 1 else input * beta) + out


# opsc: public, for addr and addbmm (ops.products)
scaled_sum = _scaled_sum


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2); input broadcasts to (n, p)."""
    return _scaled_sum("addmm", input, mm(mat1, mat2), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * bmm(batch1, batch2); input broadcasts to (b, n, p)."""
    return _scaled_sum("baddbmm", input, bmm(batch1, batch2), beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    """beta * input + alpha * (mat @ vec)."""
    return _scaled_sum("addmv", input, mv(mat, vec), beta, alpha)


def kron(input, other):
    """Kronecker product: each element a[i] times the whole of b, tiled; the shorter shape is
    padded with leading 1s. Out shape: the elementwise product of the two shapes."""
    a, b = operands("kron", as_tensor(input, "kron"), as_tensor(other, "kron"), broadcast=False)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    # a as (a0, 1, a1, 1, ...) times b as (1, b0, 1, b1, ...): interleaved axes, then merged.
    a2 = a.reshape(*[v for s in sa for v in (s, 1)])
    b2 = b.reshape(*[v for s in sb for v in (1, s)])
    return (a2 * b2).reshape(*[x * y for x, y in zip(sa, sb)])


def tensordot(a, b, dims=2):
    """Sum over the last ``dims`` axes of ``a`` and the first ``dims`` of ``b``, or over the
    axes listed in ``dims = (axes_a, axes_b)``; the remaining axes of a then of b."""
    a, b = as_tensor(a, "tensordot"), as_tensor(b, "tensordot")
    _same_dtype("tensordot", a, b)
    if isinstance(dims, (int, np.integer)) or (hasattr(dims, "ndim") and dims.ndim == 0):
        n = int(dims)
        if n < 0 or n > a.ndim or n > b.ndim:
            raise ShapeError(f"tensordot: dims={n} is out of range for shapes {tuple(a.shape)} and {tuple(b.shape)}")
        axes_a, axes_b = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        axes_a, axes_b = ([int(d)] if np.ndim(d) == 0 else [int(i) for i in d] for d in dims)
        if len(axes_a) != len(axes_b):
            raise ShapeError(f"tensordot: both dim lists should have the same length, got {axes_a} and {axes_b}")
        axes_a = [normalize_dim("tensordot", a.ndim, d) for d in axes_a]
        axes_b = [normalize_dim("tensordot", b.ndim, d) for d in axes_b]
    for i, j in zip(axes_a, axes_b):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(f"tensordot: contracted dimensions need to match, but first has size {a.shape[i]} "
                             f"in dim {i} and second has size {b.shape[j]} in dim {j}")
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [j for j in range(b.ndim) if j not in axes_b]
    k = int(np.prod([a.shape[i] for i in axes_a])) if axes_a else 1
    # explicit sizes, not -1: a zero-size dim makes -1 ambiguous
    a2 = a.permute(*(free_a + axes_a)).reshape(int(np.prod([a.shape[i] for i in free_a])), k)
    b2 = b.permute(*(axes_b + free_b)).reshape(k, int(np.prod([b.shape[j] for j in free_b])))
    return MatMul.apply(a2, b2).reshape(*([a.shape[i] for i in free_a] + [b.shape[j] for j in free_b]))


def cross(input, other, dim=None):
    """Cross product of 3-vectors along ``dim`` (default: the first dim of size 3, as
    ``torch.cross``); the operands broadcast. Built from roll: c = roll(a,-1)·roll(b,-2) −
    roll(a,-2)·roll(b,-1) along that dim."""
    from tinymm.ops.layout import roll

    a, b = operands("cross", as_tensor(input, "cross"), as_tensor(other, "cross"))
    if a.ndim != b.ndim:
        raise ShapeError(f"cross: inputs must have the same number of dimensions, got {a.ndim} and {b.ndim}")
    shape = np.broadcast_shapes(a.shape, b.shape)
    if dim is None:
        dim = next((i for i, s in enumerate(shape) if s == 3), None)
        if dim is None:
            raise ShapeError(f"cross: no dimension of size 3 in input shapes {tuple(a.shape)} and {tuple(b.shape)}")
    d = normalize_dim("cross", len(shape), dim)
    if a.shape[d] != 3 or b.shape[d] != 3:
        raise ShapeError(f"cross: inputs dimension {d} must have length 3, got {a.shape[d]} and {b.shape[d]}")
    return roll(a, -1, d) * roll(b, -2, d) - roll(a, -2, d) * roll(b, -1, d)


def trace(input):
    """Sum of the main diagonal of a 2-D tensor."""
    from tinymm.ops.layout import diagonal

    x = as_tensor(input, "trace")
    if x.ndim != 2:
        raise ShapeError(f"trace: expected a matrix, but got tensor with dim {x.ndim}")
    return diagonal(x).sum()


# ----------------------------------------------------------------------------- cdist


class Cdist(Function):
    """d[..., i, j] = ‖x1[..., i, :] − x2[..., j, :]‖_p over the pairwise differences
    (…, P, R, M), computed exactly (no ‖a‖² + ‖b‖² − 2ab shortcut). Saves x1, x2 and d;
    backward recomputes the differences. Where d = 0 the gradient is 0 (as PyTorch)."""

    @staticmethod
    def forward(ctx, x1, x2, p):
        xp = xp_of(x1)
        diff = x1[..., :, None, :] - x2[..., None, :, :]
        a = xp.abs(diff)
        if p == 0:
            d = (a != 0).sum(-1).astype(x1.dtype)
        elif p == 1:
            d = a.sum(-1)
        elif p == 2:
            d = xp.sqrt((diff * diff).sum(-1))
        elif math.isinf(p):
            d = a.max(-1) if a.shape[-1] else xp.zeros(a.shape[:-1], a.dtype)
        else:
            d = (a ** p).sum(-1) ** (1.0 / p)
        ctx.p = p
        ctx.shapes = (x1.shape, x2.shape)
        ctx.save_for_backward(x1, x2, d)
        return d.astype(x1.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x1, x2, d = ctx.saved_arrays
        p = ctx.p
        xp = xp_of(g)
        diff = x1[..., :, None, :] - x2[..., None, :, :]
        dd, gg = d[..., None], g[..., None]
        with np.errstate(all="ignore"):
            if p == 0:
                gd = xp.zeros_like(diff)
            elif p == 1:
                gd = gg * xp.sign(diff)
            elif p == 2:
                gd = xp.where(dd == 0, 0, gg * diff / dd)
            elif math.isinf(p):
                gd = gg * xp.sign(diff) * (xp.abs(diff) == dd)
            else:
                a = xp.abs(diff)
                gd = xp.where((dd == 0) | (a == 0), 0, gg * xp.sign(diff) * a ** (p - 1) / dd ** (p - 1))
        gd = gd.astype(g.dtype, copy=False)
        n1, n2 = ctx.needs_input_grad[:2]
        s1, s2 = ctx.shapes
        return (unbroadcast(gd.sum(-2), s1) if n1 else None, unbroadcast(-gd.sum(-3), s2) if n2 else None)

    @staticmethod
    def backward_graph(ctx, g):
        """The same formula on Tensors: with δ = x1ᵢ − x2ⱼ and d this op's own output,
        ∂d/∂δ = sign(δ)·|δ|^(p−1)/d^(p−1) (δ/d for p = 2, sign(δ) for p = 1, sign(δ) at the
        largest |δ| for p = ∞, 0 for p = 0), zero where d = 0 (or δ = 0 for p > 1)."""
        from tinymm.autograd_graph import node_output

        x1, x2, d = ctx.saved_arrays
        p = ctx.p
        xp = xp_of(d)
        diff = operand(ctx, 0, x1)[..., :, None, :] - operand(ctx, 1, x2)[..., None, :, :]
        gg = g[..., None]
        raw = x1[..., :, None, :] - x2[..., None, :, :]
        if p == 0:
            gd = diff * 0.0
        elif p == 1:
            gd = gg * Tensor._wrap(xp.sign(raw))
        elif math.isinf(p):
            gd = gg * Tensor._wrap((xp.sign(raw) * (xp.abs(raw) == d[..., None])).astype(d.dtype))
        else:
            zero = (d[..., None] == 0) | ((raw == 0) & (p != 2))
            D = node_output(ctx, d.astype(x1.dtype, copy=False))[..., None]
            safe = where(Tensor._wrap(xp.broadcast_to(zero, raw.shape)), 1.0, D)
            if p == 2:
                gd = gg * diff / safe
            else:
                safe_diff = where(Tensor._wrap(zero), 1.0, diff)
                gd = gg * Tensor._wrap(xp.sign(raw)) * safe_diff.abs() ** (p - 1) / safe ** (p - 1)
            gd = where(Tensor._wrap(xp.broadcast_to(zero, raw.shape)), 0.0, gd)
        n1, n2 = ctx.needs_input_grad[:2]
        s1, s2 = ctx.shapes
        return (sum_to(gd.sum(dim=-2), s1) if n1 else None, sum_to(-gd.sum(dim=-3), s2) if n2 else None)


def cdist(x1, x2, p: float = 2.0, compute_mode=None):
    """Pairwise p-norm distances between the rows of x1 (…, P, M) and x2 (…, R, M): (…, P, R);
    batch dims broadcast. ``compute_mode`` is accepted and ignored (always exact)."""
    x1, x2 = as_tensor(x1, "cdist"), as_tensor(x2, "cdist")
    for name, t in (("X1", x1), ("X2", x2)):
        if t.ndim < 2:
            raise ShapeError(f"cdist only supports at least 2D tensors, {name} got: {t.ndim}D")
        if t.dtype.kind not in "fc":
            raise DTypeError(f"cdist only supports floating-point dtypes, {name} got: {t.dtype}")
    if x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}")
    if p < 0:
        raise ShapeError(f"cdist only supports non-negative p values, got {p}")
    x1, x2 = check_pair("cdist", x1, x2)
    try:
        np.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
    except ValueError:
        raise ShapeError(f"cdist: batch dims of {tuple(x1.shape)} and {tuple(x2.shape)} do not broadcast") from None
    return Cdist.apply(x1, x2, float(p))
