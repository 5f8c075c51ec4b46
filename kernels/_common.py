"""Helpers shared by every kernel family: dispatch, CPU loops, CUDA reductions and launches.

Dispatch is by the *type of the array* a kernel is given, never by whether a GPU exists:
a ``cupy.ndarray`` goes to the CUDA version, anything else to the CPU version
(:func:`resolve_impl`). The CUDA versions also accept NumPy arrays, which is how they run
under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) on machines without a GPU.

Kernels trust their inputs: shapes, dtypes, devices and values are checked once, by the
public function a user calls (floor 4 and up), never here.

On a GPU there is one allocator and one stream: kernels allocate their arrays through CuPy,
Numba's own device allocations are routed into CuPy's memory pool (:func:`use_cupy_memory_pool`,
installed by :func:`numba_cuda`), and every launch goes through :func:`launch_on_cupy_stream`.

This module imports neither Numba nor CuPy at import time (``import tinymm`` reaches it
through ``tinymm.backend`` and must stay light); the helpers that need them import them
when called.
"""
import contextlib
import functools
import importlib
import importlib.util
import os
import sys
import types

import numpy as np

def is_cuda_array(a) -> bool:
    """True for CuPy arrays. Checked by module name so that CuPy is never imported here."""
    if type(a) is np.ndarray:  # the common case first: this runs several times per kernel call
        return False
    module = type(a).__module__
    return module == "cupy" or module.startswith("cupy.")


def array_module(a):
    """``cupy`` for CuPy arrays, ``numpy`` for everything else."""
    if is_cuda_array(a):
        import cupy

        return cupy
    return np


def cuda_simulator_enabled() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


