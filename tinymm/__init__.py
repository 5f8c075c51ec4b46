"""tinymm: a small, complete, fast deep-learning library for multimodal models.

    import tinymm as tm
    x = tm.randn(4, 3, requires_grad=True)
    (x.relu() ** 2).sum().backward()
    x.grad

Floors (each imports only from those below): ``tinymm.kernels`` (array kernels) →
``backend`` → ``autograd``/``tensor``/``ops`` → ``nn.functional`` → ``nn`` → ``optim``,
``metrics``, ``data`` → ``models`` → ``train`` → ``cli``. Importing tinymm compiles no kernel
and never imports torch.
"""
__version__ = "0.1.0"

import numpy as _np

from tinymm.autograd import Function, enable_grad, gradcheck, is_grad_enabled, no_grad, set_grad_enabled
from tinymm.backend import cuda_available, get_default_dtype, manual_seed, set_default_dtype
from tinymm.factories import (
    arange,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from tinymm.ops import *  # noqa: F403  (the ops table's exports: tinymm.ops.__all__)
from tinymm.serialization import load, save
from tinymm.tensor import Tensor

float32 = _np.dtype(_np.float32)
float64 = _np.dtype(_np.float64)
float16 = _np.dtype(_np.float16)
int64 = _np.dtype(_np.int64)
int32 = _np.dtype(_np.int32)
bool_ = _np.dtype(_np.bool_)
long = int64
