"""Gaps the probe9 scripts (tests/pytorch_scripts: vilt, flamingo, blip, av_fusion, coca_caption,
vqa_train, llava, whisper, coop_tip_adapter: multimodal model code) and their idioms found, each compared with
torch: None entries in ModuleList/ModuleDict, deepcopy of a computed tensor (the old weight_norm's
EMA trap) and weight_norm's FutureWarning, clip_grad_norm_ on an inf gradient, sparse buffers,
numbers that do not fit a dtype, torch.tensor of a list of tensors, negative F.pad widths in
every mode, NaN attention weights for a fully masked query, the scheduler-before-optimizer
warning, the mismatched-mask warning, and once_differentiable under create_graph."""
import itertools

import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


# ---------------------------------------------------------------- containers holding None
@needs_torch
def test_module_list_and_dict_hold_none_as_torch():
    # flamingo-pytorch pairs each LM layer with a cross-attention block or None
    for lib in (torch, tm):
        layers = lib.nn.ModuleList([lib.nn.ModuleList([lib.nn.Linear(2, 2), None if i % 2 else lib.nn.Linear(2, 2)])
                                    for i in range(3)])
        assert [type(b).__name__ for _, b in layers] == ["Linear", "NoneType", "Linear"]
        assert sorted(layers.state_dict()) == ["0.0.bias", "0.0.weight", "0.1.bias", "0.1.weight", "1.0.bias",
                                               "1.0.weight", "2.0.bias", "2.0.weight", "2.1.bias", "2.1.weight"]
        assert sum(p.numel() for p in layers.parameters()) == 30
        layers.eval()
        assert "(1): None" in repr(layers)
        inner = lib.nn.ModuleList([lib.nn.Linear(2, 2)])
        inner.insert(0, None)
        assert inner[0] is None and len(inner) == 2
        d = lib.nn.ModuleDict({"a": None, "b": lib.nn.Linear(2, 2)})
        assert d["a"] is None and len(d) == 2 and len(list(d.parameters())) == 2
        with pytest.raises(TypeError, match="int is not a Module subclass"):
            lib.nn.ModuleList([3])


# ---------------------------------------------------------------- deepcopy of a non-leaf
@needs_torch
def test_deepcopy_of_a_computed_tensor_is_refused_as_torch():
    import copy

    def run(lib):
        a = lib.ones(2, requires_grad=True)
        out = []
        for t in (a * 2, a[0]):
            with pytest.raises(RuntimeError, match="graph leaves"):
                copy.deepcopy(t)
        with lib.no_grad():
            c = a * 2
        d = copy.deepcopy(c)
        e = (a * 3).detach()
        e.tag = "kept"
        f = copy.deepcopy(e)
        out += [d.tolist(), d.is_leaf, d.requires_grad, f.tag, f.tolist(), copy.deepcopy(a).requires_grad]
        # the usual way to meet it: a module under the old hook-based weight_norm (an EMA copy)
        with pytest.warns(FutureWarning, match="parametrizations.weight_norm"):
            old = lib.nn.utils.weight_norm(lib.nn.Linear(3, 2), dim=None)
        with pytest.raises(RuntimeError, match="weight_norm"):
            copy.deepcopy(old)
        new = lib.nn.utils.parametrizations.weight_norm(lib.nn.Linear(3, 2), dim=None)
        out.append(sorted(copy.deepcopy(new).state_dict()))
        return out

    assert run(tm) == run(torch)


# ---------------------------------------------------------------- clip_grad_norm_ on an inf gradient
@needs_torch
def test_clip_grad_norm_of_an_inf_gradient_is_silent_and_nan_as_torch():
    import warnings

    def run(lib):
        p = lib.nn.Parameter(lib.ones(3))
        p.grad = lib.tensor([float("inf"), 1.0, 2.0])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            total = lib.nn.utils.clip_grad_norm_([p], 0.25)
        return [total.item(), [str(v) for v in p.grad.tolist()]]

    assert run(tm) == run(torch) == [float("inf"), ["nan", "0.0", "0.0"]]