def blocks_for(n: int, threads: int) -> int:
    """Number of blocks of ``threads`` threads that cover ``n`` items (at least one)."""
    return max(1, (n + threads - 1) // threads)


def check_same_kind(name: str, **arrays) -> None:
    """Every array given must live on the same kind of device; the error names them. (For
    entry points that validate their own inputs, as attention's do.)"""
    on_cuda = [is_cuda_array(v) for v in arrays.values() if v is not None]
    if any(on_cuda) and not all(on_cuda):
        detail = ", ".join(f"{k} on {'cuda' if is_cuda_array(v) else 'cpu'}"
                           for k, v in arrays.items() if v is not None)
        raise ValueError(f"{name}: arrays are on different devices ({detail})")


IMPLS = ("reference", "cpu", "cuda")


def resolve_impl(impl, a, family=None):
    """The implementation a dispatch runs: ``impl`` when given (one of ``IMPLS``, as tests
    pass it), else "cuda" for a CuPy array ``a`` and "cpu" for anything else. ``family``,
    when given, prefixes the error message (``conv: impl must be ...``)."""
    if impl is None:
        return "cuda" if is_cuda_array(a) else "cpu"
    if impl not in IMPLS:
        prefix = f"{family}: " if family else ""
        raise ValueError(f"{prefix}impl must be one of {IMPLS} or None, got {impl!r}")
    return impl


def implementation(package, impl, a):
    """The module ``<package>.<impl>`` of a folder family (``reference``, ``cpu`` or ``cuda``),
    chosen by :func:`resolve_impl`; imported on first use, so the CUDA one only when needed."""
    name = f"{package}.{resolve_impl(impl, a)}"
    module = sys.modules.get(name)
    return module if module is not None else importlib.import_module(name)


def contiguous(a):
    """``a`` itself when C-contiguous, else a C-contiguous copy (NumPy or CuPy, as given)."""
    if a.flags.c_contiguous:
        return a
    return array_module(a).ascontiguousarray(a)


# ============================================================================ CPU loops (Numba)

# Numba's parallel loops run on an OpenMP pool (libgomp) whose idle threads spin for a while
# after every loop before they sleep. Between two kernels of a training step a spinning
# thread slowed the NumPy work of the main thread (the seed CNN's forward + backward at B32,
# 2 threads, AVX-512 Xeon VM: 15-36 ms a step against 11.2-11.7 with idle threads asleep;
# the kernels that allocate and free large arrays slowed most, e.g. the max-pool backward
# 2.6 against 0.5 ms). So, unless the user's environment says otherwise, idle threads sleep:
# libgomp reads this when Numba first loads it, at the first parallel loop. The benchmarks
# set the same (``benchmarks/kernels.py``), so their tables show what a user's process gets.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def keep_freed_heap(keep_bytes: int) -> bool:
    """Ask glibc's malloc to serve arrays of up to 32 MiB from its heap and to keep up to
    ``keep_bytes`` of freed heap instead of handing it back to the OS (``mallopt``:
    M_MMAP_THRESHOLD, M_TRIM_THRESHOLD); True when it took both settings.

    Every op returns a fresh NumPy array, and a training step frees most of them again. By
    default glibc maps large blocks on their own and trims the heap's free top back to the OS,
    so many of the next step's arrays are fresh pages, each zero-filled by the kernel on first
    touch. With 128 MiB kept (``HEAP_KEEP_BYTES``), the seed CNN's forward + backward at B32
    (2 threads, AVX-512 Xeon VM, medians of 40 steps): 10.1 -> 6.8 ms a step alone, 14.7 ->
    7.6 ms beside PyTorch in one process (whose own step went 7.3 -> 5.5 ms: the setting is
    process-wide). Keeping only a top pad of freed heap (M_TOP_PAD) helped alone but slowed
    both beside PyTorch. The cost: up to ``keep_bytes`` more resident memory. Linux with
    glibc only; elsewhere nothing is changed."""
    if keep_bytes <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        # 32 MiB is the largest mmap threshold glibc accepts on 64-bit systems
        mapped = mallopt(M_MMAP_THRESHOLD, int(min(keep_bytes, 32 << 20)))
        return bool(mapped) and bool(mallopt(M_TRIM_THRESHOLD, int(keep_bytes)))
    except (OSError, ValueError, AttributeError):  # not glibc, or no such libc name
        return False


def _heap_keep_bytes(default: int) -> int:
    """``default`` unless the environment's TINYMM_HEAP_KEEP (bytes; 0 leaves malloc alone)
    says otherwise."""
    value = os.environ.get("TINYMM_HEAP_KEEP")
    if value is None:
        return default
    try:
        return max(0, int(value))
    except ValueError:
        raise ValueError(f"TINYMM_HEAP_KEEP must be an integer (bytes), got {value!r}") from None


HEAP_KEEP_BYTES = _heap_keep_bytes(128 << 20)
keep_freed_heap(HEAP_KEEP_BYTES)


class SerialParallel:
    """One ``prange`` loop compiled twice: ``serial`` (``prange`` acts as ``range``) and
    ``parallel`` (``numba.njit(parallel=True)``).

    A parallel loop wakes Numba's thread pool on every call: tens of microseconds on an idle
    machine, milliseconds on a busy one, whatever the array size. Small arrays therefore run
    the serial version; each family sets the work (element count) from which the parallel
    one pays, measured by ``python -m benchmarks.kernels``.
    """

    __slots__ = ("serial", "parallel")

    def __init__(self, serial, parallel):
        self.serial = serial
        self.parallel = parallel

    def for_work(self, work, min_parallel_work):
        """The parallel version when ``work >= min_parallel_work``, else the serial one."""
        return self.parallel if work >= min_parallel_work else self.serial


def serial_and_parallel(fastmath=False):
    """Decorator: compile a ``prange`` loop as ``SerialParallel`` (both cached on disk).

    Both versions release the GIL (``nogil``; they touch no Python object), so that while a
    training step is inside a kernel the DataLoader's prefetch thread can build the next batch
    instead of waiting for the step to return to Python (benchmarks/train_step.py measures the
    share of the step spent waiting for data).

    Both versions use NumPy's error model: a float division by zero gives inf or NaN instead
    of raising ZeroDivisionError, as parallel loops always do. The check that raises would
    also keep LLVM from vectorising any loop that divides (measured 6x slower for Adam).

    Numba's on-disk cache keys a function by its qualified name and source line, not by its
    compile flags, so two dispatchers of one Python function would overwrite each other's
    cache entries. The serial version is therefore compiled from a copy of the function
    named ``<name>_serial``. (For the same reason, after changing the options here, delete
    ``kernels/__pycache__/*.nb[ic]``: a family file that did not change keeps loading loops
    compiled with the old ones.)
    """
    import numba

    def build(fn):
        serial_fn = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial",
                                       fn.__defaults__, fn.__closure__)
        serial_fn.__qualname__ = fn.__qualname__ + "_serial"
        serial_fn.__module__ = fn.__module__
        serial_fn.__doc__ = fn.__doc__
        options = dict(cache=True, fastmath=fastmath, error_model="numpy", nogil=True)
        return SerialParallel(numba.njit(**options)(serial_fn), numba.njit(parallel=True, **options)(fn))

    return build


