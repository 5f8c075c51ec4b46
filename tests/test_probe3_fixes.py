"""What probe3's PyTorch scripts (a ViT, the MNIST VAE, the attention seq2seq tutorial, nanoGPT, a
torchvision-style ResNet loop) and its idiom probes found missing or different, each compared
with PyTorch: torch.jit's eager markers, how tensors and models print, autograd.grad's
only_inputs, is_inference_mode_enabled, and the SDPA backend switches."""
import warnings

import numpy as np
import pytest

import tinymm as tm
import tinymm.nn as tnn
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


# -- torch.jit -------------------------------------------------------------------------------

def test_jit_markers_leave_functions_as_they_were():
    class M(tnn.Module):
        @tm.jit.ignore
        def no_weight_decay(self):
            return {"pos_embed"}

        @tm.jit.ignore(drop=True)
        def dropped(self):
            return 1

        @tm.jit.unused
        def unused(self):
            return 2

        @tm.jit.export
        def exported(self):
            return 3

    m = M()
    assert (m.no_weight_decay(), m.dropped(), m.unused(), m.exported()) == ({"pos_embed"}, 1, 2, 3)
    assert tm.jit.is_scripting() is False and tm.jit.is_tracing() is False
    assert tm.jit.annotate(list, [1]) == [1]
    import tinymm.jit  # noqa: F401  (importable by name, as torch.jit)


@needs_torch
def test_jit_ignore_refuses_what_torch_refuses():
    for lib in (torch, tm):
        with pytest.raises(RuntimeError, match="must be a bool or a function"):
            lib.jit.ignore("yes")


# -- printing --------------------------------------------------------------------------------

_RNG = np.random.default_rng(0)
PRINT_CASES = [
    np.array([1.5, 2.0], np.float32), np.array([1.0, 2.0, -3.0], np.float32), np.array(3.25, np.float32),
    np.array(4.0, np.float32), _RNG.standard_normal((3, 4)).astype(np.float32),
    _RNG.standard_normal((2, 2, 2, 3)).astype(np.float32), np.array([1e-5, 1.0], np.float32),
    np.array([1e9, 1.0], np.float32), np.array([np.nan, np.inf, -np.inf, 1.0], np.float32),
    np.array([np.nan, 1.5], np.float32), np.zeros(2, np.float32), np.arange(2000, dtype=np.float32).reshape(40, 50) / 7,
    np.arange(1500), np.array([True, False]), np.arange(30, dtype=np.int64) * 1000,
    _RNG.standard_normal(40).astype(np.float32) * 100, np.array([1.0, 2.0]), np.array([1.5, 2.0], np.float16),
    np.zeros((0, 3), np.float32), np.zeros(0, np.int64), np.arange(6, dtype=np.int32).reshape(2, 3),
    np.array([-1e-3, 200.5], np.float32), np.array([12345678.0, 1.0], np.float32)]


# (print options against torch: tests/test_tensor_str.py)


@needs_torch
def test_print_suffixes_follow_torch():
    x = PRINT_CASES[4]
    a, b = torch.tensor(x, requires_grad=True), tm.tensor(x, requires_grad=True)
    for t, m in ((a, b), (a * 2, b * 2), (a.sum(), b.sum()), (torch.nn.Parameter(torch.ones(2)), tnn.Parameter(tm.ones(2)))):
        assert repr(m) == repr(t)
    assert str(tm.tensor([0.5, 0.25])) == str(torch.tensor([0.5, 0.25])) == "tensor([0.5000, 0.2500])"


@needs_torch
def test_models_print_as_torch():
    def model(nn):
        return nn.Sequential(nn.MultiheadAttention(4, 2, batch_first=True), nn.TransformerEncoderLayer(4, 2, 8),
                             nn.TransformerDecoderLayer(4, 2, 8), nn.Upsample(scale_factor=2),
                             nn.UpsamplingNearest2d(scale_factor=2), nn.UpsamplingBilinear2d(size=(3, 4)),
                             nn.Upsample(scale_factor=(2, 3)), nn.Upsample(size=5, mode="bilinear"))
    assert repr(model(tnn)) == repr(model(torch.nn))
    mha = tnn.MultiheadAttention(4, 2)
    assert isinstance(mha.out_proj, tnn.Linear) and type(mha.out_proj).__name__ == "NonDynamicallyQuantizableLinear"