# ---------------------------------------------------------------- sparse buffers (whisper's alignment heads)
@needs_torch
def test_a_sparse_tensor_is_a_buffer_as_in_torch():
    import copy

    def run(lib):
        class M(lib.nn.Module):
            def __init__(self):
                super().__init__()
                heads = lib.zeros(2, 3, dtype=lib.bool)
                heads[1:] = True
                self.register_buffer("alignment_heads", heads.to_sparse(), persistent=False)
                self.register_buffer("w", (lib.eye(3) * 2).to_sparse())
                self.lin = lib.nn.Linear(2, 2)

        m = M()
        out = [m.alignment_heads.indices().T.tolist(), m.alignment_heads.is_sparse, sorted(m.state_dict()),
               [n for n, _ in m.named_buffers()]]
        m.double()
        out += [str(m.w.dtype).split(".")[-1], str(m.alignment_heads.dtype).split(".")[-1],
                str(m.lin.weight.dtype).split(".")[-1]]
        c = copy.deepcopy(m)
        out.append(c.w.to_dense().tolist())
        result = m.load_state_dict({"w": (lib.eye(3) * 5).to_sparse(), "lin.weight": lib.ones(2, 2),
                                    "lin.bias": lib.zeros(2)})
        out += [list(result.missing_keys), m.w.to_dense().tolist(), str(m.w.dtype).split(".")[-1],
                c.w.to_dense()[0, 0].item()]
        m.w = (lib.eye(3) * 7).to_sparse()  # assigning to a buffer's name keeps it a buffer
        out.append(sorted(m.state_dict()) == ["lin.bias", "lin.weight", "w"] and m.w.to_dense()[1, 1].item() == 7)
        with pytest.raises(RuntimeError, match="size mismatch"):
            m.load_state_dict({"w": lib.eye(2).to_sparse(), "lin.weight": lib.ones(2, 2), "lin.bias": lib.zeros(2)})
        return out

    assert run(tm) == run(torch)


# ---------------------------------------------------------------- a number that does not fit the dtype
_FILL_VALUES = [float("inf"), float("-inf"), float("nan"), 1e30, 300, -1, -1.0, 2.5, 70000.0, 1e300, -3e39, True, -255,
                -256, 65519.0, 65520.0, -65519]
_FILL_OPS = {
    "fill_": lambda L, x, v: x.fill_(v),
    "masked_fill": lambda L, x, v: x.masked_fill(L.arange(len(x)) == 0, v),
    "masked_fill_": lambda L, x, v: x.masked_fill_(L.arange(len(x)) == len(x) - 1, v),
    "full": lambda L, x, v: L.full(x.shape, v, dtype=x.dtype),
    "full_like": lambda L, x, v: L.full_like(x, v),
    "new_full": lambda L, x, v: x.new_full(x.shape, v),
    "setitem": lambda L, x, v: (x.__setitem__(0, v), x)[1],
    "index_fill": lambda L, x, v: x.index_fill(0, L.tensor([len(x) - 1]), v),
    "scatter": lambda L, x, v: x.scatter(0, L.tensor([0]), v),
    "fill_diagonal_": lambda L, x, v: L.zeros(len(x), len(x), dtype=x.dtype).fill_diagonal_(v),
}


@needs_torch
@pytest.mark.parametrize("op", sorted(_FILL_OPS))
def test_a_number_that_does_not_fit_the_dtype_is_refused_as_torch(op):
    # mask_logits.masked_fill(mask, float("-inf")) on a long tensor raises in PyTorch; NumPy's
    # cast gave INT64_MIN (and -1 into uint8 raised OverflowError instead of wrapping to 255)
    import warnings

    def run(lib):
        out = []
        # one element and more: PyTorch's one-element fill path does not check float16
        for n, dt in itertools.product((1, 3), ("uint8", "int8", "int16", "int32", "int64", "float16", "float32",
                                                 "float64", "bool")):
            for v in _FILL_VALUES:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("error")  # silent, as PyTorch
                        got = _FILL_OPS[op](lib, lib.zeros(n, dtype=getattr(lib, dt)), v)
                    out.append(str(got.tolist()))
                except RuntimeError as e:
                    assert "without overflow" in str(e), (dt, v, e)
                    out.append(str(e))
        return out

    ours, theirs = run(tm), run(torch)
    assert ours == theirs
    assert any("int64_t without overflow" in r for r in ours)


# ---------------------------------------------------------------- torch.tensor of a list of tensors
@needs_torch
def test_tensor_of_a_list_of_tensors_reads_one_value_each_as_torch():
    import warnings

    def run(lib):
        out = []
        for make in (lambda: [lib.tensor([True])], lambda: (lib.tensor([[1.0]]),), lambda: [lib.tensor(1.5, dtype=lib.float64), 1],
                     lambda: [[1, 2], [lib.tensor(3), 4]], lambda: [lib.tensor(2, dtype=lib.uint8), lib.tensor(1.5)],
                     lambda: [lib.tensor(1, dtype=lib.int32), lib.tensor(2, dtype=lib.int16)]):
            t = lib.tensor(make())
            out.append((t.tolist(), str(t.dtype).split(".")[-1]))
        for bad in ([lib.tensor([1.0, 2.0])], [lib.tensor([1.0, 2.0]), 3], [[lib.ones(2, 2)]]):
            with pytest.raises(ValueError, match="only one element tensors"):
                lib.tensor(bad)
        if lib is tm:
            with pytest.warns(UserWarning, match="requires_grad=True to a scalar"):
                t = lib.tensor([lib.tensor(2.0, requires_grad=True)])
        else:  # torch warns once per process (TORCH_WARN_ONCE): whether it does here depends on test order
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = lib.tensor([lib.tensor(2.0, requires_grad=True)])
        out.append((t.tolist(), t.requires_grad))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out.append(lib.tensor([lib.tensor(3.0).detach(), 4.0]).tolist())
        return out

    assert run(tm) == run(torch)


