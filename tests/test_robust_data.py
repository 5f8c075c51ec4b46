"""Data at the edges: lazy generation (any size, bounded memory), non-finite audio, Unicode
normalisation, exact mel corners, and the errors bad arguments get."""
import unicodedata

import numpy as np
import pytest

from tinymm.data import AudioGain, AudioNoise, RandomTranslate, SpecAugment, Tokenizer, clean, inject_faults, load_task
from tinymm.data import audio_features as af
from tinymm.data.cleaning import SampleList, find_fault
from tinymm.data.generate import BLOCK, World
from tinymm.data.tasks import UnknownTaskError
from tinymm.data.world import ConfigError


# ----------------------------------------------------------------------------- lazy generation


def test_a_huge_task_is_built_lazily_and_agrees_with_a_small_one():
    huge = load_task("text_cls", num_samples=10**8)
    assert len(huge) == 10**8
    assert huge.world._cached_bytes <= World.cache_bytes  # only the first block was made
    small = load_task("text_cls", num_samples=50)
    for i in (0, 7, 49):
        assert huge[i]["caption"] == small[i]["caption"] and huge[i]["label"] == small[i]["label"]
    last = huge[-1]
    assert last["index"] == 10**8 - 1 and isinstance(last["caption"], str)
    assert huge[10**8 - 1] == last  # the same on a second read
    assert len(huge.world._cache) <= 3


def test_whole_world_arrays_of_a_huge_world_are_refused_with_their_size():
    ds = load_task("vqa", num_samples=10**8)
    with pytest.raises(MemoryError, match=r"World.questions for 100000000 samples would generate them all now"):
        ds.world.questions
    with pytest.raises(MemoryError, match=r"vqa: targets of all 100000000 samples would generate every sample"):
        ds.targets
    assert isinstance(ds[12_345_678]["question"], str)
    assert ds.head_targets(3).tolist() == [ds[i]["answer"] for i in range(3)]
    wide = World(2**20, image_size=128)
    with pytest.raises(MemoryError, match=r"World.images for 1048576 samples would take about 192.0 GiB"):
        wide.images


def test_the_block_cache_is_bounded_and_evicted_blocks_come_back_identical():
    ds = load_task("image_cls", num_samples=4 * BLOCK, label_noise=0.1)
    first = [ds[b * BLOCK + 3] for b in range(4)]
    ds.world.cache_bytes = 1  # keep only the block in use
    again = [ds[b * BLOCK + 3] for b in (3, 2, 1, 0)][::-1]
    assert len(ds.world._cache) == 1
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["image"], b["image"])
        assert a["label"] == b["label"] and a["scene"] == b["scene"]
    # the whole-split targets agree with the items, block by block
    assert [int(ds.targets[b * BLOCK + 3]) for b in range(4)] == [s["label"] for s in first]


def _count_generations(world, monkeypatch):
    made = []
    real = world._generate
    monkeypatch.setattr(world, "_generate", lambda b: made.append(b) or real(b))
    return made


def test_a_shuffled_epoch_generates_each_block_once_when_the_world_outgrows_the_default_cache(monkeypatch):
    from tinymm.data import DataLoader
    from tinymm.data.loader import Subset

    ds = load_task("retrieval", num_samples=3 * BLOCK + 17, image_size=16)
    ds.world.cache_bytes = 1  # as a world larger than the default 256 MiB would be
    made = _count_generations(ds.world, monkeypatch)
    loader = DataLoader(ds, batch_size=64, shuffle=True, seed=0)
    seen = sum(len(b["index"]) for b in loader)
    assert seen == len(ds)
    assert sorted(made) == [1, 2, 3]  # block 0 was made at construction; none came back twice
    assert ds.world.cache_bytes >= ds.world.estimated_bytes()
    assert World.cache_bytes == 256 * 2**20  # the class default is untouched
    # a Subset (random_split) reads anywhere in its parent, so it keeps the parent's blocks
    sub = load_task("retrieval", num_samples=2 * BLOCK, image_size=16)
    sub.world.cache_bytes = 1
    assert Subset(sub, [5, BLOCK + 5]).fit_cache(2) and sub.world.cache_bytes >= sub.world.estimated_bytes()


def test_a_shuffle_whose_blocks_cannot_fit_warns_once_naming_the_fixes(monkeypatch):
    from tinymm.data import DataLoader

    ds = load_task("retrieval", num_samples=2 * BLOCK, image_size=16)
    ds.world.cache_bytes = 1
    ds.world.max_cache_bytes = 2  # nothing fits
    assert ds.fit_cache() is False and ds.world.cache_bytes == 1
    loader = DataLoader(ds, batch_size=4, shuffle=True, seed=0)  # few samples: each may regenerate a block
    with pytest.warns(RuntimeWarning, match=r"shuffling 2048 samples of a lazily generated dataset.*epoch_size="):
        next(iter(loader))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        next(iter(loader))  # once per loader
        # in order, or a window that fits, needs no warning
        next(iter(DataLoader(ds, batch_size=512)))
        ds.world.max_cache_bytes = 2**30
        next(iter(DataLoader(ds, batch_size=4, shuffle=True, epoch_size=BLOCK)))


