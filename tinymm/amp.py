"""``torch.amp``: ``GradScaler`` (dynamic loss scaling) and ``autocast``, as training scripts use them.

**GradScaler** is arithmetic and works as in PyTorch: ``scaler.scale(loss)`` multiplies the loss
by the scale S (2**16 at first), so small float16 gradients do not flush to zero;
``scaler.step(opt)`` first unscales the gradients (divides by S, once per optimizer per
iteration, also through an explicit ``scaler.unscale_(opt)`` before gradient clipping), and
skips ``opt.step()`` when any gradient is inf or NaN; ``scaler.update()`` then halves S after a
skipped step (``backoff_factor``) and doubles it after ``growth_interval`` clean steps in a
row. As in PyTorch, a scaler for the ``"cuda"`` device (the default) with no usable GPU warns
and disables itself, and a disabled scaler passes everything straight through; ``device="cpu"``
scales on the CPU.

**autocast** with ``enabled=False`` is the no-op that scripts written as
``autocast(..., enabled=use_amp)`` rely on; ``autocast("cuda")`` without a usable GPU warns and
disables itself, as PyTorch's does (``is_autocast_enabled()`` is then False). Enabled, it would run matrix products in float16 or
bfloat16; tinymm has no mixed-precision kernels (and NumPy no bfloat16), so entering an enabled
autocast region raises ``NotImplementedError`` that says so, rather than silently computing
something other than what was asked.
"""
from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

from tinymm import backend
from tinymm.tensor import Tensor

__all__ = ["GradScaler", "autocast", "is_autocast_enabled"]


class autocast(contextlib.ContextDecorator):
    """``torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None)``; only
    ``enabled=False`` can be entered (see the module docstring)."""

    def __init__(self, device_type: str = "cuda", dtype=None, enabled: bool = True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise ValueError(f"autocast: expected device_type to be a str, got {type(device_type).__name__}")
        if device_type not in ("cpu", "cuda"):
            raise RuntimeError(f"autocast: device_type must be 'cpu' or 'cuda', got {device_type!r}")
        self.device_type, self.fast_dtype, self.enabled = device_type, dtype, bool(enabled)
        if self.enabled and device_type == "cuda" and not backend.cuda_available():
            # PyTorch on a machine without CUDA (MAE's ``with torch.cuda.amp.autocast():``)
            warnings.warn("CUDA is not available or torch_xla is imported. Disabling autocast.", UserWarning,
                          stacklevel=2)
            self.enabled = False

    def __enter__(self):
        if self.enabled:
            raise NotImplementedError(
                f"autocast(device_type={self.device_type!r}, enabled=True): tinymm has no mixed-precision "
                f"kernels (and NumPy no bfloat16), so it cannot run this region in lower precision; pass "
                f"enabled=False to run it in full precision")
        return self

    def __exit__(self, *exc):
        return False


def is_autocast_enabled(device_type=None) -> bool:
    """``torch.is_autocast_enabled([device_type])``: always False, since an enabled autocast
    region is never entered here (``autocast`` raises, or disables itself without CUDA)."""
    if device_type is not None and not isinstance(device_type, str):
        raise TypeError(f"is_autocast_enabled(): argument 'device_type' must be str, not {type(device_type).__name__}")
    return False


class ScalerUsageError(RuntimeError, AssertionError):
    """GradScaler calls out of order (PyTorch asserts them: AssertionError; RuntimeError as
    tinymm raised before)."""


class ScalerArgumentError(ValueError, AssertionError):
    """A GradScaler argument out of range (PyTorch asserts it; ValueError as tinymm raised)."""


class GradScaler:
    """``torch.amp.GradScaler(device="cuda", init_scale=2.**16, growth_factor=2.0,
    backoff_factor=0.5, growth_interval=2000, enabled=True)``; see the module docstring."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True):
        device = str(getattr(device, "type", device))
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise RuntimeError(f"GradScaler: device must be 'cpu' or 'cuda', got {device!r}")
        if growth_factor <= 1.0:
            raise ScalerArgumentError(f"GradScaler: growth_factor should be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ScalerArgumentError(f"GradScaler: backoff_factor should be < 1 and > 0, got {backoff_factor}")
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) or growth_interval <= 0:
            raise ScalerArgumentError(f"GradScaler: growth_interval should be a positive int, got {growth_interval!r}")
        self._device = "cpu" if device == "cpu" else "cuda"
        self._enabled = bool(enabled)
        if self._enabled and self._device == "cuda" and not backend.cuda_available():
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.", UserWarning,
                          stacklevel=2)
            self._enabled = False
        self._scale = float(init_scale)
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        # PyTorch creates the scale tensor on the first scale() (or load_state_dict); unscale_,
        # step and update before that are a script bug it asserts on
        self._scale_created = False
        self._per_optimizer: dict[int, dict] = {}  # id(optimizer) -> {"unscaled": bool, "found_inf": bool, "stepped": bool}

    # ------------------------------------------------------------------ the three calls of a step

    def scale(self, outputs):
        """``outputs`` (a Tensor, or a list/tuple of them, nested) times the current scale."""
        if not self._enabled:
            return outputs
        self._scale_created = True
        if isinstance(outputs, Tensor):
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    def _state(self, optimizer) -> dict:
        return self._per_optimizer.setdefault(id(optimizer), {"unscaled": False, "found_inf": False, "stepped": False})

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale, in place, and note whether any is inf/NaN."""
        if not self._enabled:
            return
        self._check_created("unscale_")
        st = self._state(optimizer)
        if st["unscaled"]:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if st["stepped"]:
            raise RuntimeError("unscale_() is being called after step().")
        inv = 1.0 / self._scale
        found = False
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad._data
                g *= np.asarray(inv, dtype=g.dtype) if type(g) is np.ndarray else inv
                xp = np if type(g) is np.ndarray else backend.array_module("cuda")
                if not found and not bool(xp.isfinite(g).all()):
                    found = True
        st["unscaled"], st["found_inf"] = True, found

    def step(self, optimizer, *args, **kwargs):
        """Unscale (unless ``unscale_`` did) and run ``optimizer.step()``, or skip it when a
        gradient is inf/NaN; returns what ``step`` returned (None when skipped)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_created("step")
        st = self._state(optimizer)
        if st["stepped"]:
            raise RuntimeError("step() has already been called since the last update().")
        if not st["unscaled"]:
            self.unscale_(optimizer)
        st["stepped"] = True
        if st["found_inf"]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None) -> None:
        """Set the next iteration's scale: ``new_scale`` if given, else back off after an inf/NaN
        step or grow after ``growth_interval`` clean ones."""
        if not self._enabled:
            return
        self._check_created("update")
        if new_scale is not None:
            value = float(new_scale.item() if isinstance(new_scale, Tensor) else new_scale)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"GradScaler.update: new_scale must be a positive finite number, got {value}")
            self._scale = value
        else:
            if not self._per_optimizer:
                raise ScalerUsageError("No inf checks were recorded prior to update (call scaler.step(optimizer) "
                                       "before scaler.update()).")
            if any(st["found_inf"] for st in self._per_optimizer.values()):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def _check_created(self, what: str) -> None:
        if not self._scale_created:
            raise ScalerUsageError(f"Attempted {what} but _scale is None.  This may indicate your script did not use "
                                   f"scaler.scale(loss or outputs) earlier in the iteration.")

    # ------------------------------------------------------------------ inspection and state

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
        self._scale_created = True
