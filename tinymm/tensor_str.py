"""How a Tensor prints: PyTorch's layout, character for character, for real and integer tensors.

PyTorch picks one format for all the values it shows (after summarizing to the edge items):
- integer and bool tensors print each value as Python does (``3``, ``True``);
- a float tensor whose shown nonzero finite values are all whole numbers prints them as
  ``2.`` ("int mode"), or in scientific notation when max/min > 1000 or max > 1e8;
- other float tensors print ``precision`` decimals (``1.5000``), or scientific notation when
  max/min > 1000, max > 1e8 or min < 1e-4 (``sci_mode`` in the print options overrides the choice);
every value is right-aligned to the widest, rows wrap at ``linewidth``, and the suffixes
(``dtype=...``, ``grad_fn=<...>``) go on the last line or, when they do not fit, on their own.
Arrays in, strings out: ``Tensor.__repr__`` hands over its values and suffixes.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["tensor_str"]


class _Formatter:
    """One value format for a whole tensor, chosen from the values shown (PyTorch's rules)."""

    def __init__(self, shown: np.ndarray, opts: dict):
        self.floating = shown.dtype.kind in "f"
        self.precision = opts["precision"]
        self.int_mode, self.sci_mode, self.max_width = True, False, 1
        flat = shown.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(f"{v}"))
        else:
            vals = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
            if not vals.size:
                return  # as PyTorch: nothing to measure, and sci_mode stays off even when forced
            lo, hi = np.abs(vals).min(), np.abs(vals).max()
            self.int_mode = bool((vals == np.ceil(vals)).all())
            self.sci_mode = bool(hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4) if opts["sci_mode"] is None \
                else opts["sci_mode"]
            for v in vals.tolist():
                if self.sci_mode:
                    width = len(f"{v:.{self.precision}e}")
                elif self.int_mode:
                    width = len(f"{v:.0f}") + 1  # the trailing "."
                else:
                    width = len(f"{v:.{self.precision}f}")
                self.max_width = max(self.max_width, width)

    def format(self, v) -> str:
        if self.floating:
            if self.sci_mode:
                s = f"{v:{self.max_width}.{self.precision}e}"
            elif self.int_mode:
                s = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
            else:
                s = f"{v:.{self.precision}f}"
        else:
            s = f"{v}"
        return " " * (self.max_width - len(s)) + s


def _summarized(a: np.ndarray, edge: int) -> np.ndarray:
    """The values shown when the tensor is summarized: ``edge`` items from each end of every dim."""
    if a.ndim == 0:
        return a
    if a.ndim == 1:
        return np.concatenate([a[:edge], a[-edge:]]) if a.shape[0] > 2 * edge else a
    if not edge:
        return a[tuple(slice(0, 0) for _ in a.shape)]
    rows = list(range(edge)) + list(range(a.shape[0] - edge, a.shape[0])) if a.shape[0] > 2 * edge \
        else range(a.shape[0])
    return np.stack([_summarized(a[i], edge) for i in rows])


def _body(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter, opts: dict) -> str:
    edge = opts["edgeitems"]
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        per_line = max(1, int(math.floor((opts["linewidth"] - indent) / (fmt.max_width + 2))))
        if summarize and not edge:
            items = ["..."]
        elif summarize and a.shape[0] > 2 * edge:
            items = [fmt.format(v) for v in a[:edge].tolist()] + [" ..."] + [fmt.format(v) for v in a[-edge:].tolist()]
        else:
            items = [fmt.format(v) for v in a.tolist()]
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    if summarize and a.shape[0] > 2 * edge:
        parts = [_body(a[i], indent + 1, summarize, fmt, opts) for i in range(edge)] + ["..."] + \
                [_body(a[i], indent + 1, summarize, fmt, opts) for i in range(a.shape[0] - edge, a.shape[0])]
    else:
        parts = [_body(a[i], indent + 1, summarize, fmt, opts) for i in range(a.shape[0])]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def tensor_str(values: np.ndarray, suffixes: list[str], opts: dict, prefix: str = "tensor(") -> str:
    """``prefix`` + the values laid out as PyTorch prints them + ``, suffix`` for each suffix + ``)``.
    ``values`` is a host array of a real or integer dtype; ``opts`` the print options
    (precision, threshold, edgeitems, linewidth, sci_mode)."""
    indent = len(prefix)
    if values.size == 0:
        body = "[]"
    else:
        if values.dtype == np.float16:  # as PyTorch: half values are formatted as float
            values = values.astype(np.float32)
        summarize = values.size > opts["threshold"]
        fmt = _Formatter(_summarized(values, opts["edgeitems"]) if summarize else values, opts)
        body = _body(values, indent, summarize, fmt, opts)
    out = prefix + body
    last_line = len(out) - out.rfind("\n") + 1
    for s in suffixes:
        if last_line + len(s) + 2 > opts["linewidth"]:
            out += ",\n" + " " * indent + s
            last_line = indent + len(s)
        else:
            out += ", " + s
            last_line += len(s) + 2
    return out + ")"