def test_label_noise_spans_blocks_and_is_recorded():
    clean_ds = load_task("image_cls", num_samples=2 * BLOCK + 10, seed=1)
    noisy = load_task("image_cls", num_samples=2 * BLOCK + 10, seed=1, label_noise=0.2)
    rec = noisy.label_noise
    assert np.array_equal(np.nonzero(clean_ds.targets != noisy.targets)[0], rec.indices)
    assert rec.indices.max() >= 2 * BLOCK  # the last, short block has flips too
    assert abs(len(rec) - 0.2 * len(noisy)) <= 3  # round(rate * block) per block


def test_num_samples_and_image_size_limits():
    with pytest.raises(ConfigError, match="num_samples must be at most"):
        load_task("vqa", num_samples=10**30)
    with pytest.raises(ConfigError, match="image_size=100000 is too large"):
        load_task("vqa", image_size=100_000)


# ----------------------------------------------------------------------------- named errors


def test_load_task_with_a_list_names_the_problem():
    with pytest.raises(TypeError, match=r"load_task: name must be a task name \(str\), got list \['vqa'\]"):
        load_task(["vqa"])
    with pytest.raises(UnknownTaskError, match="unknown task 'VQA'"):
        load_task("VQA")
    with pytest.raises(ConfigError, match="question_types must be a list"):
        load_task("vqa", question_types=5)


