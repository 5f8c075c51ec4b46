"""Floor 3: the second engine path, for ``create_graph=True`` (higher-order gradients).

``autograd.run_backward`` moves raw arrays through each op's array ``backward``, with
recording off: fast, and not differentiable. When the caller asks for a gradient that is
itself differentiable (``autograd.grad(..., create_graph=True)``, ``backward(create_graph=True)``),
``autograd`` hands the walk to :func:`run_backward_graph` here instead. The walk is the same
(one topological order, each node once, newest first, its consumers' gradients summed; hooks,
``retain_grad``, capture for ``grad``), but:

* gradients are Tensors, and grad mode is on while each node's backward runs, so the backward
  computation is recorded like any forward computation and can be differentiated again;
* each node runs its Function's ``backward_graph(ctx, *grad_tensors)``: the same formula as the
  array ``backward``, written with Tensor ops. An input that requires grad is used as the Tensor
  in ``ctx.inputs`` (so a second derivative reaches it); one that does not is wrapped, as a
  constant, from what forward saved; a saved output is rebuilt as a Tensor whose node is the
  op itself (:func:`node_output`), so its dependence on the inputs is kept;
* a Function without ``backward_graph`` runs its array ``backward`` (the first-order values are
  right) and its gradients come out of a node that raises ``NotImplementedError`` naming the
  op (``create_graph=True: ConvFnBackward0 has no differentiable backward in tinymm``) as soon
  as a later backward reaches it, as PyTorch does for an op without a double backward: a
  gradient used only as a value works, a second derivative through that op never comes out
  wrong. ``backward_graph`` may return ``NotImplemented`` for a case it does not cover, with
  the same result;
* a leaf's contributions are summed and stored as a recorded clone, graph and all
  (``x.grad.grad_fn`` is set, as in PyTorch); a gradient already there is added out of place.

Saved arrays are read through ``ctx.saved_arrays``, so an in-place change since forward raises
the version error exactly as on the array path.
"""
from __future__ import annotations

import numpy as np

from tinymm.grad_fn import backward_name
from tinymm.tensor import Tensor


def node_output(ctx, arr, index: int = 0) -> Tensor:
    """The output ``index`` of the op recorded in ``ctx``, rebuilt from the saved array ``arr``
    as a Tensor whose node is ``ctx`` itself: a formula that uses the output (tanh' = 1 − y²)
    stays differentiable with respect to the op's inputs."""
    t = Tensor._wrap(arr)
    t.requires_grad = True
    t._node = (ctx, index)
    return t


def operand(ctx, i: int, arr):
    """Input ``i`` of ``ctx``'s op: the recorded Tensor when it requires grad, else ``arr``
    (what forward saved: an array, a Python scalar or None) wrapped as a constant."""
    t = ctx.inputs[i] if i < len(ctx.inputs) else None
    if t is not None:
        return t
    if arr is None or not hasattr(arr, "shape") or isinstance(arr, np.generic):
        return arr
    return Tensor._wrap(arr)


def checked_operand(ctx, i: int, arr):
    """``operand(ctx, i, arr)`` for a formula that reads the input's values again: when forward
    saved a copy ``arr`` of the input (not contiguous), the copy's version says nothing about
    the input, so an in-place change since forward is found by comparing the values, and
    raises as the version check does."""
    t = operand(ctx, i, arr)
    if t is ctx.inputs[i] and t is not None:
        xp = np
        if type(arr) is not np.ndarray:
            import cupy as xp
        if not xp.may_share_memory(arr, t._data) and \
                not xp.array_equal(t._data.reshape(arr.shape), arr, equal_nan=True):
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: input {i} of {ctx.fn.__name__}Backward0 changed after forward. Make the change on "
                "a clone(), or after backward().")
    return t


def pair(ctx):
    """A binary op's two operands as ``operand`` gives them, from its first two saved items."""
    a, b = ctx.saved_arrays[:2]
    return operand(ctx, 0, a), operand(ctx, 1, b)


def sum_to(g: Tensor, shape) -> Tensor:
    """``g`` summed over the axes broadcasting added or stretched, giving ``shape`` (the
    Tensor-level ``unbroadcast``)."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1)
    if axes:
        g = g.sum(dim=axes, keepdim=True)
    return g.reshape(shape)


def as_dtype(d, dtype):
    """``d`` (a Tensor or a number) in ``dtype``: a derivative factor computed in another type
    (a float64 constant, a bool mask) is cast as the array path's ``astype`` casts it."""
    if isinstance(d, Tensor) and d.dtype != dtype:
        return d.to(dtype)
    return d


def _zeros_array(like, shape, dtype):
    if type(like) is np.ndarray or isinstance(like, np.generic):
        return np.zeros(shape, dtype)
    import cupy

    return cupy.zeros(shape, dtype)


def _run_hooks(t, g: Tensor) -> Tensor:
    for hook in list(t._hooks):
        r = hook(g)
        if r is not None:
            if not isinstance(r, Tensor):
                r = Tensor._wrap(r)
            if tuple(r.shape) != tuple(g.shape):
                raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} returned a gradient of shape "
                                   f"{tuple(r.shape)}, expected {tuple(g.shape)}")
            g = r
    return g


