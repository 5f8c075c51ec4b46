"""benchmarks/train_step.py's PyTorch twin is the same architecture as the tinymm model.

The twin is built from the tinymm model (sizes read, never written down) and loaded with its
state dict strictly; here both get the same small batch from the vqa task's loader and must
agree on the logits, the loss, every parameter's gradient and the batch-norm running
statistics: in float64 to 1e-9 (the same computation), in float32 to its rounding (the
gradients of the first convolution pass three batch norms, so they carry the most). This is
what makes the benchmark's ratio a like-for-like one.
"""
from __future__ import annotations

import numpy as np
import pytest

from helpers import TORCH_REASON, torch

import tinymm as tm
from tinymm import models
from tinymm.data import DataLoader, load_task

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)

SMALL = {"channels": 8, "embed_dim": 16, "hidden": 24, "head_hidden": 32}


@pytest.fixture(scope="module")
def rec():
    return models.recipe("vqa")


@pytest.fixture(scope="module")
def raw(rec):
    ds = load_task("vqa", "train", num_samples=16, image_size=rec.image_size)
    batch = next(iter(DataLoader(ds, batch_size=6, shuffle=True, seed=3, collate_fn=rec.collate)))
    lengths = batch["question_mask"].sum(axis=1)
    assert lengths.min() < batch["question_mask"].shape[1], "want padded questions in the batch"
    return batch


def _pair(rec, name, seed=0):
    from benchmarks.train_step import load_twin

    tm.manual_seed(seed)
    model = models.build("vqa", name, rec, **SMALL)
    return model, load_twin(model)


TOL = {"float32": (1e-3, 1e-4), "float64": (1e-9, 1e-10)}  # rtol, atol relative to the largest value


def _close(what, got, want, dtype="float32"):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    rtol, atol = TOL[dtype]
    scale = max(float(np.abs(want).max(initial=0.0)), 1e-3)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=what)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", [None, "relational", "film", "image_only", "text_only"])
def test_twin_matches_logits_gradients_and_running_stats(rec, raw, name, dtype):
    import torch.nn.functional as F

    from benchmarks.train_step import torch_batch
    from tinymm.train.trainer import to_tensors

    model, twin = _pair(rec, name)
    raw = {**raw, "image": raw["image"].astype(dtype)}
    if dtype == "float64":
        model.double()
        twin.double()
    tb, xb = to_tensors(raw, "cpu"), torch_batch(raw)
    logits = model(tb)
    loss = rec.loss(logits, tb)
    loss.backward()
    t_logits = twin(xb)
    t_loss = F.cross_entropy(t_logits, xb[rec.target_key])
    t_loss.backward()

    assert logits.dtype == np.dtype(dtype) and t_logits.dtype == getattr(torch, dtype)
    _close("logits", logits.detach().numpy(), t_logits.detach().numpy(), dtype)
    _close("loss", loss.item(), t_loss.item(), dtype)
    t_params = dict(twin.named_parameters())
    names = [n for n, _ in model.named_parameters()]
    assert sorted(names) == sorted(t_params), "the twin has other parameters than the model"
    for n, p in model.named_parameters():
        tg = t_params[n].grad
        if p.grad is None:
            assert tg is None or not tg.abs().any(), f"{n}: tinymm has no gradient, torch has one"
            continue
        _close(f"grad {n}", p.grad.numpy(), tg.detach().numpy(), dtype)
    t_buffers = dict(twin.named_buffers())
    for n, b in model.named_buffers():
        _close(f"buffer {n}", b.detach().numpy(), t_buffers[n].detach().numpy(), dtype)


def test_twin_matches_in_eval_mode(rec, raw):
    from benchmarks.train_step import torch_batch
    from tinymm.train.trainer import to_tensors

    model, twin = _pair(rec, None, seed=1)
    model.eval()
    twin.eval()
    with tm.no_grad():
        logits = model(to_tensors(raw, "cpu")).detach().numpy()
    with torch.no_grad():
        _close("eval logits", logits, twin(torch_batch(raw)).detach().numpy())


def test_a_module_without_a_twin_is_refused():
    from benchmarks.train_step import torch_twin

    class Unknown(tm.nn.Module):
        pass

    with pytest.raises(TypeError, match="no torch twin for tinymm module Unknown"):
        torch_twin(Unknown())


def test_bench_train_is_the_train_step_benchmark(capsys):
    from tinymm.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "train", "--help"])
    assert exc.value.code == 0
    assert "training step" in capsys.readouterr().out


def test_time_fn_reads_the_clock_it_is_given():
    from benchmarks.harness import time_fn

    ticks = iter(range(0, 1000, 2))  # each reading 2 s after the last: every call "takes" 2 s
    t = time_fn(lambda: None, warmup=1, repeat=3, clock=lambda: next(ticks))
    assert (t.median, t.runs) == (2, 3)


def test_interleaved_timing_alternates_the_implementations():
    """Samples go A B, B A, A B, ...: a slow stretch of the machine lands on both alike."""
    from benchmarks.harness import time_interleaved

    calls = []
    now = [0.0]
    cost = {"a": 1.0, "b": 3.0}

    def make(name):
        def fn():
            calls.append(name)
            now[0] += cost[name]
        return fn

    t = time_interleaved({"a": make("a"), "b": make("b")}, warmup=1, repeat=4, clock=lambda: now[0])
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]
    assert (t["a"].median, t["b"].median, t["a"].runs) == (1.0, 3.0, 4)
