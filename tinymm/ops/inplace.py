"""In-place ops: ``x[index] = value`` and the ``*_`` methods, with PyTorch's autograd rules.

Every in-place op writes into ``x._data`` (so views and ``detach()``-ed copies see the change)
and bumps the version counter of its storage (``tinymm.tensor.bump_version``); a Function that
saved that storage then refuses to backward. What else happens depends on the graph:

- grad mode off, or neither ``x`` nor the value requires grad: a plain write;
- ``x`` is a leaf that requires grad: RuntimeError (its ``.grad`` would describe data that no
  longer exists); do it under ``tinymm.no_grad()``, as optimizers and initialisers do;
- otherwise the op is recorded: ``x`` becomes the output of a new node whose inputs are its
  old history and the value, so gradients reach both (PyTorch's CopySlices / rebase).
  When ``x`` is a view of another tensor (``y[:, 0] *= 3``; ``v = y[0]; v.mul_(2)``;
  ``y.t().mul_(2)``; ``y.diagonal().add_(1)``), that tensor's history becomes a SetItem /
  SetView of the new values, up the chain of views; the view's own old history is re-derived
  from its base (``_history``), as PyTorch regenerates a view's grad_fn. The views that record
  their base are indexing, ``view``/``reshape`` (when no copy was needed), ``unsqueeze``,
  ``squeeze``, ``flatten``, ``transpose``/``permute``/``t``/``T``/``mT``/``movedim``,
  ``narrow``, ``select``, ``diagonal`` and ``unfold`` without overlap (``ops/views.py``).
  A write with gradient into another view (the outputs of ``split``/``chunk``, as PyTorch
  refuses too, though ``unbind``'s are indexing views here and take it; ``as_strided``) is
  refused, naming the fix (``clone()`` first), as is a view of a leaf that requires grad, and
  any write into an ``expand``-ed (read-only) tensor. An op's output that merely is a NumPy
  view of the op's own buffer is not a view of another tensor.
"""
from __future__ import annotations

import numpy as np

from tinymm import autograd, backend
from tinymm.autograd import Function
from tinymm.autograd_graph import sum_to
from tinymm.ops._util import DTypeError, ShapeError, check_fits, unbroadcast, xp_of
from tinymm.ops.convert import as_tensor, cast, check_broadcast
from tinymm.ops.elementwise import add, clamp, div, mul, pow, sub
from tinymm.ops.index import (
    GetItem, array_index, check_index_add, index_add, masked_fill, numpy_index, scatter, scatter_add,
)
from tinymm.ops.layout import Diagonal, Unfold
from tinymm.ops.shape import Permute, Reshape
from tinymm.ops.views import ViewOp
from tinymm.ops.scalar_fit import check_scalar_fits
from tinymm.tensor import Tensor, bump_version, storage_of, storage_version

_VIEW_FUNCTIONS = {"reshape": Reshape, "permute": Permute, "diagonal": Diagonal, "unfold": Unfold}


def _views_another_tensor(x: Tensor) -> bool:
    """Whether ``x``'s memory belongs to another tensor (``x`` came from a view op: indexing,
    ``view``, ``transpose``, ``split``...). An op's output whose array is a NumPy view of the op's
    own scratch buffer (a GEMM result reshaped, a transposed layout) owns its memory, as the
    same output does in PyTorch: writing into it in place is fine. A view op's output shares
    its producing op's input's storage; without a node to look at, any view is taken as one.
    An input holding x's very array is x itself before an earlier in-place write (the node of
    ``h[mask] = v`` takes the old ``h``), not another tensor (probe6: a second masked write into
    a Linear output)."""
    storage = storage_of(x._data)
    if storage is x._data:
        return False
    if x._node is None:
        return True
    return any(t is not None and t._data is not x._data and storage_of(t._data) is storage
               for t in x._node[0].inputs)


