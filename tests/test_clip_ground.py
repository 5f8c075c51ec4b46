"""The grounded CLIP model (models/clip_ground.py): the grounding score against its formula, shapes
and gradients, overfitting a small batch, save/load, moving the find layers into the default vqa
model, and the unlabelled question pairs (no answer in them)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import tinymm as tm
from tinymm import models, optim
from tinymm.data import load_task
from tinymm.models.clip import CLIPModel, clip_loss
from tinymm.models.clip_ground import FindGrounding, GroundedCLIPModel, grounded_clip_loss, load_grounding
from tinymm.models.vqa import VQAModel
from tinymm.train.pretrain_ground import ConcatPairs, QuestionPairs, pretrain_grounded

from test_clip import pairs  # noqa: F401  (the fixture: 16 retrieval pairs, collated)

TINY = dict(channels=8, embed_dim=16, hidden=32, proj_dim=16, proj_hidden=32, find_dim=8)




@pytest.mark.parametrize("score", ["max", "mass"])
def test_grounding_scores_equal_their_formula(score):
    rng = np.random.default_rng(0)
    keys, queries = rng.standard_normal((3, 5, 4)), rng.standard_normal((2, 2, 4))
    got = FindGrounding(6, 7, d=4, score=score).scores(tm.tensor(keys), tm.tensor(queries)).detach().numpy()
    want = np.zeros((3, 2))
    for i in range(3):
        for j in range(2):
            for s in range(2):
                g = keys[i] @ queries[j, s] / math.sqrt(4)  # (n,) the slot's logits over cells
                if score == "max":  # soft maximum over cells
                    want[i, j] += math.log(np.exp(g).mean())
                else:  # log of the mean match probability (FindFusion's mass)
                    want[i, j] += math.log((1 / (1 + np.exp(-g))).mean())
    np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError, match="unknown score"):
        FindGrounding(6, 7, score="mean")


def test_grounded_clip_shapes_loss_and_gradients(pairs):
    rec, _, batch = pairs
    tm.manual_seed(0)
    model = GroundedCLIPModel(len(rec.tokenizer), **TINY)
    out = model(batch)
    assert out.shape == (2, 16, 16)
    # [0] is CLIP's logits, computed as CLIPModel does
    img = model.encode_image(batch["image"]).detach().numpy()
    txt = model.encode_text(batch["caption_ids"], batch["caption_mask"]).detach().numpy()
    np.testing.assert_allclose(out.detach().numpy()[0], img @ txt.T / 0.07, rtol=1e-4, atol=1e-4)
    loss = grounded_clip_loss(out)
    np.testing.assert_allclose(loss.item(), clip_loss(out[0]).item() + clip_loss(out[1]).item(), rtol=1e-6)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name
    assert np.abs(model.find.slot.weight.grad.numpy()).max() > 0
    with pytest.raises(ValueError, match=r"\(2, B, B\)"):
        grounded_clip_loss(out[0])


def test_grounded_clip_overfits_a_small_batch(pairs):
    rec, _, batch = pairs
    tm.manual_seed(0)
    model = GroundedCLIPModel(len(rec.tokenizer), **TINY)
    opt = optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(150):
        loss = grounded_clip_loss(model(batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    out = model(batch).detach().numpy()
    assert len(set(batch["caption"])) == 16
    np.testing.assert_array_equal(out[0].argmax(1), np.arange(16))
    # the grounding score alone (two slots, a soft max over cells each) picks most images' captions
    # (chance: 1/16; a one-object caption can also fit another image holding that object)
    assert (out[1].argmax(1) == np.arange(16)).mean() >= 0.75


def test_grounded_clip_round_trips_and_starts_from_a_clip_model(pairs, tmp_path):
    rec, _, batch = pairs
    tm.manual_seed(0)
    clip = CLIPModel(len(rec.tokenizer), **{k: v for k, v in TINY.items() if k != "find_dim"})
    model = GroundedCLIPModel.from_clip(clip, find_dim=8, grounding="mass")
    assert model.config.grounding == "mass" and model.find.score == "mass"
    for k, v in clip.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k].detach().numpy(), v.detach().numpy())
    model.eval()
    model.save_pretrained(tmp_path / "g")
    assert json.loads((tmp_path / "g" / "config.json").read_text())["class"] == "GroundedCLIPModel"
    again = GroundedCLIPModel.from_pretrained(tmp_path / "g")
    again.eval()
    assert again.config == model.config
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    np.testing.assert_array_equal(model(batch).detach().numpy(), again(batch).detach().numpy())


def test_load_grounding_moves_towers_and_find_layers_into_the_default_vqa_model(pairs):
    rec, _, _ = pairs
    tm.manual_seed(0)
    src = GroundedCLIPModel(len(rec.tokenizer), **TINY)
    vqa_rec = models.recipe("vqa", tokenizer=rec.tokenizer)
    vqa = models.build("vqa", None, vqa_rec, channels=8, embed_dim=16, hidden=32)
    with pytest.raises(ValueError, match="head.cell.weight"):  # the find head's d is 64 by default
        load_grounding(src, vqa)
    src = GroundedCLIPModel(len(rec.tokenizer), **{**TINY, "find_dim": 64})
    load_grounding(src, vqa)
    ours = vqa.state_dict()
    for prefix, mod in (("image.", src.image), ("question.", src.text), ("head.cell.", src.find.cell),
                        ("head.key.", src.find.key), ("head.slot.", src.find.slot), ("head.value.", src.find.value)):
        for k, v in mod.state_dict().items():
            np.testing.assert_array_equal(ours[prefix + k].detach().numpy(), v.detach().numpy())
    with pytest.raises(ValueError, match="find"):
        load_grounding(src, VQAModel(len(rec.tokenizer), 5, fusion="early", channels=8, embed_dim=16, hidden=32))


def test_question_pairs_hold_images_and_questions_only():
    qp = QuestionPairs("train", 6)
    vqa = load_task("vqa", "train", num_samples=6)
    assert len(qp) == 6
    for i in range(6):
        s = qp[i]
        assert set(s) == {"image", "caption", "index"}  # no answer, no scene
        assert s["caption"] == vqa[i]["question"]
        np.testing.assert_array_equal(s["image"], vqa[i]["image"])
    both = ConcatPairs(load_task("retrieval", "train", num_samples=3), qp)
    assert len(both) == 9 and both[4]["caption"] == qp[1]["caption"]
    with pytest.raises(IndexError):
        both[9]


def test_pretrain_grounded_runs_at_tiny_settings(pairs):
    rec, _, _ = pairs
    clip = CLIPModel(len(rec.tokenizer), **{k: v for k, v in TINY.items() if k != "find_dim"})
    model, trainer = pretrain_grounded(clip, rec.tokenizer, dict(caption_pairs=24, vqa_samples=8, batch_size=16,
                                                                 lr=1e-3, epochs=1))
    assert isinstance(model, GroundedCLIPModel) and trainer.step == 2
    assert math.isfinite(trainer.history[-1]["train_loss"])


def test_registry_builds_grounded_clip_and_the_recipe_loss_fits_it(pairs):
    rec, _, batch = pairs
    model = models.build("retrieval", "grounded_clip", rec, **TINY)
    assert isinstance(model, GroundedCLIPModel) and model.config.vocab_size == len(rec.tokenizer)
    out = model(batch)
    np.testing.assert_allclose(rec.loss(out, batch).item(), grounded_clip_loss(out).item(), rtol=1e-7)
    np.testing.assert_allclose(rec.loss(out[0], batch).item(), clip_loss(out[0]).item(), rtol=1e-7)
