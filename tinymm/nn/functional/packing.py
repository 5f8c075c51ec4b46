"""Packing the real tokens of a padded batch into rows, and back (floor 4).

A padded batch (B, N, ...) with a mask of real positions holds T = mask.sum() real tokens.
Every per-token op of a Transformer (linear layers, GELU, LayerNorm, residual adds) gives the
same values for a real token whether or not the padded positions beside it are computed, so a
model can run them on the packed (T, ...) rows and pay for T tokens instead of B·N (the
"remove padding" of FasterTransformer and of PyTorch's nested-tensor fast path). Only attention
mixes positions; it unpacks to (B, N, ...) and masks the padded keys.

``rows`` is the flat index (``b·N + n``) of each real token, ascending and unique (what
``np.flatnonzero(mask)`` gives); both ops trust it (the caller builds it from a checked mask).

    pack_rows(x (B·N, F...), rows (T,))   → (T, F...)     backward: scatter into zeros
    unpack_rows(x (T, F...), rows, total) → (total, F...) zeros at the other rows; backward: gather
    rows_to_heads(x (T, P, H, D), rows, B, N) → (P, B, H, N, D)   attention's layout, zeros at
        padding, in one scattered copy (P = 3 for a fused q/k/v projection)
    heads_to_rows(o (B, H, N, D), rows)   → (T, H, D)     the real query rows back, one gather

``torch.nn.functional`` has no twin; these are tinymm's (``BertModel`` uses them).
"""
from __future__ import annotations

from tinymm.autograd import Function
from tinymm.ops._util import xp_of


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
    @staticmethod
    def forward(ctx, x, rows, batch, length):
        ctx.index = divmod(rows, length)                        # (b, n) of each real token
        t, p, h, d = x.shape
        out = xp_of(x).zeros((p, batch, h, length, d), dtype=x.dtype)
        _heads_view(out)[ctx.index] = x
        return out

    @staticmethod
    def backward(ctx, g):
        return _heads_view(g)[ctx.index]


class HeadsToRows(Function):
    @staticmethod
    def forward(ctx, o, rows):
        ctx.index, ctx.shape = divmod(rows, o.shape[2]), o.shape
        return o.transpose(0, 2, 1, 3)[ctx.index]                # (T, H, D)

    @staticmethod
    def backward(ctx, g):
        out = xp_of(g).zeros(ctx.shape, dtype=g.dtype)
        out.transpose(0, 2, 1, 3)[ctx.index] = g
        return out


def rows_to_heads(x, rows, batch: int, length: int):
    """Real-token rows (T, P, H, D) → (P, B, H, N, D), the layout attention wants, zeros at
    padded positions."""
    return RowsToHeads.apply(x, rows, batch, length)


def heads_to_rows(o, rows):
    """Attention's output (B, H, N, D) → the real tokens' rows (T, H, D)."""
    return HeadsToRows.apply(o, rows)


def pack_rows(x, rows):
    """The rows of ``x`` (first axis) listed in ``rows``, as a new (len(rows), ...) Tensor."""
    return PackRows.apply(x, rows)


def unpack_rows(x, rows, total: int):
    """A (total, ...) Tensor holding ``x[i]`` at row ``rows[i]`` and zeros elsewhere."""
    return UnpackRows.apply(x, rows, total)
