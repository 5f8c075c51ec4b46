"""Augmentations keep modalities consistent; every answer stays true after a flip."""
import numpy as np
import pytest

from tinymm.data.augment import (
    AudioGain,
    AudioNoise,
    AudioTimeShift,
    ColorJitter,
    Compose,
    GaussianNoise,
    HorizontalFlip,
    RandomTranslate,
    SpecAugment,
    SynonymSubstitution,
    TokenDropout,
)
from tinymm.data.language import canonical_tokens, check_caption
from tinymm.data.questions import ANSWER_VOCAB, answer_question
from tinymm.data.render import render_images, render_video
from tinymm.data.speech import speak
from tinymm.data.tasks import load_task
from tinymm.data.world import COLOURS, PALETTE, ConfigError, scenes_from_dicts


def _rerender(scene):
    return render_images(scenes_from_dicts([scene]))[0]


@pytest.fixture(scope="module")
def vqa():
    return load_task("vqa", num_samples=600, seed=1)


def test_flip_keeps_every_answer_true(vqa):
    flip = HorizontalFlip(p=1.0)
    changed = 0
    for i in range(len(vqa)):
        s = vqa[i]
        f = flip(s, i)
        assert answer_question(f["scene"], f["question"]) == ANSWER_VOCAB[f["answer"]], f["question"]
        np.testing.assert_array_equal(f["image"], _rerender(f["scene"]))
        np.testing.assert_array_equal(f["image"], s["image"][:, :, ::-1])
        changed += f["answer"] != s["answer"]
    assert changed > 20  # left/right answers really were swapped


def test_flip_video_qa_and_video_cls():
    ds = load_task("video_qa", num_samples=150)
    flip = HorizontalFlip(p=1.0)
    for i in range(len(ds)):
        f = flip(ds[i], 0)
        assert answer_question(f["scene"], f["question"]) == ANSWER_VOCAB[f["answer"]]
        np.testing.assert_array_equal(f["video"], render_video(scenes_from_dicts([f["scene"]]))[0])
    cls = load_task("video_cls", num_samples=40)
    flip = HorizontalFlip(p=1.0, class_names=cls.class_names)
    for i in range(len(cls)):
        s, f = cls[i], flip(cls[i], 0)
        assert cls.class_names[f["label"]] == f["scene"]["objects"][0]["motion"]
        if cls.class_names[s["label"]] in ("left", "right"):
            assert f["label"] != s["label"]


def test_flip_captions_stay_true():
    ds = load_task("retrieval", num_samples=200)
    flip = HorizontalFlip(p=1.0)
    for i in range(len(ds)):
        f = flip(ds[i], 0)
        check_caption(f["scene"], f["caption"])


def test_flip_respeaks_the_question():
    ds = load_task("av_qa", num_samples=40)
    i = next(j for j in range(40) if "left" in ds[j]["question"] or "right" in ds[j]["question"])
    s = ds[i]
    f = HorizontalFlip(p=1.0)(s, 0)
    assert f["question"] != s["question"]
    np.testing.assert_array_equal(f["audio"], speak(f["question"], s["speaker"], s["sample_rate"]))


def test_flip_probability_and_input_untouched(vqa):
    s = vqa[0]
    img = s["image"].copy()
    flip = HorizontalFlip(p=0.5, seed=0)
    outs = [flip(s) for _ in range(40)]
    flipped = sum(not np.array_equal(o["image"], img) for o in outs)
    assert 5 < flipped < 35
    np.testing.assert_array_equal(s["image"], img)
    assert HorizontalFlip(p=0.0)(s, 0) == s or np.array_equal(HorizontalFlip(p=0.0)(s, 0)["image"], img)


def test_translate_keeps_objects_in_view_and_scene_consistent(vqa):
    t = RandomTranslate(max_shift=0.25)
    moved = 0
    for i in range(200):
        s = vqa[i]
        out = t(s, i)
        np.testing.assert_array_equal(out["image"], _rerender(out["scene"]))
        for o in out["scene"]["objects"]:
            assert o["x"] - o["radius"] >= 0 and o["x"] + o["radius"] <= 32
            assert o["y"] - o["radius"] >= 0 and o["y"] + o["radius"] <= 32
        assert answer_question(out["scene"], out["question"]) == ANSWER_VOCAB[out["answer"]]
        moved += out["scene"] != s["scene"]
    assert moved > 150


def test_translate_video():
    ds = load_task("video_cls", num_samples=30)
    t = RandomTranslate(max_shift=6)
    for i in range(len(ds)):
        out = t(ds[i], i)
        np.testing.assert_array_equal(out["video"], render_video(scenes_from_dicts([out["scene"]]))[0])
    with pytest.raises(ValueError, match="scene"):
        t({"image": np.zeros((3, 32, 32), np.float32)}, 0)


def test_colour_jitter_never_changes_a_colour_name(vqa):
    jit = ColorJitter(brightness=0.07, channel=0.07)
    for i in range(100):
        s = vqa[i]
        out = jit(s, i)
        assert out["image"].dtype == np.float32 and not np.array_equal(out["image"], s["image"])
        for o in s["scene"]["objects"]:
            px = out["image"][:, int(o["y"]), int(o["x"])]  # an interior pixel
            nearest = np.argmin(((PALETTE - px) ** 2).sum(1))
            assert COLOURS[nearest] == o["colour"]
    with pytest.raises(ConfigError, match="could change a colour"):
        ColorJitter(brightness=0.1, channel=0.05)


