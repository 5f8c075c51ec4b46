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
from tinymm.torch_version import __version__  # probe8: "2.13.0+tinymm.0.1.0", compares as a version

import builtins as _builtins
import importlib as _importlib

import numpy as _np

from tinymm import amp, backends, cuda, distributed
from tinymm import cpu  # probe8: torch.cpu (device-agnostic synchronize/is_available, cpu.amp)
from tinymm.cpu import get_device_module  # probe8: torch.get_device_module
from tinymm.autograd import is_inference_mode_enabled  # noqa: E402, F401  (probe3)
from tinymm import jit  # probe3: torch.jit's eager-mode markers (ignore, unused, export, is_scripting)
from tinymm.amp import autocast
from tinymm.autograd import Function, enable_grad, gradcheck, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from tinymm.backend import Generator, cuda_available, default_generator, get_default_dtype, manual_seed, set_default_dtype
from tinymm.dtypes import (
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
    finfo,
    iinfo,
)
from tinymm.random import get_rng_state, initial_seed, seed, set_rng_state
from tinymm.factories import (
    arange,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    logspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from tinymm.ops import *  # noqa: F403  (the ops table's exports: tinymm.ops.__all__)
from tinymm.ops import __all__ as _ops_exports
from tinymm.ops.out_arg import install as _install_out

_install_out(globals(), _ops_exports)  # torch.add(a, b, out=c): the top-level names take out=
# probe6: PyTorch's keyword names (torch.gather(input=x, ...), x.reshape(shape=...), x.pow(exponent=2))
from tinymm.ops.torch_keywords import install as _install_torch_keywords  # noqa: E402
from tinymm.tensor import Tensor as _Tensor  # noqa: E402

_install_torch_keywords(globals(), (*_ops_exports, "zeros_like", "ones_like", "full_like", "empty_like", "rand_like",
                                     "randn_like", "randint_like"), _Tensor)
from tinymm.amp import is_autocast_enabled  # noqa: E402,F401  (probe6: torch.is_autocast_enabled)
from tinymm.traceable_assert import traceable_assert as _assert  # noqa: E402,F401  (probe6: torch._assert)
from tinymm.ops.convert import as_tensor_shared as as_tensor  # noqa: F401  (torch.as_tensor)
from tinymm.serialization import load, save
from tinymm.runtime import (  # noqa: F401  (process-wide settings, with PyTorch's names)
    are_deterministic_algorithms_enabled, channels_last, channels_last_3d, compile, contiguous_format,
    get_float32_matmul_precision, get_num_interop_threads, get_num_threads, is_deterministic_algorithms_warn_only_enabled,
    memory_format, preserve_format, set_float32_matmul_precision, set_num_interop_threads, set_num_threads,
    set_printoptions, use_deterministic_algorithms)
from tinymm.tensor import Size, Tensor, device

# dtype: PyTorch's dtype objects (tinymm.dtype, one interned wrapper per NumPy dtype)
from tinymm.dtype_objects import dtype  # noqa: E402
from tinymm.dtype_objects import bool_, float16, float32, float64, int8, int16, int32, int64, uint8  # noqa: E402
# cplx: complex dtypes and the torch.fft namespace
from tinymm.dtype_objects import cdouble, cfloat, complex64, complex128  # noqa: E402,F401
from tinymm import fft  # noqa: E402,F401

long = int64
short = int16
half = float16
double = float64
bool = bool_  # noqa: A001  (torch.bool)
float = float32  # noqa: A001  (torch.float)
int = int32  # noqa: A001  (torch.int)


def is_tensor(obj) -> "_builtins.bool":
    return isinstance(obj, Tensor)


def is_floating_point(input) -> "_builtins.bool":
    return input.dtype.kind == "f"


def numel(input) -> "_builtins.int":
    return input.numel()


def __getattr__(name):
    """``tinymm.nn``, ``tinymm.nn.functional`` and ``tinymm.optim`` after a plain ``import tinymm``,
    as ``import torch`` gives ``torch.nn``: the subpackage is imported on first use (PEP 562),
    which keeps ``import tinymm`` light and the floors one-way (floor 3 never imports floor 5)."""
    if name in _LAZY_SUBPACKAGES:
        return _importlib.import_module(f"tinymm.{name}")
    if name == "vmap":  # func: torch.vmap is torch.func.vmap
        return _importlib.import_module("tinymm.func").vmap
    if name in _LAZY_LAYER_FUNCTIONS:  # opse: torch.conv2d & co. live on floor 4
        return _importlib.import_module("tinymm.nn.functional.torch_forms").TORCH_FUNCTIONS[name]
    raise AttributeError(f"module 'tinymm' has no attribute {name!r}")


_LAZY_SUBPACKAGES = ("nn", "optim", "data", "metrics", "models", "train", "utils")
_LAZY_SUBPACKAGES += ("distributions",)  # opsd: torch.distributions
_LAZY_SUBPACKAGES += ("onnx",)  # probe10: torch.onnx.is_in_onnx_export() (fairseq's positional embedding)
_LAZY_SUBPACKAGES += ("_dynamo",)  # probe13: torch._dynamo.config / eval_frame.OptimizedModule beside torch.compile

# opse: anomaly mode at top level, and the layer functions torch.* has (torch.conv2d, torch.batch_norm,
# ...), resolved lazily from tinymm.nn.functional.torch_forms (floor 4) by __getattr__.
from tinymm.autograd import is_anomaly_check_nan_enabled, is_anomaly_enabled  # noqa: E402, F401

# torch.autograd.functional: an attribute of the autograd module, and importable by that name
_autograd_functional = __import__("importlib").import_module("tinymm.autograd_functional")
__import__("sys").modules["tinymm.autograd.functional"] = _autograd_functional
__import__("sys").modules["tinymm.autograd"].functional = _autograd_functional


def set_anomaly_enabled(mode: "_builtins.bool", check_nan: "_builtins.bool" = True) -> None:
    """``torch.set_anomaly_enabled``: anomaly detection on or off (see tinymm.autograd.set_detect_anomaly)."""
    from tinymm.autograd import set_detect_anomaly

    set_detect_anomaly(mode, check_nan)


_LAZY_LAYER_FUNCTIONS = (
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "cosine_similarity", "pairwise_distance", "pdist", "rms_norm", "bilinear", "avg_pool1d",
    "adaptive_avg_pool1d", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "celu_", "selu_", "rrelu_",
    "threshold_", "batch_norm", "instance_norm", "layer_norm", "group_norm", "dropout", "dropout_",
    "alpha_dropout", "alpha_dropout_", "feature_alpha_dropout", "feature_alpha_dropout_", "embedding",
    "binary_cross_entropy_with_logits", "kl_div", "margin_ranking_loss", "hinge_embedding_loss",
    "cosine_embedding_loss", "triplet_margin_loss", "poisson_nll_loss", "constant_pad_nd", "rrelu", "celu",
    "selu", "threshold", "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
    "adaptive_max_pool1d",
)
_LAZY_LAYER_FUNCTIONS += ("conv_tbc",)  # probe10: fairseq's ConvTBC calls torch.conv_tbc


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBPACKAGES) | set(_LAZY_LAYER_FUNCTIONS))

