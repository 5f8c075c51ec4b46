"""``torch.nn.utils.prune``: pruning a module's tensors by masks, with PyTorch's mechanism and
state-dict layout.

Pruning ``name`` of a module moves the tensor to the parameter ``name + "_orig"``, stores the
mask as the buffer ``name + "_mask"`` (1 keeps an entry, 0 prunes it) and makes ``name`` a
plain attribute recomputed as ``orig * mask`` by a forward pre-hook (the pruning method
itself), so gradients reach only the kept entries of ``orig``. Pruning the same tensor again
combines the methods in a :class:`PruningContainer`: each new method acts only on what is
still unpruned (its ``amount`` counts from those). :func:`remove` makes the pruning permanent:
``name`` becomes a parameter again, holding ``orig * mask``.

Methods (``amount``: a fraction in [0, 1], or a count of entries/channels):

- ``identity``: an all-ones mask (the reparametrisation alone);
- ``random_unstructured`` / ``l1_unstructured``: the entries with the smallest random draws /
  smallest |values| (``importance_scores`` may replace the values);
- ``random_structured`` / ``ln_structured``: whole slices along ``dim`` (channels), random /
  those of smallest L``n``-norm;
- ``custom_from_mask``: a given mask;
- ``global_unstructured``: one unstructured method over several tensors at once, as one vector.
"""
from __future__ import annotations

import numbers
from abc import ABC, abstractmethod

import numpy as np

import tinymm as _tm
from tinymm.nn.parameter import Parameter
from tinymm.tensor import Tensor

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
           "RandomStructured", "LnStructured", "CustomFromMask", "identity", "random_unstructured",
           "l1_unstructured", "random_structured", "ln_structured", "global_unstructured", "custom_from_mask",
           "remove", "is_pruned"]


def _pre_hooks(module):
    """(handle id, hook) of the module's forward pre-hooks, in order."""
    hooks = module.__dict__.get("_hooks") or {}
    return [(key, entry[2]) for key, entry in hooks.items() if entry[1] == "pre"]


class BasePruningMethod(ABC):
    """A way of computing a mask (``compute_mask``); also the forward pre-hook that recomputes
    the pruned tensor as ``orig * mask`` before each forward."""

    _tensor_name: str
    PRUNING_TYPE = "unstructured"

    def __call__(self, module, inputs):
        setattr(module, self._tensor_name, self.apply_mask(module))

    @abstractmethod
    def compute_mask(self, t, default_mask):
        """The new mask for tensor ``t``, given the mask it already has (``default_mask``)."""

    def apply_mask(self, module):
        orig = getattr(module, self._tensor_name + "_orig")
        mask = getattr(module, self._tensor_name + "_mask")
        return mask.to(dtype=orig.dtype) * orig

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        """Prune ``module.<name>`` with a new ``cls(*args, **kwargs)``, combined with any earlier
        pruning of that name; returns the method (the hook now registered)."""
        old = [(key, hook) for key, hook in _pre_hooks(module)
               if isinstance(hook, BasePruningMethod) and hook._tensor_name == name]
        if len(old) > 1:
            raise RuntimeError(f"Avoid adding multiple pruning hooks to the same tensor {name} of module {module}. "
                               "Use a PruningContainer.")
        for key, _ in old:
            del module._hooks[key]
        method = cls(*args, **kwargs)
        method._tensor_name = name
        if old:
            previous = old[0][1]
            if isinstance(previous, PruningContainer):
                previous.add_pruning_method(method)
                method = previous
            else:
                container = PruningContainer(previous)
                container.add_pruning_method(method)
                method = container
        orig = getattr(module, name)
        if importance_scores is not None and tuple(importance_scores.shape) != tuple(orig.shape):
            raise ValueError(f"importance_scores should have the same shape as parameter {name} of {module}")
        scores = orig if importance_scores is None else importance_scores
        if not old:
            if not isinstance(orig, Parameter):
                raise TypeError(f"prune: '{name}' of {type(module).__name__} is not a Parameter")
            module.register_parameter(name + "_orig", orig)
            delattr(module, name)
            default_mask = _tm.ones_like(orig)
        else:
            default_mask = getattr(module, name + "_mask").detach().clone()
        try:
            mask = method.compute_mask(scores.detach(), default_mask=default_mask)
            module.register_buffer(name + "_mask", mask)
            setattr(module, name, method.apply_mask(module))
            module.register_forward_pre_hook(method)
        except Exception:
            if not old:  # undo: the parameter is back where it was
                restored = getattr(module, name + "_orig")
                if name in module.__dict__:
                    delattr(module, name)
                delattr(module, name + "_orig")
                module.register_parameter(name, restored)
            raise
        return method

    def prune(self, t, default_mask=None, importance_scores=None):
        """``t`` pruned by this method's mask (a new tensor; no module involved)."""
        scores = t if importance_scores is None else importance_scores
        mask = self.compute_mask(scores, default_mask=_tm.ones_like(t) if default_mask is None else default_mask)
        return t * mask

    def remove(self, module):
        """Make the pruning permanent: ``name`` is a Parameter holding ``orig * mask`` again."""
        if self._tensor_name is None:
            raise ValueError(f"Module {module} has to be pruned before pruning can be removed")
        weight = self.apply_mask(module)
        if hasattr(module, self._tensor_name):
            delattr(module, self._tensor_name)
        orig = module._parameters[self._tensor_name + "_orig"]
        orig.data = weight.data
        delattr(module, self._tensor_name + "_orig")
        delattr(module, self._tensor_name + "_mask")
        setattr(module, self._tensor_name, orig)


