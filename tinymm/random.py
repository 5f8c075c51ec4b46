"""``torch.random``'s functions: seeding and saving/restoring the default generator.

The generator state travels as a uint8 tensor (as PyTorch's ByteTensor), here the UTF-8 JSON
of NumPy's bit-generator state: ``set_rng_state(get_rng_state())`` restores the stream
exactly. The bytes are not PyTorch's, and a state from one library does not load into the other.
"""
from __future__ import annotations

import contextlib
import json

import numpy as np

from tinymm import backend
from tinymm.backend import Generator, default_generator, initial_seed, manual_seed, seed
from tinymm.tensor import Tensor

__all__ = ["Generator", "default_generator", "fork_rng", "get_rng_state", "initial_seed", "manual_seed", "seed", "set_rng_state"]


def get_rng_state() -> Tensor:
    """The default CPU generator's state, as a uint8 tensor."""
    state = json.dumps(backend.rng("cpu").bit_generator.state).encode()
    return Tensor._wrap(np.frombuffer(state, dtype=np.uint8).copy())


def set_rng_state(new_state: Tensor) -> None:
    """Restore a state that ``get_rng_state`` returned."""
    if not isinstance(new_state, Tensor) or new_state.dtype != np.uint8 or new_state.ndim != 1:
        raise TypeError("set_rng_state: expected the 1-D uint8 tensor that get_rng_state returned")
    try:
        state = json.loads(new_state.numpy(force=True).tobytes().decode())
        backend.rng("cpu").bit_generator.state = state
    except (ValueError, TypeError, KeyError) as e:
        raise RuntimeError(f"set_rng_state: not a state saved by tinymm.get_rng_state ({e})") from None


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True, **kwargs):
    """Draws inside the block leave the default generator where it was (its state is restored
    on exit); ``devices`` and PyTorch's other keywords are accepted and ignored."""
    if not enabled:
        yield
        return
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