def _records(name: str, x: Tensor, value) -> bool:
    """Whether the in-place op ``name`` must be recorded in the graph (see the docstring).
    Every in-place op asks this first, so it also refuses a tensor that cannot be written."""
    if not getattr(getattr(x._data, "flags", None), "writeable", True):
        raise RuntimeError(
            f"{name}: unsupported operation: more than one element of the written-to tensor refers to a "
            "single memory location (an expand()/broadcast view), or its memory is read-only. Please "
            "clone() the tensor before performing the operation.")
    value_grad = isinstance(value, Tensor) and value.requires_grad
    if not (x.requires_grad or value_grad) or not autograd.is_grad_enabled():
        return False
    if x.requires_grad and x._node is None:
        raise RuntimeError(
            f"{name}: a leaf tensor that requires grad is being used in an in-place operation; "
            "do it under tinymm.no_grad() (as an optimizer step does) or on a clone()"
        )
    if _views_another_tensor(x):
        root = _view_root(x)
        if root is None:
            raise RuntimeError(
                f"{name}: in-place op with gradient on a view of another tensor's memory made by an op "
                "that does not record its base (split, chunk, as_strided...); the other "
                "tensor's graph would not see it. Write into a clone() of the view, or into the base tensor")
        if root.requires_grad and root._node is None:
            raise RuntimeError(
                f"{name}: a view of a leaf tensor that requires grad is being used in an in-place "
                "operation; do it under tinymm.no_grad() or on a clone()")
    return True


def _view_root(x: Tensor):
    """The tensor whose memory ``x`` views (through any chain of recorded views), or None when
    some link of the chain is a view that records no base."""
    t = x
    while (src := t._view_src) is not None:
        t = src[0]
    return None if t is x or _views_another_tensor(t) else t


def _history(x: Tensor) -> Tensor:
    """``x`` as the graph sees it now. A recorded view is re-derived from its base's current
    history (PyTorch regenerates a view's grad_fn the same way), so writes into the base made
    since the view was taken are part of it."""
    src = x._view_src
    if src is None:
        return _same_node(x)
    base, how = src[0], src[1]
    if type(how) is ViewOp:
        return _VIEW_FUNCTIONS[how.kind].apply(_history(base), *how.args)
    return GetItem.apply(_history(base), how)


def refresh_view(view: Tensor) -> None:
    """Give a recorded view the node its base's current history implies (see ``_history``)."""
    if view.requires_grad or view._view_src[0].requires_grad:
        h = _history(view)
        view._node, view.requires_grad = h._node, h.requires_grad
    _stamp(view)


autograd.refresh_view = refresh_view  # Function.apply calls it for a stale view input


def _stamp(view: Tensor) -> None:
    """Record that ``view``'s node is current for its storage's version now."""
    base, index = view._view_src[0], view._view_src[1]
    view._view_src = (base, index, storage_version(view._data))


def _same_node(x: Tensor) -> Tensor:
    t = Tensor._wrap(x._data)
    t.requires_grad = x.requires_grad
    t._node = x._node
    return t


def _old_history(x: Tensor, copy: bool) -> Tensor:
    """A stand-in for ``x`` before the write: its data (copied when the op will save it) and node."""
    old = _history(x)
    if copy:
        old._data = old._data.copy()
    return old


def _rebase(x: Tensor, result: Tensor) -> Tensor:
    """Write ``result`` into ``x`` and make ``x`` the output of ``result``'s node. When ``x``
    indexes another tensor, that tensor becomes the output of a SetItem of the new values
    (PyTorch's CopySlices), and so on up the chain of views."""
    x._data[...] = result._data
    bump_version(x._data)
    x._node = result._node
    x.requires_grad = result.requires_grad
    if result.requires_grad:
        _write_through(x)
    return x


def _write_through(view: Tensor) -> None:
    """``view`` (a recorded view) was just written with gradient: each tensor up its chain
    of bases becomes a SetItem / SetView of the view's new values (PyTorch's CopySlices)."""
    while (src := view._view_src) is not None:
        base, how = src[0], src[1]
        # the value as it is now: a new Tensor holding today's node, since a later write into
        # the view replaces the view's own node
        setter = SetView if type(how) is ViewOp else SetItem
        out = setter.apply(_history(base), _same_node(view), how)
        base._node = out._node
        base.requires_grad = True
        _stamp(view)
        view = base


# ----------------------------------------------------------------------------- setitem


