"""``Module``'s state dict, built and read as PyTorch does (the ``StateDictMixin`` half of ``Module``).

``state_dict()`` walks the tree: at each module it records ``{"version": type(m)._version}`` in
the returned dict's ``_metadata`` (keyed by the module's dotted prefix without its last dot),
runs the module's state-dict pre-hooks ``hook(module, prefix, keep_vars)``, calls
``m._save_to_state_dict(destination, prefix, keep_vars)`` (its own parameters, persistent
buffers, then ``_extra_state``), recurses into the children, then runs the post-hooks
``hook(module, state_dict, prefix, local_metadata)``.

``load_state_dict()`` copies the mapping (keeping its ``_metadata``) and walks the tree: at each
module ``m._load_from_state_dict(state_dict, prefix, local_metadata, True, missing_keys,
unexpected_keys, error_msgs)`` (which first runs the load pre-hooks, then copies this module's
own tensors and notes its missing and unexpected keys; real code overrides it to rename or
migrate old keys, using ``local_metadata["version"]``), then the children (each given only the
keys under its prefix), then the module's load post-hooks ``hook(module, incompatible_keys)``,
which may edit the two key lists in place. Only at the end does it raise, once, with every
problem: so a load copies what it can before it reports (as PyTorch). The error is a
``RuntimeError`` (``StateDictKeyError``, also a ``KeyError``, when keys are missing or
unexpected; ``StateDictShapeError``, also a ``ValueError``, for size mismatches) with PyTorch's text.

Beyond PyTorch, a value may be a NumPy or CuPy array or a torch tensor as well as a tinymm Tensor.
"""
from __future__ import annotations

import collections
import warnings
from collections.abc import Mapping

import numpy as np

from tinymm import backend
from tinymm.tensor import Size, Tensor, bump_version
from tinymm.nn import sparse_buffers

_EXTRA_STATE_KEY_SUFFIX = "_extra_state"


class IncompatibleKeys(collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns; prints as PyTorch's (its class is ``_IncompatibleKeys``)."""

    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys!r}, unexpected_keys={self.unexpected_keys!r})"

    __str__ = __repr__


class StateDictKeyError(RuntimeError, KeyError):
    """Missing or unexpected keys in a strict ``load_state_dict`` (PyTorch raises RuntimeError)."""

    def __str__(self):  # KeyError would quote the message
        return RuntimeError.__str__(self)


class StateDictShapeError(RuntimeError, ValueError):
    """A checkpoint tensor of the wrong shape (PyTorch raises RuntimeError)."""


class StateDictTypeError(RuntimeError, TypeError):
    """A checkpoint value that is no real-valued tensor or array (PyTorch raises RuntimeError)."""


