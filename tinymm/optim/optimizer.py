"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad`` and state dicts.

As in PyTorch, an optimizer holds ``param_groups`` (dicts with ``"params"`` and that group's
hyper-parameters) and ``state`` (per parameter: step count and moment buffers). ``step()``
hands each parameter's arrays to one in-place update kernel in ``tinymm.kernels.optim``.
``state_dict()`` names parameters by their position, so it can be saved and restored into a
freshly built optimizer over the same model.

The state is PyTorch's, key for key and type for type, because training code reads and
rewrites it (``state["step"].item()``, a checkpoint written by PyTorch): the step count is a
0-dim CPU Tensor of float32 (float64 when that is the default dtype), updated in place, as are
ASGD's eta and mu and NAdam's mu_product; buffers are Tensors shaped like their parameter.
A state dict holds the live entries (as PyTorch's: deep-copy it to keep a snapshot); loading
copies, and accepts int steps (older PyTorch) as well as tensor ones. Hooks run around
``step`` (global ones from ``register_optimizer_step_pre_hook`` too), ``state_dict`` and
``load_state_dict``, in PyTorch's order.

Validate once: hyper-parameters are checked when a group is added (the constructor's defaults
too) and when a state dict is loaded, with PyTorch's messages ("Invalid learning rate: nan");
loaded state is checked against its parameters then. ``step()`` checks only what can change
between steps, each gradient's shape, dtype and device, and otherwise trusts what it holds
(a hyper-parameter written into ``param_groups`` by hand later is not re-checked; the LR
schedulers write computed values).
"""
from __future__ import annotations

import collections
import copy
import math
import warnings

import numpy as np

from tinymm import backend
from tinymm.dtype_objects import numpy_dtype
from tinymm.tensor import Tensor


class ParamGroupError(KeyError, ValueError):
    """A parameter group without ``"params"`` (PyTorch raises KeyError; ValueError works too)."""

    def __str__(self):  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


def check_number(owner: str, name: str, value, what: str, low=0.0, high=math.inf, high_open=False) -> float:
    """``value`` is a finite real number in [low, high] (or [low, high) with ``high_open``);
    returns it as a float. Messages follow PyTorch's ("Invalid learning rate: nan") and name
    the optimizer; a non-number (a string, a tuple) is a TypeError."""
    if isinstance(value, Tensor) and name == "lr":  # PyTorch takes a 1-element Tensor lr
        if value.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        value = float(value._data.reshape(()))
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not (math.isfinite(v) and low <= v and (v < high if high_open else v <= high)):
        raise ValueError(f"{owner}: Invalid {what}: {value}")
    return v


# Hooks every optimizer runs around its step (torch.optim.optimizer's module-level registries).
_global_step_pre_hooks: collections.OrderedDict = collections.OrderedDict()
_global_step_post_hooks: collections.OrderedDict = collections.OrderedDict()


def register_optimizer_step_pre_hook(hook):
    """``hook(optimizer, args, kwargs)`` runs before every optimizer's ``step``, before the
    optimizer's own pre-hooks. Returns a handle with ``remove()``."""
    from tinymm.nn.module_state import RemovableHandle

    handle = RemovableHandle(_global_step_pre_hooks)
    _global_step_pre_hooks[handle.id] = hook
    return handle


def register_optimizer_step_post_hook(hook):
    """``hook(optimizer, args, kwargs)`` runs after every optimizer's ``step``, after its own."""
    from tinymm.nn.module_state import RemovableHandle

    handle = RemovableHandle(_global_step_post_hooks)
    _global_step_post_hooks[handle.id] = hook
    return handle


def _with_step_hooks(step):
    """``step`` running the global and the optimizer's step pre- and post-hooks around it (once,
    even when a subclass's step calls its parent's), in PyTorch's order."""

    def wrapper(self, *args, **kwargs):
        d = self.__dict__
        d["_opt_called"] = True  # read by an LR scheduler's first step (its order warning)
        pre, post = d.get("_optimizer_step_pre_hooks"), d.get("_optimizer_step_post_hooks")
        if not (pre or post or _global_step_pre_hooks or _global_step_post_hooks) or d.get("_in_hooked_step"):
            return step(self, *args, **kwargs)
        args = (self, *args)  # the hooks see step's arguments with the optimizer first, as PyTorch's
        for hook in [*_global_step_pre_hooks.values(), *(pre or {}).values()]:
            res = hook(self, args, kwargs)
            if res is not None:
                if not (isinstance(res, tuple) and len(res) == 2):
                    raise RuntimeError(f"{step} must return None or a tuple of (new_args, new_kwargs), but got {res}.")
                args, kwargs = res
        self._in_hooked_step = True
        try:
            out = step(*args, **kwargs)
        finally:
            self._in_hooked_step = False
        for hook in [*(post or {}).values(), *_global_step_post_hooks.values()]:
            hook(self, args, kwargs)
        return out

    wrapper.__doc__, wrapper.__name__, wrapper.__wrapped__ = step.__doc__, step.__name__, step
    return wrapper


def _scalar_dtype():
    """The dtype PyTorch keeps an optimizer's scalar state in (torch.optim's
    ``_get_scalar_dtype``): float64 when that is the default dtype, else float32."""
    return np.float64 if numpy_dtype(backend.get_default_dtype()) == np.float64 else np.float32


def scalar_tensor(value, dtype=None) -> Tensor:
    """A 0-dim CPU Tensor holding ``value``, as PyTorch keeps an optimizer's scalar state (the
    step count, ASGD's eta and mu, NAdam's mu_product): dtype ``_scalar_dtype`` unless given."""
    return Tensor._wrap(np.array(value, dtype=dtype or _scalar_dtype()))


def advance_step(state: dict) -> float:
    """``state["step"] += 1`` on its 0-dim Tensor; returns the new count as a float."""
    t = state["step"]
    a = t._data if isinstance(t, Tensor) else None
    if a is None or a.ndim != 0 or type(a) is not np.ndarray:  # a number written by hand, or on a GPU
        t = state["step"] = scalar_tensor(float(a if a is not None else t))
        a = t._data
    v = a.item() + 1
    a[()] = v
    return v


def hyper(value):
    """A hyper-parameter read for a step: a Tensor ``lr`` (PyTorch accepts a 1-element
    Tensor) as a Python float; numbers as they are."""
    return value if type(value) is float or not isinstance(value, Tensor) else float(value._data.reshape(()))


def state_array(value):
    """The array of a per-parameter state entry: ``optimizer.state[p]`` holds Tensors, as
    PyTorch's (``state["exp_avg"].norm()``, ``state[k] = v.to(device)``); the updates run on
    their arrays, in place."""
    return value._data if isinstance(value, Tensor) else value


def state_tensor(value):
    """A new per-parameter state entry as it is stored: arrays wrapped (sharing memory) in
    Tensors; numbers and lists as they are."""
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, Tensor):
        return Tensor._wrap(value)
    return value