# ============================================================================ CUDA kernels and launches

# ``numba.cuda``, bound on first use by cuda_block_sum. It must be a module global: the CUDA
# simulator swaps a device function's global ``cuda`` for its fake module while it runs.
cuda = None


def parallel_threshold(measured_default: int) -> int:
    """The element count from which a family's parallel CPU loops run, ``measured_default``
    unless the environment variable ``TINYMM_PARALLEL_MIN_ELEMENTS`` overrides it (every
    family at once; e.g. 131072 on a dedicated machine, where the pool is always free). The
    measurements behind each family's default are in benchmarks/RESULTS.md ("When the
    parallel CPU loops pay")."""
    value = os.environ.get("TINYMM_PARALLEL_MIN_ELEMENTS")
    if value is None:
        return measured_default
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"TINYMM_PARALLEL_MIN_ELEMENTS must be an integer, got {value!r}") from None
    if n < 0:
        raise ValueError(f"TINYMM_PARALLEL_MIN_ELEMENTS must be >= 0, got {n}")
    return n


def numba_cuda():
    """``numba.cuda``, imported on first use (so importing tinymm never touches CUDA).

    numba-cuda 0.30 still calls ``np.row_stack``, an alias of ``np.vstack`` that NumPy 2.5
    removed; on such a NumPy every CUDA compile fails. The alias is restored first, only when
    it is missing (seen on the H200 image: NumPy 2.5.2 with numba-cuda 0.30.4).
    """
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack
    from numba import cuda

    if not cuda_simulator_enabled():
        use_cupy_memory_pool(cuda)
    return cuda


# ============================================================================ one allocator

_memory_manager_installed = False


def use_cupy_memory_pool(cuda=None) -> bool:
    """Make Numba allocate device memory through CuPy's memory pool (once per process).

    tinymm's kernels allocate every array through CuPy already (``xp.empty`` in each family's
    host code); Numba itself only wraps those arrays. Anything that still asks Numba for device
    memory (``numba.cuda.device_array``, ``to_device``, a user's own Numba code) would otherwise
    get it from a second allocator, ``cuMemAlloc``, beside CuPy's pool: two caches holding
    memory the other cannot reuse, and out-of-memory errors while the other sits on free
    blocks. This installs :func:`cupy_memory_manager`'s class as Numba's External Memory
    Management plugin, so both draw from one pool.

    Numba binds its memory manager when it creates its CUDA context, so this must run before
    Numba's first CUDA call in the process: :func:`numba_cuda` calls it, and every CUDA kernel
    module imports ``numba.cuda`` through that. It does nothing (and returns False) when CuPy
    is not installed, under the CUDA simulator, or when the user chose another plugin with
    ``NUMBA_CUDA_MEMORY_MANAGER`` (e.g. RMM's).
    """
    global _memory_manager_installed
    if _memory_manager_installed:
        return True
    if cuda_simulator_enabled() or importlib.util.find_spec("cupy") is None:
        return False
    cuda = cuda or numba_cuda()
    # the setting Numba's driver reads (NUMBA_CUDA_MEMORY_MANAGER)
    if getattr(cuda.cudadrv.driver.config, "CUDA_MEMORY_MANAGER", "default") != "default":
        return False
    cuda.set_memory_manager(cupy_memory_manager(cuda))
    _memory_manager_installed = True
    return True


