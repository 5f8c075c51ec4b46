"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad`` and state dicts.

As in PyTorch, an optimizer holds ``param_groups`` (dicts with ``"params"`` and that group's
hyper-parameters) and ``state`` (per parameter: step count and moment buffers). ``step()``
hands each parameter's arrays to one in-place update kernel in ``tinymm.kernels.optim``.
``state_dict()`` names parameters by their position, so it can be saved and restored into a
freshly built optimizer over the same model.

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
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not (math.isfinite(v) and low <= v and (v < high if high_open else v <= high)):
        raise ValueError(f"{owner}: Invalid {what}: {value}")
    return v


def _with_step_hooks(step):
    """``step`` running the optimizer's step pre- and post-hooks around it (once, even when a
    subclass's step calls its parent's)."""

    def wrapper(self, *args, **kwargs):
        hooks = self.__dict__.get("_step_hooks")
        if not hooks or self.__dict__.get("_in_hooked_step"):
            return step(self, *args, **kwargs)
        for kind, hook in list(hooks.values()):
            if kind == "pre":
                res = hook(self, args, kwargs)
                if res is not None:
                    args, kwargs = res
        self._in_hooked_step = True
        try:
            out = step(self, *args, **kwargs)
        finally:
            self._in_hooked_step = False
        for kind, hook in list(hooks.values()):
            if kind == "post":
                hook(self, args, kwargs)
        return out

    wrapper.__doc__, wrapper.__name__, wrapper.__wrapped__ = step.__doc__, step.__name__, step
    return wrapper


def _scalar_dtype():
    """The dtype PyTorch keeps an optimizer's scalar state in (torch.optim's
    ``_get_scalar_dtype``): float64 when that is the default dtype, else float32."""
    return np.float64 if numpy_dtype(backend.get_default_dtype()) == np.float64 else np.float32


def scalar_state(value: float) -> float:
    """``value`` rounded as PyTorch stores an optimizer's scalar state (ASGD's eta and mu,
    NAdam's mu_product) in a 0-dim tensor of ``_scalar_dtype``, read back as a Python float."""
    return float(_scalar_dtype()(value))


def scalar_state_times(value: float, factor: float) -> float:
    """``state *= factor`` on such a 0-dim tensor: the float is cast to its dtype first."""
    t = _scalar_dtype()
    return float(t(value) * t(factor))


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


class Optimizer:
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            cls.step = _with_step_hooks(cls.__dict__["step"])

    def register_step_pre_hook(self, hook):
        """``hook(optimizer, args, kwargs)`` runs before each ``step``; returning
        (new_args, new_kwargs) replaces the arguments. Returns a handle with ``remove()``."""
        return self._add_step_hook("pre", hook)

    def register_step_post_hook(self, hook):
        """``hook(optimizer, args, kwargs)`` runs after each ``step``."""
        return self._add_step_hook("post", hook)

    def _add_step_hook(self, kind, hook):
        from tinymm.nn.module import RemovableHandle

        hooks = self.__dict__.setdefault("_step_hooks", {})
        handle = RemovableHandle(hooks)
        hooks[handle.id] = (kind, hook)
        return handle

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
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
        name = type(self).__name__
        if not isinstance(group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got {type(group).__name__}")
        if "params" not in group:
            raise ParamGroupError(f"{name}: parameter group {len(self.param_groups)} has no 'params' key "
                                  f"(got keys {sorted(map(str, group))})")
        group = dict(group)
        params = group["params"]
        if isinstance(params, dict):
            raise TypeError(f"{name}: a group's params must be a Tensor or an iterable of Tensors, got a dict")
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameters must be Tensors, got {type(p).__name__}")
            if p.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
                raise TypeError(f"{name}: can only optimise float32 or float64 tensors, got {p.dtype}")
            if id(p) in seen:
                raise ValueError(f"{name}: a parameter appears in more than one group")
            seen.add(id(p))
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check_hyperparameters(group)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
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
        one check a step makes: the gradient can update the parameter in place."""
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            d, g = p._data, grad._data
            if g.shape != d.shape or g.dtype != d.dtype or type(g) is not type(d) or not d.flags.c_contiguous:
                raise self._bad_grad(p)
            yield p, d, g

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
        """{"state": {index: {name: Tensor or number}}, "param_groups": [{..., "params": [index]}]}."""
        index, groups = {}, []
        for g in self.param_groups:
            entry = {k: v for k, v in g.items() if k != "params"}
            entry["params"] = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                entry["params"].append(index[id(p)])
            groups.append(entry)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                s = self.state.get(p)
                if s:
                    state[index[id(p)]] = {
                        k: (Tensor._wrap(state_array(v).copy())
                            if hasattr(v, "shape") and getattr(v, "ndim", 0) > 0 else v)
                        for k, v in s.items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore groups and state saved by ``state_dict()`` (or PyTorch's). Everything is
        checked before anything changes: group and parameter counts, hyper-parameters, that
        every state entry names a saved parameter, and that it holds the state this
        optimizer needs (``exp_avg`` for Adam), shaped like its parameter."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            got = sorted(map(str, state_dict)) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}: expected a dict with 'state' and 'param_groups', got {got}")
        groups = state_dict["param_groups"]
        if not isinstance(groups, (list, tuple)) or len(groups) != len(self.param_groups):
            n = len(groups) if isinstance(groups, (list, tuple)) else type(groups).__name__
            raise ValueError(f"{name}: the saved state has {n} parameter groups, this optimizer has "
                             f"{len(self.param_groups)}")
        new_groups = []
        for i, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            if not isinstance(saved, dict) or "params" not in saved:
                raise ParamGroupError(f"{name}: saved parameter group {i} has no 'params' list")
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(f"{name}: saved group {i} has {len(saved['params'])} parameters, "
                                 f"this optimizer's has {len(mine['params'])}")
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
            entry = {}
            for k, v in s.items():
                if isinstance(v, Tensor) or (hasattr(v, "shape") and getattr(v, "ndim", 0) > 0):
                    arr = v.numpy(force=True) if isinstance(v, Tensor) else np.asarray(backend.to_device(v, "cpu"))
                    if self._state_shaped_like_params and arr.shape != p.shape:
                        raise ValueError(f"{name}: state {k!r} of parameter {i!r} has shape {tuple(arr.shape)}, "
                                         f"the parameter has {tuple(p.shape)}")
                    # Always a copy (as PyTorch deep-copies): the state must not alias the caller's
                    # arrays, which may be another optimizer's live state.
                    entry[k] = Tensor._wrap(
                        backend.to_device(np.array(arr, dtype=p.dtype, order="C", copy=True), p.device))
                else:
                    entry[k] = copy.deepcopy(v)  # e.g. LBFGS's history lists: never the caller's
            self._check_state(p, entry, group, f"{name}: state of parameter {i!r}")
            new_state[p] = entry
        for group, mine in zip(new_groups, self.param_groups):
            mine.clear()
            mine.update(group)
        self.state = new_state

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


def state_step(where: str, state: dict) -> int:
    """The loaded ``state["step"]`` as an int >= 0 (PyTorch saves a float tensor)."""
    if "step" not in state:
        raise ValueError(f"{where} lacks 'step'")
    v = state["step"]
    if isinstance(v, Tensor):
        v = v.item()
    elif hasattr(v, "item"):
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or v != int(v):
        raise ValueError(f"{where}: 'step' must be a whole number >= 0, got {state['step']!r}")
    return int(v)
