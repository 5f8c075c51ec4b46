"""The CUDA path checked without a GPU, in a child process that runs the real ``numba.cuda``
(not the simulator):

- every CUDA kernel of every family compiles to PTX for sm_90 (the H200) with the float32
  argument types its dispatch really launches it with. The simulator runs kernels as Python
  and so never types them; this catches the typing and lowering errors only a compile shows.
  It needs NVVM and NVRTC (``pip install nvidia-nvvm nvidia-cuda-nvrtc``, the ``ptx`` extra);
  without them the test is skipped with the reason.
- every launch goes through ``_common.launch_on_cupy_stream`` (so, on a GPU, on CuPy's
  current stream);
- Numba's device allocations go through CuPy's memory pool: the EMM plugin of
  ``_common.cupy_memory_manager`` allocates from a stand-in ``cupy`` and gives the memory back
  when Numba frees it; ``numba_cuda()`` installs it. (That a real context uses it is checked on
  a GPU, in tests/test_cuda_device.py.)

How the child compiles: it replaces ``CUDADispatcher.__getitem__`` (the ``kernel[grid, block,
stream, shared]`` of a launch) by a recorder that types the launch's arguments as Numba would
and calls ``numba.cuda.compile_ptx(kernel.py_func, types, cc=(9, 0))`` instead of launching.
Each family's public dispatch then runs once per code path with ``impl="cuda"`` on small
float32 NumPy arrays; the kernels' outputs are left unwritten, which the host code between
launches never looks at. Every kernel a family builds must have been compiled at least once.

Run the child by hand: ``python tests/test_cuda_compile.py`` (prints one line per kernel).
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_NVVM_EXIT = 3
PTX_EXTRA = "pip install nvidia-nvvm nvidia-cuda-nvrtc  (tinymm's 'ptx' extra; CUDA 13, 133 MB download)"


def _child_env():
    env = dict(os.environ)
    env["NUMBA_ENABLE_CUDASIM"] = "0"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run_child(*args, timeout=600):
    return subprocess.run([sys.executable, os.path.abspath(__file__), *args], cwd=ROOT, env=_child_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_every_cuda_kernel_compiles_for_sm90_and_launches_on_cupys_stream():
    import pytest

    proc = _run_child("compile")
    if proc.returncode == NO_NVVM_EXIT:
        reason = proc.stdout.strip().splitlines()[-1]
        print(reason)
        pytest.skip(reason)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    assert "compiled" in proc.stdout


def test_numba_device_memory_comes_from_cupys_pool():
    proc = _run_child("memory", timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "memory ok" in proc.stdout


# ============================================================================ the child process


def _nvvm_missing():
    """None when NVVM and NVRTC can compile a trivial kernel for sm_90, else the reason."""
    from numba import cuda

    def probe(x):
        x[0] = 1.0

    try:
        cuda.compile_ptx(probe, "void(float32[:])", cc=(9, 0))
    except Exception as e:  # noqa: BLE001 - whatever is missing, report it
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"NVVM/NVRTC not usable here ({type(e).__name__}: {first[:160]}); to compile: {PTX_EXTRA}"
    return None


def _patch_numba():
    """Record every kernel built; turn every launch into a compile for sm_90."""
    import sys as _sys
    import types

    from numba.cuda.dispatcher import CUDADispatcher

    from tinymm.kernels import _common

    built, compiled, failures, wrong_route = {}, {}, [], []
    init, _ = CUDADispatcher.__init__, CUDADispatcher.__getitem__

    def __init__(self, py_func, targetoptions, *a, **k):
        init(self, py_func, targetoptions, *a, **k)
        if not targetoptions.get("device", False):
            built[id(self)] = f"{py_func.__module__}.{py_func.__qualname__}"

    def __getitem__(self, config):
        caller = _sys._getframe(1).f_code
        if caller is not _common.launch_on_cupy_stream.__code__:
            wrong_route.append(f"{self.py_func.__qualname__} launched from {caller.co_filename}:{caller.co_name}")

        def launch(*args):
            from numba import cuda

            types = tuple(self.typeof_pyval(a) for a in args)
            name = built.get(id(self), self.py_func.__qualname__)
            key = (id(self), types)
            if key in compiled:
                return
            opts = {k: self.targetoptions[k] for k in ("fastmath", "lineinfo", "debug") if k in self.targetoptions}
            try:
                cuda.compile_ptx(self.py_func, types, cc=(9, 0), **opts)
                compiled[key] = name
                print(f"compiled {name}{types}", flush=True)
            except Exception as e:  # noqa: BLE001 - collect every failure, then report them all
                failures.append(f"{name}{types}: {type(e).__name__}: {e}")
                compiled[key] = name

        return launch

    CUDADispatcher.__init__ = __init__
    CUDADispatcher.__getitem__ = __getitem__
    # A device function called from a kernel is compiled for the current device's compute
    # capability; there is no device here, so it is the H200's.
    from numba.cuda import dispatcher

    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
    return built, compiled, failures, wrong_route


def _drive_every_family():
    """Each family's dispatch once per code path, impl="cuda", float32, small odd shapes."""
    import numpy as np

    from tinymm.kernels import attention, batchnorm, conv, norm, optim, pool, recurrent, softmax

    rng = np.random.default_rng(0)
    f32 = np.float32

    def r(*shape):
        return rng.standard_normal(shape).astype(f32)

    # softmax and cross-entropy
    x = r(5, 37)
    for fwd, bwd in ((softmax.softmax_forward, softmax.softmax_backward),
                     (softmax.log_softmax_forward, softmax.log_softmax_backward)):
        bwd(fwd(x, impl="cuda"), r(5, 37), impl="cuda")
    t = rng.integers(0, 37, 5)
    probs = np.abs(r(5, 37))
    for target, weight in ((t, None), (t, np.abs(r(37))), (probs, None), (probs, np.abs(r(37)))):
        loss, lse = softmax.cross_entropy_forward(x, target, weight, -100, 0.1, impl="cuda")
        softmax.cross_entropy_backward(x, target, lse, r(5), weight, -100, 0.1, impl="cuda")
    # layer norm
    for w, b in ((r(37), r(37)), (None, None)):
        y, mean, rstd = norm.forward(x, w, b, 1e-5, impl="cuda")
        norm.backward(r(5, 37), x, mean, rstd, w, b is not None, impl="cuda")
    # optimizers
    p, g = r(1000), r(1000)
    optim.sgd_step(p, g, r(1000), lr=0.1, momentum=0.9, impl="cuda")
    optim.sgd_step(p, g, None, lr=0.1, impl="cuda")
    optim.adam_step(p, g, r(1000), np.abs(r(1000)), step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                    impl="cuda")
    optim.adam_step(p, g, r(1000), np.abs(r(1000)), step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                    amsgrad=True, max_exp_avg_sq=np.abs(r(1000)), impl="cuda")
    # attention, without and with a float mask and a boolean one, causal or not
    q, k, v, do = r(2, 3, 17, 16), r(2, 3, 19, 16), r(2, 3, 19, 16), r(2, 3, 17, 16)
    for mask, causal in ((None, False), (None, True), (r(2, 3, 17, 19), False), (r(17, 19) > 0, False)):
        o, lse = attention.forward(q, k, v, mask, causal, impl="cuda")
        attention.backward(q, k, v, o, lse, do, mask, causal, impl="cuda")
    # convolution
    xc, wc, bc = r(2, 4, 9, 11), r(6, 2, 3, 3), r(6)
    conv_args = dict(stride=(1, 2), padding=((1, 1), (0, 1)), dilation=(1, 1), groups=2)
    yc = conv.forward(xc, wc, bc, impl="cuda", **conv_args)
    conv.backward(xc, wc, np.ones_like(yc) if not isinstance(yc, tuple) else np.ones_like(yc[0]),
                  impl="cuda", **conv_args)
    # pooling
    xp_ = r(6, 9, 11)
    y, idx = pool.max_pool_forward(xp_, (3, 3), (2, 2), (1, 1), (1, 1), impl="cuda")
    pool.max_pool_backward(r(*y.shape), np.zeros(idx.shape, np.int64), (9, 11), impl="cuda")
    hwin, wwin = pool.avg_pool_windows(9, 3, 2, 1), pool.avg_pool_windows(11, 3, 2, 1)
    y = pool.avg_pool_forward(xp_, hwin, wwin, impl="cuda")
    pool.avg_pool_backward(r(*y.shape), hwin, wwin, (9, 11), impl="cuda")
    # batch norm, training (batch statistics, running stats updated) and eval
    xb = r(4, 3, 35)  # (batch, channels, positions)
    for training in (True, False):
        y, mean, rstd = batchnorm.forward(xb, r(3), r(3), r(3), np.abs(r(3)), training, 0.1, 1e-5, impl="cuda")
        batchnorm.backward(r(4, 3, 35), xb, mean, rstd, r(3), training, impl="cuda")
    # recurrent: every cell, with biases, projections (LSTM) and ragged lengths
    B, T, I, H = 3, 4, 5, 6
    lengths = np.array([4, 2, 3])
    for mode, G in (("RNN_TANH", 1), ("RNN_RELU", 1), ("LSTM", 4), ("GRU", 3)):
        for w_hr, lens in ((None, None), (r(4, H) if mode == "LSTM" else None, lengths)):
            P = H if w_hr is None else w_hr.shape[0]
            h0, c0 = r(B, P), (r(B, H) if mode == "LSTM" else None)
            args = (mode, r(T, B, I), h0, c0, r(G * H, I), r(G * H, P), r(G * H), r(G * H), w_hr, lens, False)
            y, h_n, c_n, saved = recurrent.forward(*args, impl="cuda")
            recurrent.backward(*args, saved, r(T, B, P), r(B, P), r(B, H) if mode == "LSTM" else None,
                               impl="cuda")


