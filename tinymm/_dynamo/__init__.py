"""``torch._dynamo``: the few names training scripts touch around ``torch.compile``.

tinymm compiles nothing (see ``tinymm.runtime``), so these only need to be there and behave
as with a compiler that never runs: ``config`` takes any setting scripts make
(``torch._dynamo.config.suppress_errors = True``, ``cache_size_limit = 64``) and keeps it;
``reset``, ``disable``, ``is_compiling`` are ``tinymm.compiler``'s; and
``eval_frame.OptimizedModule`` is the class ``tinymm.compile(module)`` returns, for the
``isinstance(model, torch._dynamo.eval_frame.OptimizedModule)`` unwrap check (accelerate's
``is_compiled_module``).
"""
from __future__ import annotations

from tinymm._dynamo import config, eval_frame  # noqa: F401
from tinymm.compiler import disable, is_compiling, reset  # noqa: F401
from tinymm.nn.compiled import OptimizedModule  # noqa: F401

__all__ = ["OptimizedModule", "config", "disable", "eval_frame", "is_compiling", "reset"]