def test_gaussian_noise(vqa):
    s = vqa[0]
    out = GaussianNoise(std=0.05)(s, 0)
    d = out["image"] - s["image"]
    assert out["image"].dtype == np.float32 and 0 <= out["image"].min() and out["image"].max() <= 1
    assert 0.02 < d.std() < 0.08
    with pytest.raises(ConfigError):
        GaussianNoise(std=2)


@pytest.fixture(scope="module")
def clip():
    return load_task("audio_cls", num_samples=3)[1]


def test_audio_transforms(clip):
    a = clip["audio"]
    sr = clip["sample_rate"]
    shifted = [AudioTimeShift(0.05)(clip, k)["audio"] for k in range(6)]
    assert all(abs(len(x) - len(a)) <= 0.05 * sr for x in shifted) and any(len(x) != len(a) for x in shifted)
    g = AudioGain(-6, 6)(clip, 1)["audio"]
    ratio = np.abs(g).max() / np.abs(a).max()
    assert 0.49 < ratio < 2.01 and np.abs(g).max() <= 0.95
    n = AudioNoise((10, 10))(clip, 2)["audio"]
    noise = n - a
    snr = 10 * np.log10(np.mean(a.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert 8 < snr < 12
    for out in (g, n, *shifted):
        assert out.dtype == np.float32
    np.testing.assert_array_equal(clip["audio"], a)  # input untouched


def test_spec_augment(clip):
    a = clip["audio"]
    out = SpecAugment(freq_masks=1, max_freq=0.3, time_masks=2, max_time=0.2)(clip, 3)["audio"]
    assert out.shape == a.shape and out.dtype == np.float32 and (out == 0).sum() > (a == 0).sum()
    spec = np.abs(np.random.default_rng(0).standard_normal((40, 100))) + 1
    masked = SpecAugment(2, 0.2, 2, 0.2, key="spec")({"spec": spec}, 4)["spec"]
    rows = np.all(masked == spec.mean(), axis=1).sum()
    cols = np.all(masked == spec.mean(), axis=0).sum()
    assert rows + cols > 0 and masked.shape == spec.shape
    assert np.array_equal(SpecAugment(key="spec")({"x": 1}, 0), {"x": 1})


def test_text_transforms_keep_meaning(vqa):
    subst = SynonymSubstitution(p=1.0)
    drop = TokenDropout(p=0.9)
    for i in range(200):
        s = vqa[i]
        out = subst(s, i)
        assert canonical_tokens(out["question"]) == canonical_tokens(s["question"])
        assert answer_question(out["scene"], out["question"]) == ANSWER_VOCAB[out["answer"]]
        d = drop(s, i)["question"]
        content = [w for w in canonical_tokens(s["question"]) if w in set(ANSWER_VOCAB) | {"circle", "square"}]
        assert [w for w in canonical_tokens(d) if w in content] == content
    changed = sum(subst(vqa[i], i)["question"] != vqa[i]["question"] for i in range(50))
    assert changed > 10
    any_drop = TokenDropout(p=1.0, protect=())
    assert any_drop({"caption": "a big red box"}, 0)["caption"].strip()  # never empties a text


def test_compose_is_deterministic_given_the_rng(vqa):
    pipe = Compose([
        SynonymSubstitution(0.5), TokenDropout(0.2), HorizontalFlip(0.5), RandomTranslate(0.2),
        ColorJitter(), GaussianNoise(0.02),
    ])
    s = vqa[3]
    a, b = pipe(s, np.random.default_rng(7)), pipe(s, np.random.default_rng(7))
    c = pipe(s, np.random.default_rng(8))
    assert np.array_equal(a["image"], b["image"]) and a["question"] == b["question"]
    assert not np.array_equal(a["image"], c["image"])
    assert pipe(s, 7)["question"] == a["question"]  # an int seed works like a generator
    with pytest.raises(TypeError):
        Compose([1])
    with pytest.raises(TypeError):
        pipe("not a sample")


def test_augmented_view_is_reproducible_per_epoch(vqa):
    from tinymm.data.augment import Augmented

    pipe = Compose([HorizontalFlip(0.5), GaussianNoise(0.05)])
    a, b = Augmented(vqa, pipe, seed=3), Augmented(vqa, pipe, seed=3)
    first = [a[i]["image"] for i in range(5)]
    assert all(np.array_equal(x, b[i]["image"]) for i, x in enumerate(first))  # same epoch 0
    second = [a[i]["image"] for i in range(5)]
    assert not all(np.array_equal(x, y) for x, y in zip(first, second))  # epoch 1 differs
    a.set_epoch(0)
    assert np.array_equal(a[2]["image"], first[2])
    assert len(a) == len(vqa) and a.answer_vocab == vqa.answer_vocab


def test_works_with_the_data_loader(vqa):
    loader_mod = pytest.importorskip("tinymm.data.loader")
    from tinymm.data.augment import Augmented

    loader = loader_mod.DataLoader(Augmented(vqa, HorizontalFlip(0.5)), batch_size=8, shuffle=True, seed=0)
    batch = next(iter(loader))
    assert batch["image"].shape == (8, 3, 32, 32) and batch["answer"].shape == (8,)
    assert len(batch["scene"]) == 8 and len(batch["question"]) == 8
    av = load_task("av_qa", num_samples=4)
    batch = next(iter(loader_mod.DataLoader(av, batch_size=4)))
    assert batch["audio"].ndim == 2 and batch["audio_mask"].shape == batch["audio"].shape
    assert batch["sample_rate"].tolist() == [8000] * 4
