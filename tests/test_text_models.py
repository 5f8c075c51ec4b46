"""Text models at tiny settings: TextTransformer (shapes, padding, pooling), masked-token
pretraining (BERT's masking statistics, loss only on the chosen positions), TextClassifier on
each encoder (forward/backward, overfitting a batch, bit-exact save/load round trips, loading a
tinymm MLM folder and a BERT folder), the text_cls recipe with the Trainer; all-MiniLM-L6-v2
fine-tuning when its package is installed (else skipped with the install command)."""
import json

import numpy as np
import pytest

import tinymm as tm
from bert_sentences import PACKAGE_REASON, model_dir
from helpers import TORCH_REASON, torch
from tinymm import models, optim
from tinymm.data import DataLoader, Tokenizer, load_task
from tinymm.data.wordpiece import WordPieceTokenizer
from tinymm.models import (BertConfig, BertModel, MaskedLanguageModel, MLMCollate, TextClassifier, TextTransformer,
                           mask_tokens, mlm_loss)
from tinymm.models.mlm import IGNORE
from tinymm.serialization import CheckpointError
from tinymm.train import Trainer
from tinymm.train.trainer import to_tensors

SMALL = dict(dim=16, depth=1, heads=2, ff_dim=32, max_len=24, dropout=0.0)
TEXTS = ["a red circle", "a big blue box that is tiny", "there is a green cross", "a yellow triangle",
         "is the red thing a circle ?", "a small purple disk"]


def tokenizer():
    return Tokenizer.build(TEXTS)


def batch_of(tok, texts, labels=None):
    enc = tok.batch_encode(texts)
    b = {"caption_ids": enc["input_ids"], "caption_mask": np.asarray(enc["attention_mask"], bool)}
    if labels is not None:
        b["label"] = np.asarray(labels, dtype=np.int64)
    return to_tensors(b, "cpu")


def outputs(model, batch):
    model.eval()
    with tm.no_grad():
        return model(batch).detach().numpy()


# ---------------------------------------------------------------------- TextTransformer

@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_text_transformer_shapes_and_padding_changes_nothing_real(pooling):
    tm.manual_seed(0)
    tok = tokenizer()
    enc = TextTransformer(len(tok), pooling=pooling, **SMALL).eval()
    b = tok.batch_encode(TEXTS[:3])
    ids, mask = b["input_ids"], b["attention_mask"]
    pooled, states = enc(tm.tensor(ids), mask)
    assert pooled.shape == (3, 16) and states.shape == (3, ids.shape[1], 16)
    # the same rows padded with 5 more [PAD] columns: the real tokens' states and the pooled vector do not move
    wide_ids = np.pad(ids, ((0, 0), (0, 5)))
    wide_mask = np.pad(mask, ((0, 0), (0, 5)))
    pooled2, states2 = enc(tm.tensor(wide_ids), wide_mask)
    np.testing.assert_allclose(pooled2.detach().numpy(), pooled.detach().numpy(), atol=1e-6)
    for r in range(3):
        n = int(mask[r].sum())
        np.testing.assert_allclose(states2.detach().numpy()[r, :n], states.detach().numpy()[r, :n], atol=1e-6)
    if pooling == "mean":
        keep = mask[1].astype(bool)
        np.testing.assert_allclose(pooled.detach().numpy()[1], states.detach().numpy()[1][keep].mean(0), atol=1e-6)
    else:
        np.testing.assert_allclose(pooled.detach().numpy(), states.detach().numpy()[:, 0], atol=0)


def test_text_transformer_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="pooling"):
        TextTransformer(10, pooling="max")
    with pytest.raises(ValueError, match="multiple of heads"):
        TextTransformer(10, dim=10, heads=4)
    enc = TextTransformer(10, **SMALL)
    with pytest.raises(ValueError, match="max_len"):
        enc(tm.tensor(np.ones((1, 30), np.int64)), np.ones((1, 30), bool))


# ---------------------------------------------------------------------- masked-token pretraining

def test_bert_masking_statistics():
    rng = np.random.default_rng(0)
    b, t, vocab, specials = 400, 50, 40, (0, 1, 2, 3, 4)
    ids = rng.integers(5, vocab, size=(b, t))
    lengths = rng.integers(10, t + 1, size=b)
    real = np.arange(t)[None] < lengths[:, None]
    ids[:, 0] = 2
    ids[np.arange(b), lengths - 1] = 3
    ids[~real] = 0
    inputs, labels = mask_tokens(ids, real, rng, mask_id=4, special_ids=specials, vocab_size=vocab)
    chosen = labels != IGNORE
    candidates = real & ~np.isin(ids, specials)
    assert not (chosen & ~candidates).any()                      # never padding, [CLS] or [SEP]
    assert np.array_equal(labels[chosen], ids[chosen])           # the label is the original token
    assert np.array_equal(inputs[~chosen], ids[~chosen])         # nothing else changes
    n = candidates.sum()
    rate = chosen.sum() / n
    assert abs(rate - 0.15) < 4 * np.sqrt(0.15 * 0.85 / n)
    k = chosen.sum()
    as_mask = (inputs[chosen] == 4).mean()
    kept = (inputs[chosen] == ids[chosen]).mean()
    assert abs(as_mask - 0.8) < 4 * np.sqrt(0.8 * 0.2 / k)
    # a random replacement equals the original 1/35 of the time: kept ≈ 0.1 + 0.1/35
    assert abs(kept - (0.1 + 0.1 / 35)) < 4 * np.sqrt(0.1 * 0.9 / k)
    swapped = inputs[chosen & (inputs != 4) & (inputs != ids)]
    assert swapped.size and swapped.min() >= 5 and swapped.max() < vocab  # random words, never specials