@needs_torch
def test_upsample_keeps_float_factors_and_resizes_as_torch():
    x = np.arange(2 * 3 * 3, dtype=np.float32).reshape(1, 2, 3, 3)
    for kw in (dict(scale_factor=2), dict(scale_factor=(2, 1), mode="bilinear"),
               dict(scale_factor=1.5, mode="bilinear", recompute_scale_factor=True)):
        ours, theirs = tnn.Upsample(**kw), torch.nn.Upsample(**kw)
        assert ours.scale_factor == theirs.scale_factor
        np.testing.assert_allclose(ours(tm.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-6)


# -- autograd --------------------------------------------------------------------------------

@needs_torch
def test_grad_takes_only_inputs_as_torch():
    """The WGAN-GP gradient penalty passes only_inputs=True (PyTorch: deprecated, ignored)."""
    x = np.random.default_rng(1).standard_normal((3, 4))
    outs = []
    for lib in (torch, tm):
        w = lib.tensor(np.linspace(-1, 1, 4).reshape(4, 1), requires_grad=True)
        xi = lib.tensor(x, requires_grad=True)
        d = (xi @ w).tanh()
        g = lib.autograd.grad(outputs=d, inputs=xi, grad_outputs=lib.ones_like(d), create_graph=True,
                              retain_graph=True, only_inputs=True)[0]
        penalty = ((g.norm(2, dim=1) - 1) ** 2).mean()
        penalty.backward()
        outs.append((penalty.item(), w.grad.numpy().copy()))
    np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-10)
    np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=1e-8)
    x = tm.ones(2, requires_grad=True)
    with pytest.warns(FutureWarning, match="only_inputs argument is deprecated"):
        tm.autograd.grad((x * 2).sum(), x, only_inputs=False)


@needs_torch
def test_is_inference_mode_enabled_as_torch():
    for lib in (torch, tm):
        seen = [lib.is_inference_mode_enabled()]
        with lib.inference_mode():
            seen.append(lib.is_inference_mode_enabled())
            with lib.inference_mode(False):
                seen.append(lib.is_inference_mode_enabled())
            seen.append(lib.is_inference_mode_enabled())

        @lib.inference_mode()
        def f():
            return lib.is_inference_mode_enabled()
        seen += [f(), lib.is_inference_mode_enabled()]
        assert seen == [False, True, False, True, True, False], lib.__name__


# -- SDPA backends ---------------------------------------------------------------------------

@needs_torch
def test_sdpa_kernel_selects_backends_as_torch_on_cpu():
    from torch.nn.attention import SDPBackend as TB, sdpa_kernel as tk
    from tinymm.nn.attention import SDPBackend as MB, sdpa_kernel as mk
    assert {k: int(v) for k, v in MB.__members__.items()} == {k: int(v) for k, v in TB.__members__.items()}
    q = np.random.default_rng(2).standard_normal((1, 2, 3, 4)).astype(np.float32)
    for names in (["MATH"], ["FLASH_ATTENTION"], ["MATH", "EFFICIENT_ATTENTION"], ["EFFICIENT_ATTENTION"], []):
        results = []
        for lib, B, k in ((torch, TB, tk), (tm, MB, mk)):
            x = lib.tensor(q)
            with k([getattr(B, n) for n in names]):
                flags = [lib.backends.cuda.flash_sdp_enabled(), lib.backends.cuda.math_sdp_enabled(),
                         lib.backends.cuda.mem_efficient_sdp_enabled()]
                try:
                    out = lib.nn.functional.scaled_dot_product_attention(x, x, x, is_causal=True, scale=0.3).detach().numpy()
                except RuntimeError as e:
                    out = str(e)
            results.append((flags, out, lib.backends.cuda.math_sdp_enabled()))
        (tf, to, tafter), (mf, mo, mafter) = results
        assert tf == mf and tafter == mafter is True, names
        if isinstance(to, str):
            assert mo == to
        else:
            np.testing.assert_allclose(mo, to, rtol=1e-5, atol=1e-6)
    for lib, B, k in ((torch, TB, tk), (tm, MB, mk)):
        with pytest.raises(AssertionError, match="Backend must be an instance of SDPBackend"):
            with k("MATH"):
                pass