@pytest.mark.parametrize("make, match", [
    (lambda: AudioGain(max_db=float("inf")), "AudioGain: max_db must be finite"),
    (lambda: AudioGain(min_db=float("nan")), "AudioGain: min_db must be finite"),
    (lambda: AudioGain(max_db="6"), "AudioGain: max_db must be a number"),
    (lambda: AudioGain(max_db=1e6), r"AudioGain: max_db must be in \[-60.0, 60.0\]"),
    (lambda: AudioNoise(snr_db=5), "snr_db must be a \\(low, high\\) pair"),
    (lambda: AudioNoise(snr_db=(float("nan"), 3)), "must be finite"),
    (lambda: RandomTranslate(max_shift=float("inf")), "max_shift must be finite"),
    (lambda: SpecAugment(freq_masks=-1), "freq_masks must be an int"),
    (lambda: SpecAugment(time_masks=10**9), "time_masks must be an int"),
])
def test_augmentations_name_bad_settings(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


# ----------------------------------------------------------------------------- cleaning


@pytest.mark.parametrize("corrupt", ["one_nan", "all_nan", "one_inf", "minus_inf"])
def test_clean_drops_audio_with_nan_or_inf_and_counts_it(corrupt):
    ds = load_task("audio_cls", num_samples=6, seed=3)
    samples = SampleList([ds[i] for i in range(6)], num_classes=ds.num_classes)
    a = samples[2]["audio"]
    if corrupt == "one_nan":
        a[len(a) // 2] = np.nan
    elif corrupt == "all_nan":
        a[:] = np.nan
    elif corrupt == "one_inf":
        a[5] = np.inf
    else:
        a[-1] = -np.inf
    cleaned, report = clean(samples)
    assert len(cleaned) == 5 and report.counts["nan_audio"] == 1 and report.dropped["nan_audio"] == [2]
    assert "nan_audio" in str(report)
    assert find_fault(samples[2], ds.num_classes) == "nan_audio"


def test_injected_nan_audio_is_found():
    ds = load_task("audio_cls", num_samples=20, seed=4)
    faulty, rec = inject_faults(ds, 0.5, kinds=["nan_audio"], seed=1)
    _, report = clean(faulty)
    assert report.dropped["nan_audio"] == rec.kinds["nan_audio"] and len(rec.kinds["nan_audio"]) == 10


def test_clean_names_bad_input():
    with pytest.raises(TypeError, match="clean: expected a dataset or a list of sample dicts, got int"):
        clean(5)
    with pytest.raises(TypeError, match="clean: sample 1 is a str, expected a dict"):
        clean([{"caption": "a"}, "b"])
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        clean([{"label": 1}], num_classes=-2)


def test_audio_features_refuse_non_finite_signals():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    x[10] = np.nan
    with pytest.raises(ValueError, match=r"the signal holds non-finite values \(first nan at index \(10,\)\)"):
        af.mfcc(x, 8000)


# ----------------------------------------------------------------------------- tokenizer, mel corners


def test_tokenizer_normalises_unicode_to_nfc():
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    tok = Tokenizer.build([nfd + " au lait"])
    assert tok.encode(nfc) == tok.encode(nfd) and tok.unk_id not in tok.encode(nfc)
    assert tok.tokenize(nfd) == [nfc]
    assert Tokenizer(list(tok.vocab[:5]) + [nfd]).encode(nfc)[1] == 5  # a vocab given in NFD too


@pytest.mark.parametrize("htk", [True, False])
@pytest.mark.parametrize("sr, n_fft, fmin, fmax", [(16000, 512, 50.0, 7000.0), (22050, 2048, 0.0, 11025.0),
                                                   (8000, 256, 31.25, 3968.75), (44100, 4096, 20.0, 8000.0)])
def test_mel_corners_are_exactly_fmin_and_fmax(htk, sr, n_fft, fmin, fmax):
    f = af.mel_frequencies(42, fmin, fmax, htk)
    assert f[0] == fmin and f[-1] == fmax
    fb = af.mel_filterbank(sr, n_fft, 40, fmin=fmin, fmax=fmax, htk=htk)
    bins = np.arange(n_fft // 2 + 1) * sr / n_fft
    assert (fb[:, (bins <= fmin) | (bins >= fmax)] == 0).all()  # exact zeros, on any NumPy build


# ----------------------------------------------------------------------------- sweep: bad values at the boundary

from tinymm.data import (  # noqa: E402
    Augmented, ColorJitter, Compose, DataLoader, GaussianNoise, HorizontalFlip, random_split,
)


@pytest.mark.parametrize("transform, sample, exc, match", [
    (AudioGain(), {"audio": None}, TypeError, r"AudioGain: sample\['audio'\] must be a float NumPy waveform \(L,\), got NoneType"),
    (AudioGain(), {"audio": np.zeros(10, np.int16)}, TypeError, "got array of dtype int16"),
    (SpecAugment(), {"audio": np.zeros((2, 10), np.float32)}, ValueError, r"must be a waveform \(L,\), got shape \(2, 10\)"),
    (GaussianNoise(), {"image": [[0.0]]}, TypeError, r"sample\['image'\] must be a float NumPy image"),
    (HorizontalFlip(p=1.0), {"video": np.zeros((3, 8, 8), np.float32)}, ValueError, r"video \(T, C, H, W\)"),
    (ColorJitter(), {"image": np.zeros((1, 8, 8), np.float32)}, ValueError, "must have 3 colour channels"),
    (AudioGain(), {"audio": np.ones(10, np.float32), "sample_rate": -1}, ValueError, "sample_rate'] must be a positive int"),
])
def test_transforms_name_a_bad_sample(transform, sample, exc, match):
    with pytest.raises(exc, match=match):
        transform(sample)


def test_spec_augment_leaves_empty_audio_alone():
    out = SpecAugment()({"audio": np.zeros(0, np.float32)})
    assert out["audio"].size == 0


@pytest.mark.parametrize("make, exc, match", [
    (lambda: AudioGain(seed=float("nan")), ConfigError, "AudioGain: seed must be None or a non-negative int"),
    (lambda: Compose(None), TypeError, "Compose: expected a list of transforms, got NoneType"),
    (lambda: Augmented(5, lambda s, r: s), TypeError, "Augmented: dataset must have __len__"),
    (lambda: Augmented(load_task("vqa", num_samples=2), lambda s, r: s, seed="x"), ConfigError, "seed must be a non-negative int"),
    (lambda: Augmented(load_task("vqa", num_samples=2), lambda s, r: s)[5], IndexError, "index 5 is out of range"),
    (lambda: Tokenizer.build(None), TypeError, "corpus must be an iterable of strings, got NoneType"),
    (lambda: Tokenizer.build(["a"]).batch_encode(None), TypeError, "expected a list of strings, got NoneType"),
    (lambda: Tokenizer.build(["a"]).decode([[1], [1, 2]]), ValueError, "expected a 1-D sequence of int ids"),
    (lambda: inject_faults(load_task("vqa", num_samples=4), 0.5, kinds=True), TypeError, "kinds must be a list"),
    (lambda: inject_faults(load_task("vqa", num_samples=4), 0.5, seed=-1), ValueError, "seed must be a non-negative int"),
    (lambda: random_split(load_task("vqa", num_samples=4), None), TypeError, "fractions must be a list"),
    (lambda: random_split(load_task("vqa", num_samples=4), [float("nan"), 1.0]), ValueError, "fractions must be non-negative"),
    (lambda: af.mfcc(np.ones(800, np.float32), 8000, amin=None), ValueError, "amin must be a finite positive number, got None"),
    (lambda: af.mfcc(np.ones(800, np.float32), 8000, fmin="x"), ValueError, "fmin must be a finite number, got 'x'"),
    (lambda: af.mfcc(np.ones(800, np.float32), 8000, pad_mode=[]), ValueError, "pad_mode must be one of"),
    (lambda: af.power_spectrogram(np.ones(800, np.float32), power=float("nan")), ValueError, "power must be a finite positive number"),
    (lambda: af.stft(np.ones(800, np.float32), 10**12), ValueError, "n_fft=1000000000000 is too large"),
    (lambda: af.hann_window(10**12), ValueError, r"hann_window: n must be an int in \[0, 16777216\]"),
    (lambda: af.mel_filterbank(8000, 512, 2**70), ValueError, "n_mels=1180591620717411303424 is too large"),
    (lambda: af.stft(np.ones(800, np.float32), 64, window=np.full(64, np.nan)), ValueError, "window holds NaN"),
])
def test_bad_values_get_named_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_a_loader_streams_a_huge_dataset_in_order_and_refuses_to_shuffle_it():
    ds = load_task("text_cls", num_samples=10**9)
    batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=list)))
    assert [s["index"] for s in batch] == [0, 1, 2, 3]
    with pytest.raises(MemoryError, match=r"DataLoader: shuffling 1000000000 samples needs a permutation of 7.5 GiB"):
        iter(DataLoader(ds, batch_size=4, shuffle=True, seed=0))