def test_masking_always_chooses_at_least_one_token():
    rng = np.random.default_rng(1)
    ids = np.array([[2, 7, 3]])
    for _ in range(20):
        _, labels = mask_tokens(ids, np.ones_like(ids, bool), rng, mask_id=4, special_ids=(0, 1, 2, 3, 4),
                                vocab_size=10, prob=1e-9)
        assert (labels != IGNORE).sum() == 1 and labels[0, 1] == 7


def _mlm_batch(seed=0):
    tok = tokenizer()
    collate = MLMCollate(tok, seed=seed)
    return tok, to_tensors(collate([{"text": s} for s in TEXTS]), "cpu")


def test_mlm_loss_counts_only_the_chosen_positions():
    tm.manual_seed(0)
    tok, b = _mlm_batch()
    model = MaskedLanguageModel(len(tok), **SMALL)
    logits = model(b)
    assert logits.shape == (len(TEXTS), b["text_ids"].shape[1], len(tok))
    chosen = b["labels"].detach().numpy() != IGNORE
    leaf = tm.tensor(logits.detach().numpy(), requires_grad=True)
    loss = mlm_loss(leaf, b)
    loss.backward()
    grad = leaf.grad.numpy()
    assert np.all(grad[~chosen] == 0) and np.any(grad[chosen] != 0)
    # the mean cross-entropy over the chosen positions, by its formula
    x = logits.detach().numpy()[chosen].astype(np.float64)
    y = b["labels"].detach().numpy()[chosen]
    lse = np.log(np.exp(x - x.max(1, keepdims=True)).sum(1)) + x.max(1)
    np.testing.assert_allclose(loss.item(), np.mean(lse - x[np.arange(len(y)), y]), rtol=1e-5)
    # changing the logits where nothing is chosen changes nothing
    other = logits.detach().numpy().copy()
    other[~chosen] += np.random.default_rng(0).standard_normal(other[~chosen].shape).astype(np.float32)
    assert mlm_loss(tm.tensor(other), b).item() == pytest.approx(loss.item(), rel=1e-6)


def test_mlm_overfits_a_batch_and_round_trips(tmp_path):
    tm.manual_seed(0)
    tok, b = _mlm_batch()
    model = MaskedLanguageModel(len(tok), **SMALL)
    model.tokenizer = tok
    opt = optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = mlm_loss(model(b), b)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    model.save_pretrained(tmp_path / "mlm")
    back = MaskedLanguageModel.from_pretrained(tmp_path / "mlm")
    assert back.tokenizer == tok
    np.testing.assert_array_equal(outputs(back, b), outputs(model, b))


# ---------------------------------------------------------------------- TextClassifier

def _tiny_bert_folder(tmp_path, tok):
    cfg = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)
    bert = BertModel(cfg)
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    (folder / "vocab.txt").write_text("\n".join(tok.vocab) + "\n")
    tm.save(bert.state_dict(), folder / "model.safetensors")
    return folder, bert


def _classifiers(tmp_path):
    tok = tokenizer()
    tm.manual_seed(0)
    out = {
        "transformer": TextClassifier(4, "transformer", dict(SMALL), vocab_size=len(tok), dropout=0.0),
        "gru": TextClassifier(4, "gru", dict(embed_dim=8, hidden=16), vocab_size=len(tok), dropout=0.0),
    }
    for m in out.values():
        m.tokenizer = tok
    folder, _ = _tiny_bert_folder(tmp_path, tok)
    out["bert"] = TextClassifier.from_pretrained(folder, num_labels=4, dropout=0.0)
    return out


@pytest.mark.parametrize("kind", ["transformer", "gru", "bert"])
def test_classifier_forward_backward_overfit_and_round_trip(tmp_path, kind):
    model = _classifiers(tmp_path)[kind]
    tok = model.tokenizer
    b = batch_of(tok, TEXTS, [0, 1, 2, 3, 0, 1])
    logits = model(b)
    assert logits.shape == (len(TEXTS), 4)
    model.train()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = tm.nn.functional.cross_entropy(model(b), b["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.grad is not None for p in model.head.parameters())
    assert loss.item() < 0.05
    assert (outputs(model, b).argmax(1) == b["label"].detach().numpy()).all()
    model.save_pretrained(tmp_path / "clf")
    back = TextClassifier.from_pretrained(tmp_path / "clf")
    assert type(back.tokenizer) is type(tok) and back.config == model.config
    np.testing.assert_array_equal(outputs(back, b), outputs(model, b))  # bit-exact
    for name, p in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name].detach().numpy(), p.detach().numpy())


