"""The Trainer at tiny settings: learning, resume bit-exactness, NaN stop, files, callbacks, errors."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import nn, optim
from tinymm.data import ArrayDataset, DataLoader
from tinymm.serialization import CheckpointError
from tinymm.train import Callback, EarlyStopping, Trainer, TrainingDiverged, read_checkpoint


class MLP(nn.Module):
    """A task model under the Trainer's contract: forward(batch) -> logits."""

    def __init__(self, d=4, k=3, p=0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 32), nn.Tanh(), nn.Dropout(p), nn.Linear(32, k))

    def forward(self, batch):
        return self.net(batch["x"])


def ce(output, batch):
    return F.cross_entropy(output, batch["label"])


def blobs(n=96, d=4, k=3, seed=0):
    centres = np.random.default_rng(99).normal(0, 3, size=(k, d))  # one world for every split
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    x = (centres[y] + rng.normal(0, 0.5, size=(n, d))).astype(np.float32)
    return ArrayDataset(x=x, label=y.astype(np.int64), index=np.arange(n))


def make(tmp_path, epochs=4, seed=0, **kw):
    tm.manual_seed(seed)
    model = MLP()
    opt = optim.AdamW(model.parameters(), lr=0.02)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    train = DataLoader(blobs(), batch_size=16, shuffle=True, seed=3)
    val = DataLoader(blobs(48, seed=1), batch_size=16)
    return Trainer(model, opt, ce, train, val, scheduler=sched, epochs=epochs, out_dir=tmp_path,
                   progress=False, log=lambda m: None, **kw)


def test_trainer_learns_and_overfits_a_tiny_set(tmp_path):
    t = make(tmp_path, epochs=15)
    hist = t.fit()
    assert hist[-1]["train_accuracy"] == 1.0
    assert hist[-1]["val_accuracy"] >= 0.9
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]


def test_resume_after_a_kill_is_bit_identical(tmp_path):
    full = make(tmp_path / "full", epochs=4)
    full.fit()

    class Kill(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 1:  # after epoch 2's checkpoint, as if the process died here
                raise KeyboardInterrupt

    part = make(tmp_path / "part", epochs=4, callbacks=[])
    part.callbacks.append(Kill())
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    # a new process: fresh model, optimizer, scheduler, a different global seed
    resumed = make(tmp_path / "part", epochs=4, seed=123)
    resumed.fit(resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k].detach().numpy(), b[k].detach().numpy(), err_msg=k)
    assert [r["train_loss"] for r in full.history] == [r["train_loss"] for r in resumed.history]
    assert resumed.optimizer.param_groups[0]["lr"] == full.optimizer.param_groups[0]["lr"]


def test_nan_loss_stops_with_step_and_batch_and_keeps_last_good_checkpoint(tmp_path):
    def bad_after_8(output, batch):
        loss = ce(output, batch)
        return loss * math.nan if t.step >= 8 else loss

    tm.manual_seed(0)
    model = MLP()
    t = Trainer(model, optim.SGD(model.parameters(), lr=0.1), bad_after_8,
                DataLoader(blobs(), batch_size=16, shuffle=True, seed=0), epochs=5,
                out_dir=tmp_path, progress=False, log=lambda m: None)
    with pytest.raises(TrainingDiverged) as e:
        t.fit()
    msg = str(e.value)
    assert "step 8" in msg and "batch indices [" in msg and "last.safetensors" in msg
    idx = json.loads(msg.split("batch indices ")[1].split("]")[0] + "]")
    assert len(idx) == 16 and all(0 <= i < 96 for i in idx)
    tensors, doc = read_checkpoint(tmp_path / "checkpoints" / "last.safetensors")
    assert doc["epoch"] == 0 and doc["step"] == 6  # epoch 1 ended after 6 good steps
    fresh = MLP()
    fresh.load_state_dict({k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
    assert all(np.isfinite(p.detach().numpy()).all() for p in fresh.parameters())


def test_files_exist_and_parse(tmp_path):
    t = make(tmp_path, epochs=2)
    t.fit()
    rows = json.loads((tmp_path / "history.json").read_text())
    assert [r["epoch"] for r in rows] == [0, 1]
    with open(tmp_path / "history.csv") as f:
        table = list(csv.DictReader(f))
    assert float(table[1]["val_loss"]) == pytest.approx(rows[1]["val_loss"])
    for png in ("loss.png", "metrics.png", "confusion_matrix.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    for name in ("last", "best"):
        _, doc = read_checkpoint(tmp_path / "checkpoints" / f"{name}.safetensors")
        assert doc["model_class"] == "MLP"
        json.loads((tmp_path / "checkpoints" / f"{name}.json").read_text())


def test_evaluate_and_predict(tmp_path):
    t = make(tmp_path, epochs=3)
    t.fit()
    res = t.evaluate(t.val_loader)
    assert set(res) == {"loss", "accuracy"} and res["accuracy"] == pytest.approx(t.history[-1]["val_accuracy"])
    logits = t.predict(t.val_loader)
    assert logits.shape == (48, 3)
    assert t.model.training  # evaluate/predict restore the mode


def test_early_stopping_stops(tmp_path):
    stopper = EarlyStopping(monitor="val_loss", patience=0, min_delta=1e9)
    t = make(tmp_path, epochs=10, callbacks=[stopper])
    t.fit()
    assert len(t.history) == 2 and stopper.stopped_epoch == 1


def test_max_steps_and_callback_hooks(tmp_path):
    seen = []

    class Spy(Callback):
        def on_batch_end(self, trainer, step, loss):
            seen.append(step)

    t = make(tmp_path, epochs=10, callbacks=[Spy()], max_steps=9)
    t.fit()
    assert seen == list(range(1, 10)) and t.stop_reason.startswith("max_steps")


def test_resume_refuses_a_missing_or_foreign_checkpoint(tmp_path):
    t = make(tmp_path, epochs=1)
    with pytest.raises(FileNotFoundError, match="last.safetensors"):
        t.fit(resume=True)
    (tmp_path / "checkpoints").mkdir()
    tm.save({"w": tm.zeros(2)}, tmp_path / "checkpoints" / "last.safetensors")
    with pytest.raises(CheckpointError, match="not a tinymm training checkpoint"):
        t.fit(resume=True)


def test_resume_refuses_another_model_class(tmp_path):
    make(tmp_path, epochs=1).fit()

    class Other(MLP):
        pass

    t = make(tmp_path, epochs=2)
    t.model = Other()
    with pytest.raises(CheckpointError, match="holds a MLP"):
        t.fit(resume=True)


@pytest.mark.parametrize("kw, match", [
    (dict(epochs=0), "epochs must be a positive int"),
    (dict(grad_clip=-1.0), "grad_clip"),
    (dict(metrics=["nope"]), "unknown metric 'nope'"),
    (dict(scheduler_interval="batch"), "scheduler_interval"),
])
def test_bad_arguments_are_named(tmp_path, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make(tmp_path, **kw)


def test_grad_clip_and_step_scheduler_run(tmp_path):
    t = make(tmp_path, epochs=1, grad_clip=0.5, scheduler_interval="step")
    t.fit()
    assert t.scheduler.last_epoch == 6
