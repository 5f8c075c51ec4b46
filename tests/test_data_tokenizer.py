"""Word-level tokenizer: normalisation, vocabulary order, round trips, padding masks, JSON files."""
import json
import os

import numpy as np
import pytest

from tinymm.data.tokenizer import SPECIAL_TOKENS, Tokenizer, TokenizerFileError

CORPUS = [
    "A red cube is left of the blue sphere.",
    "The blue sphere is small!",
    "Is the red cube large? Yes, the cube is large.",
    "the the the",
]


@pytest.fixture
def tok():
    return Tokenizer.build(CORPUS)


def test_special_tokens_come_first_with_fixed_ids(tok):
    assert tok.vocab[:5] == list(SPECIAL_TOKENS) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert tok.vocab_size == len(tok) == len(tok.vocab)


def test_tokenize_lowercases_and_splits_punctuation(tok):
    assert tok.tokenize("Is the RED cube large? Yes,it is.") == [
        "is", "the", "red", "cube", "large", "?", "yes", ",", "it", "is", ".",
    ]
    assert tok.tokenize("   ") == []
    # Special tokens written in a text stay whole and are not lower-cased.
    assert tok.tokenize("a [MASK] cube[SEP]") == ["a", "[MASK]", "cube", "[SEP]"]
    cased = Tokenizer.build(CORPUS, lowercase=False)
    assert cased.tokenize("Red cube") == ["Red", "cube"]


def test_vocabulary_order_is_frequency_then_alphabetical():
    tok = Tokenizer.build(["b a c", "a b", "a d", "c"])
    # counts: a=3, b=2, c=2, d=1
    assert tok.vocab[5:] == ["a", "b", "c", "d"]
    # The order of the corpus does not matter.
    assert Tokenizer.build(["c", "a d", "a b", "b a c"]).vocab == tok.vocab


def test_min_freq_and_max_size():
    corpus = ["b a c", "a b", "a d", "c"]
    assert Tokenizer.build(corpus, min_freq=2).vocab[5:] == ["a", "b", "c"]
    assert Tokenizer.build(corpus, max_size=7).vocab[5:] == ["a", "b"]
    assert Tokenizer.build(corpus, max_size=5).vocab == list(SPECIAL_TOKENS)
    # special tokens in the corpus are not counted as words
    assert Tokenizer.build(["[MASK] x"]).vocab == list(SPECIAL_TOKENS) + ["x"]


def test_round_trip_for_in_vocabulary_text(tok):
    for text in CORPUS + ["Blue cube, red sphere!", "IS THE CUBE SMALL?"]:
        ids = tok.encode(text)
        assert ids[0] == tok.cls_id and ids[-1] == tok.sep_id
        assert tok.unk_id not in ids
        assert tok.decode(ids) == tok.normalize(text) == " ".join(tok.tokenize(text))
    ids = tok.encode("red cube", add_special_tokens=False)
    assert ids == [tok.token_to_id("red"), tok.token_to_id("cube")]
    assert tok.decode(tok.encode("red cube"), skip_special_tokens=False) == "[CLS] red cube [SEP]"


def test_unknown_words_become_unk(tok):
    ids = tok.encode("the purple cube")
    assert ids == [tok.cls_id, tok.token_to_id("the"), tok.unk_id, tok.token_to_id("cube"), tok.sep_id]
    assert tok.decode(ids) == "the [UNK] cube"
    assert tok.token_to_id("purple") == tok.unk_id
    assert tok.decode(np.array(tok.encode("a [MASK] cube"))) == "a [MASK] cube"


def test_batch_encode_pads_to_longest_with_masks(tok):
    texts = ["red cube", "the blue sphere is small", ""]
    out = tok.batch_encode(texts)
    ids, mask, lengths = out["input_ids"], out["attention_mask"], out["lengths"]
    assert ids.dtype == np.int64 and mask.dtype == np.bool_ and lengths.dtype == np.int64
    assert ids.shape == mask.shape == (3, 7)
    assert lengths.tolist() == [4, 7, 2]
    for i, t in enumerate(texts):
        enc = tok.encode(t)
        assert ids[i, : len(enc)].tolist() == enc
        assert (ids[i, len(enc) :] == tok.pad_id).all()
        assert mask[i].tolist() == [True] * len(enc) + [False] * (7 - len(enc))
        assert tok.decode(ids[i]) == tok.normalize(t)
    assert (mask == (ids != tok.pad_id)).all()


