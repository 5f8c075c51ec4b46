"""What ``torch.compile(module)`` hands back: an ``OptimizedModule`` wrapping the module.

tinymm has no graph compiler (see ``tinymm.runtime``), so calling the wrapper calls the original
module, hooks and all. The wrapper still matters to the code around it, which PyTorch users
write against its real shape:

- the original module is its only child, ``_orig_mod``: ``compiled.state_dict()`` keys carry
  the ``_orig_mod.`` prefix that nanoGPT-style loaders strip, and a checkpoint saved from a
  compiled model loads into a compiled one;
- ``compiled._orig_mod`` is the module that was passed (the unwrap idiom of accelerate and
  HF Trainer), ``parameters()`` are the same Parameters;
- attribute reads and writes that the wrapper does not own go to the original module
  (``compiled.config``, ``compiled.grad_ckpt = True``), and ``training`` mirrors it, so
  ``compiled.eval()`` and ``model.eval()`` are one switch.

``Module.compile()`` (in place) stays a no-op that returns None, as in PyTorch.
"""
from __future__ import annotations

from tinymm.nn.module import Module
from tinymm.runtime import register_module_wrapper

__all__ = ["OptimizedModule", "wrap_module"]


class OptimizedModule(Module):
    # names the wrapper keeps for itself; every other attribute lives on the original module
    _own_attributes = frozenset({"_orig_mod", "dynamo_ctx", "forward", "_super_module_initialized",
                                 "compile_options"})

    def __init__(self, mod: Module, compile_options: dict | None = None):
        # _orig_mod first: attribute access during Module.__init__ may already forward to it
        object.__setattr__(self, "_super_module_initialized", False)
        super().__init__()
        self._modules["_orig_mod"] = mod
        object.__setattr__(self, "_orig_mod", mod)
        object.__setattr__(self, "compile_options", dict(compile_options or {}))
        object.__setattr__(self, "_super_module_initialized", True)

    def forward(self, *args, **kwargs):
        return self._orig_mod(*args, **kwargs)

    @property
    def training(self) -> bool:
        return self.__dict__["_orig_mod"].training if "_orig_mod" in self.__dict__ else True

    @training.setter
    def training(self, value: bool) -> None:
        # Module.__init__ writes the default before the original is attached: that write is ignored
        if self.__dict__.get("_super_module_initialized"):
            self._orig_mod.training = value

    def __len__(self) -> int:
        try:
            return len(self._orig_mod)
        except TypeError:
            raise TypeError(f"{type(self._orig_mod).__name__} does not support len()") from None

    def __getattr__(self, name: str):
        # only reached when normal lookup failed; the registries must exist first (copy/pickle
        # build the object without __init__ and probe attributes before __dict__ is restored)
        orig = self.__dict__.get("_orig_mod")
        if orig is None or name.startswith("__"):
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        return getattr(orig, name)

    def __setattr__(self, name: str, value) -> None:
        if hasattr(type(self), name) or name in self._own_attributes or "_orig_mod" not in self.__dict__:
            super().__setattr__(name, value)
        else:
            setattr(self._orig_mod, name, value)

    def __delattr__(self, name: str) -> None:
        if hasattr(type(self), name) or name in self._own_attributes:
            super().__delattr__(name)
        else:
            delattr(self._orig_mod, name)

    def __dir__(self):
        return sorted(set(dir(self._orig_mod)) | set(super().__dir__()))


def wrap_module(model, options: dict) -> OptimizedModule | None:
    """``model`` wrapped when it is a Module; None for any other callable (a function)."""
    if isinstance(model, Module):
        return OptimizedModule(model, options)
    return None


register_module_wrapper(wrap_module)
