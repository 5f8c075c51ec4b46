"""How a Tensor prints: PyTorch's layout, rebuilt from the outputs PyTorch prints.

``tensor_repr(array, ...)`` is ``repr(tensor)`` (and ``str(tensor)``): ``tensor(`` + the
values + the suffixes + ``)``. It works on a NumPy array plus the few facts about the tensor
that the suffixes name, so this module never imports ``Tensor``.

The values
----------
One formatter is built per tensor from the elements that will be shown (after summarising),
and every element is right-justified to the formatter's width, so columns line up.

- bool: ``True`` / ``False``; integers: ``str(v)``. The width is the longest of them.
- floating: only the finite non-zero elements decide (zeros, nan and inf print in whatever
  mode those choose; with none at all the mode is "integer" with width 1):

  * integer mode when every one of them is integral: ``1.``, ``-20.`` (nan/inf keep no dot);
  * otherwise fixed mode with ``precision`` decimals (4 by default): ``1.5000``;
  * scientific mode, ``1.0000e-05``, when the largest magnitude over the smallest exceeds 1000
    or the largest exceeds 1e8, or (outside integer mode) the smallest is below 1e-4. The
    magnitudes are compared as float64 numbers of the stored values (a float32 ``1e-4`` is
    slightly below 1e-4, so it prints in scientific mode, as in PyTorch).
    ``set_printoptions(sci_mode=True/False)`` forces the choice (for the integer mode too).
  * The width is the longest formatted finite non-zero element; a longer element (``-0.0000``
    beside ``1.5000``, ``-inf``) is printed whole and simply not padded.
- complex: the real parts and the imaginary parts each get their own float formatter; an
  element reads ``real+imagj`` (``1.+2.j``, ``-3.5000-1.0000e-05j``).

Layout
------
- More than ``threshold`` elements (1000): every dimension longer than ``2 * edgeitems`` shows
  its first and last ``edgeitems`` (3) entries around ``...``.
- A 1-D row holds as many elements as fit in ``linewidth`` (80) after its indent (the
  ``tensor(`` prefix plus one per open bracket), each counted as width + 2 (``", "``); rows
  wrap onto lines indented to just inside the bracket.
- Sub-tensors of an n-D tensor are separated by ``,`` and n-1 newlines (a blank line between
  the matrices of a 3-D tensor, two between the blocks of a 4-D one).
- An empty tensor prints ``[]``, plus ``size=(...)`` unless it is 1-D.

Suffixes, in order
------------------
``device='cuda:0'`` (non-CPU); ``size=`` (empty, not 1-D); ``dtype=tinymm.<name>`` (unless
the dtype is the default floating dtype, int64 or bool, whose values show it; for an empty
tensor unless it is the default floating dtype); ``grad_fn=<MulBackward0>`` or
``requires_grad=True``. A suffix goes on a new line (indented as the values) when the current
line plus the suffix and its separators would not fit in ``linewidth``.
"""
from __future__ import annotations

import math

import numpy as np

from tinymm import backend, dtype_objects

#: how Tensors print (``tinymm.set_printoptions`` changes it; PyTorch's defaults)
PRINT_OPTIONS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}

#: ``set_printoptions(profile=...)``: PyTorch's three profiles
PROFILES = {"default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
            "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
            "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80)}

def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """As ``torch.set_printoptions``: the ``profile`` ("default", "short", "full") first, then
    each option given; ``sci_mode`` is always set (True/False forces or forbids scientific
    notation, None, the default, lets the values decide)."""
    if profile is not None:
        if profile not in PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {sorted(PROFILES)}, got {profile!r}")
        PRINT_OPTIONS.update(PROFILES[profile])
    for key, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                       ("linewidth", linewidth)):
        if value is not None:
            PRINT_OPTIONS[key] = value
    PRINT_OPTIONS["sci_mode"] = sci_mode


# ----------------------------------------------------------------------------- element formatters


class _FloatFormat:
    """Formats the floats of one tensor alike (see the module docstring for the modes)."""

    def __init__(self, values: np.ndarray, precision: int, sci_mode):
        self.precision = precision
        self.int_mode, self.sci, self.width = True, False, 1
        vals = values.astype(np.float64).ravel()
        shown = vals[np.isfinite(vals) & (vals != 0)]
        if shown.size == 0:
            return
        mags = np.abs(shown)
        small, large = float(mags.min()), float(mags.max())
        self.int_mode = bool(np.all(np.ceil(shown) == shown))
        spread = large / small > 1000.0 or large > 1.0e8
        if sci_mode is not None:
            self.sci = bool(sci_mode)
        else:
            self.sci = spread or (not self.int_mode and small < 1.0e-4)
        self.width = max(len(self._plain(v)) for v in shown.tolist())

    def _plain(self, v: float) -> str:
        if self.sci:
            return f"{v:.{self.precision}e}"
        if self.int_mode:
            return f"{v:.0f}." if math.isfinite(v) else f"{v:.0f}"
        return f"{v:.{self.precision}f}"

    def __call__(self, v: float) -> str:
        return self._plain(float(v)).rjust(self.width)


