"""Containers: ``Sequential``, ``ModuleList``, ``ModuleDict`` (children named "0", "1", ... or
by key, so state-dict names match PyTorch's)."""
from __future__ import annotations

from tinymm.nn.module import Module


class Sequential(Module):
    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            for k, m in modules[0].items():
                self.add_module(str(k), m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*mods[i])
        return mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: can only hold Modules, got {type(module).__name__}")
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return ModuleList(mods[i])
        return mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    def __init__(self, modules=None):
        super().__init__()
        for k, m in (modules or {}).items():
            self[k] = m

    def __setitem__(self, key: str, module: Module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict: can only hold Modules, got {type(module).__name__} for {key!r}")
        self.add_module(str(key), module)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

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
