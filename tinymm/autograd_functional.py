"""``torch.autograd.functional``: Jacobians, Hessians and the products with them, built on
``autograd.grad`` (reverse mode; the second-order ones on ``create_graph=True``, so they work
through the ops that have a differentiable backward: see ``tinymm.autograd_graph``).

    vjp(f, x, v)      v^T J            one backward pass
    jvp(f, x, v)      J v              the double-vjp trick: u -> J^T u is linear in u, and its
                                       gradient with respect to u, weighted by v, is J v
    jacobian(f, x)    J                one backward pass per output element
    vhp(f, x, v)      v^T H            the gradient of (grad f . v)
    hvp(f, x, v)      H v              equal to v^T H (H is symmetric for twice-differentiable f)
    hessian(f, x)     H                the Jacobian of the gradient

``inputs`` is a Tensor or a tuple of Tensors, and results follow PyTorch's nesting: a Tensor
where the function took and returned one Tensor, tuples where it took or returned tuples
(``jacobian``'s result indexed [output][input], each block shaped output.shape + input.shape).
The inputs are differentiated through fresh views of them; with ``create_graph=False`` the
results are detached, with ``create_graph=True`` they stay in the graph, reaching the caller's
inputs. An output that does not depend on an input gives zeros, or with ``strict=True`` a
RuntimeError, as in PyTorch.
"""
from __future__ import annotations

from tinymm import autograd
from tinymm.ops.shape import stack
from tinymm.tensor import Tensor


def _as_tuple(x, what: str, fn: str):
    """(tuple of Tensors, whether x was a tuple)."""
    is_tuple = isinstance(x, (tuple, list))
    items = tuple(x) if is_tuple else (x,)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: the {what} must be a Tensor or a tuple of Tensors, but {what} {i} is "
                            f"{type(t).__name__}")
    return items, is_tuple


def _prepare(inputs, create_graph: bool):
    """Views of the inputs to differentiate: in the caller's graph when create_graph (and they
    require grad), else detached."""
    out = []
    for t in inputs:
        if create_graph and t.requires_grad:
            out.append(t.view_as(t))
        else:
            out.append(t.detach().requires_grad_(True))
    return tuple(out)


def _finish(ts, create_graph: bool):
    return tuple(t if t is None or create_graph else t.detach() for t in ts)


def _zeros_for_unused(grads, like, strict: bool, fn: str, which: str):
    out = []
    for i, (g, x) in enumerate(zip(grads, like)):
        if g is None:
            if strict:
                raise RuntimeError(f"{fn}: the output of the user-provided function is independent of input {i} "
                                   f"({which}); this is not allowed in strict mode")
            g = x.detach() * 0
        out.append(g)
    return tuple(out)


def _check_outputs(outputs, fn: str, strict: bool):
    for i, o in enumerate(outputs):
        if strict and not o.requires_grad:
            raise RuntimeError(f"Output {i} of the user-provided function does not require gradients. The outputs "
                               "must be computed in a differentiable manner from the input when running in strict mode.")


