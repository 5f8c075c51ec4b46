"""A module's parameters and buffers as arguments: ``functional_call`` and ``stack_module_state``.

``functional_call(module, {name: tensor}, args)`` runs ``module(*args)`` with the given tensors
standing where the named parameters and buffers (dotted names, as ``named_parameters()``)
were, and puts the originals back afterwards, also when the call raises. The substitutes are
written into the module's registries directly (a plain Tensor may stand for a Parameter, as
in PyTorch), so gradients of the result flow to them, not to the module's own parameters:
this is how ``grad(loss)(params, x, y)``, per-sample gradients and MAML are written.

It works on any object with ``named_parameters``/``named_buffers`` and the ``_parameters``/
``_buffers`` registries of ``tinymm.nn.Module`` (it imports nothing from nn).
"""
from __future__ import annotations

from tinymm.ops.shape import stack

_MISSING = object()


def _owner(module, name: str):
    """(the submodule holding ``name``, the last part of the name)."""
    *path, leaf = name.split(".")
    owner = module
    for part in path:
        owner = getattr(owner, part)  # AttributeError naming the part, as PyTorch
    return owner, leaf


def _is_property(owner, leaf: str) -> bool:
    """A name served by a property of the class (a parametrized tensor, whose setter stores
    ``right_inverse(value)`` in its original): read and written through it, as PyTorch."""
    return isinstance(getattr(type(owner), leaf, None), property)


def _get(module, name: str):
    owner, leaf = _owner(module, name)
    for registry in (owner._parameters, owner._buffers):
        if leaf in registry:
            return registry[leaf]
    if _is_property(owner, leaf):
        return getattr(owner, leaf)
    return owner.__dict__.get(leaf, _MISSING)


def _put(module, name: str, value) -> None:
    """Write ``value`` (a Tensor, None, or _MISSING to remove a plain attribute) at ``name``."""
    owner, leaf = _owner(module, name)
    for registry in (owner._parameters, owner._buffers):
        if leaf in registry:
            registry[leaf] = value
            object.__setattr__(owner, leaf, value)
            return
    if _is_property(owner, leaf):
        setattr(owner, leaf, value)
    elif value is _MISSING:
        owner.__dict__.pop(leaf, None)
    else:
        object.__setattr__(owner, leaf, value)


def _all_names(module) -> dict:
    named = dict(module.named_parameters(remove_duplicate=False))
    named.update(module.named_buffers(remove_duplicate=False))
    return named


def _untie(module, given: dict) -> dict:
    """``given`` with every name tied (the same tensor) to a given name added, with its value;
    two different values for one tied tensor raise ValueError, as PyTorch."""
    by_tensor: dict = {}
    for name, t in _all_names(module).items():
        by_tensor.setdefault(id(t), set()).add(name)
    out = dict(given)
    for group in by_tensor.values():
        if len(group) < 2:
            continue
        supplied = [n for n in sorted(group) if n in given]
        if not supplied:
            continue
        if len({id(given[n]) for n in supplied}) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(group)}, which are tied. "
                             "Consider using tie_weights=False")
        for n in group:
            out[n] = given[supplied[0]]
    return out


def _merged(parameter_and_buffer_dicts) -> dict:
    if isinstance(parameter_and_buffer_dicts, dict):
        return parameter_and_buffer_dicts
    if not isinstance(parameter_and_buffer_dicts, (list, tuple)):
        raise ValueError("Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but got "
                         f"{type(parameter_and_buffer_dicts)}")
    if not all(isinstance(d, dict) for d in parameter_and_buffer_dicts):
        raise ValueError("Expected all elements of parameter_and_buffer_dicts to be dictionaries")
    seen, repeated = set(), set()
    for d in parameter_and_buffer_dicts:
        repeated |= seen & set(d)
        seen |= set(d)
    if repeated:
        raise ValueError(f"{sorted(repeated)} appeared in multiple dictionaries; behavior of functional call is ambiguous")
    return {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *, tie_weights: bool = True,
                    strict: bool = False):
    """``torch.func.functional_call``: ``module(*args, **kwargs)`` with the tensors of
    ``parameter_and_buffer_dicts`` (a dict, or a tuple/list of dicts with no key in two of
    them) in place of the parameters and buffers they name; the originals are restored after.

    ``args`` that is not a tuple is the one positional argument. ``tie_weights``: a value given
    for one of several names sharing a tensor stands for all of them (two different values
    raise ValueError). ``strict``: the names must be exactly the module's parameters and
    buffers, else RuntimeError listing the unexpected and missing keys. Names that are
    neither (without ``strict``) are set as plain attributes for the call, then removed; a
    parametrized name (``weight`` rather than ``parametrizations.weight.original``) is
    assigned through its property, so its ``right_inverse`` sets the original, and the old
    value is assigned back after, as PyTorch does. When a single dict is given, a tensor the module re-assigned during the call (a buffer
    set anew) is written back into it, as PyTorch does."""
    given = _merged(parameter_and_buffer_dicts)
    values = _untie(module, given) if tie_weights else dict(given)
    if strict:
        valid = set(_all_names(module))
        missing, unexpected = sorted(valid - set(values)), sorted(set(values) - valid)
        msgs = []
        if unexpected:
            msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
        if missing:
            msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
        if msgs:
            raise RuntimeError(f"Error(s) in reparametrizing for {type(module).__name__}:\n\t" + "\n\t".join(msgs))
    if kwargs is None:
        kwargs = {}
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    originals = {}
    try:
        for name, value in values.items():
            originals[name] = _get(module, name)
            _put(module, name, value)
        return module(*args, **kwargs)
    finally:
        final = {name: _get(module, name) for name in originals}
        for name in reversed(list(originals)):
            _put(module, name, originals[name])
        for name in given:
            if name in final and final[name] is not _MISSING:
                given[name] = final[name]


def stack_module_state(models):
    """``torch.func.stack_module_state``: (params, buffers), each a dict from name to the
    tensors of all ``models`` stacked along a new first dimension; the stacked parameters
    are new leaves that require grad when the models' do (for ``vmap`` over an ensemble with
    ``functional_call``)."""
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or not any(m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same training/eval mode.")

    def stacked(named_of, is_param: bool):
        per_model = [dict(named_of(m)) for m in models]
        out = {}
        for name in per_model[0]:
            tensors = [d[name] for d in per_model]
            t = stack([x.detach() for x in tensors])
            if is_param:
                needs = [x.requires_grad for x in tensors]
                if any(needs) and not all(needs):
                    raise RuntimeError(f"Expected {name} from each model to have the same .requires_grad")
                t.requires_grad_(all(needs))
            out[name] = t
        return out

    return (stacked(lambda m: m.named_parameters(), True), stacked(lambda m: m.named_buffers(), False))
