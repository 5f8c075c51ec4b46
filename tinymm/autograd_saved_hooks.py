"""Floor 3: ``torch.autograd.graph`` — hooks on what the graph saves for backward.

``saved_tensors_hooks(pack_hook, unpack_hook)``: while the context is open, every tensor an op
saves for backward is handed to ``pack_hook`` (as a Tensor sharing the saved array) and what
the hook returns is kept instead; backward calls ``unpack_hook`` on it and must get a Tensor
back. ``save_on_cpu`` is the ready-made pair that moves saved tensors to the host and back.
Contexts nest; the innermost pair applies.

What is packed: the arrays each op passes to ``ctx.save_for_backward``, and the tensors a
custom ``Function`` saves. A few kernels keep scratch of their own on ``ctx`` besides
(attention's kept probabilities, recurrent layers' gate buffers); those are not passed to the
hooks, so they stay where they are (values are right either way). A packed tensor has no
in-place version check (the hook may have copied it anywhere), as a hook that copies makes
the check meaningless.

Also here: ``disable_saved_tensors_hooks``, ``increment_version`` and ``Node`` (the class of
every ``grad_fn``).
"""
from __future__ import annotations

import contextlib

from tinymm import autograd
from tinymm.grad_fn import Node
from tinymm.tensor import Tensor, bump_version

__all__ = ["saved_tensors_hooks", "save_on_cpu", "disable_saved_tensors_hooks", "increment_version", "Node"]

_disabled: list = []  # messages of the open disable_saved_tensors_hooks contexts


class saved_tensors_hooks:  # noqa: N801  (torch.autograd.graph.saved_tensors_hooks)
    """Context manager: pack every tensor saved for backward with ``pack_hook``, get it back
    with ``unpack_hook`` when backward needs it."""

    def __init__(self, pack_hook, unpack_hook):
        if not callable(pack_hook) or not callable(unpack_hook):
            raise TypeError("saved_tensors_hooks: pack_hook and unpack_hook must be callables")
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook

    def __enter__(self):
        if _disabled:
            raise RuntimeError(_disabled[-1])
        autograd.saved_hooks.append((self.pack_hook, self.unpack_hook))
        return self

    def __exit__(self, *exc):
        autograd.saved_hooks.pop()
        return False


class save_on_cpu(saved_tensors_hooks):  # noqa: N801
    """Saved tensors are kept in host memory (pinned with ``pin_memory``) and moved back to
    their device when backward unpacks them."""

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda"):
        def pack(t: Tensor):
            host = t.cpu()
            if pin_memory and t.device.type != "cpu":
                host = host.pin_memory()
            return t.device, host

        def unpack(packed):
            device, host = packed
            return host.to(device)

        super().__init__(pack, unpack)


@contextlib.contextmanager
def disable_saved_tensors_hooks(error_message: str):
    """Inside it, opening ``saved_tensors_hooks`` raises RuntimeError(error_message), and so
    does opening it while such hooks are active (PyTorch's rule)."""
    if autograd.saved_hooks:
        raise RuntimeError(error_message)
    _disabled.append(error_message)
    try:
        yield
    finally:
        _disabled.pop()


def increment_version(tensor) -> None:
    """Count one in-place change of ``tensor`` (or of each tensor in a sequence) without
    changing its values: backward through an op that saved it then raises the version error."""
    for t in (tensor if isinstance(tensor, (list, tuple)) else (tensor,)):
        if not isinstance(t, Tensor):
            raise TypeError(f"increment_version: expected a Tensor, got {type(t).__name__}")
        bump_version(t._data)
