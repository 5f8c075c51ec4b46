"""``torch.backends`` flags that training scripts set, accepted so such scripts run:
``backends.cudnn.benchmark``, ``.deterministic``, ``.enabled``,
``backends.cuda.matmul.allow_tf32``, ``backends.cudnn.allow_tf32`` and
``backends.mps.is_available()``. tinymm uses neither cuDNN nor TF32 nor MPS: setting a flag
changes nothing, and reading one gives what was set."""
from __future__ import annotations

from types import SimpleNamespace

cudnn = SimpleNamespace(benchmark=False, deterministic=False, enabled=True, allow_tf32=True,
                        is_available=lambda: False)
cuda = SimpleNamespace(matmul=SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True))
mps = SimpleNamespace(is_available=lambda: False, is_built=lambda: False)

# probe3: the SDPA backend switches (tinymm/sdp_backends.py) on torch.backends.cuda
from tinymm import sdp_backends as _sdp  # noqa: E402

for _name in ("sdp_kernel", "enable_flash_sdp", "flash_sdp_enabled", "enable_math_sdp", "math_sdp_enabled",
              "enable_mem_efficient_sdp", "mem_efficient_sdp_enabled", "enable_cudnn_sdp", "cudnn_sdp_enabled"):
    setattr(cuda, _name, getattr(_sdp, _name))
# probe6: torch.backends.cudnn.flags(...) / set_flags / version() (tinymm/cudnn_flags.py)
from functools import partial as _partial  # noqa: E402

from tinymm import cudnn_flags as _cudnn_flags  # noqa: E402

cudnn.benchmark_limit = 10
cudnn.flags = _partial(_cudnn_flags.flags, cudnn)
cudnn.set_flags = _partial(_cudnn_flags.set_flags, cudnn)
cudnn.version = lambda: None  # no cuDNN library, as torch.backends.cudnn.version() without one
