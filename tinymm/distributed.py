"""``torch.distributed`` as seen by a script that checks before it uses it.

tinymm trains in one process and has no communication backend, so ``is_available()`` is False
and ``is_initialized()`` is False: the usual ``if dist.is_available() and dist.is_initialized()``
guards take the single-process path. The calls that need a process group raise, naming why.
"""
from __future__ import annotations

__all__ = ["is_available", "is_initialized", "init_process_group", "get_rank", "get_world_size", "barrier",
           "destroy_process_group", "all_reduce"]

_NONE = ("tinymm has no distributed backend (it trains in one process); guard the call with "
         "torch.distributed.is_initialized()")


def is_available() -> bool:
    return False


def is_initialized() -> bool:
    return False


def is_torchelastic_launched() -> bool:
    return False


def init_process_group(*args, **kwargs):
    raise RuntimeError(f"init_process_group: {_NONE}")


def _needs_group(name):
    def call(*args, **kwargs):
        raise RuntimeError(f"Default process group has not been initialized, please make sure to call "
                           f"init_process_group. ({name}: {_NONE})")
    call.__name__ = name
    return call


get_rank = _needs_group("get_rank")
get_world_size = _needs_group("get_world_size")
barrier = _needs_group("barrier")
destroy_process_group = _needs_group("destroy_process_group")
all_reduce = _needs_group("all_reduce")
