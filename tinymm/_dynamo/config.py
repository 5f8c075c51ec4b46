"""``torch._dynamo.config``: settings of a compiler tinymm does not have. Reading one returns
what was set (or PyTorch's default for the common ones); setting any name is accepted, since
a script that tunes the compiler must still run when nothing compiles."""
from __future__ import annotations

suppress_errors = False
cache_size_limit = 8
accumulated_cache_size_limit = 256
verbose = False
optimize_ddp = True
capture_scalar_outputs = False
capture_dynamic_output_shape_ops = False
automatic_dynamic_shapes = True
assume_static_by_default = True