@needs_torch
def test_backends_cuda_switches_and_the_deprecated_sdp_kernel():
    for lib in (torch, tm):
        lib.backends.cuda.enable_math_sdp(False)
        try:
            assert not lib.backends.cuda.math_sdp_enabled()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                with lib.backends.cuda.sdp_kernel(enable_flash=False, enable_math=True, enable_mem_efficient=False):
                    assert lib.backends.cuda.math_sdp_enabled() and not lib.backends.cuda.flash_sdp_enabled()
            assert not lib.backends.cuda.math_sdp_enabled() and lib.backends.cuda.flash_sdp_enabled()
        finally:
            lib.backends.cuda.enable_math_sdp(True)


# -- torch.nn.modules ------------------------------------------------------------------------

@needs_torch
def test_nn_modules_submodules_hold_torchs_classes():
    """Every class a torch.nn.modules submodule defines that tinymm has is reachable under the
    same path, and is tinymm.nn's own class (private bases included)."""
    import importlib
    import inspect

    from tinymm.nn.modules import _TABLE
    for sub, names in _TABLE.items():
        theirs = importlib.import_module(f"torch.nn.modules.{sub}")
        ours = importlib.import_module(f"tinymm.nn.modules.{sub}")
        for n in names.split():
            assert inspect.isclass(getattr(theirs, n)), (sub, n)
            got = getattr(ours, n)
            assert got is getattr(tnn, n, got) and got.__name__ == n
    assert tnn.modules.batchnorm._BatchNorm is tnn.batchnorm._BatchNorm
    assert issubclass(tnn.BatchNorm2d, tnn.modules.batchnorm._BatchNorm)
    assert tnn.modules.conv._ConvNd in tnn.Conv2d.__mro__ and tnn.modules.Linear is tnn.Linear


@needs_torch
def test_freezing_batch_norm_through_nn_modules_as_torch():
    for lib in (torch, tm):
        m = lib.nn.Sequential(lib.nn.Conv2d(2, 3, 1), lib.nn.BatchNorm2d(3), lib.nn.Sequential(lib.nn.BatchNorm1d(3)))
        m.train()
        m.apply(lambda mod: mod.eval() if isinstance(mod, lib.nn.modules.batchnorm._BatchNorm) else None)
        assert [mod.training for mod in m.modules()] == [True, True, False, True, False], lib.__name__


@needs_torch
def test_nn_modules_utils_tuples_as_torch():
    from torch.nn.modules import utils as theirs
    from tinymm.nn.modules import utils as ours
    for name in ("_single", "_pair", "_triple", "_quadruple"):
        for arg in (3, (1, 2), [4, 5, 6], 2.5):
            assert getattr(ours, name)(arg) == getattr(theirs, name)(arg)
    assert ours._ntuple(5)(1) == theirs._ntuple(5)(1) and ours._pair.__name__ == "_pair"
    assert ours._reverse_repeat_tuple((1, 2, 3), 2) == theirs._reverse_repeat_tuple((1, 2, 3), 2)


# -- NumPy scalars and dtypes ----------------------------------------------------------------

NUMPY_SCALAR_CASES = [
    "x * np.float64(2)", "np.float64(2) * x", "x + np.float32(1)", "lib.ones([]) * np.log(1 / 0.07)",
    "i * np.float64(2.5)", "i + np.int64(2)", "i * np.int32(2)", "x / np.float64(3)", "x ** np.float64(2)",
    "x.add(np.float64(1))", "lib.where(x > 0, x, np.float64(0.5))", "x.pow(np.float64(2))", "i // np.int64(2)",
    "np.float64(1) - x", "np.float64(2) / x", "x.div(np.float64(2))", "i / np.int64(2)", "x.sub(np.float64(1), alpha=2)",
    "x.add(2.0, alpha=3)", "x.lerp(x * 2, np.float64(0.25))", "np.float64(2) ** x", "x % np.float64(0.7)",
    "lib.mul(np.float64(2), x)", "x.double() * np.float32(2)", "i * np.float32(1.5)"]


