"""``torch.func.jvp`` and ``torch.func.linearize``: Jacobian-vector products, J v.

tinymm has no forward-mode autograd, so J v comes from reverse mode by the double-vjp trick:
for a dummy cotangent u (a fresh leaf), g(u) = J^T u is linear in u, and the gradient of
g . v with respect to u is J v. That takes one backward pass recorded with
``create_graph=True`` and one pass through it, so ``func`` must be built of ops whose backward
is differentiable (see ``tinymm.autograd_graph``); an op without one raises, naming it.
The values are those of PyTorch's forward mode; the cost is that of two reverse passes.
Inputs, outputs, nesting and detaching follow ``tinymm.func.transforms``.
"""
from __future__ import annotations

from tinymm import autograd
from tinymm.factories import zeros_like
from tinymm.func.pytree import tree_flatten, tree_unflatten
from tinymm.func.transforms import Traced, check_tensors, split_aux
from tinymm.tensor import Tensor


class _Linearization:
    """``func`` at ``primals`` with g(u) = J^T u recorded for a fresh leaf u per output, ready
    to give J v for any tangents v."""

    def __init__(self, func, primals: tuple, api: str, has_aux: bool = False):
        self.api = api
        self.primal_leaves, self.primal_spec = tree_flatten(primals)
        if not self.primal_leaves:
            raise RuntimeError(f"{api}: Expected primals to contain at least one Tensor.")
        for p in self.primal_leaves:
            if isinstance(p, Tensor) and p.dtype.kind not in "fc":
                raise ValueError(f"Expected primal to be floating point or complex, but got: {p.dtype}")
        tr = self.traced = Traced(func, primals, {}, tuple(range(len(primals))), single=False)
        out, aux = split_aux(tr.output, has_aux, api)
        self.out_leaves, self.out_spec = check_tensors(out, f"{api}: expected f(*primals) to return only tensors")
        self.aux = None
        if has_aux:
            aux_leaves, aux_spec = check_tensors(aux, f"{api}: expected f(*primals) to return only tensors")
            self.aux = tree_unflatten([tr.finish(a) for a in aux_leaves], aux_spec)
        self.us = [tr.fresh_leaf(zeros_like(o.detach())) for o in self.out_leaves]
        self.transposed = tr.pullback(self.out_leaves, self.us, create_graph=True)  # J^T u, per input leaf
        self.value = tree_unflatten([tr.finish(o) for o in self.out_leaves], self.out_spec)

    def products(self, tangent_leaves, strict: bool = False) -> object:
        """J v, shaped as the output, for tangents v given flat (one per primal leaf); with
        ``strict``, an output independent of the inputs raises RuntimeError, as in PyTorch."""
        tr = self.traced
        for v, p in zip(tangent_leaves, self.primal_leaves):
            if not isinstance(v, Tensor):
                raise RuntimeError(f"{self.api}: expected the tangents to be tensors, got unsupported type {type(v)}")
            if tuple(v.shape) != tuple(p.shape):
                raise RuntimeError("Trying to set a forward gradient that has a different size than that of the original "
                                   f"Tensor, this is not supported. Tensor is of size {list(p.shape)} while the given "
                                   f"forward gradient is of size {list(v.shape)}.")
        vs = [v.to(p.dtype) for v, p in zip(tangent_leaves, self.primal_leaves)]
        pairs = [(g, v) for g, v in zip(self.transposed, vs) if g.requires_grad]
        grads = [None] * len(self.us)
        if pairs:
            grads = autograd.grad([g for g, _ in pairs], self.us, [v for _, v in pairs], retain_graph=True,
                                  create_graph=tr.needs_graph(self.out_leaves, vs), allow_unused=True)
        if strict and any(g is None for g in grads):
            raise RuntimeError("jvp(f, primals, tangents, strict=True): The output of f is independent of the inputs. "
                               "This is not allowed with strict=True.")
        jv = [tr.finish(zeros_like(o.detach()) if g is None else g) for o, g in zip(self.out_leaves, grads)]
        return tree_unflatten(jv, self.out_spec)


def jvp(func, primals, tangents, *, strict: bool = False, has_aux: bool = False):
    """``torch.func.jvp``: (func(*primals), J v) for tangents v shaped as the primals (a tuple,
    as ``primals``); with ``has_aux``, ``func`` returns (output, aux) and so does this, plus
    aux: (output, J v, aux). ``strict``: an output that does not depend on the primals
    raises RuntimeError instead of giving zeros."""
    api = "jvp(f, primals, tangents)"
    if not isinstance(primals, tuple):
        raise RuntimeError(f"{api}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals).")
    p_spec, t_spec = tree_flatten(primals)[1], tree_flatten(tangents)[1]
    if p_spec != t_spec:
        raise RuntimeError(f"{api}: Expected primals and tangents to have the same python structure. For example, if "
                           f"primals is a tuple of 3 tensors, tangents also must be. Got primals with structure {p_spec} "
                           f"and tangents with structure {t_spec}")
    lin = _Linearization(func, primals, api, has_aux)
    jv = lin.products(tree_flatten(tangents)[0], strict)
    lin.traced.retire()
    return (lin.value, jv, lin.aux) if has_aux else (lin.value, jv)


def linearize(func, *primals):
    """``torch.func.linearize``: (func(*primals), jvp_fn), where ``jvp_fn(*tangents)`` gives
    J v at these primals without running ``func`` again (its recorded graph is reused)."""
    api = "linearize(f, *primals)"
    lin = _Linearization(func, primals, api)
    lin.traced.retire()

    def jvp_fn(*tangents):
        t_leaves, t_spec = tree_flatten(tangents)
        if t_spec != lin.primal_spec:
            raise RuntimeError(f"Expected the tangents {t_spec} to have the same argspec as the primals {lin.primal_spec}")
        return lin.products(t_leaves)

    return lin.value, jvp_fn