def implementation_options(name: str, **flags) -> dict:
    """PyTorch's implementation choices (``foreach``, ``fused``, ``capturable``,
    ``differentiable``), kept in the param groups as PyTorch keeps them. They pick how PyTorch
    runs the same update (a loop, multi-tensor kernels, one fused kernel); tinymm has one update
    kernel per optimizer, so they change nothing, except what cannot be honoured:
    ``differentiable=True`` (autograd through the step) is refused, as is fused with foreach."""
    if flags.get("differentiable"):
        raise RuntimeError(f"{name}: differentiable=True (autograd through the optimizer step) is not supported "
                           f"by tinymm")
    if flags.get("fused") and flags.get("foreach"):
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    return flags


def real_view(a):
    """A complex array's real view, shape + (2,): (re, im) pairs sharing its memory, as
    ``torch.view_as_real`` (a C-contiguous array, checked before)."""
    real = a.real.dtype
    return a.reshape(-1).view(real).reshape(tuple(a.shape) + (2,))


class Optimizer:
    # probe8: whether complex parameters step as their real views (PyTorch's elementwise
    # optimizers do: view_as_real on the parameter, gradient and state); those that cannot set False
    _complex_params = True
    # probe8: whether a sparse gradient (Embedding(sparse=True)) is stepped: SGD and Adagrad
    # take it as its dense equal (the same numbers as PyTorch's sparse update), SparseAdam sparse;
    # the others refuse it with PyTorch's message
    _sparse_grads = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            cls.step = _with_step_hooks(cls.__dict__["step"])

    def register_step_pre_hook(self, hook):
        """``hook(optimizer, args, kwargs)`` runs before each ``step``; returning
        (new_args, new_kwargs) replaces the arguments. Returns a handle with ``remove()``."""
        return self._add_hook("_optimizer_step_pre_hooks", hook)

    def register_step_post_hook(self, hook):
        """``hook(optimizer, args, kwargs)`` runs after each ``step``."""
        return self._add_hook("_optimizer_step_post_hooks", hook)

    def register_state_dict_pre_hook(self, hook, prepend: bool = False):
        """``hook(optimizer)`` runs before ``state_dict`` builds its dict."""
        return self._add_hook("_optimizer_state_dict_pre_hooks", hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend: bool = False):
        """``hook(optimizer, state_dict)`` runs on the built dict; a dict it returns replaces it."""
        return self._add_hook("_optimizer_state_dict_post_hooks", hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend: bool = False):
        """``hook(optimizer, state_dict)`` runs on a shallow copy of the dict given to
        ``load_state_dict``; a dict it returns is loaded instead."""
        return self._add_hook("_optimizer_load_state_dict_pre_hooks", hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend: bool = False):
        """``hook(optimizer)`` runs after ``load_state_dict`` has loaded."""
        return self._add_hook("_optimizer_load_state_dict_post_hooks", hook, prepend)

    _HOOK_DICTS = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
                   "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
                   "_optimizer_load_state_dict_post_hooks")

    def __getstate__(self) -> dict:
        """What pickling and ``copy.deepcopy`` keep: everything but the hooks (PyTorch's
        optimizers drop them too, so an optimizer with a lambda hook still pickles)."""
        return {k: v for k, v in self.__dict__.items() if k not in self._HOOK_DICTS and k != "_in_hooked_step"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for name in self._HOOK_DICTS:
            self._hooks(name)

    def _hooks(self, name: str) -> collections.OrderedDict:
        # created on first use, so that optimizers built before hooks existed (unpickled) work
        return self.__dict__.setdefault(name, collections.OrderedDict())

    def _add_hook(self, name, hook, prepend=False):
        from tinymm.nn.module_state import RemovableHandle

        hooks = self._hooks(name)
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        for hooks in self._HOOK_DICTS:
            setattr(self, hooks, collections.OrderedDict())
        # probe3: keyed by the parameter, a defaultdict(dict) as PyTorch's (optimizer.state[p]["exp_avg"])
        self.state: dict = collections.defaultdict(dict)
        self.param_groups: list[dict] = []
        name = type(self).__name__
        if isinstance(params, Tensor) or isinstance(params, dict):
            raise TypeError(f"{name}: params must be an iterable of Tensors or of parameter-group dicts, "
                            f"got a single {type(params).__name__}")
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"{name}: params must be an iterable of Tensors or of parameter-group dicts, "
                            f"got {type(params).__name__}") from None
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        self._check_hyperparameters(self.defaults)
        as_dicts = [isinstance(p, dict) for p in params]
        if any(as_dicts) and not all(as_dicts):
            raise TypeError(f"{name}: params must be all Tensors or all parameter-group dicts, not a mix")
        for g in params if all(as_dicts) else [{"params": params}]:
            self.add_param_group(g)

    # ------------------------------------------------------------------ validation (once)
    def _check_hyperparameters(self, group: dict) -> None:
        """Raise on a bad hyper-parameter of ``group`` (each optimizer defines its own)."""

    # Per-parameter state arrays have their parameter's shape (load_state_dict checks it); LBFGS
    # keeps flat vectors over all parameters instead.
    _state_shaped_like_params = True

    def _check_state(self, p: Tensor, state: dict, group: dict, where: str) -> None:
        """Raise when a loaded ``state`` cannot drive ``p``'s updates (each optimizer)."""

    def add_param_group(self, group: dict) -> None:
        """Append ``group`` (the dict itself, as PyTorch: its missing hyper-parameters are
        filled from ``defaults``). ``params`` may be one Tensor, an ordered iterable of Tensors
        (a set is refused), or of ``(name, Tensor)`` pairs (then the group keeps
        ``param_names``). A parameter already in another group is refused; one listed twice
        in this group warns, as PyTorch."""
        name = type(self).__name__
        if not isinstance(group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got {type(group).__name__}")
        if "params" not in group:
            raise ParamGroupError(f"{name}: parameter group {len(self.param_groups)} has no 'params' key "
                                  f"(got keys {sorted(map(str, group))})")
        params = group["params"]
        if isinstance(params, dict):
            raise TypeError(f"{name}: a group's params must be a Tensor or an iterable of Tensors, got a dict")
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering of "
                            "tensors in sets will change between runs. Please use a list instead.")
        params = [params] if isinstance(params, Tensor) else list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) and len(p) == 2 else p for p in params]
        if names and len(names) != len(params):
            raise ValueError("all optimizer params should be with/without names. Some param names are missing")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameters must be Tensors, got {type(p).__name__}")
            if p.dtype not in (np.dtype(np.float32), np.dtype(np.float64)) and not (
                    self._complex_params and p.dtype in (np.dtype(np.complex64), np.dtype(np.complex128))):
                allowed = "float32, float64, complex64 or complex128" if self._complex_params else "float32 or float64"
                raise TypeError(f"{name}: can only optimise {allowed} tensors, got {p.dtype}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        if len({id(p) for p in params}) != len(params):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                          UserWarning, stacklevel=3)
        for g in self.param_groups:
            if bool(names) != ("param_names" in g):
                raise ValueError("all optimizer param groups should be with/without names. cannot add param group "
                                 f"{'with' if names else 'without'} names to the optimizer")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        filled = dict(group, params=params)
        for k, v in self.defaults.items():
            filled.setdefault(k, v)
        self._check_hyperparameters(filled)  # (may normalise values, e.g. betas to a tuple of floats)
        group.update(filled)
        if names:
            group["param_names"] = names
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif getattr(p.grad, "is_sparse", False):
                    p.grad.zero_()  # no entries left, still sparse (PyTorch's)
                else:
                    p.grad._data[...] = 0

    # ------------------------------------------------------------------ the step
    @_with_step_hooks
    def step(self, closure=None):
        loss = None
        if closure is not None:
            from tinymm.autograd import enable_grad

            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group: dict) -> None:
        """Update every parameter of ``group`` that has a gradient (each optimizer)."""
        raise NotImplementedError

    def _with_grads(self, group: dict):
        """``(p, data, grad)`` for each parameter of ``group`` that has a gradient, after the
        one check a step makes: the gradient can update the parameter in place. A complex
        parameter comes as the real views of its data and gradient (shape + (2,)), so the
        states a step makes from ``data`` are real views too (PyTorch keeps them complex, of
        the parameter's shape: the same numbers, another layout in a state dict)."""
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            if getattr(grad, "is_sparse", False):
                self._check_sparse_grad(group)
                grad = grad.to_dense()
            d, g = p._data, grad._data
            if g.shape != d.shape or g.dtype != d.dtype or type(g) is not type(d) or not d.flags.c_contiguous:
                raise self._bad_grad(p)
            if d.dtype.kind == "c":  # the update of (re, im) pairs, elementwise, as PyTorch's
                d, g = real_view(d), real_view(g if g.flags.c_contiguous else g.copy())
            yield p, d, g

    def _check_sparse_grad(self, group: dict) -> None:
        """Refuse a sparse gradient, with PyTorch's message (optimizers that take one override)."""
        name = type(self).__name__
        if not self._sparse_grads:
            if name in ("Adam", "AdamW"):
                raise RuntimeError("Adam does not support sparse gradients, please consider SparseAdam instead")
            raise RuntimeError(f"{name} does not support sparse gradients")

    def _bad_grad(self, p: Tensor):
        """The error for a gradient that cannot update ``p`` in place (called only on failure)."""
        name = type(self).__name__
        d, g = p._data, p.grad._data
        if type(g) is not type(d):
            return ValueError(f"{name}: a gradient is on {p.grad.device}, its parameter on {p.device}")
        if g.shape != d.shape:
            return ValueError(f"{name}: a gradient has shape {tuple(g.shape)}, its parameter {tuple(d.shape)}")
        if g.dtype != d.dtype:
            return TypeError(f"{name}: a gradient has dtype {g.dtype}, its parameter {d.dtype}")
        return ValueError(f"{name}: a parameter of shape {tuple(d.shape)} is not C-contiguous; it is updated in "
                          f"place, so make it contiguous (p._data = p._data.copy()) before stepping")

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict:
        """{"state": {index: {name: Tensor or number}}, "param_groups": [{..., "params": [index]}]},
        as PyTorch's: parameters are numbered in group order (a group's numbering starts after
        the previous group's length), and the state entries are the live Tensors, not copies
        (``copy.deepcopy`` it to keep a snapshot)."""
        for hook in list(self._hooks("_optimizer_state_dict_pre_hooks").values()):
            hook(self)
        index, groups, start = {}, [], 0
        for g in self.param_groups:
            entry = {k: v for k, v in g.items() if k != "params"}
            # (a parameter listed twice in one group gets its last position, as PyTorch's)
            index.update({id(p): i for i, p in enumerate(g["params"], start) if id(p) not in index})
            entry["params"] = [index[id(p)] for p in g["params"]]
            start += len(entry["params"])
            groups.append(entry)
        state = {}
        for p, s in self.state.items():
            if not isinstance(p, Tensor):
                state[p] = s
            elif id(p) in index:
                state[index[id(p)]] = s
        sd = {"state": state, "param_groups": groups}
        for hook in list(self._hooks("_optimizer_state_dict_post_hooks").values()):
            result = hook(self, sd)
            if result is not None:
                sd = result
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore groups and state saved by ``state_dict()`` (or PyTorch's: tensor or int
        steps alike). Everything is checked before anything changes: group and parameter counts
        (ValueError, PyTorch's messages), hyper-parameters, that every state entry names a saved
        parameter, and that it holds the state this optimizer needs (``exp_avg`` for Adam),
        shaped like its parameter. Arrays are copied onto the parameter's device and dtype;
        0-dim entries become 0-dim CPU Tensors (``step`` keeps its dtype, others take the
        parameter's, as PyTorch's); an empty entry is a parameter not yet stepped."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            got = sorted(map(str, state_dict)) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}: expected a dict with 'state' and 'param_groups', got {got}")
        state_dict = dict(state_dict)  # shallow copy for the hooks, as PyTorch
        for hook in list(self._hooks("_optimizer_load_state_dict_pre_hooks").values()):
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        groups = state_dict["param_groups"]
        if not isinstance(groups, (list, tuple)) or len(groups) != len(self.param_groups):
            n = len(groups) if isinstance(groups, (list, tuple)) else type(groups).__name__
            raise ValueError(f"{name}: loaded state dict has a different number of parameter groups (the saved "
                             f"state has {n}, this optimizer has {len(self.param_groups)})")
        new_groups = []
        for i, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            if not isinstance(saved, dict) or "params" not in saved:
                raise ParamGroupError(f"{name}: saved parameter group {i} has no 'params' list")
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(f"{name}: loaded state dict contains a parameter group that doesn't match the size "
                                 f"of optimizer's group (saved group {i} has {len(saved['params'])} parameters, "
                                 f"this optimizer's has {len(mine['params'])})")
            group = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            for k, v in mine.items():
                group.setdefault(k, v)
            group["params"] = mine["params"]
            self._check_hyperparameters(group)
            new_groups.append(group)
        # Saved indices map to this optimizer's parameters in order, group by group (as PyTorch).
        targets = {}
        for saved, group in zip(groups, new_groups):
            for i, p in zip(saved["params"], group["params"]):
                targets[_index(i)] = (p, group)
        state = state_dict["state"]
        if not isinstance(state, dict):
            raise ValueError(f"{name}: 'state' must be a dict of per-parameter dicts, got {type(state).__name__}")
        new_state = collections.defaultdict(dict)
        for i, s in state.items():
            key = _index(i)
            if key not in targets:
                raise ValueError(f"{name}: state is given for parameter index {i!r}, but the saved parameter "
                                 f"groups list only indices {sorted(targets, key=str)}")
            p, group = targets[key]
            if not isinstance(s, dict):
                raise ValueError(f"{name}: state of parameter {i!r} must be a dict, got {type(s).__name__}")
            # a fused or capturable group's step is float32 (PyTorch casts it so on load)
            f32_step = bool(group.get("fused") or group.get("capturable"))
            entry = {k: self._load_state_value(p, k, v, f"{name}: state {k!r} of parameter {i!r}", f32_step)
                     for k, v in s.items()}
            if entry:
                self._check_state(p, entry, group, f"{name}: state of parameter {i!r}")
            new_state[p] = entry
        for group, mine in zip(new_groups, self.param_groups):
            mine.clear()
            mine.update(group)
        self.state = new_state
        for hook in list(self._hooks("_optimizer_load_state_dict_post_hooks").values()):
            hook(self)

    def _load_state_value(self, p: Tensor, key, v, where: str, f32_step: bool = False):
        """One loaded state entry as this optimizer keeps it: a copy, never the caller's
        object (which may be another optimizer's live state)."""
        if isinstance(v, list):  # e.g. LBFGS's history
            return [self._load_state_value(p, None, x, where) for x in v]
        if key == "step" and f32_step and not isinstance(v, (list, dict, str, type(None))):
            try:
                return Tensor._wrap(np.array(float(v.item() if hasattr(v, "item") else v), dtype=np.float32))
            except (TypeError, ValueError):
                pass  # not a number: state_step names it
        if not (isinstance(v, Tensor) or (hasattr(v, "shape") and hasattr(v, "ndim") and not isinstance(v, np.generic))):
            return copy.deepcopy(v)
        arr = v.numpy(force=True) if isinstance(v, Tensor) else np.asarray(backend.to_device(v, "cpu"))
        if arr.ndim == 0:
            dtype = arr.dtype if key == "step" and arr.dtype.kind in "fiu" else p.dtype
            return Tensor._wrap(np.array(arr, dtype=dtype, copy=True))
        if self._state_shaped_like_params and arr.shape != p.shape:
            raise ValueError(f"{where} has shape {tuple(arr.shape)}, the parameter has {tuple(p.shape)}")
        return Tensor._wrap(backend.to_device(np.array(arr, dtype=p.dtype, order="C", copy=True), p.device))

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


