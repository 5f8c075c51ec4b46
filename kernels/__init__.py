"""Floor 1 of tinymm: pure array functions for every hot path.

Arrays in, arrays out. Nothing here imports ``Tensor`` or anything above it. Submodules are
imported lazily by whoever needs them, so ``import tinymm`` compiles nothing, and no CUDA
module is imported until a CUDA version first runs.

The template every kernel family follows
----------------------------------------
A family (``softmax``, ``norm``, ``optim``, ``attention``, ``conv``, ``pool``, ``recurrent``, ...)
reads top to bottom, in this order:

1. a docstring with the math, the shapes, and what forward saves for backward;
2. the **reference**: plain NumPy written for reading, the specification;
3. the **CPU** version: ``numba.njit`` loops (``_common.serial_and_parallel`` when a parallel
   loop pays only for large arrays), BLAS through ``numpy.matmul`` for GEMMs;
4. the **CUDA** version: ``numba.cuda`` kernels built on first use, launched through
   ``_common.launch_on_cupy_stream``, block reductions from ``_common.cuda_block_reduce``;
5. the **dispatch**: one public function per direction, ``forward(..., impl=None)`` /
   ``backward(..., impl=None)`` (or one per op when a family has several, such as
   ``softmax_forward`` and ``cross_entropy_forward``). ``impl=None`` picks by the type of
   the array given (a CuPy array runs "cuda", anything else "cpu"; never by whether a GPU
   exists); tests pass ``impl="reference"``, ``"cpu"`` or ``"cuda"`` (the CUDA version also
   runs NumPy arrays under Numba's simulator). There are no per-device public wrappers.

A small family is one file in that order (``norm.py``, ``optim.py``); a big one is a folder
(``softmax/``, ``attention/``) with ``reference.py``, ``cpu.py``, ``cuda.py`` giving the same
function names and signatures, and the docstring and dispatch in ``__init__.py``, where
``_common.implementation(__name__, impl, x)`` returns the module to call.

Kernels trust their inputs: shapes, dtypes, devices and values are checked once, by the
public function a user calls (``tinymm.nn.functional.layer_norm``, ``cross_entropy``, the
optimizers), which raises errors naming what was expected and what came. The ``Function``,
the dispatch and the kernels never re-check. Shared helpers live in ``_common.py``.

The smallest real example, ``norm.py`` (abridged)::

    def reference_forward(x, weight, bias, eps):          # 2. the specification
        mean = x.mean(axis=1)
        ...
        return y, mean, rstd

    @serial_and_parallel(fastmath=_REASSOC)                # 3. CPU loops, serial and parallel
    def _layer_norm_forward_cpu(x, w, b, has_w, has_b, eps, y, mean, rstd): ...

    def _cpu_forward(x, weight, bias, eps):                # allocate, pick the loop, run
        ...

    @functools.lru_cache(maxsize=None)
    def _cuda_kernels(dtype_name): ...                     # 4. CUDA, built on first use

    def _cuda_forward(x, weight, bias, eps):               # launch_on_cupy_stream(...)
        ...

    _FORWARD = {"reference": reference_forward, "cpu": _cpu_forward, "cuda": _cuda_forward}

    def forward(x, weight=None, bias=None, eps=1e-5, impl=None):   # 5. the dispatch
        return _FORWARD[resolve_impl(impl, x)](x, weight, bias, eps)

and a test reaches each version the same way: ``norm.forward(x, w, b, impl="cuda")``.
"""