def accumulate_leaf(t, g: Tensor, post_hooks) -> None:
    """``t.grad`` becomes a recorded clone of ``g`` (its own storage, graph kept: ``g`` may be a
    broadcast view or another tensor's gradient, and a later plain backward adds into ``.grad``
    in place), or ``t.grad + g`` out of place, as PyTorch's AccumulateGrad does under
    ``create_graph``; then ``t``'s post-accumulate hooks (``post_hooks``: autograd's
    ``id(t) -> (t, hooks)``) run."""
    t.grad = g.clone() if t.grad is None else t.grad + g
    hooks = post_hooks
    if hooks and id(t) in hooks:
        for hook in list(hooks[id(t)][1]):
            hook(t)


def _seed(root, grad) -> Tensor:
    data = root._data
    if grad is None:
        if data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for a single-element output, "
                f"this one has shape {tuple(root.shape)}; pass grad= of that shape")
        return Tensor._wrap(_zeros_array(data, data.shape, data.dtype) + 1)
    g = grad if isinstance(grad, Tensor) else Tensor._wrap(grad)
    if tuple(g.shape) != tuple(data.shape):
        raise ValueError(f"backward: grad has shape {tuple(g.shape)}, expected {tuple(data.shape)}")
    if type(g._data) is not type(data):
        raise ValueError("backward: grad is on a different device than the tensor")
    return g if g.dtype == data.dtype else g.to(data.dtype)


def run_backward_graph(root, grad, retain_graph: bool, capture, *, plan_of, post_hooks, nan_check,
                       first_order_only) -> None:
    """``autograd.run_backward`` with differentiable gradients (see the module docstring);
    ``capture`` as there, its slots receiving Tensors. ``autograd`` calls this with grad mode
    on and hands in its pieces (this module does not import it): ``plan_of(ctx, capture)`` the
    topological order and the nodes to run (None: all), ``post_hooks`` its post-accumulate hooks, ``nan_check(name, arrays)``
    anomaly mode's check or None, ``first_order_only(ctx, out_grads)`` the gradients of an op
    without a formula, as Tensors that raise when differentiated again."""
    if not root.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad and has no graph behind it")
    g = _seed(root, grad)
    if root._node is None:
        if root._hooks:
            g = _run_hooks(root, g)
        if capture is None:
            accumulate_leaf(root, g, post_hooks)
        elif id(root) in capture:
            capture[id(root)][1] = g
        return
    root_ctx, root_idx = root._node
    # For ``grad``: only the nodes through which a captured tensor is reached run (as in
    # PyTorch), so an op without a formula on another branch is no error.
    order, needed = plan_of(root_ctx, capture)
    pending = {id(root_ctx): [None] * root_ctx.n_outputs}
    pending[id(root_ctx)][root_idx] = g
    watched, leaves = {}, {}
    if root._hooks or root._retain_grad or (capture is not None and id(root) in capture):
        watched[id(root_ctx)] = {root_idx: root}
    for ctx in reversed(order):
        out_grads = pending.pop(id(ctx), None)
        if out_grads is None:
            continue
        for i, t in watched.pop(id(ctx), {}).items():
            if out_grads[i] is None:
                continue
            if t._hooks:
                out_grads[i] = _run_hooks(t, out_grads[i])
            if capture is not None:
                if id(t) in capture:
                    capture[id(t)][1] = out_grads[i]
            elif t._retain_grad:
                accumulate_leaf(t, out_grads[i], post_hooks)
        if needed is not None and id(ctx) not in needed:
            continue
        if ctx.n_outputs > 1:
            like = next(x for x in out_grads if x is not None)
            for i, og in enumerate(out_grads):
                if og is None:
                    out_grads[i] = Tensor._wrap(_zeros_array(like._data, *ctx.out_meta[i]))
        formula = getattr(ctx.fn, "backward_graph", None)
        in_grads = NotImplemented if formula is None else formula(ctx, *out_grads)
        if in_grads is NotImplemented:  # no formula (for this op or this case)
            in_grads = first_order_only(ctx, out_grads)
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        if nan_check is not None:
            nan_check(backward_name(ctx), [None if x is None else x._data for x in in_grads])
        for t, node, ig in zip(ctx.inputs, ctx.input_nodes, in_grads):
            if t is None or ig is None:
                continue
            if tuple(ig.shape) != tuple(t.shape) or ig.dtype != t.dtype:
                raise RuntimeError(
                    f"internal error: {ctx.fn.__name__}.backward_graph returned a {ig.dtype} gradient of "
                    f"shape {tuple(ig.shape)} for a {t.dtype} input of shape {tuple(t.shape)}")
            if node is None:
                if capture is not None and id(t) not in capture:
                    continue
                # every leaf's contributions are summed first and accumulated once at the end
                prev = leaves.get(id(t))
                leaves[id(t)] = (t, ig if prev is None else prev[1] + ig)
                continue
            parent, i = node
            if t._hooks or t._retain_grad or (capture is not None and id(t) in capture):
                watched.setdefault(id(parent), {})[i] = t
            slot = pending.get(id(parent))
            if slot is None:
                slot = pending[id(parent)] = [None] * parent.n_outputs
            slot[i] = ig if slot[i] is None else slot[i] + ig
        if not retain_graph:
            ctx.saved = ()
            ctx.freed = True
    for t, g in leaves.values():
        g = _run_hooks(t, g) if t._hooks else g
        if capture is None:
            accumulate_leaf(t, g, post_hooks)
        else:
            capture[id(t)][1] = g
