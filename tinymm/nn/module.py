"""``Module``: the base of every layer and model (its state dict: ``module_state.py``).

Assigning a ``Parameter`` or a ``Module`` to an attribute registers it, in assignment order,
so ``named_parameters()`` and ``state_dict()`` give PyTorch's dotted names
(``encoder.layers.0.linear1.weight``) and a state dict moves between tinymm and torch.
Buffers (``register_buffer``) are state that is saved but not learned.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from tinymm import backend
from tinymm.autograd import Function
from tinymm.nn.module_registry import REGISTRIES, Registry
from tinymm.nn.module_state import (IncompatibleKeys, RemovableHandle, StateDictKeyError,  # noqa: F401
                                     StateDictMixin, StateDictShapeError, StateDictTypeError)
from tinymm.nn.parameter import Parameter
from tinymm.nn.parameter_more import Buffer  # opse
from tinymm.nn import sparse_buffers
from tinymm.tensor import Tensor


def _check_name(kind: str, module, name) -> None:
    """PyTorch's rules for a registered name: a non-empty str without dots."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain ".", got {name!r}')
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')


class _BackwardHookFn(Function):
    """Identity on the module's inputs ("in") or outputs ("out") that hands their gradients
    to the module's full backward hooks (see ``Module.register_full_backward_hook``)."""

    @staticmethod
    def forward(ctx, *arrays, state=None, role="in"):
        ctx.state, ctx.role = state, role
        return arrays if len(arrays) > 1 else arrays[0]

    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        if ctx.role == "out":
            grad_output = tuple(Tensor._wrap(g) for g in grads)
            for hook in state["pre_hooks"]:  # full backward pre-hooks may replace grad_output
                res = hook(state["module"], grad_output)
                if res is not None:
                    grad_output = tuple(res) if isinstance(res, (tuple, list)) else (res,)
                    grads = tuple(g._data for g in grad_output)
            state["grad_output"] = grad_output
            if not state["hooks"]:
                return grads if len(grads) > 1 else grads[0]
            if not state["n_inputs"]:
                _run_backward_hooks(state, (None,) * state["n_args"])
            return grads if len(grads) > 1 else grads[0]
        grad_input = [None] * state["n_args"]
        for pos, g in zip(state["positions"], grads):
            grad_input[pos] = Tensor._wrap(g)
        new = _run_backward_hooks(state, tuple(grad_input))
        if new is not None:
            grads = tuple(new[pos]._data for pos in state["positions"])
        return grads if len(grads) > 1 else grads[0]


def _run_backward_hooks(state, grad_input):
    for hook in state["hooks"]:
        res = hook(state["module"], grad_input, state.get("grad_output", ()))
        if res is not None:
            grad_input = tuple(res)
            state["replaced"] = True
    return grad_input if state.get("replaced") else None


def _wrap_inputs(module, args, hooks, pre_hooks):
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    state = {"module": module, "hooks": hooks, "pre_hooks": pre_hooks, "positions": positions,
             "n_args": len(args), "n_inputs": len(positions)}
    if positions and hooks:
        wrapped = _BackwardHookFn.apply(*(args[i] for i in positions), state=state, role="in")
        wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
        args = list(args)
        for i, w in zip(positions, wrapped):
            args[i] = w
        args = tuple(args)
    return args, state


def _wrap_outputs(out, state):
    outs = out if isinstance(out, tuple) else (out,)
    idx = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
    if not idx:
        return out
    wrapped = _BackwardHookFn.apply(*(outs[i] for i in idx), state=state, role="out")
    wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
    outs = list(outs)
    for i, w in zip(idx, wrapped):
        outs[i] = w
    return tuple(outs) if isinstance(out, tuple) else outs[0]


