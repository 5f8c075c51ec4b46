"""WordPieceTokenizer: the rules on a hand-made vocabulary (always run), then token ids
identical to Hugging Face's BertTokenizer on the all-MiniLM-L6-v2 vocab.txt (needs the model
package and the ``transformers`` oracle; skips with the install command otherwise)."""
import numpy as np
import pytest

from bert_sentences import BASE, ORACLE_REASON, PACKAGE_REASON, SENTENCES, have_transformers, model_dir
from tinymm.data import WordPieceTokenizer
from tinymm.data.wordpiece import is_punctuation

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "want", "##ed", "runn", "##ing",
         ",", ".", "!", "$", "cafe", "的", "hello", "a", "##a", "σ", "##σ"]


@pytest.fixture
def tok():
    return WordPieceTokenizer(VOCAB)


def test_greedy_longest_match_first(tok):
    # "unwanted" has no "##want": the whole word, not just the rest, becomes [UNK]
    assert tok.tokenize("unwanted running") == ["[UNK]", "runn", "##ing"]
    assert tok.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert tok.tokenize("wanted") == ["want", "##ed"]


def test_basic_rules(tok):
    # lower-casing, accent stripping, punctuation (including ASCII symbols), CJK, control characters
    assert tok.basic_tokenize("Café,HELLO!") == ["cafe", ",", "hello", "!"]
    assert tok.basic_tokenize("a$b^c") == ["a", "$", "b", "^", "c"]
    assert tok.basic_tokenize("x的y") == ["x", "的", "y"]
    assert tok.basic_tokenize("he\x00l\u200blo\tworld") == ["hello", "world"]
    assert tok.basic_tokenize("   ") == []
    assert is_punctuation("~") and is_punctuation("¿") and not is_punctuation("€")
    assert tok.tokenize("ΣΣ") == ["σ", "##σ"]  # character-wise lower case: no final sigma


def test_case_and_accents_follow_options():
    keep = WordPieceTokenizer(VOCAB, do_lower_case=False)
    assert keep.basic_tokenize("Café") == ["Café"]
    strip = WordPieceTokenizer(VOCAB, do_lower_case=False, strip_accents=True)
    assert strip.basic_tokenize("Café") == ["Cafe"]
    lower_only = WordPieceTokenizer(VOCAB, strip_accents=False)
    assert lower_only.basic_tokenize("Café") == ["café"]


def test_long_words_become_unk():
    tok = WordPieceTokenizer(VOCAB, max_input_chars_per_word=5)
    assert tok.tokenize("aaaaa aaaaaa") == ["a", "##a", "##a", "##a", "##a", "[UNK]"]


def test_special_tokens_in_text_stay_whole(tok):
    assert tok.tokenize("a[MASK]a [mask]") == ["a", "[MASK]", "a", "[UNK]", "[UNK]", "[UNK]"]


def test_batch_padding_truncation_and_pairs(tok):
    out = tok(["hello", "hello, cafe!", ""])
    cls, sep, pad = 2, 3, 0
    np.testing.assert_array_equal(out["input_ids"], [[cls, 18, sep, pad, pad, pad], [cls, 18, 12, 16, 14, sep], [cls, sep, pad, pad, pad, pad]])
    np.testing.assert_array_equal(out["attention_mask"], out["input_ids"] != pad)
    assert out["input_ids"].dtype == np.int64 and not out["token_type_ids"].any()
    short = tok(["hello, cafe!"], max_length=4)
    np.testing.assert_array_equal(short["input_ids"], [[cls, 18, 12, sep]])
    fixed = tok(["hello"], padding="max_length", max_length=5)
    assert fixed["input_ids"].shape == (1, 5)
    # longest-first truncation: the shorter text keeps up to half the budget, the longer the rest
    pair = tok("hello cafe", "a a a", max_length=7)
    np.testing.assert_array_equal(pair["input_ids"], [[cls, 18, 16, sep, 19, 19, sep]])
    np.testing.assert_array_equal(pair["token_type_ids"], [[0, 0, 0, 0, 1, 1, 1]])
    pair = tok("hello cafe", "a a a", max_length=6)
    np.testing.assert_array_equal(pair["input_ids"], [[cls, 18, sep, 19, 19, sep]])
    assert tok.decode(tok.encode("unaffable cafe")) == "unaffable cafe"


def test_bad_arguments(tok):
    with pytest.raises(ValueError, match="padding"):
        tok(["a"], padding="nope")
    with pytest.raises(TypeError, match="str"):
        tok.encode(3)
    with pytest.raises(ValueError, match="max_length"):
        tok(["a a a"], padding="max_length", max_length=3, truncation=False)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        WordPieceTokenizer(["a", "b"])


# ----------------------------------------------------------------------------- against transformers

needs_files = pytest.mark.skipif(model_dir() is None, reason=PACKAGE_REASON)
needs_oracle = pytest.mark.skipif(not have_transformers(), reason=ORACLE_REASON)


@pytest.fixture(scope="module")
def minilm_tok():
    return WordPieceTokenizer.from_pretrained(model_dir())


@needs_files
def test_reads_tokenizer_config(minilm_tok):
    assert len(minilm_tok) == 30522 and minilm_tok.do_lower_case and minilm_tok.strip_accents
    assert minilm_tok.model_max_length == 512


@needs_files
@needs_oracle
def test_ids_identical_to_transformers_bert_tokenizer(minilm_tok):
    from transformers import BertTokenizer

    ref = BertTokenizer(vocab=str(model_dir() / "vocab.txt"), do_lower_case=True)
    assert len(SENTENCES) >= 300
    for s in SENTENCES:
        assert minilm_tok.encode(s, truncation=False) == ref.encode(s), repr(s)
    # the batch path: padding, truncation to 128 and masks, as the model consumes them
    got = minilm_tok(SENTENCES, max_length=128)
    want = ref(SENTENCES, padding="longest", truncation=True, max_length=128, return_tensors="np")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    pairs = ref(BASE[:-1], BASE[1:], padding="longest", truncation=True, max_length=24, return_tensors="np")
    mine = minilm_tok(BASE[:-1], BASE[1:], max_length=24)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        np.testing.assert_array_equal(mine[key], pairs[key], err_msg=f"pairs {key}")


@needs_files
@needs_oracle
def test_ids_identical_to_the_python_bert_tokenizer(minilm_tok):
    """The pure-Python BertTokenizer of transformers (``BertTokenizerLegacy`` since v5) agrees
    too, except where its whole-word ``str.lower`` applies Greek final sigma (ς, not σ)."""
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as Slow
    except ImportError:
        from transformers import BertTokenizer as Slow  # before v5 this was the Python one
    ref = Slow(vocab_file=str(model_dir() / "vocab.txt"), do_lower_case=True)
    checked = 0
    for s in SENTENCES:
        if "Σ" in s:
            continue
        assert minilm_tok.encode(s, truncation=False) == ref.encode(s), repr(s)
        checked += 1
    assert checked >= 290