@needs_torch
def test_numpy_scalars_act_as_python_numbers_as_torch():
    """CLIP's ``nn.Parameter(torch.ones([]) * np.log(1 / 0.07))`` stays float32: a NumPy scalar
    never widens a tensor (NumPy alone would make float32 * np.float64 a float64)."""
    for case in NUMPY_SCALAR_CASES:
        got = []
        for lib in (torch, tm):
            x = lib.tensor([0.5, 1.5, -2.0], requires_grad=True)
            i = lib.tensor([1, 2, 3])
            out = eval(case)
            got.append((str(out.dtype).replace("torch.", "tinymm."), out.detach().numpy().tolist()))
        assert got[1][0] == got[0][0], case
        np.testing.assert_allclose(got[1][1], got[0][1], rtol=1e-6, err_msg=case)
    p = tnn.Parameter(tm.ones([]) * np.log(1 / 0.07))
    p.exp().backward()
    assert p.dtype == tm.float32 and p.grad.dtype == tm.float32


@needs_torch
@pytest.mark.parametrize("values", [
    [np.float64(1.0)], [np.float64(1.0), 2.0], [2.0, np.float64(1.0)], [np.float32(1.0)],
    [np.float32(1), np.float64(2)], [np.int32(1)], [np.int64(1), 2], [1, np.float64(2)], [[np.float64(1.0)]],
    [np.float16(1)], [np.bool_(True)], [1, np.int32(2)], [np.array([1.0, 2.0])], [2.0, np.float16(1)],
    [np.int64(1), np.float16(2)], [True, np.int8(3)], [np.uint8(1), 2], [[1, 2], [np.int32(3), 4]],
    (np.float64(1), np.float64(2)), [np.bool_(True), 1.5], [1.5, 2.5], [1, 2], [True, False]],
    ids=str)
def test_tensor_of_a_list_with_numpy_values_takes_torchs_dtype(values):
    assert str(tm.tensor(values).dtype) == str(torch.tensor(values).dtype).replace("torch.", "tinymm.")
    np.testing.assert_array_equal(tm.tensor(values).detach().numpy(), torch.tensor(values).detach().numpy())


@needs_torch
def test_default_collate_keeps_string_fields_as_torch():
    from torch.utils.data import default_collate as theirs
    from tinymm.utils.data import default_collate as ours
    batch = [(np.ones(2, np.float32), 1, "a"), (np.zeros(2, np.float32), 2, "b")]
    o, t = ours(batch), theirs(batch)
    assert o[2] == t[2] and type(o[2]) is type(t[2]) is tuple
    assert ours(["a", "b"]) == theirs(["a", "b"]) == ["a", "b"]
    assert ours([{"s": "x"}, {"s": "y"}]) == theirs([{"s": "x"}, {"s": "y"}])


@needs_torch
def test_calculate_correct_fan_as_torch():
    for shape in ((4, 3, 2, 2), (5, 7)):
        for mode in ("fan_in", "fan_out", "FAN_OUT"):
            assert tnn.init._calculate_correct_fan(tm.empty(*shape), mode) == \
                torch.nn.init._calculate_correct_fan(torch.empty(*shape), mode)
    for lib in (torch, tm):
        with pytest.raises(ValueError, match="Mode fan_avg not supported"):
            lib.nn.init._calculate_correct_fan(lib.empty(2, 2), "fan_avg")


# -- torch.load's callable map_location ------------------------------------------------------

@needs_torch
def test_load_with_a_callable_map_location_as_torch(tmp_path):
    """``torch.load(path, map_location=lambda storage, loc: storage)``: the older scripts' way to
    load a GPU checkpoint on the CPU."""
    import io
    for saver in (torch, tm):
        buf = io.BytesIO()
        saver.save({"w": saver.ones(2, 3), "step": 3}, buf)
        for mapping in (lambda storage, loc: storage, lambda storage, loc: storage.cpu(), lambda storage, loc: None):
            buf.seek(0)
            ours = tm.load(buf, map_location=mapping)
            buf.seek(0)
            theirs = torch.load(buf, map_location=mapping)
            assert ours["step"] == theirs["step"] and ours["w"].device.type == theirs["w"].device.type == "cpu"
            np.testing.assert_array_equal(ours["w"].detach().numpy(), theirs["w"].detach().numpy())
    buf.seek(0)
    with pytest.raises(TypeError, match="map_location must return the storage"):
        tm.load(buf, map_location=lambda storage, loc: 3)
    tm.save({"w": tm.ones(2)}, tmp_path / "w.safetensors")
    assert tm.load(tmp_path / "w.safetensors", map_location=lambda s, loc: s)["w"].tolist() == [1.0, 1.0]