def test_batch_encode_truncation_and_max_length_padding(tok):
    texts = ["the red cube is left of the blue sphere", "cube"]
    out = tok.batch_encode(texts, max_length=5)
    assert out["input_ids"].shape == (2, 5)
    assert out["input_ids"][0].tolist() == [tok.cls_id] + tok.encode(texts[0], False)[:3] + [tok.sep_id]
    assert out["lengths"].tolist() == [5, 3]
    out = tok.batch_encode(["cube"], max_length=6, padding="max_length")
    assert out["input_ids"].shape == (1, 6) and out["attention_mask"][0].tolist() == [True] * 3 + [False] * 3
    out = tok.batch_encode(["cube", "cube"], padding=False)
    assert out["input_ids"].shape == (2, 3) and out["attention_mask"].all()
    out = tok.batch_encode(["the red cube"], max_length=2, add_special_tokens=False)
    assert out["input_ids"].tolist() == [[tok.token_to_id("the"), tok.token_to_id("red")]]
    empty = tok.batch_encode([])
    assert empty["input_ids"].shape == (0, 0) and empty["attention_mask"].shape == (0, 0)


def test_batch_encode_errors_name_the_problem(tok):
    with pytest.raises(ValueError, match="truncation=False"):
        tok.batch_encode(["the red cube is left"], max_length=4, truncation=False)
    with pytest.raises(ValueError, match="needs max_length"):
        tok.batch_encode(["a"], padding="max_length")
    with pytest.raises(ValueError, match="padding must be one of"):
        tok.batch_encode(["a"], padding="shortest")
    with pytest.raises(ValueError, match="padding=False"):
        tok.batch_encode(["a", "a b"], padding=False)
    with pytest.raises(ValueError, match="max_length must be an int >= 2"):
        tok.batch_encode(["a"], max_length=1)
    with pytest.raises(TypeError, match="single str"):
        tok.batch_encode("red cube")
    with pytest.raises(TypeError, match="text 1 is int"):
        tok.batch_encode(["a", 3])


def test_bad_construction_and_decode_input(tok):
    with pytest.raises(ValueError, match="must start with"):
        Tokenizer(["a", "b"])
    with pytest.raises(ValueError, match="appears twice"):
        Tokenizer(list(SPECIAL_TOKENS) + ["a", "a"])
    with pytest.raises(ValueError, match="min_freq"):
        Tokenizer.build(CORPUS, min_freq=0)
    with pytest.raises(ValueError, match="max_size"):
        Tokenizer.build(CORPUS, max_size=3)
    with pytest.raises(TypeError, match="single str"):
        Tokenizer.build("a corpus")
    with pytest.raises(TypeError, match="corpus item 1"):
        Tokenizer.build(["ok", None])
    with pytest.raises(IndexError, match="outside the vocabulary"):
        tok.decode([2, 999])
    with pytest.raises(TypeError, match="integers"):
        tok.decode([1.5])
    with pytest.raises(TypeError, match="expected a str"):
        tok.encode(None)


def test_save_and_load_round_trip(tok, tmp_path):
    path = tmp_path / "tok.json"
    tok.save(path)
    assert os.listdir(tmp_path) == ["tok.json"]  # no temporary file left behind
    back = Tokenizer.load(path)
    assert back == tok and back.vocab == tok.vocab and back.lowercase == tok.lowercase
    assert back.encode("the red cube") == tok.encode("the red cube")
    tok.save(str(path))  # overwriting is fine
    assert Tokenizer.load(str(path)) == tok


def test_load_refuses_foreign_and_corrupt_files(tok, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TokenizerFileError, match="not a valid JSON"):
        Tokenizer.load(bad)
    bad.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(TokenizerFileError, match="not a tinymm tokenizer"):
        Tokenizer.load(bad)
    d = tok.to_dict()
    d["vocab"] = d["vocab"][2:]
    bad.write_text(json.dumps(d))
    with pytest.raises(TokenizerFileError, match="damaged"):
        Tokenizer.load(bad)
    d = tok.to_dict()
    d["version"] = 99
    bad.write_text(json.dumps(d))
    with pytest.raises(TokenizerFileError, match="version"):
        Tokenizer.load(bad)
    # a truncated file
    path = tmp_path / "tok.json"
    tok.save(path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(TokenizerFileError):
        Tokenizer.load(path)


try:
    from hypothesis import given
    from hypothesis import strategies as st
except ImportError:  # hypothesis is a dev extra
    given = None

if given is not None:
    _WORDS = ["red", "Cube", "SPHERE", "the", "is", "of", "left", "blue"]
    _PUNCT = [".", ",", "?", "!"]

    @given(
        st.lists(st.sampled_from(_WORDS + _PUNCT), max_size=12),
        st.lists(st.sampled_from(["", " ", "  ", "\t"]), min_size=12, max_size=12),
    )
    def test_round_trip_property(pieces, gaps):
        tok = Tokenizer.build(CORPUS)
        # words need a gap between them; punctuation may touch its neighbours
        text = ""
        for p, g in zip(pieces, gaps):
            text += (g or " ") + p if text and p.isalnum() else g + p
        assert tok.decode(tok.encode(text)) == tok.normalize(text)
        assert tok.normalize(text) == " ".join(p.lower() for p in pieces)
