"""Floor 3: ``torch.autograd.forward_ad`` — dual tensors, on top of reverse mode.

    with fwAD.dual_level():
        x = fwAD.make_dual(primal, tangent)      # a tensor that carries a tangent
        y = f(x)
        jvp = fwAD.unpack_dual(y).tangent         # J_f(primal) · tangent

tinymm has no forward-mode engine; ``unpack_dual`` gets J v from reverse mode by the double-vjp
trick that ``tinymm.func.jvp`` uses (for a fresh leaf u, g(u) = Jᵀu is linear in u and the
gradient of g·v with respect to u is J v), summed over every dual of the level that ``y``
depends on. The values are those of PyTorch's forward mode; the differences:

* a dual records a reverse graph: ``make_dual`` of a tensor that does not require grad gives a
  fresh leaf that does (PyTorch's dual does not), and ops run under ``no_grad`` carry no
  tangent (PyTorch's forward mode ignores grad mode);
* a custom Function's ``jvp`` is not called: its (differentiable) ``backward`` is used;
* each ``unpack_dual`` of a computed tensor costs two reverse passes.

One level at a time, as PyTorch ("Nested forward mode AD is not supported at the moment").
"""
from __future__ import annotations

import contextlib
from typing import NamedTuple

from tinymm import autograd
from tinymm.tensor import Tensor

__all__ = ["UnpackedDualTensor", "dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual"]

_levels: list = []  # open levels: each {id(dual): (dual, tangent)}; at most one


class UnpackedDualTensor(NamedTuple):
    primal: Tensor
    tangent: Tensor | None


def enter_dual_level() -> int:
    """Open a dual level; returns its index (0)."""
    if _levels:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _levels.append({})
    return len(_levels) - 1


def exit_dual_level(*, level=None) -> None:
    """Close the level: its duals keep their values and lose their tangents."""
    if not _levels or (level is not None and level != len(_levels) - 1):
        raise RuntimeError("Trying to exit a forward AD level that was not the last one that was created. "
                           "This is not supported.")
    _levels.pop()


@contextlib.contextmanager
def dual_level():
    """A context in which dual tensors exist (``make_dual`` / ``unpack_dual``)."""
    level = enter_dual_level()
    try:
        yield level
    finally:
        exit_dual_level(level=level)


def make_dual(tensor: Tensor, tangent: Tensor, *, level=None) -> Tensor:
    """``tensor`` carrying ``tangent`` (same shape; cast to its dtype) in the current level."""
    if not _levels:
        raise RuntimeError("Trying to create a dual Tensor for forward AD but no level exists, make sure to "
                           "enter_dual_level() first.")
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError(f"make_dual: expected Tensors, got {type(tensor).__name__} and {type(tangent).__name__}")
    if tensor.dtype.kind not in "fc":
        raise ValueError(f"Expected primal to be floating point or complex, but got: {tensor.dtype}")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError("Trying to set a forward gradient that has a different size than that of the original "
                           f"Tensor, this is not supported. Tensor is of size {list(tensor.shape)} while the given "
                           f"forward gradient is of size {list(tangent.shape)}.")
    # a node of its own (a view of a tensor that requires grad keeps its reverse-mode graph)
    dual = tensor.view_as(tensor) if tensor.requires_grad else tensor.detach().requires_grad_()
    _levels[-1][id(dual)] = (dual, tangent if tangent.dtype == tensor.dtype else tangent.to(tensor.dtype))
    return dual


def unpack_dual(tensor: Tensor, *, level=None) -> UnpackedDualTensor:
    """(primal, tangent) of ``tensor``: the tangent given to ``make_dual`` for a dual, J v for a
    tensor computed from duals (None when it depends on none, or outside a level)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"unpack_dual: expected a Tensor, got {type(tensor).__name__}")
    primal = tensor.detach() if not tensor.requires_grad else tensor.view_as(tensor)
    if not _levels:
        return UnpackedDualTensor(primal, None)
    duals = _levels[-1]
    if id(tensor) in duals and duals[id(tensor)][0] is tensor:
        return UnpackedDualTensor(primal, duals[id(tensor)][1])
    if not tensor.requires_grad or not duals or tensor.dtype.kind not in "fc":
        return UnpackedDualTensor(primal, None)
    inputs = [d for d, _ in duals.values()]
    u = tensor.detach().new_zeros(tuple(tensor.shape)).requires_grad_()
    transposed = autograd.grad(tensor, inputs, u, create_graph=True, allow_unused=True)
    pairs = [(g, v) for g, (_, v) in zip(transposed, duals.values()) if g is not None and g.requires_grad]
    if not pairs:
        return UnpackedDualTensor(primal, None)
    (jv,) = autograd.grad([g for g, _ in pairs], [u], [v for _, v in pairs], allow_unused=True)
    return UnpackedDualTensor(primal, None if jv is None else jv.detach())
