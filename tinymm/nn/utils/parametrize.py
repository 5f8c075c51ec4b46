"""``register_parametrization`` (``torch.nn.utils.parametrize``): a tensor of a module computed
from an ``original`` one each time it is read.

After ``register_parametrization(m, "weight", p)``, ``m.weight`` is ``p(original)`` where
``original`` lives at ``m.parametrizations.weight.original`` (``original0``, ``original1``, ...
when ``p.right_inverse`` splits it into several tensors, as weight norm does), so state-dict
keys are PyTorch's. The module's class is swapped for a subclass holding a property per
parametrized name, as PyTorch does; assigning to ``m.weight`` stores ``right_inverse(value)``.
"""
from __future__ import annotations

from contextlib import contextmanager

from tinymm.autograd import no_grad
from tinymm.nn.containers import ModuleDict, ModuleList
from tinymm.nn.module import Module
from tinymm.nn.parameter import Parameter
from tinymm.tensor import Tensor


class ParametrizationList(ModuleList):
    """The chain of parametrizations of one tensor and its ``original`` tensor(s)."""

    def __init__(self, modules, original: Tensor, unsafe: bool = False):
        super().__init__(modules)
        self.unsafe = unsafe
        new = original
        with no_grad():
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    try:
                        new = m.right_inverse(new)
                    except NotImplementedError:  # PyTorch: the original is then kept as it is
                        pass
        self.is_tensor = isinstance(new, Tensor)
        if self.is_tensor:
            if new.shape == original.shape and new.dtype == original.dtype:
                original._data[...] = new._data  # keep the Parameter object (optimizers may hold it)
                new = original
            self.register_parameter("original", new if isinstance(new, Parameter) else Parameter(new._data.copy()))
        else:
            self.ntensors = len(new)
            for i, t in enumerate(new):
                self.register_parameter(f"original{i}", Parameter(t._data.copy(), requires_grad=original.requires_grad))
        if not unsafe:
            # PyTorch evaluates the chain once here (a spectral norm's power iteration runs) and
            # refuses a parametrization that would change what the module's tensor looks like
            _check_unchanged(self(), original, "Registering a parametrization")

    def right_inverse(self, value) -> None:
        with no_grad():
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    value = m.right_inverse(value)
            if self.is_tensor:
                self.original._data[...] = value._data
            else:
                for i, t in enumerate(value):
                    getattr(self, f"original{i}")._data[...] = t._data

    def forward(self):
        mods = list(self)
        x = mods[0](self.original) if self.is_tensor else \
            mods[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for m in mods[1:]:
            x = m(x)
        return x


_cache_enabled = 0  # depth of nested ``cached()`` blocks
_cache: dict = {}


@contextmanager
def cached():
    """Within the block each parametrized tensor is computed once, on its first read, and that
    same Tensor is handed out by every later read (PyTorch's ``parametrize.cached``: a weight
    used at several time steps is then computed, and backpropagated through, once). Nested
    blocks share the cache; it is emptied when the outermost one exits."""
    global _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache.clear()


def type_before_parametrizations(module: Module) -> type:
    """The module's class as it was before ``register_parametrization`` swapped it."""
    cls = type(module)
    return cls.__bases__[0] if getattr(cls, "_is_parametrized_class", False) else cls


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    params = module.__dict__.get("parametrizations")
    if not isinstance(params, ModuleDict):
        return False
    return len(params) > 0 if tensor_name is None else tensor_name in params


def _check_unchanged(value, original, what: str) -> None:
    if not isinstance(value, Tensor):
        raise ValueError(f"A parametrization must return a tensor. Got {type(value).__name__}.")
    if value.dtype != original.dtype:
        raise ValueError(f"{what} may not change the dtype of the tensor, unless `unsafe` flag is enabled.\n"
                         f"unparametrized dtype: {original.dtype}\nparametrized dtype: {value.dtype}")
    if tuple(value.shape) != tuple(original.shape):
        raise ValueError(f"{what} may not change the shape of the tensor, unless `unsafe` flag is enabled.\n"
                         f"unparametrized shape: {tuple(original.shape)}\nparametrized shape: {tuple(value.shape)}")


def _inject_property(module: Module, name: str) -> None:
    cls = type(module)
    if not getattr(cls, "_is_parametrized_class", False):
        cls = type(f"Parametrized{cls.__name__}", (cls,), {"_is_parametrized_class": True})
        module.__class__ = cls

    def getter(self):
        if not _cache_enabled:
            return self.parametrizations[name]()
        key = (id(self), name)
        if key not in _cache:
            _cache[key] = self.parametrizations[name]()
        return _cache[key]

    def setter(self, value):
        self.parametrizations[name].right_inverse(value)

    setattr(cls, name, property(getter, setter))


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *, unsafe: bool = False):
    """Make ``module.<tensor_name>`` read as ``parametrization(original)``; a second call on
    the same name chains another parametrization after the first. Returns the module."""
    if not isinstance(parametrization, Module):
        raise TypeError(f"register_parametrization: the parametrization must be an nn.Module (with forward and, "
                        f"optionally, right_inverse), got {type(parametrization).__name__}")
    if is_parametrized(module, tensor_name):
        if not unsafe:
            current = getattr(module, tensor_name)
            _check_unchanged(parametrization(current), current, "Registering a parametrization")
        module.parametrizations[tensor_name].append(parametrization)
        module.parametrizations[tensor_name].unsafe |= unsafe
        return module
    if tensor_name in module._parameters and module._parameters[tensor_name] is not None:
        original = module._parameters.pop(tensor_name)
    elif tensor_name in module._buffers and module._buffers[tensor_name] is not None:
        original = module._buffers.pop(tensor_name)
    else:
        raise ValueError(f"Module '{type(module).__name__}' does not have a parameter, a buffer, or a parametrized "
                         f"element with name '{tensor_name}'")
    # (popping it from its registry dropped the attribute too: nn.module_registry)
    if not is_parametrized(module):
        module.add_module("parametrizations", ModuleDict())
    module.parametrizations[tensor_name] = ParametrizationList([parametrization], original, unsafe)
    _inject_property(module, tensor_name)
    return module


def remove_parametrizations(module: Module, tensor_name: str, leave_parametrized: bool = True) -> Module:
    """Undo ``register_parametrization``: ``<tensor_name>`` becomes a plain parameter again,
    holding the parametrized value (``leave_parametrized``) or the original."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {type(module).__name__} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if leave_parametrized:
        with no_grad():
            value = plist()
        if plist.is_tensor:
            plist.original._data = value._data.copy()
            param = plist.original
        else:
            param = Parameter(value._data.copy())
    else:
        if not plist.is_tensor:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is parametrized "
                             "in terms of a sequence of tensors.")
        param = plist.original
    del module.parametrizations._modules[tensor_name]  # (and its attribute)
    cls = type(module)
    delattr(cls, tensor_name)
    module.register_parameter(tensor_name, param)
    if not len(module.parametrizations):
        del module._modules["parametrizations"]  # (and its attribute)
        module.__class__ = cls.__bases__[0]
    return module
