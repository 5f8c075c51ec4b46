"""Packing the real tokens of a padded batch into rows, and back (floor 4).

A padded batch (B, N, ...) with a mask of real positions holds T = mask.sum() real tokens.
Every per-token op of a Transformer (linear layers, GELU, LayerNorm, residual adds) gives the
same values for a real token whether or not the padded positions beside it are computed, so a
model can run them on the packed (T, ...) rows and pay for T tokens instead of B·N (the
"remove padding" of FasterTransformer and of PyTorch's nested-tensor fast path). Only attention
mixes positions; it unpacks to (B, N, ...) and masks the padded keys.

``rows`` is the flat index (``b·N + n``) of each real token, ascending and unique (what
``np.flatnonzero(mask)`` gives). The public functions below check it and the shapes; the
``Function`` classes trust them, so a model that checked its mask once calls those directly in
every layer (``BertModel`` does, with ``divmod(rows, N)`` computed once for the heads layout).

    pack_rows(x (B·N, F...), rows (T,))   → (T, F...)     backward: scatter into zeros
    unpack_rows(x (T, F...), rows, total) → (total, F...) zeros at the other rows; backward: gather
    rows_to_heads(x (T, P, H, D), rows, B, N) → (P, B, H, N, D)   attention's layout, zeros at
        padding, in one scattered copy (P = 3 for a fused q/k/v projection)
    heads_to_rows(o (B, H, N, D), rows)   → (T, H, D)     the real query rows back, one gather

``torch.nn.functional`` has no twin; these are tinymm's (``BertModel`` uses them).
"""
from __future__ import annotations

from tinymm.autograd import Function
from tinymm.ops._util import ShapeError, xp_of
from tinymm.ops.convert import as_tensor


def _scatter(x, rows, total):
    xp = xp_of(x)
    out = xp.zeros((total,) + x.shape[1:], dtype=x.dtype)
    out[rows] = x
    return out


class PackRows(Function):
    @staticmethod
    def forward(ctx, x, rows):
        ctx.rows, ctx.total = rows, x.shape[0]
        return x[rows]

    @staticmethod
    def backward(ctx, g):
        # rows are unique, so the gradient is a plain scatter (no np.add.at)
        return _scatter(g, ctx.rows, ctx.total)


class UnpackRows(Function):
    @staticmethod
    def forward(ctx, x, rows, total):
        ctx.rows = rows
        return _scatter(x, rows, total)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.rows]


def _heads_view(a):
    """(P, B, H, N, D) seen as (B, N, P, H, D): a view, so the (b, n) of each token indexes it."""
    return a.transpose(1, 3, 0, 2, 4)


class RowsToHeads(Function):
    """``index`` = (b, n) of each real token, ``divmod(rows, length)``."""

    @staticmethod
    def forward(ctx, x, index, batch, length):
        ctx.index = index
        t, p, h, d = x.shape
        out = xp_of(x).zeros((p, batch, h, length, d), dtype=x.dtype)
        _heads_view(out)[index] = x
        return out

    @staticmethod
    def backward(ctx, g):
        return _heads_view(g)[ctx.index]


class HeadsToRows(Function):
    """``index`` = (b, n) of each real token, ``divmod(rows, N)``."""

    @staticmethod
    def forward(ctx, o, index):
        ctx.index, ctx.shape = index, o.shape
        return o.transpose(0, 2, 1, 3)[index]                    # (T, H, D)

    @staticmethod
    def backward(ctx, g):
        out = xp_of(g).zeros(ctx.shape, dtype=g.dtype)
        out.transpose(0, 2, 1, 3)[ctx.index] = g
        return out


def _checked_rows(name, rows, total, count=None):
    """``rows`` as an index array on its own device, after the checks the Functions skip."""
    r = as_tensor(rows, name)._data
    if r.ndim != 1 or r.dtype.kind not in "iu":
        raise TypeError(f"{name}: rows must be a 1-D integer array, got {r.dtype} of shape {tuple(r.shape)}")
    if count is not None and r.shape[0] != count:
        raise ShapeError(f"{name}: {r.shape[0]} rows for {count} packed tokens")
    if r.size and (int(r.min()) < 0 or int(r.max()) >= total or bool((r[1:] <= r[:-1]).any())):
        raise ValueError(f"{name}: rows must be ascending, unique and in [0, {total}), "
                         f"got values in [{int(r.min())}, {int(r.max())}]")
    return r


def _checked_x(name, x, ndim=None):
    x = as_tensor(x, name)
    if (ndim is not None and x.ndim != ndim) or x.ndim == 0:
        raise ShapeError(f"{name}: expected a {ndim or 'at least 1'}-D input, got shape {tuple(x.shape)}")
    return x


def rows_to_heads(x, rows, batch: int, length: int):
    """Real-token rows (T, P, H, D) → (P, B, H, N, D), the layout attention wants, zeros at
    padded positions."""
    x = _checked_x("rows_to_heads", x, 4)
    r = _checked_rows("rows_to_heads", rows, batch * length, x.shape[0])
    return RowsToHeads.apply(x, divmod(r, length), batch, length)


def heads_to_rows(o, rows):
    """Attention's output (B, H, N, D) → the real tokens' rows (T, H, D)."""
    o = _checked_x("heads_to_rows", o, 4)
    r = _checked_rows("heads_to_rows", rows, o.shape[0] * o.shape[2])
    return HeadsToRows.apply(o, divmod(r, o.shape[2]))


def pack_rows(x, rows):
    """The rows of ``x`` (first axis) listed in ``rows``, as a new (len(rows), ...) Tensor."""
    x = _checked_x("pack_rows", x)
    return PackRows.apply(x, _checked_rows("pack_rows", rows, x.shape[0]))


def unpack_rows(x, rows, total: int):
    """A (total, ...) Tensor holding ``x[i]`` at row ``rows[i]`` and zeros elsewhere."""
    x = _checked_x("unpack_rows", x)
    return UnpackRows.apply(x, _checked_rows("unpack_rows", rows, total, x.shape[0]), total)
