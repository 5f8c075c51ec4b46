"""Matrix product with NumPy's rules: batched, broadcast batch dims, and the 1-D cases.

For C = A·B: dA = dC·Bᵀ and dB = Aᵀ·dC, summed over any batch dims that broadcasting
stretched. A 1-D operand is treated as a row (left) or column (right) vector whose extra
axis is removed from the result, exactly as ``numpy.matmul`` does.
"""
from __future__ import annotations

import numpy as np

from tinymm.autograd import Function
from tinymm.ops._util import ShapeError, unbroadcast, xp_of
from tinymm.ops.convert import as_tensor, cast, check_pair, operands


class MatMul(Function):
    """Saves only what the wanted gradients need: b for dA, a for dB (as PyTorch)."""

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
            ga = unbroadcast(g @ b2.swapaxes(-1, -2), (1,) + sa if len(sa) == 1 else sa).reshape(sa)
        if nb:
            a2 = a[None, :] if a.ndim == 1 else a  # (k,) -> (1, k)
            gb = unbroadcast(a2.swapaxes(-1, -2) @ g, sb + (1,) if len(sb) == 1 else sb).reshape(sb)
        return ga, gb


def matmul(a, b):
    a, b = operands("matmul", as_tensor(a, "matmul"), as_tensor(b, "matmul"), broadcast=False)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} do not line up ({ka} != {kb})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ShapeError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
    return MatMul.apply(a, b)


# ----------------------------------------------------------------------------- einsum


def _parse_einsum(equation: str, ndims):
    """Explicit subscripts (one string per operand, and the output) with '...' expanded to
    letters not used elsewhere, and the implicit output (letters seen once, sorted) filled in."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(ndims):
        raise ValueError(f"einsum: the equation names {len(ins)} operands, {len(ndims)} were given")
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
    else:
        letters = "".join(out_ins)
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell))
    return out_ins, out


def _einsum_grad(g, out_sub, operands, subs, k):
    """d(einsum)/d(operand k): the einsum of g with the other operands onto operand k's
    subscripts; letters only operand k has are broadcast back, and a repeated letter (a
    diagonal) is written onto that diagonal through an identity matrix."""
    xp = xp_of(g)
    target = subs[k]
    present = set(out_sub).union(*(set(s) for i, s in enumerate(subs) if i != k))
    uniq = "".join(dict.fromkeys(c for c in target if c in present))
    terms = [out_sub] + [s for i, s in enumerate(subs) if i != k]
    arrays = [g] + [a for i, a in enumerate(operands) if i != k]
    gu = xp.einsum(",".join(terms) + "->" + uniq, *arrays)
    sizes = dict(zip(target, operands[k].shape))
    # Letters of operand k that appear nowhere else were summed over: broadcast back.
    missing = "".join(dict.fromkeys(c for c in target if c not in present))
    if missing:
        gu = xp.einsum(uniq + "," + missing + "->" + uniq + missing, gu, xp.ones([sizes[c] for c in missing], g.dtype))
        uniq += missing
    # Repeated letters: spread onto the diagonal with identity matrices.
    fresh = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in target and c not in out_sub]
    seen, full, eyes, eye_subs = set(), "", [], []
    for c in target:
        if c in seen:
            f = fresh.pop()
            full += f
            eyes.append(xp.eye(sizes[c], dtype=g.dtype))
            eye_subs.append(c + f)
        else:
            seen.add(c)
            full += c
    if eyes:
        gu = xp.einsum(",".join([uniq] + eye_subs) + "->" + full, gu, *eyes)
    elif uniq != target:
        gu = xp.einsum(uniq + "->" + target, gu)
    return gu


class Einsum(Function):
    @staticmethod
    def forward(ctx, *operands, subs, out_sub):
        ctx.meta = (subs, out_sub)
        ctx.save_for_backward(*operands)
        eq = ",".join(subs) + "->" + out_sub
        return xp_of(operands[0]).einsum(eq, *operands, optimize=len(operands) > 2)

    @staticmethod
    def backward(ctx, g):
        subs, out_sub = ctx.meta
        ops = ctx.saved_arrays
        return tuple(
            _einsum_grad(g, out_sub, ops, subs, k).astype(g.dtype, copy=False) if need else None
            for k, need in enumerate(ctx.needs_input_grad)
        )


def einsum(equation: str, *operands):
    """Einstein summation (PyTorch's ``torch.einsum``): ``einsum("bij,bjk->bik", a, b)``;
    '...' and the implicit output are supported; operands may be given as one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ts = [as_tensor(t, "einsum") for t in operands]
    if not ts:
        raise ValueError("einsum: needs at least one operand")
    floats = [t.dtype for t in ts if t.dtype.kind == "f"]
    if floats:  # integer operands meet the floating one's dtype; two float dtypes must agree
        ts = [t if t.dtype.kind == "f" else cast(t, floats[0]) for t in ts]
        ts = [ts[0]] + [check_pair("einsum", ts[0], t)[1] for t in ts[1:]]
    subs, out_sub = _parse_einsum(equation, [t.ndim for t in ts])
    sizes = {}
    for s, t in zip(subs, ts):
        for c, n in zip(s, t.shape):
            if sizes.setdefault(c, n) != n and n != 1 and sizes[c] != 1:
                raise ShapeError(f"einsum: subscript {c!r} has size {sizes[c]} in one operand and {n} in another "
                                 f"(shapes {[t.shape for t in ts]})")
    return Einsum.apply(*ts, subs=subs, out_sub=out_sub)
