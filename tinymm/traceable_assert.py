"""``torch._assert(condition, message)``: the assert torchvision's and timm's models call on input
shapes (``torch._assert(H == self.img_size[0], ...)``), kept a function so tracers can see it.
Raises AssertionError(message) when ``condition`` is false; a Tensor condition is judged by its
truth value, so one with several elements raises RuntimeError, as in PyTorch."""
from __future__ import annotations


def traceable_assert(condition, message):
    if not condition:
        raise AssertionError(message)