from tinymm.data import TextCollate, answer_question, default_collate  # noqa: E402
from tinymm.data.speech import sample_speaker, speak  # noqa: E402


@pytest.mark.parametrize("make, exc, match", [
    (lambda: answer_question(None, "is there a red circle?"), TypeError, "answer_question: scene must be a scene dict"),
    (lambda: answer_question({"objects": []}, None), TypeError, "answer_question: question must be a str"),
    (lambda: answer_question({"objects": [{"x": 1}]}, "is there a red circle?"), ValueError, "the scene's objects are malformed"),
    (lambda: World(10, family=5), ConfigError, "family must be a str"),
    (lambda: TextCollate(Tokenizer.build(["a"]), text_keys=None), TypeError, "TextCollate: text_keys must be a list of sample keys"),
    (lambda: TextCollate(Tokenizer.build(["a"]), max_length=0), ValueError, "max_length must be None or a positive int"),
    (lambda: default_collate([{"a": 1}], pad_keys=None), TypeError, "default_collate: pad_keys must be a list"),
    (lambda: HorizontalFlip(answer_vocab=True), ConfigError, "HorizontalFlip: answer_vocab must be a list of names"),
    (lambda: speak("red", {}), ValueError, "speak: speaker is missing f0"),
    (lambda: speak("red", dict(sample_speaker(np.random.default_rng(0)), rate=float("nan"))), ValueError, r"speaker\['rate'\] must be a number"),
    (lambda: speak(None, sample_speaker(np.random.default_rng(0))), TypeError, "speak: words must be a sentence"),
    (lambda: find_fault({"audio": np.ones(900, np.float32) * 0.1, "sample_rate": float("inf")}), ValueError, "find_fault: sample_rate must be a positive int"),
    (lambda: HorizontalFlip(p=1.0)({"scene": {}, "image": np.zeros((3, 8, 8), np.float32)}), TypeError, r"sample\['scene'\] must be a scene dict"),
    (lambda: HorizontalFlip(p=1.0)({"answer": float("inf")}), TypeError, r"sample\['answer'\] must be an int class index"),
    (lambda: HorizontalFlip(p=1.0)({"caption": 5}), TypeError, r"sample\['caption'\] must be a str"),
])
def test_more_bad_values_get_named_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("kw, match", [
    ({"noise": True}, r"noise must be a number in \[0, 1\], got True"),
    ({"label_noise": "0.1"}, r"label_noise must be a number in \[0, 1\], got '0.1'"),
    ({"objects": (1.9, 2.9)}, r"objects must be an int or a \(min, max\) pair of ints"),
])
def test_settings_are_not_coerced_silently(kw, match):
    with pytest.raises(ConfigError, match=match):
        load_task("vqa", num_samples=5, **kw)


def test_clean_refuses_to_copy_a_huge_lazy_dataset():
    with pytest.raises(MemoryError, match="clean: 100000000 samples would all be copied into memory"):
        clean(load_task("text_cls", num_samples=10**8))
    with pytest.raises(MemoryError, match="inject_faults: 100000000 samples"):
        inject_faults(load_task("text_cls", num_samples=10**8), 0.1)