# -- optimizers and tensors as containers ----------------------------------------------------

@needs_torch
def test_optimizer_state_is_keyed_by_parameter_as_torch():
    """``optimizer.state[p]`` (PyTorch: a defaultdict(dict) keyed by the parameter): read after a
    step, looked at before one (an empty dict, which the step then fills), and after a reload."""
    for name, kw, keys in (("Adam", {}, ["exp_avg", "exp_avg_sq", "step"]), ("SGD", dict(momentum=0.9), ["momentum_buffer"]),
                           ("RMSprop", {}, ["square_avg", "step"])):
        for lib in (torch, tm):
            p = lib.nn.Parameter(lib.ones(3))
            opt = getattr(lib.optim, name)([p], lr=0.1, **kw)
            assert opt.state[p] == {} and len(opt.state) == 1  # defaultdict: looking creates it
            (p * p).sum().backward()
            opt.step()
            assert sorted(opt.state[p]) == keys, (name, lib.__name__)
            assert tuple(opt.state[p][keys[0]].shape) == (3,)
            opt2 = getattr(lib.optim, name)([p], lr=0.1, **kw)
            opt2.load_state_dict(opt.state_dict())
            assert sorted(opt2.state[p]) == keys and list(opt2.state) == [p]
            assert sorted(v for state in opt2.state.values() for v in state) == keys


@needs_torch
def test_optimizers_print_as_torch():
    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop"):
        ours = getattr(tm.optim, name)([tnn.Parameter(tm.zeros(1))], lr=0.1)
        theirs = getattr(torch.optim, name)([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        assert repr(ours) == repr(theirs), name


@needs_torch
def test_in_operator_on_tensors_as_torch():
    for lib in (torch, tm):
        x = lib.tensor([[1, 2, 3], [4, 5, 6]])
        assert (2 in x, 7 in x, lib.tensor(5) in x, 4.0 in x, np.int64(6) in x) == (True, False, True, True, True)
        with pytest.raises(RuntimeError, match="only supports Tensor or scalar"):
            "a" in x


# -- the legacy size_average / reduce arguments ----------------------------------------------

@needs_torch
@pytest.mark.parametrize("legacy", [dict(size_average=False), dict(reduce=False), dict(size_average=True, reduce=True),
                                    dict(size_average=False, reduce=True)], ids=str)
def test_losses_take_size_average_and_reduce_as_torch(legacy):
    """Older code (the first VAE and DCGAN examples) writes ``F.binary_cross_entropy(recon, x,
    size_average=False)``: mapped to ``reduction`` with PyTorch's warning."""
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.95, (4, 3))
    logits, y = rng.standard_normal((4, 3)), rng.integers(0, 3, 4)
    calls = {
        "binary_cross_entropy": lambda lib, F: F.binary_cross_entropy(lib.tensor(p), lib.tensor(p[::-1].copy()), **legacy),
        "bce_with_logits": lambda lib, F: F.binary_cross_entropy_with_logits(lib.tensor(logits), lib.tensor(p), **legacy),
        "cross_entropy": lambda lib, F: F.cross_entropy(lib.tensor(logits), lib.tensor(y), **legacy),
        "nll_loss": lambda lib, F: F.nll_loss(lib.tensor(logits), lib.tensor(y), **legacy),
        "mse_loss": lambda lib, F: F.mse_loss(lib.tensor(logits), lib.tensor(p), **legacy),
        "l1_loss": lambda lib, F: F.l1_loss(lib.tensor(logits), lib.tensor(p), **legacy),
        "MSELoss": lambda lib, F: lib.nn.MSELoss(**legacy)(lib.tensor(logits), lib.tensor(p)),
        "L1Loss": lambda lib, F: lib.nn.L1Loss(**legacy)(lib.tensor(logits), lib.tensor(p)),
        "BCELoss": lambda lib, F: lib.nn.BCELoss(None, **legacy)(lib.tensor(p), lib.tensor(p)),
        "BCEWithLogitsLoss": lambda lib, F: lib.nn.BCEWithLogitsLoss(**legacy)(lib.tensor(logits), lib.tensor(p)),
        "NLLLoss": lambda lib, F: lib.nn.NLLLoss(**legacy)(lib.tensor(logits), lib.tensor(y)),
        "CrossEntropyLoss": lambda lib, F: lib.nn.CrossEntropyLoss(**legacy)(lib.tensor(logits), lib.tensor(y)),
    }
    for name, call in calls.items():
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated") as theirs_w:
            theirs = call(torch, torch.nn.functional)
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated") as ours_w:
            ours = call(tm, tnn.functional)
        assert str(ours_w[0].message) == str(theirs_w[0].message), name
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, err_msg=name)


