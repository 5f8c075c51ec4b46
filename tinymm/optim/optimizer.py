"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad`` and state dicts.

As in PyTorch, an optimizer holds ``param_groups`` (dicts with ``"params"`` and that group's
hyper-parameters) and ``state`` (per parameter: step count and moment buffers). ``step()``
hands each parameter's arrays to one in-place update kernel in ``tinymm.kernels.optim``.
``state_dict()`` names parameters by their position, so it can be saved and restored into a
freshly built optimizer over the same model.
"""
from __future__ import annotations

import copy

import numpy as np

from tinymm import backend
from tinymm.tensor import Tensor


class Optimizer:
    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list[dict] = []
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameters must be Tensors, got {type(p).__name__}")
            if p.dtype.kind != "f":
                raise TypeError(f"{type(self).__name__}: can only optimise floating tensors, got {p.dtype}")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter appears in more than one group")
            seen.add(id(p))
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        loss = None
        if closure is not None:
            from tinymm.autograd import enable_grad

            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if type(p.grad.data) is not type(p.data):
                    raise ValueError(f"{type(self).__name__}: a gradient is on {p.grad.device}, its parameter on {p.device}")
                self._update(p, p.grad.data, self.state.setdefault(id(p), {}), group)
        return loss

    def _update(self, p: Tensor, grad, state: dict, group: dict) -> None:
        raise NotImplementedError

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
                s = self.state.get(id(p))
                if s:
                    state[index[id(p)]] = {
                        k: (Tensor._wrap(v.copy()) if hasattr(v, "shape") and getattr(v, "ndim", 0) > 0 else v)
                        for k, v in s.items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the saved state has {len(groups)} parameter groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        params = [p for g in self.param_groups for p in g["params"]]
        for saved, mine in zip(groups, self.param_groups):
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: a group has {len(saved['params'])} saved parameters, "
                    f"this optimizer's has {len(mine['params'])}"
                )
            for k, v in saved.items():
                if k != "params":
                    mine[k] = copy.deepcopy(v)
        self.state = {}
        for i, s in state_dict["state"].items():
            p = params[int(i)]
            entry = {}
            for k, v in s.items():
                if isinstance(v, Tensor) or hasattr(v, "shape") and getattr(v, "ndim", 0) > 0:
                    arr = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
                    if arr.shape != p.shape:
                        raise ValueError(
                            f"{type(self).__name__}.load_state_dict: state {k!r} of parameter {i} has shape "
                            f"{arr.shape}, the parameter has {p.shape}"
                        )
                    entry[k] = backend.to_device(arr.astype(p.dtype), p.device)
                else:
                    entry[k] = v
            self.state[id(p)] = entry

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"