# ---------------------------------------------------------------- F.pad with negative widths in every mode
@needs_torch
def test_negative_padding_crops_in_reflect_replicate_and_circular_modes_as_torch():
    def run(lib):
        F = lib.nn.functional
        out = []
        x = lib.arange(5.0).reshape(1, 1, 5)
        for mode in ("reflect", "replicate", "circular"):
            for widths in ((-1, 2), (-3, 2), (2, -1), (-2, -1), (3, -4), (-4, 3), (0, -2)):
                try:
                    out.append(F.pad(x, widths, mode=mode)[0, 0].tolist())
                except RuntimeError:
                    out.append("refused")  # circular (3, -4): more wrap than is left after the crop
            with pytest.raises(RuntimeError):
                F.pad(x, (-3, -3), mode=mode)
        x2 = lib.arange(12.0).reshape(1, 1, 3, 4).requires_grad_()
        for mode in ("reflect", "replicate", "circular"):
            y = F.pad(x2, (-1, 2, 1, -1), mode=mode)
            (y * lib.arange(15.0).reshape(3, 5)).sum().backward()
            out.append((y[0, 0].tolist(), x2.grad.tolist()))
            x2.grad = None
        out.append(F.pad(lib.arange(24.0).reshape(1, 1, 2, 3, 4), (-1, 1, 1, -1, 0, 1), mode="replicate").tolist())
        return out

    assert run(tm) == run(torch)


# ---------------------------------------------------------------- MHA weights of a query with every key masked
@needs_torch
def test_mha_need_weights_gives_nan_for_a_fully_masked_query_as_torch():
    # a batch item that is all padding (ViLT / BLIP with an empty caption): PyTorch's weights
    # path is a plain softmax over -inf, so NaN; its SDPA path (need_weights=False) gives zeros
    def run(lib):
        x = (lib.arange(24.0).reshape(2, 3, 4) / 10).requires_grad_()
        m = lib.nn.MultiheadAttention(4, 2, batch_first=True)
        m.load_state_dict({k: lib.tensor(np.cos(np.arange(v.numel()) * 0.37).reshape(tuple(v.shape)).astype(np.float32))
                           for k, v in m.state_dict().items()})
        kpm = lib.tensor([[True, True, True], [False, True, True]])
        out, w = m(x, x, x, key_padding_mask=kpm, need_weights=True, average_attn_weights=False)
        out.sum().backward()
        rows = lib.tensor([[True, True, True], [False, True, True], [False, False, False]])
        out2, w2 = m(x, x, x, attn_mask=rows, need_weights=True)
        out3, _ = m(x, x, x, key_padding_mask=kpm, need_weights=False)
        def r(t):  # NaN-aware: compared as text after rounding
            return str(np.round(t.detach().numpy().astype(np.float64), 4).tolist())

        return [r(out), r(w), r(x.grad), r(out2), r(w2), r(out3)]

    ours, theirs = run(tm), run(torch)
    assert ours == theirs
    assert "nan" in ours[0] and "nan" in ours[1] and "nan" not in ours[5]


# ---------------------------------------------------------------- scheduler.step() before optimizer.step()
@needs_torch
def test_scheduler_stepped_before_the_optimizer_warns_as_torch():
    import warnings

    def run(lib):
        S = lib.optim.lr_scheduler
        makers = {"step": lambda o: S.StepLR(o, 2), "onecycle": lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=10),
                  "plateau": lambda o: S.ReduceLROnPlateau(o),
                  "seq": lambda o: S.SequentialLR(o, [S.ConstantLR(o), S.ExponentialLR(o, 0.9)], milestones=[2]),
                  "chained": lambda o: S.ChainedScheduler([S.ConstantLR(o), S.ExponentialLR(o, 0.9)]),
                  "swalr": lambda o: lib.optim.swa_utils.SWALR(o, swa_lr=0.05)}
        out = {}
        for name, make in makers.items():
            for opt_first in (False, True):
                p = lib.nn.Parameter(lib.ones(1))
                opt = lib.optim.SGD([p], lr=0.1, momentum=0.9)
                with warnings.catch_warnings(record=True) as w:
                    warnings.simplefilter("always")
                    sched = make(opt)
                    if opt_first:
                        opt.step()
                    sched.step(*((1.0,) if name == "plateau" else ()))
                    sched.step(*((1.0,) if name == "plateau" else ()))
                out[name, opt_first] = sum("before `optimizer.step()`" in str(x.message) for x in w)
        # a GradScaler skipping the first step (an inf gradient): PyTorch warns then too
        p = lib.nn.Parameter(lib.ones(1))
        opt = lib.optim.SGD([p], lr=0.1)
        scaler, sched = lib.amp.GradScaler("cpu"), S.StepLR(opt, 1)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            scaler.scale((p * float("inf")).sum()).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
        out["scaler"] = sum("before `optimizer.step()`" in str(x.message) for x in w)
        return out

    ours = run(tm)
    assert ours == run(torch)
    assert ours["step", False] == 1 and ours["step", True] == 0 and ours["scaler"] == 1