class _TextFormat:
    """bool and integer elements: their ``str``, right-justified to the longest."""

    def __init__(self, values: np.ndarray):
        self.width = max([len(str(v)) for v in values.ravel().tolist()], default=1)

    def __call__(self, v) -> str:
        return str(v).rjust(self.width)


class _ComplexFormat:
    """``real+imagj``: the real and imaginary parts each formatted as a float tensor."""

    def __init__(self, values: np.ndarray, precision: int, sci_mode):
        self.real = _FloatFormat(values.real, precision, sci_mode)
        self.imag = _FloatFormat(values.imag, precision, sci_mode)
        self.width = self.real.width + self.imag.width + 2  # the sign (or '+') and the 'j'

    def __call__(self, v) -> str:
        re, im = self.real(v.real), (self.imag(v.imag) + "j").lstrip()
        return re + im if im[0] in "+-" else re + "+" + im


def _formatter(values: np.ndarray, options: dict):
    kind = values.dtype.kind
    if kind == "f":
        return _FloatFormat(values, options["precision"], options["sci_mode"])
    if kind == "c":
        return _ComplexFormat(values, options["precision"], options["sci_mode"])
    return _TextFormat(values)


# ----------------------------------------------------------------------------- layout


def _shown_elements(arr: np.ndarray, edge: int) -> np.ndarray:
    """The elements a summarised print shows: along every axis longer than 2 * edge, the
    first and last ``edge`` entries (summarising the axes one by one selects the same set)."""
    for axis, n in enumerate(arr.shape):
        if n > 2 * edge:
            arr = np.concatenate([np.take(arr, range(edge), axis), np.take(arr, range(n - edge, n), axis)], axis)
    return arr


def _values(arr: np.ndarray, fmt, indent: int, summarise: bool, options: dict) -> str:
    """``arr`` as nested brackets whose first bracket sits at column ``indent``."""
    if arr.ndim == 0:
        return fmt(arr.item())
    edge, n = options["edgeitems"], arr.shape[0]
    cut = summarise and n > 2 * edge
    heads = range(edge) if cut else range(n)
    tails = range(n - edge, n) if cut else range(0)
    if arr.ndim == 1:
        items = [fmt(arr[i].item()) for i in heads] + ([" ..."] if cut else []) + [fmt(arr[i].item()) for i in tails]
        per_line = max(1, math.floor((options["linewidth"] - indent) / (fmt.width + 2)))
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    rows = [_values(arr[i], fmt, indent + 1, summarise, options) for i in heads] + (["..."] if cut else []) + \
           [_values(arr[i], fmt, indent + 1, summarise, options) for i in tails]
    return "[" + ("," + "\n" * (arr.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _dtype_named(dtype: dtype_objects.dtype, empty: bool) -> bool:
    """Whether the repr names the dtype: its values show float/int64/bool otherwise."""
    default = backend.get_default_dtype()
    if dtype is default:
        return False
    if empty:
        return True
    return dtype not in (dtype_objects.int64, dtype_objects.bool_, default.to_complex())


def tensor_repr(arr: np.ndarray, *, device: str | None = None, grad_fn: str | None = None,
                requires_grad: bool = False, prefix: str = "tensor(") -> str:
    """PyTorch's ``repr`` of a tensor holding ``arr`` (a NumPy array) on ``device``
    (None or "cpu" for the CPU; "cuda:0" and the like are named in a suffix), made by the
    backward node named ``grad_fn`` (``"MulBackward0"``) or a leaf with ``requires_grad``."""
    options = PRINT_OPTIONS
    suffixes = []
    if device is not None and str(device) != "cpu":
        suffixes.append(f"device='{device}'")
    empty = arr.size == 0
    if empty:
        body = "[]"
        if arr.ndim != 1:
            suffixes.append(f"size={tuple(arr.shape)}")
    else:
        summarise = arr.size > options["threshold"]
        shown = _shown_elements(arr, options["edgeitems"]) if summarise else arr
        body = _values(arr, _formatter(shown, options), len(prefix), summarise, options)
    dtype = dtype_objects.as_dtype(arr.dtype)
    if _dtype_named(dtype, empty):
        suffixes.append(f"dtype={dtype!r}")  # tinymm.float64 (dtype_objects.REPR_PREFIX)
    if grad_fn is not None:
        suffixes.append(f"grad_fn=<{grad_fn}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")

    out = prefix + body
    line = len(out) - out.rfind("\n") - 1  # the length of the line the next suffix would join
    for suffix in suffixes:
        # the ", " before it and the "," or ")" after it must fit too
        if line + len(suffix) + 4 > options["linewidth"]:
            out += ",\n" + " " * len(prefix) + suffix
            line = len(prefix) + len(suffix)
        else:
            out += ", " + suffix
            line += 2 + len(suffix)
    return out + ")"
