"""Containers: ``Sequential``, ``ModuleList``, ``ModuleDict`` (children named "0", "1", ... or
by key, so state-dict names match PyTorch's)."""
from __future__ import annotations

import collections
import operator

from tinymm.nn.module import Module


def _index(n: int, idx) -> int:
    """``idx`` (an int, negatives from the end) as a position in [0, n), or IndexError."""
    idx = operator.index(idx)
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range")
    return idx % n


class _Numbered(Module):
    """What Sequential and ModuleList share: children named "0", "1", ... in order, renumbered
    after a deletion or insertion, as PyTorch's."""

    def _renumber(self, modules) -> None:
        self._modules.clear()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __setitem__(self, idx, module) -> None:
        key = list(self._modules)[_index(len(self), idx)]
        setattr(self, key, module)

    def __delitem__(self, idx) -> None:
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            del mods[idx]
        else:
            del mods[_index(len(mods), idx)]
        for key in list(self._modules):
            object.__delattr__(self, key)
        self._renumber(mods)

    def insert(self, index: int, module):
        """Put ``module`` before position ``index`` (negatives count from the end)."""
        if module is not None and not isinstance(module, Module):
            raise AssertionError(f"module should be of type: {Module}")
        n = len(self)
        if not -n <= index <= n:
            raise IndexError(f"Index out of range: {index}")
        mods = list(self._modules.values())
        mods.insert(index if index >= 0 else index + n, module)
        for key in list(self._modules):
            object.__delattr__(self, key)
        self._renumber(mods)
        return self

    def pop(self, key=-1):
        v = self[key]
        del self[key]
        return v

    def __dir__(self):
        return [k for k in super().__dir__() if not k.isdigit()]


class Sequential(_Numbered):
    """Modules applied in order. ``Sequential(m0, m1, ...)`` names them "0", "1", ...;
    ``Sequential(OrderedDict(name=module))`` keeps the names. A slice keeps the names it cuts."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            for k, m in modules[0].items():
                self.add_module(str(k), m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, input):
        for m in self._modules.values():
            input = m(input)
        return input

    def __getitem__(self, i):
        if isinstance(i, slice):
            return type(self)(collections.OrderedDict(list(self._modules.items())[i]))
        return list(self._modules.values())[_index(len(self), i)]

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, sequential) -> "Sequential":
        for m in sequential:
            self.append(m)
        return self

    def __add__(self, other) -> "Sequential":
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but {type(other)} is given.")
        return Sequential(*self, *other)

    def __iadd__(self, other) -> "Sequential":
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but {type(other)} is given.")
        return self.extend(other)

    def __mul__(self, other: int) -> "Sequential":
        if not isinstance(other, int) or other <= 0:
            raise ValueError(f"Non-positive multiplication factor {other} for {type(self)}")
        return Sequential(*(list(self) * other))

    __rmul__ = __mul__

    def __imul__(self, other: int) -> "Sequential":
        if not isinstance(other, int) or other <= 0:
            raise ValueError(f"Non-positive multiplication factor {other} for {type(self)}")
        return self.extend(list(self) * (other - 1))


class ModuleList(_Numbered):
    """A list of Modules whose parameters the parent registers; children named "0", "1", ..."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules or ():
            self.append(m)

    def append(self, module: "Module | None") -> "ModuleList":
        # None is a valid entry, as in PyTorch (flamingo-pytorch's [layer, None] pairs): the
        # traversals skip it; anything else that is not a Module is refused by add_module
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i):
        if isinstance(i, slice):
            return type(self)(list(self._modules.values())[i])
        return list(self._modules.values())[_index(len(self), i)]

    def __iadd__(self, modules) -> "ModuleList":
        return self.extend(modules)

    def __add__(self, other) -> "ModuleList":
        return ModuleList(list(self) + list(other))


class ModuleDict(Module):
    """A dict of Modules by str key (insertion order), registered as children."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __setitem__(self, key: str, module: "Module | None"):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"ModuleDict: can only hold Modules (or None), got {type(module).__name__} for {key!r}")
        self.add_module(key, module)  # a non-str key is a TypeError, as PyTorch (str() would hide it)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __delitem__(self, key: str) -> None:
        del self._modules[key]  # (the attribute goes with it: nn.module_registry)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key: str) -> Module:
        v = self[key]
        del self[key]
        return v

    def clear(self) -> None:
        for key in list(self._modules):
            del self[key]

    def update(self, modules) -> None:
        """Add or replace from a mapping or an iterable of (key, module) pairs."""
        items = modules.items() if hasattr(modules, "items") else modules
        for j, pair in enumerate(items):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"ModuleDict update sequence element #{j} should be a pair, got {pair!r}")
            self[pair[0]] = pair[1]


def _as_parameter(value):
    from tinymm.nn.parameter import Parameter
    from tinymm.tensor import Tensor

    if isinstance(value, Parameter) or not isinstance(value, Tensor):
        return value
    return Parameter(value)


class ParameterList(Module):
    """A list of Parameters registered as "0", "1", ... (a plain Tensor is wrapped in a
    Parameter, as PyTorch does), so state-dict keys match ``torch.nn.ParameterList``'s."""

    def __init__(self, values=None):
        super().__init__()
        self._size = 0
        for v in values or ():
            self.append(v)

    def _register(self, i, value):
        from tinymm.nn.parameter import Parameter

        value = _as_parameter(value)
        if isinstance(value, Parameter) or value is None:
            self.register_parameter(str(i), value)
        else:
            object.__setattr__(self, str(i), value)

    def append(self, value) -> "ParameterList":
        self._size += 1
        self._register(self._size - 1, value)
        return self

    def extend(self, values) -> "ParameterList":
        for v in values:
            self.append(v)
        return self

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ParameterList([self[j] for j in range(len(self))[i]])
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range")
        return getattr(self, str(i % len(self)))

    def __setitem__(self, i, value):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range")
        self._register(i % len(self), value)

    def __len__(self):
        return self._size

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def extra_repr(self):
        return "\n".join(f"({i}): Parameter containing: [{p.dtype} of size {tuple(p.shape)}]"
                         for i, p in enumerate(self) if hasattr(p, "shape"))


class ParameterDict(Module):
    """A dict of Parameters registered under their keys (plain Tensors wrapped in Parameters)."""

    def __init__(self, parameters=None):
        super().__init__()
        self._keys: dict = {}
        if parameters is not None:
            self.update(parameters)

    def __setitem__(self, key: str, value):
        from tinymm.nn.parameter import Parameter

        self._keys[key] = None
        value = _as_parameter(value)
        if isinstance(value, Parameter) or value is None:
            self.register_parameter(key, value)
        else:
            object.__setattr__(self, key, value)

    def __getitem__(self, key: str):
        if key not in self._keys:
            raise KeyError(key)
        return getattr(self, key)

    def __delitem__(self, key: str):
        del self._keys[key]
        delattr(self, key)

    def __contains__(self, key) -> bool:
        return key in self._keys

    def __len__(self):
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def keys(self):
        return self._keys.keys()

    def values(self):
        return [self[k] for k in self._keys]

    def items(self):
        return [(k, self[k]) for k in self._keys]

    def get(self, key, default=None):
        return self[key] if key in self else default

    def pop(self, key):
        v = self[key]
        del self[key]
        return v

    def update(self, parameters) -> None:
        items = parameters.items() if hasattr(parameters, "items") else parameters
        for k, v in items:
            self[k] = v