def _releaser(block):
    """A finalizer that holds CuPy's ``block`` until Numba calls it; then the block goes back
    to CuPy's pool (when nothing else holds it)."""
    def release():
        nonlocal block
        block = None

    return release


@functools.lru_cache(maxsize=None)
def cupy_memory_manager(cuda):
    """The class of Numba EMM plugin that allocates device memory from CuPy's current pool.

    Each ``memalloc`` takes a ``cupy.cuda.MemoryPointer`` from ``cupy.cuda.alloc`` (the pool
    of the current allocator, on the device of Numba's context) and wraps its address in a
    Numba ``MemoryPointer`` whose finalizer holds the CuPy pointer: when Numba drops its
    pointer, CuPy's goes back to the pool. Host (pinned) memory stays with Numba
    (``HostOnlyCUDAMemoryManager``). Built on first use, since the base class lives in
    ``numba.cuda``; ``cuda`` is that module.
    """
    driver = cuda.cudadrv.driver

    class CuPyMemoryManager(cuda.GetIpcHandleMixin, cuda.HostOnlyCUDAMemoryManager):
        def initialize(self):
            pass  # CuPy's pool needs no set-up

        def memalloc(self, size):
            import cupy

            with cupy.cuda.Device(self.context.device.id):
                block = cupy.cuda.alloc(size)
            pointer = driver.binding.CUdeviceptr(int(block.ptr))
            return cuda.MemoryPointer(self.context, pointer, size, finalizer=_releaser(block))

        def get_memory_info(self):
            import cupy

            with cupy.cuda.Device(self.context.device.id):
                free, total = cupy.cuda.runtime.memGetInfo()
                # blocks cached by the pool are free for Numba too: it allocates from the pool
                free += cupy.get_default_memory_pool().free_bytes()
            return cuda.MemoryInfo(free=free, total=total)

        def reset(self):
            import cupy

            super().reset()
            cupy.get_default_memory_pool().free_all_blocks()

        @property
        def interface_version(self):
            return 1

    return CuPyMemoryManager


@functools.lru_cache(maxsize=None)
def cuda_block_reduce(kind):
    """The CUDA device function ``block_reduce(scratch, v)``: the sum (``kind="sum"``) or the
    maximum (``kind="max"``) of ``v`` over a block.

    A tree reduction in shared memory: ``scratch`` holds at least ``blockDim.x`` elements
    (a power of two) and every thread of the block must call it. Returns the result to every
    thread. Built on first use, so that importing this module never imports ``numba.cuda``.
    The maximum keeps the left operand unless the right one is larger, so a NaN may be skipped
    (the row kernels turn such a row NaN anyway, through its sum of exponentials).
    """
    global cuda
    cuda = numba_cuda()
    if kind == "sum":
        combine = cuda.jit(device=True)(lambda a, b: a + b)
    elif kind == "max":
        combine = cuda.jit(device=True)(lambda a, b: b if b > a else a)
    else:
        raise ValueError(f"cuda_block_reduce: kind must be 'sum' or 'max', got {kind!r}")

    @cuda.jit(device=True)
    def block_reduce(scratch, v):
        tid = cuda.threadIdx.x
        scratch[tid] = v
        cuda.syncthreads()
        stride = cuda.blockDim.x // 2
        while stride > 0:
            if tid < stride:
                scratch[tid] = combine(scratch[tid], scratch[tid + stride])
            cuda.syncthreads()
            stride //= 2
        total = scratch[0]
        cuda.syncthreads()  # scratch may be reused right after
        return total

    return block_reduce