def _grad(outputs, inputs, grad_outputs, create_graph: bool):
    """autograd.grad over the outputs that are in a graph (None ones skipped); None for inputs
    they do not reach."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    return autograd.grad([o for o, _ in pairs], inputs, [g for _, g in pairs], retain_graph=True,
                         create_graph=create_graph, allow_unused=True)


def _vector(v, like, fn: str, what: str, when_none: str):
    """The v of a product, as a tuple shaped like ``like`` (the function's inputs or outputs);
    None only where ``like`` is one 1-element Tensor (v = 1 then), as in PyTorch."""
    if v is None:
        if len(like) != 1 or like[0].numel() != 1:
            raise RuntimeError(f"{fn}: the vector v can only be None if {when_none} a single Tensor with a single element")
        return (like[0].detach() * 0 + 1,)
    vs, _ = _as_tuple(v, "v", fn)
    if len(vs) != len(like):
        raise RuntimeError(f"{fn}: v has {len(vs)} Tensors, the {what} has {len(like)}")
    for i, (a, b) in enumerate(zip(vs, like)):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(f"{fn}: v {i} has shape {tuple(a.shape)}, the {what} {i} has {tuple(b.shape)}")
    return vs


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T J): the vector-Jacobian product; v may be omitted for a 1-element output."""
    xs, in_tuple = _as_tuple(inputs, "inputs", "vjp")
    with autograd.enable_grad():
        xs = _prepare(xs, create_graph)
        outputs, out_tuple = _as_tuple(func(*xs), "outputs of the user-provided function", "vjp")
        _check_outputs(outputs, "vjp", strict)
        vs = _vector(v, outputs, "vjp", "output", "the user-provided function returns")
        grads = _zeros_for_unused(_grad(outputs, xs, vs, create_graph), xs, strict, "vjp", "vjp")
    outs, grads = _finish(outputs, create_graph), _finish(grads, create_graph)
    return (outs if out_tuple else outs[0]), (grads if in_tuple else grads[0])


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J v): the Jacobian-vector product; v may be omitted for a 1-element input."""
    xs, in_tuple = _as_tuple(inputs, "inputs", "jvp")
    vs = _vector(v, xs, "jvp", "input", "the input to the user-provided function is")
    with autograd.enable_grad():
        xs = _prepare(xs, create_graph)
        outputs, out_tuple = _as_tuple(func(*xs), "outputs of the user-provided function", "jvp")
        _check_outputs(outputs, "jvp", strict)
        us = tuple((o.detach() * 0).requires_grad_(True) for o in outputs)  # J^T u is linear in u
        g = _grad(outputs, xs, us, create_graph=True)
        jv = _zeros_for_unused(_grad(g, us, vs, create_graph), outputs, strict, "jvp", "jvp")
    outs, jv = _finish(outputs, create_graph), _finish(jv, create_graph)
    return (outs if out_tuple else outs[0]), (jv if out_tuple else jv[0])


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    """The Jacobian of func at inputs, one backward pass per output element (``vectorize``
    changes nothing here; ``strategy`` must be "reverse-mode" or "forward-mode", which gives the
    same values)."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f'jacobian: expected strategy to be either "forward-mode" or "reverse-mode", got {strategy!r}')
    xs, in_tuple = _as_tuple(inputs, "inputs", "jacobian")
    with autograd.enable_grad():
        xs = _prepare(xs, create_graph)
        outputs, out_tuple = _as_tuple(func(*xs), "outputs of the user-provided function", "jacobian")
        _check_outputs(outputs, "jacobian", strict)
        blocks = []
        for i, out in enumerate(outputs):
            flat = out.reshape(-1)
            rows = [[] for _ in xs]
            for j in range(flat.numel()):
                g = _grad((flat[j],), xs, (None,), create_graph) if out.requires_grad else (None,) * len(xs)
                g = _zeros_for_unused(g, xs, strict, "jacobian", f"output {i}")
                for k, gk in enumerate(g):
                    rows[k].append(gk.reshape(-1))
            per_input = []
            for k, x in enumerate(xs):
                shape = tuple(out.shape) + tuple(x.shape)
                # (no rows: the output has no elements, so neither has its block)
                block = stack(rows[k]).reshape(shape) if rows[k] else x.detach().reshape(-1)[:0].reshape(shape)
                per_input.append(block if create_graph else block.detach())
            blocks.append(tuple(per_input) if in_tuple else per_input[0])
    return tuple(blocks) if out_tuple else blocks[0]


def hessian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of a function returning one element: the Jacobian of its gradient. With
    several inputs, a tuple of tuples, [i][j] shaped inputs[i].shape + inputs[j].shape."""
    xs, in_tuple = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*ys):
        out = func(*ys)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should contain a single element")
        g = _grad((out.reshape(()),), ys, (None,), create_graph=True)
        return _zeros_for_unused(g, ys, strict, "hessian", "gradient")

    result = jacobian(gradient, xs, create_graph=create_graph, strict=strict, strategy=outer_jacobian_strategy)
    return result if in_tuple else result[0][0]


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T H) for a function returning one element."""
    xs, in_tuple = _as_tuple(inputs, "inputs", "vhp")
    vs = _vector(v, xs, "vhp", "input", "the input to the user-provided function is")
    with autograd.enable_grad():
        xs = _prepare(xs, create_graph)
        out = func(*xs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hvp should contain a single element")
        _check_outputs((out,), "vhp", strict)
        g = _zeros_for_unused(_grad((out.reshape(()),), xs, (None,), create_graph=True), xs, strict, "vhp", "gradient")
        hv = _zeros_for_unused(_grad(g, xs, vs, create_graph), xs, strict, "vhp", "vhp")
    out, = _finish((out,), create_graph)
    hv = _finish(hv, create_graph)
    return out, (hv if in_tuple else hv[0])


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H v): H is symmetric, so this is ``vhp``'s product."""
    return vhp(func, inputs, v, create_graph=create_graph, strict=strict)