class PruningContainer(BasePruningMethod):
    """Several pruning methods applied one after another to one tensor: each acts on the part
    the earlier ones left unpruned (its entries, its surviving channels, or everything for a
    ``global`` method)."""

    def __init__(self, *args):
        self._pruning_methods = ()
        self._tensor_name = None
        if len(args) == 1 and not isinstance(args[0], (tuple, list)):
            self._tensor_name = args[0]._tensor_name
            self.add_pruning_method(args[0])
        else:
            for method in (args[0] if len(args) == 1 else args):
                self.add_pruning_method(method)

    def add_pruning_method(self, method):
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if method is not None and self._tensor_name != method._tensor_name:
            raise ValueError(f"Can only add pruning methods acting on the parameter named '{self._tensor_name}' to "
                             f"PruningContainer {self}. Found '{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self):
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t, default_mask):
        method = self._pruning_methods[-1]
        mask = default_mask.to(dtype=t.dtype)
        kind = method.PRUNING_TYPE
        if kind == "unstructured":
            keep = (default_mask == 1).numpy(force=True)
            new = method.compute_mask(t[Tensor._of(keep)], default_mask=default_mask[Tensor._of(keep)])
            out = mask.clone()
            out[Tensor._of(keep)] = new.to(dtype=out.dtype)
            return out
        if kind == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError("Pruning methods of PRUNING_TYPE 'structured' need to have the attribute `dim` "
                                     "defined.")
            dim = method.dim + t.ndim if method.dim < 0 else method.dim
            others = [d for d in range(t.ndim) if d != dim]
            alive = np.flatnonzero((default_mask.sum(dim=others) != 0).numpy(force=True))
            index = [slice(None)] * t.ndim
            index[dim] = alive
            part = method.compute_mask(Tensor._of(t.numpy(force=True)[tuple(index)]),
                                       default_mask=Tensor._of(default_mask.numpy(force=True)[tuple(index)]))
            out = mask.numpy(force=True).copy()
            out[tuple(index)] = part.numpy(force=True)
            return Tensor._of(out)
        if kind == "global":
            return method.compute_mask(t, default_mask=default_mask).to(dtype=t.dtype)
        raise ValueError(f"Unrecognized PRUNING_TYPE {kind}")


class Identity(BasePruningMethod):
    """No entry pruned: only the ``orig``/``mask`` reparametrisation."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return default_mask

    @classmethod
    def apply(cls, module, name):
        return super().apply(module, name)


def _check_amount(amount) -> None:
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
            not isinstance(amount, numbers.Integral) and (float(amount) > 1.0 or float(amount) < 0.0)):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a non-negative integer")


def _count(amount, size: int) -> int:
    """How many of ``size`` entries/channels ``amount`` prunes (checked against size)."""
    if isinstance(amount, numbers.Integral):
        if amount > size:
            raise ValueError(f"amount={amount} should be smaller than the number of parameters to prune={size}")
        return int(amount)
    return int(round(amount * size))


def _check_structured(t, dim) -> None:
    if t.ndim <= 1:
        raise ValueError(f"Structured pruning can only be applied to multidimensional tensors. Found tensor of shape "
                         f"{tuple(t.shape)} with {t.ndim} dims")
    if dim >= t.ndim:
        raise IndexError(f"Invalid index {dim} for tensor of size {tuple(t.shape)}")


def _zero_at(default_mask, flat_indices):
    mask = default_mask.numpy(force=True).copy()
    mask.reshape(-1)[flat_indices] = 0
    return Tensor._of(mask)


class _RankedUnstructured(BasePruningMethod):
    """Prunes the ``amount`` entries that come first in ``_prune_order(t)``."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _check_amount(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        k = _count(self.amount, t.numel())
        if k == 0:
            return default_mask.clone()
        return _zero_at(default_mask, self._prune_order(t)[:k])


