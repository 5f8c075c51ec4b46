"""Input checks shared by the encoders and task models: one message format naming the shapes."""
from __future__ import annotations

from tinymm.nn.functional._checks import ShapeError

__all__ = ["ShapeError", "expect_shape", "from_batch"]


def expect_shape(who: str, what: str, x, pattern: tuple) -> None:
    """Raise ShapeError unless ``x.shape`` matches ``pattern``: a tuple of ints, or names for
    free sizes (``("B", 3, "H", "W")``). The message shows the pattern and the shape that came."""
    shape = tuple(getattr(x, "shape", ()))
    fits = len(shape) == len(pattern) and all(isinstance(p, str) or p == s for p, s in zip(pattern, shape))
    if not fits:
        want = "(" + ", ".join(str(p) for p in pattern) + ")"
        raise ShapeError(f"{who}: {what} must have shape {want}, got {shape}")


def from_batch(who: str, batch, key: str, tensor_ok: bool = True):
    """``batch[key]`` of a task batch dict, or ``batch`` itself when it is a Tensor already
    (and ``tensor_ok``: a multimodal model needs the dict)."""
    if not isinstance(batch, dict):
        if not tensor_ok:
            raise TypeError(f"{who}: expected a task batch (a dict with {key!r}, ...), got {type(batch).__name__}")
        return batch
    if key not in batch:
        raise KeyError(f"{who}: the batch has no {key!r} (keys: {', '.join(sorted(batch))})")
    return batch[key]
