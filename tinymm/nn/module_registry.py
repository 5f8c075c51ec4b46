"""The dicts behind a Module's ``_parameters``, ``_buffers`` and ``_modules``.

PyTorch keeps a parameter, buffer or child only in these dicts and finds ``module.weight``
through ``__getattr__``; tinymm also keeps it as a plain instance attribute, so a forward pass
reads it at attribute speed. Code written for PyTorch writes the dicts directly (learn2learn's
``update_module`` puts the adapted, non-leaf fast weights in with
``module._parameters[name] = weight - lr * grad``; its ``clone_module`` copies them first), so
each dict here keeps the attribute in step: setting a key sets the owner's attribute, removing
a key removes it. A plain dict assigned to one of these names is wrapped
(``Module.__setattr__``), so a copied dict stays in step with the module it is given to."""
from __future__ import annotations

REGISTRIES = ("_parameters", "_buffers", "_modules")


class Registry(dict):
    """A dict that mirrors its entries into ``owner.__dict__`` (see the module docstring)."""

    __slots__ = ("owner",)

    def __init__(self, owner, items=()):
        super().__init__(items)
        self.owner = owner
        attrs = owner.__dict__
        for k, v in self.items():
            attrs[k] = v

    def __setitem__(self, key, value):
        dict.__setitem__(self, key, value)
        self.owner.__dict__[key] = value

    def __delitem__(self, key):
        dict.__delitem__(self, key)
        self.owner.__dict__.pop(key, None)

    _missing = object()

    def pop(self, key, default=_missing):
        if key in self:
            self.owner.__dict__.pop(key, None)
            return dict.pop(self, key)
        if default is Registry._missing:
            raise KeyError(key)
        return default

    def popitem(self):
        key, value = dict.popitem(self)
        self.owner.__dict__.pop(key, None)
        return key, value

    def clear(self):
        for key in list(self):
            self.owner.__dict__.pop(key, None)
        dict.clear(self)

    def update(self, *args, **kwargs):
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, other):
        self.update(other)
        return self

    def __reduce__(self):
        # copy/deepcopy/pickle: rebuilt with its owner (the owner's attributes are its own state)
        return (_rebuild, (self.owner, dict(self)))


def _rebuild(owner, items):
    reg = Registry.__new__(Registry)
    dict.update(reg, items)
    reg.owner = owner
    return reg
