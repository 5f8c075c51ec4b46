"""The generated world: determinism, scenes, rendering, captions, questions, speech, fusion."""
import random

import numpy as np
import pytest

from tinymm.data.generate import World
from tinymm.data.language import CaptionError, canonical_tokens, check_caption, make_caption, swap_left_right
from tinymm.data.questions import (
    ANSWER_VOCAB,
    QA_TYPES,
    VIDEO_QA_TYPES,
    QuestionError,
    answer_question,
    make_question,
    question_vocab,
)
from tinymm.data.render import render_images, render_video
from tinymm.data.speech import sample_speaker, speak, word_recipe
from tinymm.data.summary import image_only_accuracy, question_only_accuracy
from tinymm.data.tasks import load_task
from tinymm.data.world import (
    COLOURS,
    PALETTE,
    SHAPES,
    ConfigError,
    sample_scenes,
    scenes_from_dicts,
    video_positions,
)

# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_data_different_seed_different():
    a, b = World(300, seed=7), World(300, seed=7)
    c = World(300, seed=8)
    assert np.array_equal(a.images, b.images)
    assert a.captions == b.captions and a.questions == b.questions
    assert np.array_equal(a.answers, b.answers)
    for f in ("count", "shape", "colour", "size", "motion", "x", "y", "radius"):
        assert np.array_equal(getattr(a.scenes, f), getattr(b.scenes, f), equal_nan=True)
    assert not np.array_equal(a.images, c.images)
    assert a.captions != c.captions
    assert np.array_equal(a.audio(3), b.audio(3))
    assert np.array_equal(a.video(3), b.video(3))
    assert not np.array_equal(a.audio(3), c.audio(3))


def test_noise_is_seeded_too():
    a, b = World(50, seed=1, noise=0.1), World(50, seed=1, noise=0.1)
    assert np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, World(50, seed=1).images)


def test_prefix_of_a_split_does_not_depend_on_its_length():
    small, big = World(100, seed=3), World(1500, seed=3)  # crosses a block boundary
    assert np.array_equal(small.images, big.images[:100])
    assert small.questions == big.questions[:100]
    assert small.captions == big.captions[:100]


def test_splits_are_disjoint_and_stable():
    tr = load_task("vqa", "train", num_samples=300)
    va = load_task("vqa", "val", num_samples=300)
    te = load_task("vqa", "test", num_samples=300)
    keys = [{(s.tobytes()) for s in d.world.images} for d in (tr, va, te)]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    again = load_task("vqa", "val", num_samples=300)
    assert np.array_equal(again.world.images, va.world.images)


def test_captions_off_does_not_change_questions():
    a, b = World(200, seed=2), World(200, seed=2, captions=False, images=False)
    assert a.questions == b.questions


# ----------------------------------------------------------------------------- scenes


def test_scene_rules():
    s = sample_scenes(2000, np.random.default_rng(0), image_size=32)
    assert set(np.unique(s.count)) == {1, 2, 3}
    for i in range(len(s)):
        n = s.count[i]
        pairs = {(s.colour[i, k], s.shape[i, k]) for k in range(n)}
        assert len(pairs) == n  # colour+shape unique
        xs, ys, r = s.x[i, :n], s.y[i, :n], s.radius[i, :n]
        assert (xs - r >= 0).all() and (xs + r <= 32).all() and (ys - r >= 0).all() and (ys + r <= 32).all()
        for a in range(n):  # separated along both axes: no overlap, no ties
            for b in range(a + 1, n):
                assert abs(xs[a] - xs[b]) >= r[a] + r[b] + 0.99 and abs(ys[a] - ys[b]) >= r[a] + r[b] + 0.99
    # every attribute value occurs
    assert set(np.unique(s.shape[s.shape >= 0])) == set(range(len(SHAPES)))
    assert set(np.unique(s.colour[s.colour >= 0])) == set(range(len(COLOURS)))
    d = s.scene(5)
    assert scenes_from_dicts([d]).scene(0) == d
    assert s.to_dicts()[:10] == [s.scene(i) for i in range(10)]


@pytest.mark.parametrize("objects", [1, 2, 3, (2, 3)])
def test_objects_knob(objects):
    s = sample_scenes(200, np.random.default_rng(0), objects=objects)
    lo, hi = (objects, objects) if isinstance(objects, int) else objects
    assert s.count.min() >= lo and s.count.max() <= hi


# ----------------------------------------------------------------------------- rendering


