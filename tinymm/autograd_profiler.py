"""``torch.autograd.profiler``: the older spelling of the profiler, importable as
``tinymm.autograd.profiler`` (``tinymm/__init__`` registers it under that name).

``record_function`` is :class:`tinymm.profiler.record_function`; ``profile(enabled=True, *,
use_cuda=False, record_shapes=False, ...)`` is :class:`tinymm.profiler.profile` recording every
step (no schedule), with the older class's ``table``, ``total_average``,
``self_cpu_time_total`` and ``function_events`` on top; ``enabled=False`` records nothing.
"""
from __future__ import annotations

from tinymm import profiler
from tinymm.profiler import EventList, FunctionEvent, FunctionEventAvg, record_function

__all__ = ["profile", "record_function", "EventList", "FunctionEvent", "FunctionEventAvg"]


class profile(profiler.profile):
    """``torch.autograd.profiler.profile`` (see the module docstring)."""

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False, use_device=None, record_shapes: bool = False,
                 with_flops: bool = False, profile_memory: bool = False, with_stack: bool = False,
                 with_modules: bool = False, use_kineto: bool = False, use_cpu: bool = True, experimental_config=None,
                 acc_events: bool = False, custom_trace_id_callback=None, **kwargs):
        activities = [profiler.ProfilerActivity.CPU] + ([profiler.ProfilerActivity.CUDA] if use_cuda or use_device else [])
        super().__init__(activities=activities, record_shapes=record_shapes, profile_memory=profile_memory,
                         with_stack=with_stack, with_flops=with_flops, with_modules=with_modules)
        self.enabled = bool(enabled)

    def start(self) -> None:
        if self.enabled:
            super().start()

    def stop(self) -> None:
        if self.enabled:
            super().stop()

    @property
    def function_events(self) -> EventList:
        return self.events()

    @property
    def self_cpu_time_total(self) -> float:
        return self.events().self_cpu_time_total

    def total_average(self) -> FunctionEventAvg:
        return self.events().total_average()

    def table(self, sort_by=None, row_limit: int = 100, **kwargs) -> str:
        return self.key_averages().table(sort_by=sort_by, row_limit=row_limit, **kwargs)
