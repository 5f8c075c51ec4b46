"""``torch.version``: what this build is (``torch.version.__version__``, ``.cuda``, ``.hip``,
``.debug``), as scripts print or test it (``if torch.version.cuda: ...``).

``cuda`` is the CUDA runtime version of tinymm's GPU backend (CuPy's, as "12.4") when a GPU is
usable, else None, as on PyTorch's CPU builds; it is found when first asked for, so importing
tinymm never loads CuPy. tinymm has no ROCm backend (``hip`` is None) and no debug build.
"""
from __future__ import annotations

from tinymm import backend
from tinymm.torch_version import __version__

__all__ = ["__version__", "cuda", "debug", "hip"]

hip = None
debug = False


def __getattr__(name):
    if name == "cuda":
        if not backend.cuda_available():
            return None
        import cupy

        v = cupy.cuda.runtime.runtimeGetVersion()  # e.g. 12040
        return f"{v // 1000}.{v % 1000 // 10}"
    raise AttributeError(f"module 'tinymm.version' has no attribute {name!r}")