class RemovableHandle:
    """What the ``register_*_hook`` methods return: ``remove()`` (or leaving a ``with`` block)
    unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self.hooks_dict_ref = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self.hooks_dict_ref.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _tensor_like(v) -> bool:
    return isinstance(v, (Tensor, np.ndarray, np.generic)) or hasattr(v, "__cuda_array_interface__") \
        or (hasattr(v, "detach") and hasattr(v, "shape"))


def _host_array(v) -> np.ndarray:
    """A state-dict value (Tensor, NumPy or CuPy array, torch tensor) as a NumPy array."""
    if isinstance(v, Tensor):
        return v.detach().numpy()
    if hasattr(v, "__cuda_array_interface__") and hasattr(v, "get"):
        return v.get()
    if hasattr(v, "detach"):  # a torch tensor
        return v.detach().cpu().numpy()
    return np.asarray(v)


class StateDictMixin:
    """The state-dict half of ``Module`` (see the module docstring)."""

    _version: int = 1  # a subclass raises it when its saved state changes form (BatchNorm: 2)

    def _hook_registry(self, name: str) -> dict:
        hooks = self.__dict__.get(name)
        if hooks is None:
            hooks = collections.OrderedDict()
            object.__setattr__(self, name, hooks)
        return hooks

    def _hooks_of(self, name: str):
        hooks = self.__dict__.get(name)
        return list(hooks.values()) if hooks else []

    # ------------------------------------------------------------------ hooks
    def register_state_dict_pre_hook(self, hook):
        """``hook(module, prefix, keep_vars)`` runs before this module's ``state_dict`` entries
        are saved. Returns a handle with ``remove()``."""
        handle = RemovableHandle(self._hook_registry("_state_dict_pre_hooks"))
        self._state_dict_pre_hooks[handle.id] = hook
        return handle

    def register_state_dict_post_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata)`` runs after this module and its
        children are saved; it may edit ``state_dict`` in place and must return None."""
        hook._from_public_api = True
        handle = RemovableHandle(self._hook_registry("_state_dict_hooks"))
        self._state_dict_hooks[handle.id] = hook
        return handle

    def _register_state_dict_hook(self, hook):
        """The older post-hook: as ``register_state_dict_post_hook``, but a returned dict
        replaces the state dict (only when this module is the root of the call)."""
        if getattr(hook, "_from_public_api", False):
            raise RuntimeError("Cannot register the same function as the state dict post hook that was "
                               "previously registered via register_state_dict_post_hook")
        handle = RemovableHandle(self._hook_registry("_state_dict_hooks"))
        self._state_dict_hooks[handle.id] = hook
        return handle

    def _register_load_state_dict_pre_hook(self, hook, with_module: bool = False):
        """``hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs)`` (with ``module`` first when ``with_module``) runs at the start of this
        module's ``_load_from_state_dict``; it may edit ``state_dict`` and the lists."""
        handle = RemovableHandle(self._hook_registry("_load_state_dict_pre_hooks"))
        self._load_state_dict_pre_hooks[handle.id] = (hook, bool(with_module))
        return handle

    def register_load_state_dict_pre_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` runs before this module's tensors are loaded."""
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def register_load_state_dict_post_hook(self, hook):
        """``hook(module, incompatible_keys)`` runs after this module and its children are
        loaded; it may edit ``incompatible_keys.missing_keys``/``unexpected_keys`` in place (a
        strict load then judges the edited lists) and must return None."""
        handle = RemovableHandle(self._hook_registry("_load_state_dict_post_hooks"))
        self._load_state_dict_post_hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------------ extra state
    def get_extra_state(self):
        """What a subclass wants saved beside its tensors, under ``<prefix>_extra_state`` in the
        state dict (any picklable value); override it together with ``set_extra_state``."""
        raise RuntimeError("Reached a code path in Module.get_extra_state() that should never be called. "
                           "Please override get_extra_state() in your module (with set_extra_state()).")

    def set_extra_state(self, state) -> None:
        """Takes back what ``get_extra_state`` returned, from a loaded state dict."""
        raise RuntimeError("Reached a code path in Module.set_extra_state() that should never be called. "
                           "Please override set_extra_state() in your module (with get_extra_state()).")

    # ------------------------------------------------------------------ saving
    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        """This module's own parameters and persistent buffers (not its children's), then its
        ``_extra_state`` when ``get_extra_state`` is overridden, into ``destination``."""
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent:
                destination[prefix + name] = buf if keep_vars else buf.detach()
        if type(self).get_extra_state is not StateDictMixin.get_extra_state:
            destination[prefix + _EXTRA_STATE_KEY_SUFFIX] = self.get_extra_state()

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """Parameters and persistent buffers by dotted name; the tensors share memory
        (detached unless ``keep_vars``). ``destination``: a dict to fill and return."""
        if args:
            warnings.warn("Positional args are being deprecated, use kwargs instead. Refer to "
                          "https://pytorch.org/docs/main/generated/torch.nn.Module.html#torch.nn.Module.state_dict"
                          " for details.", FutureWarning, stacklevel=2)
            if destination is None:
                destination = args[0]
            if len(args) > 1 and prefix == "":
                prefix = args[1]
            if len(args) > 2 and keep_vars is False:
                keep_vars = args[2]
        if destination is None:
            destination = collections.OrderedDict()
            destination._metadata = collections.OrderedDict()
        local_metadata = dict(version=self._version)
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        for hook in self._hooks_of("_state_dict_pre_hooks"):
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        for hook in self._hooks_of("_state_dict_hooks"):
            result = hook(self, destination, prefix, local_metadata)
            if not getattr(hook, "_from_public_api", False):
                if result is not None:
                    destination = result
            elif result is not None:
                raise RuntimeError("state_dict post-hook must return None")
        return destination

    # ------------------------------------------------------------------ loading
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        """Load this module's own tensors (not its children's) from ``state_dict`` (a copy the
        override may edit), noting missing and unexpected keys and errors in the lists.
        Subclasses override it to migrate old checkpoints (``local_metadata.get("version")``)."""
        for hook, with_module in self._hooks_of("_load_state_dict_pre_hooks"):
            args = (state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
            hook(self, *args) if with_module else hook(*args)

        local_state = {k: v for k, v in self._parameters.items() if v is not None}
        local_state.update((k, v) for k, v in self._buffers.items()
                           if v is not None and k not in self._non_persistent)
        assign = local_metadata.get("assign_to_params_buffers", False)
        for name, param in local_state.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            value = state_dict[key]
            if sparse_buffers.is_sparse(param) or sparse_buffers.is_sparse(value):
                if not sparse_buffers.is_sparse(param):
                    error_msgs.append(f'While copying the parameter named "{key}", expected a dense tensor, got '
                                      f"a sparse {type(value).__name__}")
                else:
                    sparse_buffers.load_into(param, value, key, error_msgs)
                continue
            if not _tensor_like(value):
                error_msgs.append(f'While copying the parameter named "{key}", expected torch.Tensor or '
                                  f"Tensor-like object from checkpoint but received {type(value)}")
                continue
            arr = _host_array(value)
            if param.ndim == 0 and arr.shape == (1,):  # PyTorch 0.3's 1-element "scalars"
                arr = arr.reshape(())
            if tuple(arr.shape) != tuple(param.shape):
                error_msgs.append(f"size mismatch for {key}: copying a param with shape {Size(arr.shape)!r} from "
                                  f"checkpoint, the shape in current model is {Size(param.shape)!r}.")
                continue
            if arr.dtype.kind not in "biuf" and not (arr.dtype.kind == "c" and param.dtype.kind == "c"):
                # a complex value fits only a complex tensor (FEDformer's cfloat Fourier weights)
                problem = (f"{key}: expected a real-valued Tensor or array, got {type(value).__name__} of dtype "
                           f"{arr.dtype}")
                error_msgs.append(f'While copying the parameter named "{key}", whose dimensions in the model are '
                                  f"{Size(param.shape)!r} and whose dimensions in the checkpoint are "
                                  f"{Size(arr.shape)!r}, an exception occurred : ({problem!r},).")
                continue
            if assign:  # the tensor takes the checkpoint's values and dtype; the object stays
                param._data = backend.to_device(np.array(arr), param.device)
            else:
                param._data[...] = backend.to_device(arr.astype(param.dtype, copy=False), param.device)
            bump_version(param._data)

        extra_key = prefix + _EXTRA_STATE_KEY_SUFFIX
        if type(self).set_extra_state is not StateDictMixin.set_extra_state:
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            elif strict:
                missing_keys.append(extra_key)
        elif strict and extra_key in state_dict:
            unexpected_keys.append(extra_key)

        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key != extra_key:
                    parts = key[len(prefix):].split(".", 1)
                    if len(parts) > 1:  # a child's key: only an unknown child makes it unexpected here
                        if parts[0] not in self._modules:
                            unexpected_keys.append(key)
                    elif parts[0] not in local_state:
                        unexpected_keys.append(key)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False) -> IncompatibleKeys:
        """Copy values into this module's parameters and buffers (in place, keeping each one's
        dtype and device) and its children's. Every problem is reported at the end in one
        RuntimeError: size mismatches always, missing and unexpected keys with ``strict``.
        Returns the (missing_keys, unexpected_keys) it found. ``assign``: the tensors take the
        checkpoint's values (and dtype) instead of copying into their own."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}. "
                            f"(For a list of (name, tensor) pairs, pass dict(pairs).)")
        missing_keys: list[str] = []
        unexpected_keys: list[str] = []
        error_msgs: list[str] = []
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = collections.OrderedDict(state_dict)  # the overrides may edit this copy
        if metadata is not None:
            state_dict._metadata = metadata

        def load(module, local_state_dict, prefix=""):
            local_metadata = {} if metadata is None else metadata.get(prefix[:-1], {})
            if assign:
                local_metadata["assign_to_params_buffers"] = assign
            module._load_from_state_dict(local_state_dict, prefix, local_metadata, True,
                                         missing_keys, unexpected_keys, error_msgs)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    load(child, {k: v for k, v in local_state_dict.items() if k.startswith(child_prefix)},
                         child_prefix)
            incompatible = IncompatibleKeys(missing_keys, unexpected_keys)  # the hooks edit these lists
            for hook in module._hooks_of("_load_state_dict_post_hooks"):
                if hook(module, incompatible) is not None:
                    raise AssertionError("Hooks registered with ``register_load_state_dict_post_hook`` are not "
                                         "expected to return new values, if incompatible_keys need to be modified, "
                                         "it should be done inplace.")

        load(self, state_dict)
        keys_wrong = strict and (missing_keys or unexpected_keys)
        if strict:
            if unexpected_keys:
                error_msgs.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected_keys)))
            if missing_keys:
                error_msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing_keys)))
        if error_msgs:
            if keys_wrong:
                cls = StateDictKeyError
            elif any(m.startswith("size mismatch") for m in error_msgs):
                cls = StateDictShapeError
            elif any(m.startswith("While copying") for m in error_msgs):
                cls = StateDictTypeError
            else:
                cls = RuntimeError
            raise cls("Error(s) in loading state_dict for {}:\n\t{}".format(type(self).__name__, "\n\t".join(error_msgs)))
        return IncompatibleKeys(missing_keys, unexpected_keys)