def _parse_to(args, kwargs):
    """(device or None, NumPy dtype or None) from ``Module.to``'s arguments, PyTorch's forms."""
    from tinymm.dtype_objects import dtype as dtype_class

    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)  # tinymm's arrays are always row-major (see runtime)
    if kwargs:
        raise TypeError(f"to() received an invalid combination of arguments - got unexpected keyword arguments "
                        f"{sorted(kwargs)}")
    rest = list(args)

    def is_dtype(a):
        return isinstance(a, (dtype_class, np.dtype)) or (isinstance(a, type) and issubclass(a, np.generic))

    if rest and isinstance(rest[0], Tensor):
        other = rest.pop(0)
        device, dtype = other.device, other.dtype
    elif rest and is_dtype(rest[0]):
        dtype = rest.pop(0)
    elif rest and (isinstance(rest[0], (str, int)) and not isinstance(rest[0], bool) or hasattr(rest[0], "type")):
        device = rest.pop(0)
        if rest and is_dtype(rest[0]):
            dtype = rest.pop(0)
    if rest and isinstance(rest[0], bool):  # non_blocking
        rest.pop(0)
    if rest:
        raise TypeError(f"to() received an invalid combination of arguments: {args!r}")
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind not in "fc":
            from tinymm.dtype_objects import as_dtype

            raise TypeError(f"nn.Module.to only accepts floating point or complex dtypes, but got desired "
                            f"dtype={as_dtype(dtype)}")
    if device is not None:
        device = backend.parse_device(f"cuda:{device}" if isinstance(device, int) else device)
    return device, dtype