@needs_torch
def test_loss_positional_arguments_follow_torchs_order():
    """weight, size_average, ignore_index, reduce, reduction: PyTorch's positions."""
    rng = np.random.default_rng(6)
    logits, y = rng.standard_normal((5, 3)), np.array([0, 1, 2, 1, 0])
    w = np.array([1.0, 2.0, 0.5])
    for fn in ("cross_entropy", "nll_loss"):
        ours = getattr(tnn.functional, fn)(tm.tensor(logits), tm.tensor(y), tm.tensor(w), None, 1, None, "sum")
        theirs = getattr(torch.nn.functional, fn)(torch.tensor(logits), torch.tensor(y), torch.tensor(w), None, 1, None, "sum")
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10)
    ours = tnn.CrossEntropyLoss(tm.tensor(w), None, 2, None, "none", 0.1)(tm.tensor(logits), tm.tensor(y))
    theirs = torch.nn.CrossEntropyLoss(torch.tensor(w), None, 2, None, "none", 0.1)(torch.tensor(logits), torch.tensor(y))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10)


# -- grad mode as PyTorch's, PackedSequence conversions --------------------------------------

@needs_torch
def test_grad_mode_decorators_as_torch():
    """A recursive ``@no_grad()`` function restores the mode (each call enters its own copy); a
    decorated generator yields tensors made without a graph (LLM streaming generation);
    ``torch.set_grad_enabled(False)`` on its own line switches recording off."""
    for lib in (torch, tm):
        @lib.no_grad()
        def f(n, x):
            return x if n == 0 else f(n - 1, x * 2)
        x = lib.ones(1, requires_grad=True)
        assert f(2, x).requires_grad is False and lib.is_grad_enabled() and (x * 3).requires_grad

        @lib.no_grad()
        def stream(x):
            for i in range(3):
                yield x * i
        assert [t.requires_grad for t in stream(x)] == [False] * 3 and lib.is_grad_enabled()

        @lib.inference_mode()
        def stream2(x):
            got = yield x * 2
            yield got * x
        g = stream2(x)
        first = next(g)
        second = g.send(lib.ones(1, requires_grad=True))
        assert not first.requires_grad and not second.requires_grad and lib.is_grad_enabled()

        lib.set_grad_enabled(False)
        try:
            assert not lib.is_grad_enabled() and not (x * 2).requires_grad
        finally:
            lib.set_grad_enabled(True)
        assert lib.is_grad_enabled()

        @lib.set_grad_enabled(False)
        def h():
            return lib.is_grad_enabled()
        assert lib.is_grad_enabled() and h() is False and lib.is_grad_enabled()
        with lib.set_grad_enabled(False):
            with lib.enable_grad():
                assert lib.is_grad_enabled()
            assert not lib.is_grad_enabled()
        assert lib.is_grad_enabled()


@needs_torch
def test_packed_sequence_conversions_as_torch():
    for lib in (torch, tm):
        R = lib.nn.utils.rnn
        ps = R.pack_sequence([lib.ones(3, 2), lib.ones(1, 2)], enforce_sorted=False)
        assert ps.to("cpu") is ps and ps.cpu() is ps and ps.is_cuda is False
        d = ps.double()
        assert type(d) is type(ps) and str(d.data.dtype).endswith("float64") and d.batch_sizes.tolist() == [2, 1, 1]
        assert d.sorted_indices.tolist() == ps.sorted_indices.tolist()
        assert str(ps.to(lib.float64).data.dtype).endswith("float64") and str(d.float().data.dtype).endswith("float32")
