"""PyTorch's keyword names for the ops whose tinymm parameters are named otherwise.

PyTorch code passes operands by keyword more often than one would guess: MAE's
``imgs.reshape(shape=(N, 3, h, p, w, p))``, ``x.view(size=...)``, ``x.permute(dims=...)``,
``torch.gather(input=x, dim=1, index=i)``, ``torch.add(input=a, other=b)``, ``x.pow(exponent=2)``.
tinymm's ops name their operands ``x`` / ``a`` / ``b`` and take shapes as ``*shape``, which
Python cannot also accept as a keyword. This module puts a thin front on exactly those ops:

- top-level functions (``tinymm.<name>``, the ``*_like`` factories, and the few
  ``nn.functional`` ones tinymm shares with the ops: gelu, one_hot, relu_, selu_) take ``input=``
  for their first operand (PyTorch's name on every function whose tinymm name is ``x``, ``a`` or ``t``), and ``other=`` (``exponent=`` for pow)
  for the second operand of the binary ops; ``torch.where(condition, input=, other=)``;
- Tensor methods take ``other=`` / ``exponent=`` the same way;
- the shape-taking ops take their sequence by PyTorch's keyword: ``reshape(shape=)``,
  ``view(size=)``, ``expand(size=)``, ``permute(dims=)``, ``repeat(repeats=)``, ``tile(dims=)``,
  ``broadcast_to(size=)``.

Giving an operand both positionally and by keyword is a TypeError, as in PyTorch. A call with no
keywords goes straight to the op (one ``if``), so the hot paths pay next to nothing, and the
operators (``a + b``, ``x[i]``) are not wrapped at all.
"""
from __future__ import annotations

import functools
import inspect

# binary ops whose second operand PyTorch names ``other`` (or ``exponent``), and tinymm ``b``
_SECOND = {"pow": "exponent", "float_power": "exponent", "tensordot": None}
# top-level functions whose first operand PyTorch names other than ``input``
_FIRST = {"split": "tensor", "tensordot": "a"}
# method keywords PyTorch names otherwise than the function: Tensor.split(split_size, dim)
_METHOD = {"split": {"split_size": "split_size_or_sections"}}
# shape-taking ops: PyTorch's keyword for the sequence tinymm takes as *args
VARARGS = {"reshape": "shape", "view": "size", "expand": "size", "permute": "dims", "repeat": "repeats",
           "tile": "dims", "broadcast_to": "size"}


def _renames(fn, name: str, top_level: bool) -> dict:
    """{PyTorch keyword: tinymm parameter or the position it goes to} for ``fn`` called as ``name``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return {}
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    out = {}
    if top_level and positional and positional[0].name in ("x", "a", "t") and _FIRST.get(name) != positional[0].name:
        out[_FIRST.get(name, "input")] = 0
    if not top_level:
        out.update(_METHOD.get(name, {}))
    if name == "where" and [p.name for p in positional[:3]] == ["condition", "a", "b"]:
        out.update(input="a", other="b")
    elif len(positional) > 1 and positional[1].name == "b" and positional[0].name == "a":
        second = _SECOND.get(name, "other")
        if second is not None:
            out[second] = "b"
    return out


def with_torch_keywords(fn, name: str, top_level: bool):
    """``fn`` accepting PyTorch's keyword names (see the module docstring); ``fn`` itself when it
    needs none."""
    renames = _renames(fn, name, top_level)
    seq_kw = VARARGS.get(name)
    if not renames and seq_kw is None:
        return fn

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if not kwargs:
            return fn(*args)
        for torch_name, ours in renames.items():
            if torch_name not in kwargs:
                continue
            value = kwargs.pop(torch_name)
            if ours == 0:
                if args:
                    raise TypeError(f"{name}() got multiple values for argument '{torch_name}'")
                args = (value,)
            else:
                kwargs[ours] = value
        if seq_kw is not None and seq_kw in kwargs:
            if len(args) != 1:
                raise TypeError(f"{name}() got multiple values for argument '{seq_kw}'")
            args = (args[0], kwargs.pop(seq_kw))
        return fn(*args, **kwargs)

    return call


def install(namespace: dict, names, tensor_cls=None) -> None:
    """Give the functions ``names`` in ``namespace`` (a module's globals) and, when given,
    ``tensor_cls``'s methods PyTorch's keyword names."""
    for n in names:
        fn = namespace.get(n)
        if callable(fn) and not isinstance(fn, type) and not n.startswith("_"):
            namespace[n] = with_torch_keywords(fn, n, top_level=True)
    for n, fn in list(vars(tensor_cls).items()) if tensor_cls is not None else ():
        if n.startswith("_") or not inspect.isfunction(fn):
            continue
        wrapped = with_torch_keywords(fn, n, top_level=False)
        if wrapped is not fn:
            setattr(tensor_cls, n, wrapped)
