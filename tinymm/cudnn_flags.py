"""``torch.backends.cudnn.flags(...)`` and ``set_flags``: set the cuDNN switches for a block
(HuggingFace's wav2vec2 computes its CTC loss under ``with torch.backends.cudnn.flags(enabled=
False)``) and restore them after it. As in PyTorch, every switch the call names or defaults is
set for the block (``flags()`` alone turns cuDNN off); tinymm uses no cuDNN, so the switches are
only recorded on the ``cudnn`` namespace, where reading one gives what was set."""
from __future__ import annotations

from contextlib import contextmanager

_FIELDS = ("enabled", "benchmark", "benchmark_limit", "deterministic", "allow_tf32")


def set_flags(cudnn, _enabled=None, _benchmark=None, _benchmark_limit=None, _deterministic=None,
              _allow_tf32=None):
    """Set the given switches on ``cudnn``; return the previous values, in ``_FIELDS`` order."""
    orig = tuple(getattr(cudnn, f, None) for f in _FIELDS)
    for field, value in zip(_FIELDS, (_enabled, _benchmark, _benchmark_limit, _deterministic, _allow_tf32)):
        if value is not None:
            setattr(cudnn, field, value)
    return orig


@contextmanager
def flags(cudnn, enabled=False, benchmark=False, benchmark_limit=10, deterministic=False, allow_tf32=True,
          fp32_precision="none", depthwise_kernel="auto"):
    orig = set_flags(cudnn, enabled, benchmark, benchmark_limit, deterministic, allow_tf32)
    try:
        yield
    finally:
        set_flags(cudnn, *orig)
