"""``nn.FractionalMaxPool2d`` / ``nn.FractionalMaxPool3d``: PyTorch's modules over
``nn.functional.fractional_max_pool2d/3d`` (see ``functional/fractional_pool.py``).

Give ``output_size`` or ``output_ratio`` (each in (0, 1)), not both. ``_random_samples``, as in
PyTorch, is registered as a buffer (None unless given) and, when set, fixes the windows."""
from __future__ import annotations

import numbers

from tinymm.nn import functional as F
from tinymm.nn.module import Module


def _ntuple(value, n):
    if value is None:
        return None
    if isinstance(value, numbers.Number):
        return (value,) * n
    return tuple(value)


class _FractionalMaxPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices: bool = False,
                 _random_samples=None):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _ntuple(kernel_size, self._nd)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = _ntuple(output_size, self._nd)
        self.output_ratio = _ntuple(output_ratio, self._nd)
        if output_size is None and output_ratio is None:
            raise ValueError(f"{name} requires specifying either an output size, or a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and not all(0 < r < 1 for r in self.output_ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    _nd = 2

    def forward(self, input):
        return F.fractional_max_pool2d(input, self.kernel_size, self.output_size, self.output_ratio,
                                       self.return_indices, _random_samples=self._random_samples)


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    _nd = 3

    def forward(self, input):
        return F.fractional_max_pool3d(input, self.kernel_size, self.output_size, self.output_ratio,
                                       self.return_indices, _random_samples=self._random_samples)