class SetItem(Function):
    """``x[index] = value`` written in place. Gradients: x's gradient is g with the written
    region zeroed; the value's is g[index] summed over what broadcasting stretched. Saves nothing."""

    @staticmethod
    def forward(ctx, x, value, index):
        ctx.meta = (index, getattr(value, "shape", ()))
        x[index] = value
        return x

    @staticmethod
    def backward(ctx, g):
        index, value_shape = ctx.meta
        nx, nv = ctx.needs_input_grad[:2]
        gx = gv = None
        if nx:
            gx = g.copy()
            gx[index] = 0
        if nv:
            gv = unbroadcast(g[index], value_shape)
        return gx, gv

    @staticmethod
    def backward_graph(ctx, g):
        """The same two linear maps on Tensors (create_graph): g with the written region set to
        0 (a constant mask), and g[index]."""
        index, value_shape = ctx.meta
        nx, nv = ctx.needs_input_grad[:2]
        gx = gv = None
        if nx:
            keep = xp_of(g._data).ones(g.shape, bool)
            keep[index] = False
            gx = g.where(Tensor._wrap(keep), 0.0)  # (a where, not g · mask: inf · 0 would be NaN)
        if nv:
            gv = sum_to(g[index], value_shape)
        return gx, gv


class SetView(Function):
    """The view ``how`` of x (a ``views.ViewOp``) written in place: SetItem for the views that
    are not indexing. Gradients: x's is g with the view's elements zeroed, the value's is
    the same view of g. The value is already in x's memory (it was written through the view)."""

    @staticmethod
    def forward(ctx, x, value, how):
        ctx.how = how
        how.of(x)[...] = value
        return x

    @staticmethod
    def backward(ctx, g):
        how = ctx.how
        nx, nv = ctx.needs_input_grad[:2]
        gx = gv = None
        if nx:
            gx = g.copy()  # C-contiguous: how.of(gx) is a view, so the zeros land in gx
            how.of(gx)[...] = 0
        if nv:
            gv = how.of(g).copy()
        return gx, gv

    @staticmethod
    def backward_graph(ctx, g):
        how = ctx.how
        nx, nv = ctx.needs_input_grad[:2]
        gx = gv = None
        if nx:
            keep = xp_of(g._data).ones(g.shape, bool)
            how.of(keep)[...] = False
            gx = g.where(Tensor._wrap(keep), 0.0)
        if nv:
            args = how.args
            gv = (g.reshape(args[0]) if how.kind == "reshape" else
                  g.permute(args[0]) if how.kind == "permute" else
                  g.diagonal(*args) if how.kind == "diagonal" else g.unfold(*args))
        return gx, gv


def setitem(x: Tensor, index, value) -> None:
    """``x[index] = value``; recorded when the value or ``x`` carries a graph (module docstring)."""
    if (isinstance(index, Tensor) and index.dtype == np.uint8
            and (not isinstance(value, Tensor) or value.numel() == 1)):
        # PyTorch takes x[mask] = number as masked_fill_, which refuses a uint8 mask (reading
        # x[mask], or writing a tensor of values through it, still takes one, with a warning)
        raise DTypeError("setitem: masked_fill_ only supports boolean masks, but got mask with dtype unsigned char "
                         "(a uint8 index used as a mask: use mask.bool())")
    index = numpy_index(x.shape, array_index(index))
    value = check_scalar_fits(value, x._data.dtype)
    if _records("setitem", x, value):
        if isinstance(value, Tensor) and value.dtype != x.dtype:
            value = cast(value, x.dtype)
        out = SetItem.apply(_old_history(x, copy=False), value, index)
        bump_version(x._data)
        x._node = out._node
        x.requires_grad = True
        _write_through(x)
        return
    try:
        with np.errstate(invalid="ignore", over="ignore"):  # a cast of inf/nan to int: silent, as PyTorch
            x._data[index] = value._data if isinstance(value, Tensor) else value
    except ValueError as e:  # a value that does not broadcast to the indexed shape: RuntimeError in PyTorch
        raise ShapeError(f"setitem: {e}") from None
    bump_version(x._data)


# ----------------------------------------------------------------------------- methods


