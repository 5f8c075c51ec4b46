"""Task models at tiny settings: shapes, backward, overfitting a batch, save/from_pretrained."""
from __future__ import annotations

import json

import numpy as np
import pytest

import tinymm as tm
from tinymm import models, optim
from tinymm.data import DataLoader, load_task
from tinymm.models import ImageClassifier, VQAModel
from tinymm.serialization import CheckpointError
from tinymm.train import to_tensors


@pytest.fixture(scope="module")
def vqa():
    rec = models.recipe("vqa")
    ds = load_task("vqa", "train", num_samples=16)
    batch = to_tensors(next(iter(DataLoader(ds, batch_size=16, collate_fn=rec.collate))), "cpu")
    return rec, batch


@pytest.mark.parametrize("name", [m for (t, m) in models.MODELS if t == "vqa"])
def test_every_vqa_model_gives_logits_and_gradients(vqa, name):
    rec, batch = vqa
    tm.manual_seed(0)
    model = models.build("vqa", name, rec, channels=8, hidden=16, embed_dim=8, head_hidden=16)
    out = model(batch)
    assert out.shape == (16, len(rec.class_names))
    rec.loss(out, batch).backward()
    used = [p for p in model.parameters() if p.grad is not None]
    assert used and all(np.isfinite(p.grad.numpy()).all() for p in used)


@pytest.mark.parametrize("name", ["relational", "early", "cross_attention", "find"])
def test_vqa_model_overfits_a_small_batch(vqa, name):
    rec, batch = vqa
    tm.manual_seed(0)
    model = models.build("vqa", name, rec, channels=8, hidden=32, embed_dim=16, head_hidden=64)
    opt = optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = rec.loss(model(batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    pred = model(batch).detach().numpy().argmax(1)
    assert (pred == batch["answer"].detach().numpy()).mean() == 1.0


def test_save_pretrained_round_trips_bit_exactly(vqa, tmp_path):
    rec, batch = vqa
    model = models.build("vqa", "relational", rec, channels=8, hidden=16, embed_dim=8, head_hidden=16)
    model.eval()
    model.save_pretrained(tmp_path / "m")
    again = VQAModel.from_pretrained(tmp_path / "m")
    again.eval()
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    np.testing.assert_array_equal(model(batch).detach().numpy(), again(batch).detach().numpy())
    assert json.loads((tmp_path / "m" / "config.json").read_text())["class"] == "VQAModel"


def test_from_pretrained_refuses_unknown_class_and_misfit_weights(tmp_path):
    m = ImageClassifier(3, image_size=16)
    m.save_pretrained(tmp_path / "a")
    doc = json.loads((tmp_path / "a" / "config.json").read_text())
    doc["class"] = "Nope"
    (tmp_path / "a" / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="unknown model class 'Nope'"):
        models.from_pretrained(tmp_path / "a")
    ImageClassifier(3, image_size=16).save_pretrained(tmp_path / "b")
    doc = json.loads((tmp_path / "b" / "config.json").read_text())
    doc["config"]["num_classes"] = 5
    (tmp_path / "b" / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=str(tmp_path / "b")):
        ImageClassifier.from_pretrained(tmp_path / "b")
    with pytest.raises(CheckpointError, match="holds a ImageClassifier, not a VQAModel"):
        VQAModel.from_pretrained(tmp_path / "b")


@pytest.mark.parametrize("size", [16, 32, 112, 36])
def test_image_classifier_fits_any_image_size(size):
    m = ImageClassifier(num_classes=4, image_size=size)
    out = m(tm.randn(2, 3, size, size))
    assert out.shape == (2, 4)


def test_image_classifier_overfits_a_small_batch():
    tm.manual_seed(0)
    ds = load_task("image_cls", "train", num_samples=32, image_size=16)
    batch = to_tensors(next(iter(DataLoader(ds, batch_size=32))), "cpu")
    m = ImageClassifier(num_classes=len(ds.class_names), image_size=16)
    opt = optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(120):
        loss = tm.nn.functional.cross_entropy(m(batch), batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (m(batch).detach().numpy().argmax(1) == batch["label"].detach().numpy()).all()


def test_build_names_unknown_models():
    with pytest.raises(models.UnknownModelError, match="known: relational"):
        models.build("vqa", "bogus")
    with pytest.raises(models.UnknownModelError, match="no models for task 'nope'"):
        models.recipe("nope")


def test_find_fusion_shapes_gradients_and_padding():
    from tinymm.models.fusion import FindFusion

    tm.manual_seed(0)
    B, C, side, T, H, K = 3, 6, 4, 5, 8, 7
    head = FindFusion(C + 2, H, K, hidden=16, d=8)
    img = tm.tensor(np.random.default_rng(0).normal(size=(B, C + 2, side, side)).astype(np.float32))
    tokens = tm.tensor(np.random.default_rng(1).normal(size=(B, T, H)).astype(np.float32))
    mask = tm.tensor(np.arange(T)[None] < np.array([[5], [3], [1]]))
    q = tokens[:, 0]
    out = head(img, q, tokens, mask)  # (B, K)
    assert out.shape == (B, K)
    out.sum().backward()
    assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all() for p in head.parameters())
    # padding tokens never reach the answer
    tokens2 = tokens.detach().numpy().copy()
    tokens2[2, 1:] += 100.0
    out2 = head(img, q, tm.tensor(tokens2), mask)
    np.testing.assert_allclose(out2.detach().numpy()[2], out.detach().numpy()[2], rtol=1e-5, atol=1e-5)