class Module(StateDictMixin):
    def __init__(self):
        object.__setattr__(self, "_parameters", Registry(self))
        object.__setattr__(self, "_buffers", Registry(self))
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", Registry(self))
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            # PyTorch: only a Parameter or Module needs the registries; anything else (a
            # __new__-made clone's __dict__, learn2learn's clone_module) is a plain attribute
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before "
                                     f"setting {name!r}")
            object.__setattr__(self, name, value)
            return
        if name in REGISTRIES and isinstance(value, dict):
            # a dict put in place of a registry (clone_module's copy) keeps the attributes in step
            if not (isinstance(value, Registry) and value.owner is self):
                value = Registry(self, value)
            object.__setattr__(self, name, value)
            return
        # opse: an nn.Buffer is registered as a buffer, persistent as it says
        if isinstance(value, Buffer) and not isinstance(value, (Parameter, Module)):
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
            self._non_persistent.discard(name)
            self.register_buffer(name, value, value.persistent)
            return
        # PyTorch's rules: a Parameter or Module (re)registers the name; a name already
        # registered as a parameter, child or buffer only takes its own kind (or None)
        if isinstance(value, (Parameter, Module)):
            own = self._parameters if isinstance(value, Parameter) else self._modules
            for registry in (self._parameters, self._modules, self._buffers):
                if registry is not own:  # re-assigning keeps the name's place in its own registry
                    registry.pop(name, None)
            own[name] = value
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(tinymm.nn.Parameter or None expected)")
            self._parameters[name] = None
        elif name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                "(tinymm.nn.Module or None expected)")
            self._modules[name] = None
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor) and not sparse_buffers.is_sparse(value):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' (Tensor or None expected)")
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        registered = False
        for registry in (self._parameters, self._modules, self._buffers):
            if name in registry:
                del registry[name]  # (which drops the attribute too)
                registered = True
        if not registered:
            object.__delattr__(self, name)

    def __getattr__(self, name):
        """Reached when normal lookup fails, or called by name: CenterNet-style heads write
        ``self.__getattr__(head)`` for a child set with ``__setattr__``. Registered parameters,
        buffers and children live in the instance dict too, so a failed lookup means the name
        is none of them; an explicit call finds them in the registries, as PyTorch's does."""
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            found = d.get(registry)
            if found is not None and name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name``; None records an absent optional parameter (bias=False)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name("parameter", self, name)
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        object.__setattr__(self, name, param)
        self._parameters[name] = param

    def register_buffer(self, name: str, value, persistent: bool = True) -> None:
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name("buffer", self, name)
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        sparse = sparse_buffers.is_sparse(value)
        if value is not None and not sparse and not isinstance(value, Tensor) and not hasattr(value, "__array__"):
            raise TypeError(f"cannot assign '{type(value).__name__}' object to buffer '{name}' (Tensor or None required)")
        self._non_persistent.discard(name)
        t = None if value is None else (value if isinstance(value, Tensor) or sparse else Tensor._of(value))
        object.__setattr__(self, name, t)
        self._buffers[name] = t
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        _check_name("module", self, name)
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        object.__setattr__(self, name, module)
        self._modules[name] = module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """Every module of the tree, depth first, by dotted name; a module reached twice is
        yielded once unless ``remove_duplicate=False`` (``memo``: a set of modules to skip)."""
        if isinstance(memo, str):  # the old positional use named_modules(prefix)
            memo, prefix = None, memo
        stack = [(prefix, self)]
        seen = set() if memo is None else {id(m) for m in memo}
        while stack:
            name, m = stack.pop()
            if remove_duplicate:
                if id(m) in seen:
                    continue
                seen.add(id(m))
                if memo is not None:
                    memo.add(m)
            yield name, m
            children = [(f"{name}.{k}" if name else k, c) for k, c in m._modules.items() if c is not None]
            stack.extend(reversed(children))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        """(name, child) pairs; a child registered under two names comes once, as in PyTorch."""
        seen = set()
        for k, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield k, m

    def children(self):
        return (m for _, m in self.named_children())

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mname, m in mods:
            for k, p in m._parameters.items():
                if p is None or (remove_duplicate and id(p) in seen):
                    continue
                seen.add(id(p))
                yield (f"{mname}.{k}" if mname else k), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mname, m in mods:
            for k, b in m._buffers.items():
                if b is None or (remove_duplicate and id(b) in seen):
                    continue
                seen.add(id(b))
                yield (f"{mname}.{k}" if mname else k), b

    def buffers(self, recurse: bool = True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def share_memory(self) -> "Module":
        """PyTorch moves the tensors into shared memory for worker processes; tinymm's DataLoader
        workers are threads, which share the arrays already. Returns the module."""
        return self

    def apply(self, fn) -> "Module":
        """``fn`` on every child (recursively, in registration order), then on this module."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and devices
    def train(self, mode: bool = True) -> "Module":
        """Set ``training`` here, then call each child's ``train(mode)``: a subclass that
        overrides ``train`` (LoRA merging its update into the weight on ``eval()``) is reached
        through its parent's call, as in PyTorch."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        object.__setattr__(self, "training", mode)
        for m in self.children():
            m.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            elif getattr(p.grad, "is_sparse", False):  # probe8: a sparse grad keeps no entries
                p.grad.zero_()
            else:
                p.grad._data[...] = 0

    call_super_init = False  # PyTorch's class flags, read by some subclasses
    dump_patches = False

    def _apply(self, fn, recurse: bool = True) -> "Module":
        """Replace every parameter's and buffer's data (and gradient) by ``fn(tensor)``'s, children
        first, keeping the Parameter objects (an optimizer built before still holds them). Every
        conversion (``to``, ``cuda``, ``float``, ``to_empty``, ...) goes through here, so a
        subclass that overrides ``_apply`` to convert its own extra tensors sees each one, as in
        PyTorch."""
        if recurse:
            for child in self.children():
                child._apply(fn)
        for registry in (self._parameters, self._buffers):
            for t in registry.values():
                if t is None:
                    continue
                if sparse_buffers.is_sparse(t):  # (a sparse buffer: whisper's alignment heads)
                    sparse_buffers.apply_in_place(t, fn)
                    continue
                t._data = fn(t)._data
                if t.grad is not None:
                    t.grad._data = fn(t.grad)._data
        return self

    def to(self, *args, **kwargs) -> "Module":
        """Move and/or cast every parameter and buffer in place, as PyTorch's ``Module.to``:
        ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)`` (its device and
        dtype), keywords ``device``, ``dtype``, ``non_blocking``, ``memory_format``. Only
        floating and complex tensors change dtype, and ``dtype`` must be floating or complex
        (TypeError otherwise); integer buffers (``num_batches_tracked``) keep theirs."""
        device, dtype = _parse_to(args, kwargs)

        def convert(t):
            arr = t._data
            if dtype is not None and arr.dtype.kind in "fc" and arr.dtype != dtype:
                arr = arr.astype(dtype)
            if device is not None:
                arr = backend.to_device(arr, device)
            return Tensor._wrap(arr)

        return self._apply(convert)

    def to_empty(self, *, device, recurse: bool = True) -> "Module":
        """Every parameter and buffer moved to ``device`` as uninitialised memory of its shape and
        dtype (its values are not copied): for modules built on the ``meta`` device and
        initialised afterwards, as PyTorch's."""
        device = backend.parse_device(device)
        return self._apply(lambda t: Tensor._wrap(backend.array_module(device).empty(t._data.shape, t._data.dtype)),
                           recurse=recurse)

    def cuda(self, device=None):
        return self.to("cuda" if device is None else backend.parse_device(device if isinstance(device, str) else "cuda"))

    def cpu(self):
        return self.to("cpu")

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def half(self):
        """Floating parameters and buffers as float16 (NumPy's half: slow, for storage)."""
        return self.to(np.float16)

    def bfloat16(self):
        raise TypeError(f"{type(self).__name__}.bfloat16(): tinymm has no bfloat16 (NumPy has no such type); "
                        f"use .half() (float16) or keep float32")

    def type(self, dst_type):
        """Every parameter and buffer cast to ``dst_type``, integer buffers included (PyTorch's
        ``Module.type``, unlike ``to``)."""
        target = np.dtype(dst_type)
        return self._apply(lambda t: Tensor._wrap(t._data.astype(target, copy=False)))

    def compile(self, *args, **kwargs) -> None:
        """PyTorch's in-place ``Module.compile``: tinymm runs modules eagerly (see
        ``tinymm.compile``), so there is nothing to do beyond checking the arguments."""
        from tinymm.runtime import compile as _compile

        _compile(self, *args, **kwargs)

    def _get_name(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ calling and printing
    def forward(self, *input):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        hooks = self.__dict__.get("_hooks")
        if not hooks:
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(hooks, args, kwargs)

    # ------------------------------------------------------------------ hooks and lookup
    def _call_with_hooks(self, hooks, args, kwargs):
        """PyTorch's forward-hook protocol: each pre-hook may replace the arguments, each
        forward hook the output (a hook returning None changes nothing)."""
        for _, kind, hook, with_kwargs in list(hooks.values()):
            if kind != "pre":
                continue
            if with_kwargs:
                res = hook(self, args, kwargs)
                if res is not None:
                    if not (isinstance(res, tuple) and len(res) == 2):
                        raise RuntimeError(f"forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                                           f"but got {res!r}")
                    args, kwargs = res
            else:
                res = hook(self, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        backward_hooks = [h for _, kind, h, _ in hooks.values() if kind == "bwd"]
        backward_pre_hooks = [h for _, kind, h, _ in hooks.values() if kind == "bwd_pre"]
        if backward_hooks or backward_pre_hooks:
            args, state = _wrap_inputs(self, args, backward_hooks, backward_pre_hooks)
        out = self.forward(*args, **kwargs)
        if backward_hooks or backward_pre_hooks:
            out = _wrap_outputs(out, state)
        for _, kind, hook, with_kwargs in list(hooks.values()):
            if kind != "post":
                continue
            res = hook(self, args, kwargs, out) if with_kwargs else hook(self, args, out)
            if res is not None:
                out = res
        return out

    def _add_hook(self, kind, hook, prepend, with_kwargs):
        hooks = self.__dict__.get("_hooks")
        if hooks is None:
            hooks = {}
            object.__setattr__(self, "_hooks", hooks)
        handle = RemovableHandle(hooks)
        entry = (handle.id, kind, hook, with_kwargs)
        if prepend:
            items = list(hooks.items())
            hooks.clear()
            hooks[handle.id] = entry
            hooks.update(items)
        else:
            hooks[handle.id] = entry
        return handle

    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False):
        """``hook(module, args)`` (or ``(module, args, kwargs)`` with ``with_kwargs``) runs before
        ``forward``; returning non-None replaces the arguments. Returns a handle with ``remove()``."""
        return self._add_hook("pre", hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False):
        """``hook(module, args, output)`` (or ``(module, args, kwargs, output)``) runs after
        ``forward``; returning non-None replaces the output. Returns a handle with ``remove()``."""
        return self._add_hook("post", hook, prepend, with_kwargs)

    def register_full_backward_hook(self, hook, prepend: bool = False):
        """``hook(module, grad_input, grad_output)`` runs when the gradients of the module's
        tensor inputs have been computed (grad_input holds None for inputs that need none);
        returning a tuple replaces grad_input. Returns a handle with ``remove()``."""
        return self._add_hook("bwd", hook, prepend, False)

    def register_full_backward_pre_hook(self, hook, prepend: bool = False):
        """``hook(module, grad_output)`` runs when the gradients of the module's outputs have been
        computed, before any input gradient; returning a tuple replaces grad_output. Returns a
        handle with ``remove()``."""
        return self._add_hook("bwd_pre", hook, prepend, False)

    def register_backward_hook(self, hook):
        """PyTorch's deprecated backward hook. ``hook(module, grad_input, grad_output)`` runs as a
        full backward hook (``register_full_backward_hook``): grad_output is the same as
        PyTorch's; grad_input holds the gradients of the module's inputs, where PyTorch's old
        hook gave those of the last operation's inputs (its documented defect)."""
        import warnings

        warnings.warn("register_backward_hook is deprecated: tinymm runs it as register_full_backward_hook "
                      "(grad_input is the gradients of the module's inputs)", FutureWarning, stacklevel=2)
        return self.register_full_backward_hook(hook)

    def register_module(self, name: str, module: "Module | None") -> None:
        self.add_module(name, module)

    def get_submodule(self, target: str = "") -> "Module":
        """The submodule at dotted path ``target`` ("" is this module); AttributeError names the
        missing part."""
        mod = self
        for part in target.split(".") if target else []:
            child = mod._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(mod).__name__} has no attribute `{part}` (looking up {target!r})")
            mod = child
        return mod

    def set_submodule(self, target: str, module: "Module", strict: bool = False) -> None:
        """Put ``module`` at dotted path ``target`` (PyTorch's checks: the path's parents must be
        modules, and with ``strict`` the last name must already exist)."""
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        if not isinstance(module, Module):
            raise ValueError(f"`module` is not an nn.Module, found {type(module)}")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if strict and not hasattr(parent, name):
            raise AttributeError(f"{parent._get_name()} has no attribute `{name}`")
        if hasattr(parent, name) and not isinstance(getattr(parent, name), Module):
            raise AttributeError(f"`{name}` is not an nn.Module")
        setattr(parent, name, module)

    def get_parameter(self, target: str) -> Parameter:
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters or mod._parameters[name] is None:
            raise AttributeError(f"{type(mod).__name__} has no parameter `{name}` (looking up {target!r})")
        return mod._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._buffers or mod._buffers[name] is None:
            raise AttributeError(f"{type(mod).__name__} has no buffer `{name}` (looking up {target!r})")
        return mod._buffers[name]

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = []
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            child_lines.append(f"({name}): {body}")
        # PyTorch's layout: a one-line extra_repr stays inline only when there are no children
        # (a parametrized Linear prints its features on their own line above the ModuleDict)
        head = f"{type(self).__name__}("
        if len(extra_lines) == 1 and not child_lines:
            return head + extra_lines[0] + ")"
        lines = extra_lines + child_lines
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