def test_images_dtype_range_and_colours():
    w = World(200, seed=0)
    assert w.images.dtype == np.float32 and w.images.shape == (200, 3, 32, 32)
    assert w.images.min() >= 0 and w.images.max() <= 1
    # every object's colour appears as pixels of exactly its palette colour
    for i in range(20):
        sc = w.scene(i)
        for o in sc["objects"]:
            x, y = int(o["x"]), int(o["y"])
            np.testing.assert_array_equal(w.images[i][:, y, x], PALETTE[COLOURS.index(o["colour"])])


@pytest.mark.parametrize("size", [16, 24, 48])
def test_image_size_knob(size):
    w = World(20, image_size=size)
    assert w.images.shape == (20, 3, size, size)


def test_render_mirror_symmetry_is_exact():
    s = sample_scenes(300, np.random.default_rng(1))
    img = render_images(s)
    m = s.take(slice(None))
    m.x = (32 - s.x).astype(np.float32)
    np.testing.assert_array_equal(render_images(m), img[..., ::-1])


def test_video_frames_move_in_the_labelled_direction():
    ds = load_task("video_cls", num_samples=40)
    steps = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
    for i in range(len(ds)):
        s = ds[i]
        v = s["video"]
        assert v.shape == (8, 3, 32, 32) and v.dtype == np.float32
        fg = np.abs(v - v[0, :, :1, :1]).sum(1)  # (T, H, W) coverage-weighted foreground
        grid = np.arange(32)
        cx = [(f.sum(0) * grid).sum() / f.sum() for f in (fg[0], fg[-1])]
        cy = [(f.sum(1) * grid).sum() / f.sum() for f in (fg[0], fg[-1])]
        ex, ey = steps[ds.class_names[s["label"]]]
        assert (cx[1] - cx[0]) * ex + (cy[1] - cy[0]) * ey > 7  # moved ~8 px the right way
        assert abs(fg[0].sum() - fg[-1].sum()) < 0.06 * fg[0].sum()  # fully in view in both


def test_video_paths_stay_in_view():
    s = sample_scenes(500, np.random.default_rng(2), video=True)
    xs, ys = video_positions(s)
    r = s.radius[None]
    ok = np.isnan(xs) | ((xs - r >= 0) & (xs + r <= 32) & (ys - r >= 0) & (ys + r <= 32))
    assert ok.all()
    frames = render_video(s.take(slice(0, 3)))
    assert frames.shape == (3, 8, 3, 32, 32)


# ----------------------------------------------------------------------------- text


def test_captions_describe_their_scene():
    w = World(600, seed=4)
    for i, c in enumerate(w.captions):
        check_caption(w.scene(i), c)
    assert len(set(w.captions)) > 500  # varied
    assert any("left" in c for c in w.captions) and any("beneath" in c or "under" in c for c in w.captions)


def test_caption_checker_catches_a_false_caption():
    sc = World(50, seed=4, objects=2).scene(0)
    cap = make_caption(sc, random.Random(0))
    with pytest.raises(CaptionError):
        check_caption(sc, swap_left_right(cap) if ("left" in cap or "right" in cap) else cap.replace(
            "above", "@").replace("below", "above").replace("@", "below").replace("over", "below").replace(
            "under", "above").replace("beneath", "above"))


@pytest.mark.parametrize("seed", [0, 1])
def test_checker_rederives_every_answer(seed):
    w = World(1500, seed=seed, images=False, captions=False)
    for i, (q, a) in enumerate(zip(w.questions, w.answers)):
        assert answer_question(w.scene(i), q) == ANSWER_VOCAB[a], q
    assert set(w.question_type_names) == set(QA_TYPES)


def test_checker_on_video_questions():
    ds = load_task("video_qa", num_samples=400)
    assert set(ds.question_types) == set(VIDEO_QA_TYPES)
    for i in range(len(ds)):
        assert answer_question(ds.world.scene(i), ds.world.questions[i]) == ds.answer_vocab[ds.targets[i]]


def test_checker_refuses_ambiguous_or_unknown():
    sc = {"image_size": 32, "objects": [
        {"shape": "circle", "colour": "red", "size": "large", "x": 5.0, "y": 5.0, "radius": 4.0, "motion": "up"},
        {"shape": "circle", "colour": "blue", "size": "large", "x": 20.0, "y": 20.0, "radius": 4.0, "motion": "up"},
    ]}
    assert answer_question(sc, "how many big discs are there?") == "2"
    assert answer_question(sc, "is the red circle to the left of the blue disk?") == "yes"
    assert answer_question(sc, "is the blue circle above or below the red circle?") == "below"
    with pytest.raises(QuestionError):
        answer_question(sc, "what colour is the circle?")  # two circles
    with pytest.raises(QuestionError):
        answer_question(sc, "why is the sky blue?")