# opsc: torch.linalg, torch.special and torch.testing as tinymm.linalg, tinymm.special and
# tinymm.testing, importable after a plain ``import tinymm`` (floor 3, as ops).
from tinymm import linalg, special, testing  # noqa: E402,F401

_LAZY_SUBPACKAGES += ("func",)  # func: torch.func (floor 5), and torch.vmap (see __getattr__)
# shims: torch.jit (accepted, no TorchScript), torch.profiler and its older spelling
# torch.autograd.profiler, torch.multiprocessing (lazy), the default device.
from tinymm import jit, profiler  # noqa: E402,F401
from tinymm.default_device import get_default_device, set_default_device  # noqa: E402,F401
from tinymm.default_tensor_type import set_default_tensor_type  # noqa: E402,F401  (probe8)
from tinymm import version  # noqa: E402,F401  (probe8: torch.version)
_autograd_profiler = _importlib.import_module("tinymm.autograd_profiler")
__import__("sys").modules["tinymm.autograd.profiler"] = _autograd_profiler
__import__("sys").modules["tinymm.autograd"].profiler = _autograd_profiler
_LAZY_SUBPACKAGES += ("multiprocessing",)

# modapi: torch.set_warn_always / is_warn_always_enabled, set_flush_denormal, typename
from tinymm.runtime_more import is_warn_always_enabled, set_flush_denormal, set_warn_always, typename  # noqa: E402,F401

# probe4: torch.accelerator (device-generic: tinymm's one accelerator is its CuPy GPU)
from tinymm import accelerator  # noqa: E402,F401

# lead: torch.from_dlpack (tinymm.dlpack) and torch's constants
from tinymm.dlpack import from_dlpack  # noqa: E402,F401
pi, e, inf, nan = __import__("math").pi, __import__("math").e, __import__("math").inf, __import__("math").nan  # torch.pi, torch.e, torch.inf, torch.nan
newaxis = None  # torch.newaxis: x[:, tinymm.newaxis]
from tinymm.layout_objects import layout, strided  # noqa: E402,F401  (lead: torch.layout, torch.strided)
_LAZY_SUBPACKAGES += ("signal",)  # lead: torch.signal.windows
# lead: torch.autograd.function / grad_mode / anomaly_mode / variable / gradcheck submodules
__import__("tinymm.autograd_modules").autograd_modules.install()
from tinymm import compiler  # noqa: E402,F401  (lead: torch.compiler)
from tinymm.cuda import OutOfMemoryError  # noqa: E402,F401  (lead: torch.OutOfMemoryError)
# probe5: out= on the factories (torch.zeros(2, out=t), torch.arange(5, out=t), ...)
from tinymm.ops.factory_out import install as _install_factory_out  # noqa: E402

_install_factory_out(globals())
# lead: torch.sparse (COO tensors: sparse_coo_tensor, spmm, Tensor.to_sparse), torch.sparse_coo
from tinymm import sparse  # noqa: E402,F401
from tinymm.layout_objects import sparse_coo  # noqa: E402,F401
from tinymm.sparse import sparse_coo_tensor  # noqa: E402,F401
from tinymm.sparse import mm as spmm  # noqa: E402,F401
Tensor.to_sparse = sparse.to_sparse
Tensor.to_sparse_coo = sparse.to_sparse
# lead: torch.bfloat16 as a dtype that can be named but has no tensors (NumPy has no bfloat16)
from tinymm.dtype_objects import bfloat16  # noqa: E402,F401
Tensor.bfloat16 = lambda self, memory_format=None: self.to(bfloat16)  # TypeError naming why (as Module.bfloat16)
# lead: torch.range (deprecated, end included), torch.adjoint, torch.expand_copy, Tensor.unsafe_*
from tinymm.ops.legacy_aliases import adjoint, expand_copy  # noqa: E402,F401
from tinymm.ops.legacy_aliases import range  # noqa: E402,F401,A004
Tensor.unsafe_chunk = Tensor.chunk
Tensor.unsafe_split = Tensor.split
Tensor.unsafe_split_with_sizes = Tensor.split_with_sizes
