"""Encoders (ResNet, ViT, AudioEncoder, VideoEncoder) and the audio/video task models at tiny
settings: shapes and gradients on every task each supports, overfitting a small batch,
``save_pretrained``/``from_pretrained`` bit-exact round trips, padding, and bad-input errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

import tinymm as tm
from tinymm import models, optim
from tinymm.data import DataLoader, load_task
from tinymm.models import (
    AudioEncoder,
    AVQAModel,
    ResNet,
    VideoEncoder,
    VideoQAModel,
    ViT,
)
from tinymm.train import to_tensors

TASKS = ("image_cls", "audio_cls", "video_cls", "av_qa", "video_qa")
#: size hints small enough for a fast test, applied where a model takes them (as --preset tiny does)
TINY = {"channels": 4, "hidden": 16, "embed_dim": 8, "head_hidden": 16, "audio_channels": 8}
B = 8


@pytest.fixture(scope="module")
def batches():
    """task → (recipe, one batch of B training samples as Tensors)."""
    out = {}
    for task in TASKS:
        rec = models.recipe(task)
        ds = load_task(task, "train", num_samples=B)
        out[task] = rec, to_tensors(next(iter(DataLoader(ds, batch_size=B, collate_fn=rec.collate))), "cpu")
    return out


def tiny_model(task, name, rec, **extra):
    tm.manual_seed(0)
    return models.build(task, name, rec, **{**models.preset_config(task, name, TINY), **extra})


MINE = [(t, m) for (t, m) in models.MODELS if t in TASKS and m != "cnn"]


@pytest.mark.parametrize("task,name", MINE)
def test_every_model_gives_logits_and_gradients(batches, task, name):
    rec, batch = batches[task]
    model = tiny_model(task, name, rec)
    out = model(batch)
    assert out.shape == (B, len(rec.class_names))
    rec.loss(out, batch).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) >= len(list(model.parameters())) - 2  # late fusion's unused side may get none
    assert all(np.isfinite(g.detach().numpy()).all() for g in grads)


def test_every_task_has_a_default_and_its_baselines_build(batches):
    for task in TASKS:
        rec, batch = batches[task]
        for name in (models.DEFAULT_MODEL[task], *models.BASELINES.get(task, ())):
            assert tiny_model(task, name, rec)(batch).shape == (B, len(rec.class_names))
    assert models.BASELINES["av_qa"] == ("image_only", "audio_only")
    assert models.BASELINES["video_qa"] == ("video_only", "text_only")


@pytest.mark.parametrize("encoder,x,dim", [
    (lambda: ResNet(0, channels=4), (B, 3, 32, 32), 16),
    (lambda: ViT(0, embed_dim=8, depth=1, pool="mean"), (B, 3, 32, 32), 8),
    (lambda: VideoEncoder(0, channels=4, embed_dim=8, hidden=12, temporal="lstm"), (B, 5, 3, 32, 32), 12),
])
def test_encoders_without_a_classifier_return_pooled_features(encoder, x, dim):
    tm.manual_seed(0)
    m = encoder()
    out = m(tm.randn(*x))
    assert out.shape == (B, dim) == (B, m.out_dim)
    out.sum().backward()


def test_audio_encoder_gives_pooled_states_and_mask(batches):
    _, batch = batches["audio_cls"]
    for seq in ("gru", "transformer"):
        m = AudioEncoder(0, channels=8, hidden=16, sequence=seq)
        pooled, states, mask = m.encode(batch["audio"], batch["audio_lengths"])
        frames = 1 + batch["audio_lengths"].detach().numpy() // 80  # log-mel frames, then two stride-2 convs
        lens = (((frames - 1) // 2 + 1) - 1) // 2 + 1
        assert pooled.shape == (B, 16) and states.shape == (B, lens.max(), 16)
        np.testing.assert_array_equal(mask.detach().numpy().sum(1), lens)


OVERFIT = [("image_cls", "resnet", 30), ("image_cls", "vit", 60), ("audio_cls", "gru", 40),
           ("audio_cls", "transformer", 40), ("video_cls", "gru", 30), ("video_cls", "lstm", 30),
           ("video_cls", "attention", 30), ("av_qa", "film", 40), ("video_qa", "film", 40)]


@pytest.mark.parametrize("task,name,steps", OVERFIT)
def test_each_model_overfits_a_small_batch(batches, task, name, steps):
    rec, batch = batches[task]
    wider = {"av_qa": {"hidden": 32}, "video_qa": {"hidden": 32}, "image_cls": {"embed_dim": 16, "patch_size": 8}}
    model = tiny_model(task, name, rec, **(wider.get(task, {}) if name != "resnet" else {}))
    opt = optim.Adam(model.parameters(), lr=3e-3 if name == "vit" else 1e-2)
    first = None
    for _ in range(steps):
        loss = rec.loss(model(batch), batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with tm.no_grad():  # training mode: batch norm uses this batch's statistics, as it was trained
        out = model(batch)
    assert rec.loss(out, batch).item() < min(0.2, first / 5)
    assert (out.detach().numpy().argmax(1) == batch[rec.target_key].detach().numpy()).all()


@pytest.mark.parametrize("task,name", [("image_cls", "resnet"), ("image_cls", "vit"), ("audio_cls", "transformer"),
                                       ("video_cls", "attention"), ("av_qa", "relational"), ("av_qa", "audio_only"),
                                       ("video_qa", "cross_attention"), ("video_qa", "video_only")])
def test_save_pretrained_round_trips_bit_exactly(batches, tmp_path, task, name):
    rec, batch = batches[task]
    model = tiny_model(task, name, rec)
    opt = optim.Adam(model.parameters(), lr=1e-2)  # a step, so BN running stats are not the defaults
    rec.loss(model(batch), batch).backward()
    opt.step()
    model.eval()
    model.save_pretrained(tmp_path / "m")
    again = models.from_pretrained(tmp_path / "m")
    assert type(again) is type(model) and again.config == model.config
    again.eval()
    a, b = model.state_dict(), again.state_dict()
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k].detach().numpy(), b[k].detach().numpy())
    np.testing.assert_array_equal(model(batch).detach().numpy(), again(batch).detach().numpy())
    assert json.loads((tmp_path / "m" / "config.json").read_text())["class"] == type(model).__name__


def test_audio_embedding_does_not_depend_on_the_padding(batches):
    _, batch = batches["audio_cls"]
    lens = batch["audio_lengths"].detach().numpy()
    i = int(lens.argmin())
    for seq in ("gru", "transformer"):
        tm.manual_seed(0)
        m = AudioEncoder(0, channels=8, hidden=16, sequence=seq).eval()
        alone = m(batch["audio"][i:i + 1, : int(lens[i])]).detach().numpy()
        padded = m(batch).detach().numpy()[i:i + 1]
        np.testing.assert_allclose(alone, padded, rtol=1e-5, atol=1e-6)


def test_video_embedding_honours_video_lengths():
    tm.manual_seed(0)
    v = tm.randn(2, 6, 3, 16, 16)
    for temporal in ("gru", "attention"):
        m = VideoEncoder(0, image_size=16, channels=4, embed_dim=8, hidden=8, temporal=temporal).eval()
        short = m(v[:1, :4]).detach().numpy()
        padded = m({"video": v, "video_lengths": tm.tensor(np.array([4, 6]))}).detach().numpy()[:1]
        np.testing.assert_allclose(short, padded, rtol=1e-5, atol=1e-6)


def test_bad_inputs_raise_errors_naming_shapes(batches):
    with pytest.raises(RuntimeError, match=r"ResNet: image must have shape \(B, 3, H, W\), got \(2, 1, 32, 32\)"):
        ResNet(3)(tm.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"ViT: image must have shape \(B, 3, 32, 32\), got \(2, 3, 16, 16\)"):
        ViT(3, embed_dim=8)(tm.randn(2, 3, 16, 16))
    audio = AudioEncoder(3, channels=4, hidden=8)
    with pytest.raises(RuntimeError, match=r"audio must have shape \(B, L\), got \(2, 1, 900\)"):
        audio(tm.randn(2, 1, 900))
    with pytest.raises(RuntimeError, match=r"audio_lengths must be in \[1, 900\]"):
        audio.encode(tm.randn(2, 900), tm.tensor(np.array([900, 901])))
    with pytest.raises(ValueError, match=r"built for 8000 Hz audio, the batch has sample_rate \[16000\]"):
        audio({"audio": tm.randn(2, 900), "sample_rate": tm.tensor(np.array([16000, 16000]))})
    with pytest.raises(RuntimeError, match=r"VideoEncoder: video must have shape \(B, T, 3, 32, 32\), got \(2, 3, 32, 32\)"):
        VideoEncoder(3)(tm.randn(2, 3, 32, 32))
    rec, batch = batches["av_qa"]
    with pytest.raises(KeyError, match="AVQAModel: the batch has no 'audio'"):
        tiny_model("av_qa", "film", rec)({k: v for k, v in batch.items() if k != "audio"})
    with pytest.raises(RuntimeError, match=r"AVQAModel: audio must have shape \(8, L\), got \(3, "):
        tiny_model("av_qa", "film", rec)({**batch, "audio": batch["audio"][:3]})
    with pytest.raises(TypeError, match="AVQAModel: expected a task batch"):
        tiny_model("av_qa", "film", rec)(batch["image"])
    rec, batch = batches["video_qa"]
    with pytest.raises(RuntimeError, match=r"VideoQAModel: video must have shape \(B, T, 3, 32, 32\), got \(8, 8, 3, 16, 16\)"):
        tiny_model("video_qa", "film", rec)({**batch, "video": batch["video"][:, :, :, :16, :16]})


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="pool must be one of"):
        ViT(3, pool="max")
    with pytest.raises(ValueError, match="sequence must be one of"):
        AudioEncoder(3, sequence="lstm")
    with pytest.raises(ValueError, match="temporal must be one of"):
        VideoEncoder(3, temporal="conv3d")
    with pytest.raises(ValueError, match="image_size must be a multiple of 8"):
        VideoEncoder(3, image_size=20)
    with pytest.raises(ValueError, match="unknown fusion 'bogus'"):
        AVQAModel(5, fusion="bogus")
    with pytest.raises(ValueError, match="at least one of use_video and use_question"):
        VideoQAModel(10, 5, use_video=False, use_question=False)
    with pytest.raises(models.UnknownModelError, match="unknown model 'bogus' for task 'audio_cls'; known: gru, transformer"):
        models.build("audio_cls", "bogus")


def test_preset_hints_apply_only_where_a_model_takes_them():
    hints = {"channels": 8, "hidden": 32, "embed_dim": 16, "head_hidden": 32}
    assert models.preset_config("image_cls", "cnn", hints) == {}
    assert models.preset_config("image_cls", "resnet", hints) == {"channels": 8}
    assert models.preset_config("image_cls", "vit", hints) == {"embed_dim": 16}
    assert models.preset_config("av_qa", "film", hints) == {"channels": 8, "hidden": 32, "head_hidden": 32}
    assert models.preset_config("vqa", None, hints) == hints


def test_tinymm_train_runs_a_video_task(tmp_path):
    from tinymm.train.runs import RunSettings, train_run

    res = train_run(RunSettings(task="video_qa", preset="tiny", train_samples=32, val_samples=16, test_samples=16),
                    tmp_path / "run", progress=False, log=lambda m: None)
    assert res["model"] == "film" and res["samples"] == 16 and set(res["per_type"]) <= {
        "motion", "exist", "count", "colour", "shape", "size"}
    assert isinstance(models.from_pretrained(tmp_path / "run" / "model"), VideoQAModel)