def _fits(name: str, x: Tensor, result: Tensor) -> Tensor:
    """``result``, when it may be written into ``x`` (``int_tensor.add_(1.5)`` is refused, as
    PyTorch, instead of truncating silently)."""
    if result._data.dtype != x._data.dtype:
        check_fits(result._data.dtype, x._data.dtype, name)
    if result._data.shape != x._data.shape:  # (NumPy's assignment would say ValueError)
        raise ShapeError(f"{name}: output with shape {list(x.shape)} doesn't match the broadcast shape "
                         f"{list(result.shape)}")
    return result


def _binary_(name, op, x: Tensor, other) -> Tensor:
    if _records(name, x, other):
        return _rebase(x, _fits(name, x, op(_old_history(x, copy=True), other)))
    x._data[...] = _fits(name, x, op(Tensor._wrap(x._data), other))._data
    bump_version(x._data)
    return x


def add_(x: Tensor, other, *, alpha=1) -> Tensor:
    return _binary_("add_", add, x, other if alpha == 1 else mul(as_tensor(other, "add_"), alpha))


def sub_(x: Tensor, other, *, alpha=1) -> Tensor:
    return _binary_("sub_", sub, x, other if alpha == 1 else mul(as_tensor(other, "sub_"), alpha))


def mul_(x: Tensor, other) -> Tensor:
    return _binary_("mul_", mul, x, other)


def div_(x: Tensor, other) -> Tensor:
    return _binary_("div_", div, x, other)


def clamp_(x: Tensor, min=None, max=None) -> Tensor:
    if _records("clamp_", x, None):
        return _rebase(x, _fits("clamp_", x, clamp(_old_history(x, copy=True), min, max)))
    x._data[...] = _fits("clamp_", x, clamp(Tensor._wrap(x._data), min, max))._data
    bump_version(x._data)
    return x


def _rewrite_(name: str, x: Tensor, fn) -> Tensor:
    """``x = fn(x)`` written into x (recorded when a graph is involved, as clamp_)."""
    if _records(name, x, None):
        return _rebase(x, _fits(name, x, fn(_old_history(x, copy=True))))
    x._data[...] = _fits(name, x, fn(Tensor._wrap(x._data)))._data
    bump_version(x._data)
    return x


def inplace_of(name: str, fn):
    """The ``*_`` method ``name`` of the out-of-place op ``fn``: ``x = fn(x, ...)`` written into
    x (recorded when x or a tensor argument carries a graph). A floating result does not fit
    an integer or bool ``x``: RuntimeError, as PyTorch (comparisons write 0/1 into any dtype)."""

    def method(x: Tensor, *args, **kwargs) -> Tensor:
        def compute(t):
            out = fn(t, *args, **kwargs)
            return _fits(name, x, out)

        value = next((a for a in args if isinstance(a, Tensor) and a.requires_grad), None)
        if _records(name, x, value):
            old = _old_history(x, copy=True)
            out = compute(old)
            if not out.requires_grad:  # a comparison: x stays in the graph, with zero gradient
                out = add(mul(old, 0.0), cast(out, x.dtype))
            return _rebase(x, out)
        x._data[...] = compute(Tensor._wrap(x._data))._data
        bump_version(x._data)
        return x

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``{fn.__name__}`` written into the tensor in place."
    return method


def masked_fill_(x: Tensor, mask, value) -> Tensor:
    return _rewrite_("masked_fill_", x, lambda t: masked_fill(t, mask, value))


def scatter_(x: Tensor, dim, index, src=None, *, value=None, reduce=None) -> Tensor:
    return _rewrite_("scatter_", x, lambda t: scatter(t, dim, index, src, value=value, reduce=reduce))


def scatter_add_(x: Tensor, dim, index, src) -> Tensor:
    return _rewrite_("scatter_add_", x, lambda t: scatter_add(t, dim, index, src))


def pow_(x: Tensor, exponent) -> Tensor:
    return _rewrite_("pow_", x, lambda t: pow(t, exponent))


