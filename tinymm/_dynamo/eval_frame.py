"""``torch._dynamo.eval_frame``: where PyTorch defines ``OptimizedModule``, the class of
``torch.compile(module)``; here it is ``tinymm.nn.compiled.OptimizedModule``."""
from __future__ import annotations

from tinymm.nn.compiled import OptimizedModule  # noqa: F401

__all__ = ["OptimizedModule"]