def _child_compile():
    reason = _nvvm_missing()
    if reason:
        print(reason)
        return NO_NVVM_EXIT
    import numpy as np

    built, compiled, failures, wrong_route = _patch_numba()
    with np.errstate(all="ignore"):  # the host code between launches computes on unwritten outputs
        _drive_every_family()
    never = sorted(set(built.values()) - set(compiled.values()))
    print(f"{len(compiled)} kernel compilations for sm_90; {len(built)} kernels built; "
          f"{len(failures)} failed; {len(never)} never launched; {len(wrong_route)} launched off CuPy's stream")
    for line in failures + [f"never launched: {n}" for n in never] + wrong_route:
        print("  " + line)
    return 1 if failures or never or wrong_route else 0


class _FakeBlock:
    """What ``cupy.cuda.alloc`` returns: an address, given back to the pool when collected."""

    live = set()

    def __init__(self, size):
        self.ptr, self.size = 0x7F0000000000 + 256 * len(_FakeBlock.live), size
        _FakeBlock.live.add(self.ptr)

    def __del__(self):
        _FakeBlock.live.discard(self.ptr)


def _fake_cupy():
    import contextlib
    import types

    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(
        alloc=_FakeBlock, Device=lambda i: contextlib.nullcontext(),
        runtime=types.SimpleNamespace(memGetInfo=lambda: (1000, 4000)))
    pool = types.SimpleNamespace(free_bytes=lambda: 24, free_all_blocks=lambda: None)
    cupy.get_default_memory_pool = lambda: pool
    return cupy