def cuda_block_sum():
    """``cuda_block_reduce("sum")``: the sum of ``v`` over a block."""
    return cuda_block_reduce("sum")


def threads_for_row(n, max_threads, family):
    """Threads per block for rows of length ``n``: a power of two in [32, ``max_threads``],
    so that short rows do not leave most of a block idle."""
    b = 32
    while b < n and b < max_threads:
        b *= 2
    b = min(b, max_threads)
    if b < 1 or b & (b - 1):
        raise ValueError(f"{family}: CUDA_BLOCK must be a power of two, got {max_threads}")
    return b


def launch_on_cupy_stream(kernel, grid, block, shared_bytes, args):
    """Launch ``kernel`` without a host synchronisation, on CuPy's current stream.

    Given a CuPy array, Numba wraps it through ``__cuda_array_interface__`` and by default
    synchronises the stream that the interface names, once per array per launch: a host-GPU
    round trip that drains the GPU's queue on every call. We wrap the arrays ourselves without
    that sync and launch on CuPy's current stream, which keeps the order with CuPy's own work.
    NumPy arguments (the CUDA simulator) are passed as they are.
    """
    if not any(is_cuda_array(a) for a in args):
        kernel[grid, block, 0, shared_bytes](*args)
        return
    import cupy

    cuda = numba_cuda()
    ptr = cupy.cuda.get_current_stream().ptr
    # CuPy's default (null) stream is CUDA's legacy default stream, Numba's stream 0. Launching
    # on an external-stream wrapper costs far more host time (measured on an H200: about 0.2 ms more per launch).
    stream = 0 if ptr == 0 else cuda.external_stream(ptr)
    args = [cuda.as_cuda_array(a, sync=False) if is_cuda_array(a) else a for a in args]
    kernel[grid, block, stream, shared_bytes](*args)


# ----------------------------------------------------------------------------- BLAS threads

_blas_controller = None  # threadpoolctl's view of the loaded BLAS libraries, made on first use


def blas_controller():
    """A threadpoolctl controller for the loaded BLAS libraries, or None without threadpoolctl.

    CPU kernels that call BLAS from inside Numba's threads hold BLAS to one thread meanwhile
    (two thread pools fighting over the cores made kernels 2-5x slower); this is the one place
    that finds the BLAS libraries.
    """
    global _blas_controller
    if _blas_controller is None:
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (load scipy's BLAS before looking)
            from threadpoolctl import ThreadpoolController
        except ImportError:
            import warnings

            warnings.warn(
                "threadpoolctl is not installed, so BLAS cannot be made single-threaded inside "
                "Numba's threads; the CPU kernels that call BLAS run on one Numba thread",
                RuntimeWarning,
                stacklevel=3,
            )
            _blas_controller = False
        else:
            _blas_controller = ThreadpoolController()
    return _blas_controller or None


_blas_libs = None  # the BLAS libraries' own controllers (a list), or False without threadpoolctl


@contextlib.contextmanager
def one_blas_thread():
    """Every loaded BLAS on one thread inside the block, restored after; yields True, or False
    when threadpoolctl is missing (BLAS then keeps its threads: run one Numba worker).

    BLAS's thread count is process-wide: other Python threads calling BLAS meanwhile run single-
    threaded too. The libraries are set through their own get/set calls (~1 us each), found
    once; ``threadpoolctl.limit`` looks every library up again on each call (46-200 us, ~2 % of
    a small recurrent layer's forward + backward)."""
    global _blas_libs
    if _blas_libs is None:
        controller = blas_controller()  # None (and a warning) without threadpoolctl
        _blas_libs = False if controller is None else controller.select(user_api="blas").lib_controllers
    if _blas_libs is False:
        yield False
        return
    before = [lib.get_num_threads() for lib in _blas_libs]
    for lib, n in zip(_blas_libs, before):
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield True
    finally:
        for lib, n in zip(_blas_libs, before):
            if n != 1:
                lib.set_num_threads(n)
