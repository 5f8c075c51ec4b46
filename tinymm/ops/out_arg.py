"""PyTorch's ``out=`` keyword on the top-level functions (``torch.add(a, b, out=c)``,
``torch.max(x, 1, out=(values, indices))``).

The op runs as usual and its result is written into ``out``, which is returned:

- a result of the same shape is copied into ``out``'s memory (views of ``out`` see it);
- an empty ``out`` takes the result's shape; a non-empty one of another shape is resized too,
  with PyTorch's warning (its old memory is left to whatever still views it);
- the result is cast to ``out``'s dtype when that is a safe or same-kind cast; a floating
  result refuses an integer ``out`` (RuntimeError, as PyTorch);
- with grad mode on and an argument that requires grad, RuntimeError: PyTorch's functions with
  ``out=`` don't support automatic differentiation.

Only the top-level names get the keyword (``tinymm.add``, not ``Tensor.add``, as in PyTorch);
the wrapper lives in front of the op, so the ops themselves and their internal callers pay
nothing. Shape and view ops (reshape, transpose, split...) take no ``out=``, as in PyTorch.
"""
from __future__ import annotations

import functools
import warnings

from tinymm import autograd
from tinymm.ops._util import check_fits
from tinymm.tensor import Tensor, bump_version

# Top-level exports that take no out= in PyTorch: views, splits, and ops without a fixed result.
NO_OUT = frozenset("""
    reshape view flatten unflatten permute transpose swapaxes swapdims movedim moveaxis squeeze
    unsqueeze expand expand_as split chunk tensor_split hsplit vsplit dsplit unbind narrow select
    diagonal t adjoint broadcast_to broadcast_tensors meshgrid atleast_1d atleast_2d atleast_3d
    unique unique_consecutive nonzero_static as_strided view_as_real view_as_complex real imag
    numel is_tensor is_floating_point is_nonzero result_type can_cast promote_types equal allclose
    split_with_sizes detach clone einsum normal dropout isin histogram
""".split())


def _write(name: str, out: Tensor, result: Tensor) -> None:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    src = result._data
    if src.dtype != out._data.dtype:
        check_fits(src.dtype, out._data.dtype)
        src = src.astype(out._data.dtype)
    if src.shape == out._data.shape:
        out._data[...] = src
    else:
        if out._data.size:
            warnings.warn(
                f"An output with one or more elements was resized since it had shape {list(out.shape)}, which does "
                f"not match the required output shape {list(src.shape)}. This behavior is deprecated, and in a "
                "future PyTorch release outputs will not be resized unless they have zero elements. You can "
                "explicitly reuse an out tensor t by resizing it, inplace, to zero elements with t.resize_(0).",
                UserWarning, stacklevel=3)
        out._data = src.copy() if src is result._data else src
    bump_version(out._data)


def with_out(fn, name: str):
    """``fn`` accepting PyTorch's ``out=`` keyword (see the module docstring)."""

    @functools.wraps(fn)
    def call(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        if autograd.is_grad_enabled() and any(
                isinstance(a, Tensor) and a.requires_grad
                for a in (*args, *kwargs.values(), *(out if isinstance(out, (tuple, list)) else (out,)))):
            raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic "
                               "differentiation, but one of the arguments requires grad.")
        result = fn(*args, **kwargs)
        if isinstance(result, Tensor):
            if isinstance(out, (tuple, list)):
                raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
            _write(name, out, result)
            return out
        parts = tuple(result)
        if not isinstance(out, (tuple, list)) or len(out) != len(parts):
            raise TypeError(f"{name}(): argument 'out' must be a tuple of {len(parts)} Tensors")
        for o, r in zip(out, parts):
            _write(name, o, r)
        return type(result)(*out) if hasattr(result, "_fields") else tuple(out)

    return call


def install(namespace: dict, names) -> None:
    """Replace each top-level function ``names`` in ``namespace`` by its ``out=`` form."""
    for n in names:
        fn = namespace.get(n)
        if callable(fn) and n not in NO_OUT and not isinstance(fn, type) and not n.startswith("_"):
            namespace[n] = with_out(fn, n)