def _index(i):
    """A saved parameter index as an int when it is one (JSON turns dict keys into strings)."""
    try:
        return int(i)
    except (TypeError, ValueError):
        return i


def state_step(where: str, state: dict) -> Tensor:
    """The loaded ``state["step"]`` checked (a whole number >= 0) and kept as a 0-dim Tensor,
    as PyTorch keeps it: a loaded Tensor as it came, an int (older PyTorch's state dicts) turned
    into one of ``_scalar_dtype``."""
    if "step" not in state:
        raise ValueError(f"{where} lacks 'step'")
    v = state["step"]
    x = v._data.item() if isinstance(v, Tensor) else v.item() if hasattr(v, "item") else v
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0 or x != int(x):
        raise ValueError(f"{where}: 'step' must be a whole number >= 0, got {state['step']!r}")
    return v if isinstance(v, Tensor) and v.ndim == 0 else scalar_tensor(float(x))


def state_scalar(where: str, state: dict, key: str) -> None:
    """A loaded scalar state entry (ASGD's eta and mu, NAdam's mu_product) kept as a 0-dim
    Tensor; a number (older state dicts) becomes one of ``_scalar_dtype``."""
    if key not in state:
        raise ValueError(f"{where} lacks {key!r} (found {sorted(state)})")
    v = state[key]
    if not (isinstance(v, Tensor) and v.ndim == 0):
        try:
            state[key] = scalar_tensor(float(v.item() if hasattr(v, "item") else v))
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {key!r} must be a number, got {v!r}") from None