def copy_(x: Tensor, src) -> Tensor:
    """Copy ``src`` (broadcast, cast to x's dtype) into ``x``; the gradient flows to ``src``."""
    src = as_tensor(src, "copy_")
    if src._data.shape != x._data.shape:  # src must broadcast to x's own shape (RuntimeError, as PyTorch)
        check_broadcast("copy_", x._data.shape, src._data.shape)
        wide = np.broadcast_shapes(x._data.shape, src._data.shape)
        if wide != x._data.shape:
            raise ShapeError(f"copy_: output with shape {list(x.shape)} doesn't match the broadcast shape {list(wide)}")
    if _records("copy_", x, src):
        # x's old values are overwritten: zero gradient to its history, all of it to src.
        return _rebase(x, add(mul(_old_history(x, copy=False), 0.0), cast(src, x.dtype)))
    x._data[...] = src._data
    bump_version(x._data)
    return x


def _fill(name: str, x: Tensor, value) -> Tensor:
    if isinstance(value, Tensor):
        value = value.item()
    value = check_scalar_fits(value, x._data.dtype, half_overflows=x._data.size != 1)
    if _records(name, x, None):
        return _rebase(x, add(mul(_old_history(x, copy=False), 0.0), value))
    x._data[...] = value
    bump_version(x._data)
    return x


def fill_(x: Tensor, value) -> Tensor:
    return _fill("fill_", x, value)


def zero_(x: Tensor) -> Tensor:
    return _fill("zero_", x, 0)


# ----------------------------------------------------------------------------- random fills
# Draws come from tinymm's generator (``tinymm.manual_seed``), in float64 then cast, so a
# float32 and a float64 tensor filled after the same seed hold the same numbers.


def _draw_into(name: str, x: Tensor, draw, generator=None) -> Tensor:
    if x.dtype.kind not in "fc":
        raise TypeError(f"{name}: needs a floating tensor, got {x.dtype}")
    arr = draw(backend.rng(x.device, generator), x.shape).astype(x.dtype, copy=False)
    return _fill(name, x, arr)


def normal_(x: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    """Fill with draws from N(mean, std²) in place (from ``generator`` when given)."""
    if not std >= 0:  # NumPy's "scale < 0" ValueError would come from deep inside
        raise RuntimeError(f"normal_ expects std >= 0.0, but found std {std}")
    return _draw_into("normal_", x, lambda g, s: g.normal(mean, std, size=s), generator)


def uniform_(x: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    """Fill with draws from U[a, b) in place (``from``/``to`` in PyTorch's positional order)."""
    if a > b:  # NumPy would draw from (b, a] without a word
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}")
    return _draw_into("uniform_", x, lambda g, s: g.uniform(a, b, size=s), generator)


def exponential_(x: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    return _draw_into("exponential_", x, lambda g, s: g.exponential(1.0 / lambd, size=s), generator)


def bernoulli_(x: Tensor, p=0.5, *, generator=None) -> Tensor:
    """Fill with 1 (probability ``p``, a number or a tensor broadcasting to x) or 0, in place."""
    prob = p._data if isinstance(p, Tensor) else p
    return _draw_into("bernoulli_", x, lambda g, s: (g.random(size=s) < prob).astype(np.float64), generator)


def index_add_(x: Tensor, dim, index, source, *, alpha=1) -> Tensor:
    """``x[..., index[i], ...] += alpha · source[..., i, ...]`` along ``dim``, in place."""
    check_index_add("index_add_", x, dim, index, source)
    if _records("index_add_", x, source):
        return _rebase(x, index_add(_old_history(x, copy=False), dim, index, source, alpha=alpha))
    x._data[...] = index_add(Tensor._wrap(x._data), dim, index, as_tensor(source, "index_add_").detach(), alpha=alpha)._data
    bump_version(x._data)
    return x


# ----------------------------------------------------------------------------- revc: inplace=True of nn ops


def apply_inplace(name: str, fn, x: Tensor) -> Tensor:
    """``fn(x)`` (an out-of-place op) stored into ``x`` with the rules above: a plain write when
    nothing needs a graph, a RuntimeError for a leaf that requires grad, else ``x`` becomes the
    op's output computed from a copy of its old history. Returns ``x``. The ``inplace=True``
    of the activations and dropouts (``name``, e.g. "relu_", names the op in errors)."""
    if _records(name, x, None):
        return _rebase(x, _fits(name, x, fn(_old_history(x, copy=True))))
    x._data[...] = _fits(name, x, fn(Tensor._wrap(x._data)))._data
    bump_version(x._data)
    return x
