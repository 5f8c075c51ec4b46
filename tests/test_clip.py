"""The CLIP dual encoder: the symmetric InfoNCE loss against its formula and PyTorch, the model
at tiny settings (shapes, unit embeddings, overfitting, save/load), and moving its towers into
a VQAModel."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import models, optim
from tinymm.autograd import gradcheck
from tinymm.data import DataLoader, load_task
from tinymm.models.clip import MAX_LOGIT_SCALE, CLIPModel, clip_logits, clip_loss, load_towers
from tinymm.models.vqa import VQAModel
from tinymm.train import to_tensors

from helpers import TORCH_REASON, torch

TINY = dict(channels=8, embed_dim=16, hidden=32, proj_dim=16, proj_hidden=32)


def numpy_clip_loss(img, txt, log_scale):
    """The formula, written out: unit rows, logits s·I·Tᵀ, mean of the two cross-entropies."""
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    txt = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    logits = math.exp(min(log_scale, math.log(100.0))) * img @ txt.T
    n = len(img)

    def ce(z):  # rows are the queries, the diagonal the true class
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(n), np.arange(n)].mean()

    return 0.5 * (ce(logits) + ce(logits.T))


def tm_loss(img, txt, scale):
    return clip_loss(clip_logits(F.normalize(img, dim=1), F.normalize(txt, dim=1), scale))


@pytest.mark.parametrize("log_scale", [math.log(1 / 0.07), 5.0])  # 5.0 > log(100): clamped
def test_clip_loss_equals_its_formula_and_torch_forward_and_backward(log_scale):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 5)), rng.normal(size=(7, 5))
    img = tm.tensor(a, requires_grad=True)
    txt = tm.tensor(b, requires_grad=True)
    scale = tm.tensor(np.float64(log_scale), requires_grad=True)
    loss = tm_loss(img, txt, scale)
    assert loss.dtype == np.float64
    np.testing.assert_allclose(loss.item(), numpy_clip_loss(a, b, log_scale), rtol=1e-12)
    loss.backward()
    if log_scale > MAX_LOGIT_SCALE:
        assert scale.grad.item() == 0.0  # clamped: no gradient, as torch.clamp gives
    if torch is None:
        pytest.skip(TORCH_REASON)
    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    ts = torch.tensor(log_scale, dtype=torch.float64, requires_grad=True)
    logits = ts.clamp(max=math.log(100.0)).exp() * torch.nn.functional.normalize(ta, dim=1) @ \
        torch.nn.functional.normalize(tb, dim=1).T
    labels = torch.arange(7)
    ref = (torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
    ref.backward()
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-12)
    np.testing.assert_allclose(img.grad.numpy(), ta.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(txt.grad.numpy(), tb.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(scale.grad.item(), ts.grad.item(), rtol=1e-10, atol=1e-12)


def test_clip_loss_passes_gradcheck_in_float64():
    rng = np.random.default_rng(1)
    img = tm.tensor(rng.normal(size=(5, 4)), requires_grad=True)
    txt = tm.tensor(rng.normal(size=(5, 4)), requires_grad=True)
    scale = tm.tensor(np.float64(1.3), requires_grad=True)
    assert gradcheck(tm_loss, (img, txt, scale))


def test_clip_loss_of_perfect_and_flat_logits():
    # confident, correct: loss near 0; all logits equal: log B both ways
    assert clip_loss(tm.tensor(np.eye(4) * 50.0)).item() < 1e-12
    np.testing.assert_allclose(clip_loss(tm.tensor(np.zeros((4, 4)))).item(), math.log(4), rtol=1e-12)
    with pytest.raises(ValueError, match="square"):
        clip_loss(tm.zeros(3, 4))
    with pytest.raises(ValueError, match="embeddings"):
        clip_logits(tm.zeros(3, 4), tm.zeros(3, 5), tm.tensor(0.0))


@pytest.fixture(scope="module")
def pairs():
    rec = models.recipe("retrieval")
    ds = load_task("retrieval", "train", num_samples=16)
    raw = next(iter(DataLoader(ds, batch_size=16, collate_fn=rec.collate)))
    return rec, raw, to_tensors(raw, "cpu")


def test_retrieval_recipe_builds_clip_and_collates_pairs(pairs):
    rec, raw, batch = pairs
    assert models.DEFAULT_MODEL["retrieval"] == "clip"
    assert set(raw) >= {"image", "caption", "caption_ids", "caption_mask", "target"}
    assert raw["caption_ids"].shape == raw["caption_mask"].shape and raw["caption_ids"].shape[0] == 16
    np.testing.assert_array_equal(raw["target"], np.arange(16))
    # the retrieval vocabulary also covers vqa questions, so a text tower can move to vqa
    vqa = load_task("vqa", "train", num_samples=50)
    assert all(rec.tokenizer.unk_id not in rec.tokenizer.encode(vqa[i]["question"]) for i in range(50))
    model = models.build("retrieval", None, rec, **TINY)
    assert isinstance(model, CLIPModel) and model.config.vocab_size == len(rec.tokenizer)


def test_clip_model_shapes_unit_embeddings_and_gradients(pairs):
    rec, _, batch = pairs
    tm.manual_seed(0)
    model = models.build("retrieval", "clip", rec, **TINY)
    img = model.encode_image(batch["image"])
    txt = model.encode_text(batch["caption_ids"], batch["caption_mask"])
    assert img.shape == txt.shape == (16, 16)
    np.testing.assert_allclose(np.linalg.norm(img.detach().numpy(), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(txt.detach().numpy(), axis=1), 1.0, rtol=1e-5)
    logits = model(batch)
    assert logits.shape == (16, 16)
    np.testing.assert_allclose(logits.detach().numpy(), (img.detach().numpy() @ txt.detach().numpy().T) / 0.07, rtol=1e-4, atol=1e-4)
    rec.loss(logits, batch).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name
    assert model.logit_scale.grad.item() != 0.0


def test_clip_model_overfits_a_small_batch(pairs):
    rec, _, batch = pairs
    tm.manual_seed(0)
    model = models.build("retrieval", "clip", rec, **TINY)
    opt = optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(120):
        loss = rec.loss(model(batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    logits = model(batch).detach().numpy()
    # captions of the batch are all different strings: each image must pick its own, and back
    assert len(set(batch["caption"])) == 16
    np.testing.assert_array_equal(logits.argmax(1), np.arange(16))
    np.testing.assert_array_equal(logits.argmax(0), np.arange(16))


def test_clip_save_pretrained_round_trips_bit_exactly(pairs, tmp_path):
    rec, _, batch = pairs
    model = models.build("retrieval", "clip", rec, **TINY)
    model.logit_scale._data[...] = 3.25
    model.eval()
    model.save_pretrained(tmp_path / "m")
    again = CLIPModel.from_pretrained(tmp_path / "m")
    again.eval()
    assert json.loads((tmp_path / "m" / "config.json").read_text())["class"] == "CLIPModel"
    assert again.config == model.config
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    np.testing.assert_array_equal(model(batch).detach().numpy(), again(batch).detach().numpy())


def test_clip_temperature_is_clamped_at_100():
    model = CLIPModel(10, **TINY)
    model.logit_scale._data[...] = 9.0
    logits = clip_logits(tm.tensor([[1.0, 0.0]]), tm.tensor([[1.0, 0.0]]), model.logit_scale)
    np.testing.assert_allclose(logits.detach().numpy(), [[100.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="multiple of 4"):
        CLIPModel(10, image_size=30)


def test_towers_load_into_a_vqa_model(pairs):
    rec, _, batch = pairs
    tm.manual_seed(0)
    clip = CLIPModel(len(rec.tokenizer), channels=8, embed_dim=16, hidden=32)
    vqa = VQAModel(len(rec.tokenizer), 5, channels=8, embed_dim=16, hidden=32)
    load_towers(clip, vqa)
    clip.eval()
    vqa.eval()
    np.testing.assert_array_equal(vqa.image(batch["image"]).detach().numpy(), clip.image(batch["image"]).detach().numpy())
    got, _ = vqa.question(batch["caption_ids"], batch["caption_mask"])
    want, _ = clip.text(batch["caption_ids"], batch["caption_mask"])
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    with pytest.raises(ValueError, match="question.embed.weight"):
        load_towers(clip, VQAModel(len(rec.tokenizer) + 1, 5, channels=8, embed_dim=16, hidden=32))
    with pytest.raises(ValueError, match="image.conv1.weight"):
        load_towers(clip, VQAModel(len(rec.tokenizer), 5, channels=4, embed_dim=16, hidden=32))


def test_towers_reach_the_default_vqa_models_answers(pairs):
    """load_towers into the registry's default vqa model (the find head): every weight and
    batch-norm statistic of both towers arrives, and the answers flow back into both towers."""
    rec, _, _ = pairs
    tm.manual_seed(0)
    clip = CLIPModel(len(rec.tokenizer), channels=8, embed_dim=16, hidden=32)
    for name, buf in clip.image.named_buffers():  # statistics a scratch model would not have
        if name.endswith("running_mean"):
            buf._data[...] = 0.25
    vqa_rec = models.recipe("vqa", tokenizer=rec.tokenizer)
    vqa = models.build("vqa", None, vqa_rec, channels=8, embed_dim=16, hidden=32)
    load_towers(clip, vqa)
    ours = vqa.state_dict()
    for prefix, tower in (("image.", clip.image), ("question.", clip.text)):
        theirs = tower.state_dict()
        assert theirs and all(np.array_equal(ours[prefix + k].detach().numpy(), v.detach().numpy()) for k, v in theirs.items())
    ds = load_task("vqa", "train", num_samples=8)
    batch = to_tensors(vqa_rec.collate([ds[i] for i in range(8)]), "cpu")
    vqa_rec.loss(vqa(batch), batch).backward()
    for p in (vqa.image.conv2.weight, vqa.question.embed.weight, vqa.question.gru.weight_hh_l0):
        assert p.grad is not None and np.abs(p.grad.numpy()).max() > 0