class RandomUnstructured(_RankedUnstructured):
    """``amount`` entries chosen uniformly at random."""

    def _prune_order(self, t):
        draws = _tm.rand_like(t.to(_tm.float32) if not t.dtype.is_floating_point else t).numpy(force=True)
        return np.argsort(-draws.reshape(-1), kind="stable")

    @classmethod
    def apply(cls, module, name, amount):
        return super().apply(module, name, amount=amount)


class L1Unstructured(_RankedUnstructured):
    """The ``amount`` entries of smallest |value| (of ``importance_scores`` when given)."""

    def _prune_order(self, t):
        return np.argsort(np.abs(t.numpy(force=True)).reshape(-1), kind="stable")

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


def _channel_mask(t, dim, kept):
    mask = np.zeros(tuple(t.shape), dtype=t.numpy(force=True).dtype)
    index = [slice(None)] * t.ndim
    index[dim] = kept
    mask[tuple(index)] = 1
    return mask


class _RankedStructured(BasePruningMethod):
    """Prunes the ``amount`` slices along ``dim`` that rank lowest in ``_keep_order(t, dim)``."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1):
        _check_amount(amount)
        self.amount = amount
        self.dim = dim

    def compute_mask(self, t, default_mask):
        _check_structured(t, self.dim)
        size = t.shape[self.dim]
        k = _count(self.amount, size)
        if k == 0:
            return default_mask
        dim = self.dim + t.ndim if self.dim < 0 else self.dim
        kept = np.sort(self._keep_order(t, dim)[: size - k])
        return Tensor._of(_channel_mask(t, dim, kept)) * default_mask.to(dtype=t.dtype)


class RandomStructured(_RankedStructured):
    """``amount`` whole slices along ``dim`` (channels), chosen at random."""

    def _keep_order(self, t, dim):
        return np.argsort(-_tm.rand(t.shape[dim]).numpy(), kind="stable")

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(_RankedStructured):
    """The ``amount`` slices along ``dim`` of smallest L``n`` norm (``n`` as ``torch.norm``'s p)."""

    def __init__(self, amount, n, dim=-1):
        super().__init__(amount, dim)
        self.n = n

    def _keep_order(self, t, dim):
        norms = _tm.norm(t, p=self.n, dim=[d for d in range(t.ndim) if d != dim]).numpy(force=True)
        return np.argsort(-norms, kind="stable")

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """A mask given by the caller (multiplied into the existing one)."""

    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        if tuple(default_mask.shape) != tuple(self.mask.shape):
            raise ValueError(f"custom_from_mask: the mask has shape {tuple(self.mask.shape)}, the tensor "
                             f"{tuple(default_mask.shape)}")
        return default_mask * self.mask.to(dtype=default_mask.dtype)

    @classmethod
    def apply(cls, module, name, mask):
        return super().apply(module, name, mask=mask)


def identity(module, name):
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module, name, mask):
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs):
    """Prune the tensors ``parameters`` ((module, name) pairs) together: one unstructured
    ``pruning_method(**kwargs)`` over all their entries as one vector (so ``amount`` counts
    across them), each then pruned by its share of the mask."""
    if not isinstance(parameters, (list, tuple)) and not hasattr(parameters, "__iter__"):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    scores = _tm.cat([importance_scores.get((m, n), getattr(m, n)).detach().reshape(-1) for m, n in parameters])
    default = _tm.cat([getattr(m, n + "_mask", _tm.ones_like(getattr(m, n))).reshape(-1) for m, n in parameters])
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(f'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
                        f"{pruning_method} of type {method.PRUNING_TYPE}")
    container = PruningContainer(method)
    final = container.compute_mask(scores, default)
    start = 0
    for module, name in parameters:
        param = getattr(module, name)
        count = param.numel()
        custom_from_mask(module, name, mask=final[start:start + count].reshape(tuple(param.shape)))
        start += count


def remove(module, name):
    """Make the pruning of ``module.<name>`` permanent (see :meth:`BasePruningMethod.remove`)."""
    for key, hook in _pre_hooks(module):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._hooks[key]
            return module
    raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed")


def is_pruned(module) -> bool:
    """Whether any submodule of ``module`` has a pruning hook."""
    return any(isinstance(hook, BasePruningMethod)
               for _, sub in module.named_modules() for _, hook in _pre_hooks(sub))