def test_classifier_from_a_bert_folder_takes_its_weights_and_wordpiece(tmp_path):
    tok = tokenizer()
    folder, bert = _tiny_bert_folder(tmp_path, tok)
    clf = TextClassifier.from_pretrained(folder, num_labels=3)
    assert isinstance(clf.tokenizer, WordPieceTokenizer)
    for name, p in clf.encoder.state_dict().items():
        np.testing.assert_array_equal(p.detach().numpy(), bert.state_dict()[name].detach().numpy())
    assert clf.head.weight.shape == (3, 16)
    with pytest.raises(ValueError, match="num_labels"):
        TextClassifier.from_pretrained(folder)


def test_classifier_from_a_tinymm_mlm_folder(tmp_path):
    tm.manual_seed(0)
    tok = tokenizer()
    mlm = MaskedLanguageModel(len(tok), **SMALL)
    mlm.tokenizer = tok
    mlm.save_pretrained(tmp_path / "mlm")
    clf = TextClassifier.from_pretrained(tmp_path / "mlm", num_labels=4)
    assert clf.tokenizer == tok and clf.config.encoder == "transformer"
    for name, p in clf.encoder.state_dict().items():
        np.testing.assert_array_equal(p.detach().numpy(), mlm.encoder.state_dict()[name].detach().numpy())
    clf.save_pretrained(tmp_path / "clf")
    with pytest.raises(CheckpointError, match="labels"):
        TextClassifier.from_pretrained(tmp_path / "clf", num_labels=5)


def test_classifier_refuses_a_folder_of_another_model(tmp_path):
    models.ImageClassifier(3, image_size=8).save_pretrained(tmp_path / "img")
    with pytest.raises(CheckpointError, match="not a text encoder"):
        TextClassifier.from_pretrained(tmp_path / "img", num_labels=2)


def test_text_cls_recipe_builds_and_the_trainer_fine_tunes():
    tm.manual_seed(0)
    rec = models.recipe("text_cls")
    assert rec.text_keys == ("caption",) and rec.target_key == "label"
    model = models.build("text_cls", None, rec, encoder_config=dict(SMALL, vocab_size=len(rec.tokenizer)))
    assert isinstance(model, TextClassifier)
    assert models.build("text_cls", "gru", rec).config.encoder == "gru"
    train = load_task("text_cls", "train", num_samples=128)
    loader = DataLoader(train, batch_size=32, shuffle=True, collate_fn=rec.collate)
    trainer = Trainer(model, optim.AdamW(model.parameters(), lr=3e-3), rec.loss, loader, loader, epochs=4,
                      progress=False, log=lambda m: None)
    trainer.fit()
    assert trainer.history[-1]["train_loss"] < trainer.history[0]["train_loss"]


# ---------------------------------------------------------------------- all-MiniLM-L6-v2

@pytest.mark.skipif(model_dir() is None, reason=PACKAGE_REASON)
def test_minilm_classifier_fine_tunes_and_round_trips(tmp_path):
    tm.manual_seed(0)
    clf = TextClassifier.from_pretrained("all-MiniLM-L6-v2", num_labels=4)
    assert isinstance(clf.tokenizer, WordPieceTokenizer) and clf.config.encoder == "bert"
    rec = models.recipe("text_cls", tokenizer=clf.tokenizer)
    train = load_task("text_cls", "train", num_samples=8)
    batch = to_tensors(rec.collate([train[i] for i in range(8)]), "cpu")
    # WordPiece ids: [CLS] = 101 starts every row
    assert (batch["caption_ids"].detach().numpy()[:, 0] == 101).all()
    loader = DataLoader(train, batch_size=8, collate_fn=rec.collate)
    before = outputs(clf, batch)
    Trainer(clf, optim.AdamW(clf.parameters(), lr=1e-4), rec.loss, loader, epochs=1, progress=False,
            log=lambda m: None).fit()
    after = outputs(clf, batch)
    assert not np.array_equal(before, after)
    clf.save_pretrained(tmp_path / "clf")
    back = TextClassifier.from_pretrained(tmp_path / "clf")
    np.testing.assert_array_equal(outputs(back, batch), after)  # bit-exact, fine-tuned weights and all
    assert back.tokenizer.vocab == clf.tokenizer.vocab


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
def test_mean_pooling_matches_torch_masked_mean():
    from tinymm.models.text_transformer import masked_mean

    rng = np.random.default_rng(0)
    h = rng.standard_normal((3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)
    m = torch.tensor(mask, dtype=torch.float32)[..., None]
    want = (torch.tensor(h) * m).sum(1) / m.sum(1)
    np.testing.assert_allclose(masked_mean(tm.tensor(h), mask).detach().numpy(), want.detach().numpy(), rtol=1e-6)