# ---------------------------------------------------------------- a bool padding mask beside a float attn_mask
@needs_torch
def test_mismatched_mask_types_warn_as_torch_and_give_its_numbers():
    import warnings

    def run(lib):
        lib.manual_seed(0)
        x = lib.tensor(np.cos(np.arange(24.0)).reshape(2, 3, 4).astype(np.float32))
        kpm = lib.tensor([[False, False, True], [False, False, False]])
        causal = lib.nn.Transformer.generate_square_subsequent_mask(3)
        mha = lib.nn.MultiheadAttention(4, 2, batch_first=True)
        enc = lib.nn.TransformerEncoder(lib.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True), 2,
                                        enable_nested_tensor=False)
        for m in (mha, enc):
            m.load_state_dict({k: lib.tensor((np.sin(np.arange(v.numel()) * 0.37) * 0.5).reshape(tuple(v.shape))
                                             .astype(np.float32)) for k, v in m.state_dict().items()})
        out = []
        for call in (lambda: mha(x, x, x, key_padding_mask=kpm, attn_mask=causal)[0],
                     lambda: enc(x, mask=causal, src_key_padding_mask=kpm),
                     lambda: enc(x, mask=causal.isinf(), src_key_padding_mask=kpm)):
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                y = call()
            out.append((sorted(str(m.message) for m in w if "mismatched" in str(m.message)),
                        np.round(y.detach().numpy(), 5).tolist()))
        return out

    ours = run(tm)
    assert ours == run(torch)
    assert len(ours[0][0]) == 1 and len(ours[1][0]) == 1 and ours[2][0] == []


# ---------------------------------------------------------------- once_differentiable under create_graph
@needs_torch
def test_once_differentiable_backward_with_constant_incoming_grads_runs_under_create_graph_as_torch():
    import importlib

    def run(lib):
        once_differentiable = importlib.import_module(lib.__name__ + ".autograd.function").once_differentiable

        class Exp(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x.exp()

            @staticmethod
            @once_differentiable
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return g * x.exp()

        x = lib.tensor([0.5, -1.0], requires_grad=True)
        # the incoming gradient (of a sum) carries no graph: PyTorch returns a plain tensor
        g, = lib.autograd.grad(Exp.apply(x).sum(), x, create_graph=True)
        out = [np.round(g.detach().numpy(), 6).tolist(), g.requires_grad]
        # a squared output makes the incoming gradient depend on x: differentiating again is refused
        with pytest.raises(RuntimeError, match="once_differentiable"):
            g2, = lib.autograd.grad((Exp.apply(x) ** 2).sum(), x, create_graph=True)
            g2.sum().backward()
        return out

    assert run(tm) == run(torch)


@needs_torch
def test_a_sparse_buffer_goes_through_checkpoints_both_ways(tmp_path):
    def module(lib, scale):
        class M(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("w", (lib.eye(3) * scale).to_sparse())
                self.lin = lib.nn.Linear(3, 2)

        return M()

    ours, theirs = module(tm, 2.0), module(torch, 3.0)
    tm.save(ours.state_dict(), tmp_path / "ours.pt")
    torch.save(theirs.state_dict(), tmp_path / "theirs.pt")
    into_torch, into_ours = module(torch, 0.0), module(tm, 0.0)
    into_torch.load_state_dict(torch.load(tmp_path / "ours.pt", weights_only=True))
    into_ours.load_state_dict(tm.load(tmp_path / "theirs.pt"))
    assert into_torch.w.is_sparse and into_torch.w.to_dense().tolist() == ours.w.to_dense().tolist()
    assert into_ours.w.is_sparse and into_ours.w.to_dense().tolist() == theirs.w.to_dense().tolist()
    assert into_ours.w.is_coalesced() == theirs.w.is_coalesced()
    np.testing.assert_allclose(into_ours.lin.weight.detach().numpy(), theirs.lin.weight.detach().numpy())
    loaded = tm.load(tmp_path / "ours.pt")  # tinymm's own round trip
    assert loaded["w"].to_dense().tolist() == ours.w.to_dense().tolist()