def test_canonical_tokens_and_vocab():
    assert canonical_tokens("Is the BIG disc to the left of the violet box?") == [
        "is", "the", "large", "circle", "left", "of", "the", "purple", "square"]
    vocab = set(question_vocab())
    w = World(300, seed=5, images=False, captions=False)
    for q in w.questions:
        assert set(q.replace("?", "").split()) <= vocab


# ----------------------------------------------------------------------------- fusion


@pytest.mark.parametrize("task", ["vqa", "av_qa"])
def test_neither_modality_alone_answers_more_than_about_half(task):
    train = load_task(task, "train", num_samples=3000)
    test = load_task(task, "test", num_samples=800)
    q_only = question_only_accuracy(train, test)
    i_only = image_only_accuracy(test, k=16, max_samples=600)
    assert q_only <= 0.55, q_only
    assert i_only <= 0.55, i_only
    assert q_only > 0.2 and i_only > 0.05  # the heuristics do something


# ----------------------------------------------------------------------------- speech


def test_speech_is_deterministic_voice_like_and_varied():
    rng = np.random.default_rng(0)
    sp1, sp2 = sample_speaker(rng), sample_speaker(rng)
    a = speak("what colour is the big box?", sp1)
    assert a.dtype == np.float32 and a.ndim == 1
    assert np.array_equal(a, speak("what colour is the big box?", sp1))
    assert 0 < np.abs(a).max() < 0.9
    assert 0.5 < len(a) / 8000 < 6
    b = speak("what colour is the big box?", sp2)
    assert not np.array_equal(a[: len(b)], b[: len(a)])
    assert word_recipe("red") != word_recipe("green")
    hi = speak("red", sp1, 16000)
    assert abs(len(hi) / 16000 - len(speak("red", sp1)) / 8000) < 0.01


def test_speech_energy_sits_in_the_speech_band():
    a = speak("yellow triangle", sample_speaker(np.random.default_rng(3))).astype(np.float64)
    p = np.abs(np.fft.rfft(a)) ** 2
    f = np.fft.rfftfreq(len(a), 1 / 8000)
    assert p[(f > 80) & (f < 3500)].sum() > 0.9 * p.sum()


def test_sample_rate_knob_and_errors():
    with pytest.raises(ConfigError, match="sample_rate"):
        speak("red", sample_speaker(np.random.default_rng(0)), 44100)
    with pytest.raises(ValueError, match="no words"):
        speak("?!", sample_speaker(np.random.default_rng(0)))


# ----------------------------------------------------------------------------- errors


def test_bad_knobs_raise_named_errors():
    with pytest.raises(ConfigError, match=r"image_size=8 is too small: objects need at least 16 px"):
        World(10, image_size=8)
    with pytest.raises(ConfigError, match=r"noise must be in \[0, 1\], got 1.5"):
        World(10, noise=1.5)
    with pytest.raises(ConfigError, match="objects"):
        World(10, objects=(0, 4))
    with pytest.raises(ConfigError, match="video_length"):
        World(10, video_length=1)
    with pytest.raises(ConfigError, match="num_samples"):
        World(0)
    with pytest.raises(ConfigError, match="seed"):
        World(10, seed=-1)
    with pytest.raises(ConfigError, match="question_types"):
        World(10, question_types=("colour", "weather"))
    with pytest.raises(IndexError):
        World(10)[10]
    assert World(10)[-1]["index"] == 9


def test_make_question_types_and_failure():
    sc = World(5, objects=1).scene(0)
    q, a, t = make_question(sc, random.Random(0), ("relation", "side", "count"))
    assert t == "count"  # relations need two objects
    with pytest.raises(QuestionError):
        make_question(sc, random.Random(0), ("relation",))


def test_world_modules_stay_on_their_floor():
    """Floor 6, NumPy only: the world's modules import the standard library, NumPy and each other."""
    import ast
    import pathlib
    import sys

    import tinymm.data.world as world_mod

    here = pathlib.Path(world_mod.__file__).parent
    mine = ["world", "render", "language", "questions", "speech", "generate", "tasks", "annotation",
            "cleaning", "augment", "summary"]
    for name in mine:
        tree = ast.parse((here / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            else:
                continue
            for m in mods:
                top = m.split(".")[0]
                ok = (
                    m == "numpy" or m.startswith("tinymm.data.")
                    or top in sys.stdlib_module_names or top == "__future__"
                )
                assert ok, f"tinymm/data/{name}.py imports {m}"