def _child_memory():
    import gc
    import types

    from numba import cuda
    from numba.cuda.cudadrv import driver

    from tinymm.kernels import _common

    sys.modules["cupy"] = _fake_cupy()
    import importlib.util

    real_find_spec = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *a: object() if name == "cupy" else real_find_spec(name, *a)
    try:
        assert _common.numba_cuda() is cuda
        assert _common._memory_manager_installed, "numba_cuda() did not install the CuPy memory manager"
    finally:
        importlib.util.find_spec = real_find_spec
    manager_class = _common.cupy_memory_manager(cuda)
    assert driver._memory_manager is manager_class, driver._memory_manager
    context = types.SimpleNamespace(device=types.SimpleNamespace(id=0))
    manager = manager_class(context=context)
    manager.initialize()
    mem = manager.memalloc(1024)
    assert mem.size == 1024 and len(_FakeBlock.live) == 1
    assert int(mem.device_pointer) == next(iter(_FakeBlock.live))
    assert manager.get_memory_info() == (1024, 4000)
    assert manager.interface_version == 1
    del mem
    gc.collect()
    assert not _FakeBlock.live, "the CuPy block was not given back when Numba freed its pointer"
    print("memory ok")
    return 0


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "compile"
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        sys.exit("run the child without NUMBA_ENABLE_CUDASIM=1: it compiles with the real numba.cuda")
    sys.path.insert(0, ROOT)
    sys.exit(_child_compile() if mode == "compile" else _child_memory())
