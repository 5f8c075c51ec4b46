"""Named tasks: schemas, splits, class maps, label noise, learnability of audio_cls, summary."""
import json

import numpy as np
import pytest

from tinymm.data.annotation import LABEL_KINDS, ClassMap, apply_label_noise, labels_from_scenes
from tinymm.data.language import check_caption
from tinymm.data.questions import ANSWER_VOCAB
from tinymm.data.summary import class_balance, main as summary_main, summarize
from tinymm.data.tasks import AUDIO_WORDS, DEFAULT_SIZES, TASKS, UnknownTaskError, load_task
from tinymm.data.world import COLOURS, SHAPES, ConfigError

SCHEMA = {
    "vqa": {"image", "question", "answer", "question_type", "scene", "index"},
    "av_qa": {"image", "audio", "sample_rate", "question", "answer", "question_type", "speaker", "scene", "index"},
    "video_qa": {"video", "question", "answer", "question_type", "scene", "index"},
    "retrieval": {"image", "caption", "scene", "index"},
    "image_cls": {"image", "label", "scene", "index"},
    "text_cls": {"caption", "label", "scene", "index"},
    "video_cls": {"video", "label", "scene", "index"},
    "audio_cls": {"audio", "sample_rate", "label", "transcript", "speaker", "index"},
}


def test_every_task_is_covered():
    assert set(TASKS) == set(SCHEMA)


@pytest.mark.parametrize("name", sorted(SCHEMA))
def test_sample_schema(name):
    ds = load_task(name, "val", num_samples=12)
    assert len(ds) == 12
    for i in (0, 11, -1):
        s = ds[i]
        assert set(s) == SCHEMA[name]
        assert s["index"] == (i % 12)
        if "image" in s:
            assert s["image"].dtype == np.float32 and s["image"].shape == (3, 32, 32)
            assert 0 <= s["image"].min() and s["image"].max() <= 1
        if "video" in s:
            assert s["video"].dtype == np.float32 and s["video"].shape == (8, 3, 32, 32)
        if "audio" in s:
            assert s["audio"].dtype == np.float32 and s["audio"].ndim == 1 and s["audio"].size > 1000
            assert s["sample_rate"] == 8000
        for k in ("answer", "label"):
            if k in s:
                assert isinstance(s[k], int) and 0 <= s[k] < ds.num_classes
        for k in ("scene", "speaker"):
            if k in s:
                json.dumps(s[k])  # JSON-able
        for k in ("question", "caption", "transcript"):
            if k in s:
                assert isinstance(s[k], str) and s[k].strip()
    with pytest.raises(IndexError):
        ds[12]
    with pytest.raises(TypeError):
        ds["0"]


def test_class_names_and_num_classes():
    assert load_task("vqa", num_samples=5).answer_vocab == list(ANSWER_VOCAB)
    assert load_task("vqa", num_samples=5).num_classes == len(ANSWER_VOCAB)
    assert load_task("image_cls", num_samples=5).class_names == list(SHAPES)
    assert load_task("text_cls", num_samples=5, label_by="colour").class_names == list(COLOURS)
    assert load_task("video_cls", num_samples=5).class_names == ["left", "right", "up", "down"]
    assert load_task("audio_cls", num_samples=5).class_names == list(AUDIO_WORDS)
    assert load_task("retrieval", num_samples=5).num_classes is None
    cm = load_task("image_cls", num_samples=5).class_map
    assert cm.index("triangle") == 2 and cm.name(2) == "triangle" and len(cm) == 4
    with pytest.raises(KeyError):
        cm.index("hexagon")
    with pytest.raises(IndexError):
        cm.name(4)
    assert ClassMap(("a", "b")).to_dict() == {"a": 0, "b": 1}


def test_defaults_and_prefix_property():
    assert DEFAULT_SIZES == {"train": 5000, "val": 1000, "test": 1000}
    assert len(load_task("text_cls", "test")) == 1000
    a = load_task("vqa", "train", num_samples=50, seed=3)
    b = load_task("vqa", "train", num_samples=80, seed=3)
    for i in range(50):
        sa, sb = a[i], b[i]
        assert np.array_equal(sa["image"], sb["image"]) and sa["question"] == sb["question"]


def test_shared_worlds():
    vqa, av = load_task("vqa", num_samples=20), load_task("av_qa", num_samples=20)
    for i in range(0, 20, 5):
        assert vqa[i]["question"] == av[i]["question"] and vqa[i]["answer"] == av[i]["answer"]
        assert np.array_equal(vqa[i]["image"], av[i]["image"])
    img, txt = load_task("image_cls", num_samples=30), load_task("text_cls", num_samples=30)
    for i in range(30):
        si, st = img[i], txt[i]
        assert si["label"] == st["label"] and si["scene"] == st["scene"]
        check_caption(st["scene"], st["caption"])
        assert img.class_names[si["label"]] == si["scene"]["objects"][0]["shape"]


def test_labels_follow_the_scene_graph():
    for by in ("shape", "colour", "size", "count"):
        ds = load_task("image_cls", num_samples=200, label_by=by)
        names = LABEL_KINDS[by]
        for i in range(0, 200, 7):
            s = ds[i]
            objs = s["scene"]["objects"]
            want = str(len(objs)) if by == "count" else objs[0][by]
            assert names[s["label"]] == want
        assert len(set(ds.targets.tolist())) == len(names)  # every class occurs
    ds = load_task("video_cls", num_samples=60, objects=(1, 3))
    for i in range(0, 60, 6):
        motions = {o["motion"] for o in ds[i]["scene"]["objects"]}
        assert motions == {ds.class_names[ds[i]["label"]]}  # shared motion


def test_label_noise_is_recorded_and_exact():
    clean = load_task("image_cls", num_samples=400, seed=2)
    noisy = load_task("image_cls", num_samples=400, seed=2, label_noise=0.25)
    rec = noisy.label_noise
    changed = np.nonzero(clean.targets != noisy.targets)[0]
    assert np.array_equal(changed, rec.indices)
    assert len(rec) == 100  # round(0.25 * 400), each to a different class
    assert np.array_equal(noisy.clean_targets, clean.targets)
    assert np.array_equal(rec.original, clean.targets[rec.indices])
    assert np.array_equal(rec.noisy, noisy.targets[rec.indices])
    assert noisy[int(rec.indices[0])]["label"] == int(rec.noisy[0])
    assert np.array_equal(load_task("image_cls", num_samples=400, seed=2, label_noise=0.25).targets, noisy.targets)


def test_qa_label_noise_stays_within_question_type():
    ds = load_task("vqa", num_samples=300, label_noise=0.5)
    groups = [{"no", "yes"}, set(COLOURS), set(SHAPES), {"small", "large"}, {"0", "1", "2", "3"},
              {"left", "right"}, {"above", "below"}]
    for j in ds.label_noise.indices:
        a, b = ANSWER_VOCAB[ds.clean_targets[j]], ANSWER_VOCAB[ds.targets[j]]
        assert a != b and any(a in g and b in g for g in groups)


def test_apply_label_noise_edges():
    y = np.arange(10) % 3
    out, rec = apply_label_noise(y, 3, 0.0, np.random.default_rng(0))
    assert np.array_equal(out, y) and len(rec) == 0
    out, rec = apply_label_noise(y, 3, 1.0, np.random.default_rng(0))
    assert (out != y).all() and len(rec) == 10
    with pytest.raises(ConfigError, match=r"label_noise must be in \[0, 1\]"):
        apply_label_noise(y, 3, -0.1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown label kind"):
        labels_from_scenes(load_task("image_cls", num_samples=2).world.scenes, "weight")


def _log_band_features(a, sr=8000, n=256, hop=128, bands=24):
    frames = np.lib.stride_tricks.sliding_window_view(a.astype(np.float64), n)[::hop] * np.hanning(n)
    p = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    edges = np.geomspace(2, n // 2, bands + 1).astype(int)
    lb = np.log(np.stack([p[:, edges[i] : edges[i + 1] + 1].mean(1) for i in range(bands)], 1) + 1e-8)
    active = lb.mean(1) > np.median(lb.mean(1))
    return np.concatenate([lb[active].mean(0), lb[active].std(0)])


def test_audio_cls_is_learnable_from_log_spectra():
    train = load_task("audio_cls", "train", num_samples=180)
    test = load_task("audio_cls", "test", num_samples=72)
    X = np.stack([_log_band_features(train[i]["audio"]) for i in range(len(train))])
    Xt = np.stack([_log_band_features(test[i]["audio"]) for i in range(len(test))])
    mu, sd = X.mean(0), X.std(0) + 1e-6
    X, Xt = (X - mu) / sd, (Xt - mu) / sd
    centroids = np.stack([X[train.targets == k].mean(0) for k in range(len(AUDIO_WORDS))])
    pred = ((Xt[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (pred == test.targets).mean() > 0.8  # nearest centroid; chance is 1/9


def test_av_qa_audio_speaks_the_question():
    ds = load_task("av_qa", num_samples=4, sample_rate=16000)
    s = ds[1]
    assert s["sample_rate"] == 16000
    n_words = len(s["question"].replace("?", "").split())
    seconds = len(s["audio"]) / 16000
    assert 0.1 * n_words < seconds < 0.6 * n_words + 0.5


def test_canonical_captions_are_one_true_wording_per_scene():
    varied = load_task("retrieval", "test", num_samples=300)
    canon = load_task("retrieval", "test", num_samples=300, caption_style="canonical")
    by_key = {}
    for i in range(300):
        sv, sc = varied[i], canon[i]
        # same images and scenes; the default captions unchanged by the option's existence
        assert np.array_equal(sv["image"], sc["image"]) and sv["scene"] == sc["scene"]
        assert sv["caption"] == varied.world.caption(i) == varied.caption(i)
        check_caption(sc["scene"], sc["caption"])
        objs = sorted(sc["scene"]["objects"], key=lambda o: o["x"])
        words = sc["caption"].replace(",", "").split()
        # canonical words only, objects named left to right, no relation but left/right
        assert [o["shape"] for o in objs] == [w for w in words if w in SHAPES][: len(objs)]
        assert not {"big", "little", "tiny", "disc", "disk", "box", "violet", "above", "below", "there"} & set(words)
        key = tuple((o["size"], o["colour"], o["shape"]) for o in objs)
        assert by_key.setdefault(key, sc["caption"]) == sc["caption"]  # same objects, same order: same string
    assert len(set(by_key.values())) == len(by_key)  # and different ones: different strings


def test_load_task_errors_are_named():
    with pytest.raises(UnknownTaskError, match=r"load_task: unknown task 'vqaa'; known tasks: vqa, av_qa"):
        load_task("vqaa")
    with pytest.raises(ValueError):  # UnknownTaskError is a ValueError
        load_task("imagenet")
    with pytest.raises(ConfigError, match="unknown split"):
        load_task("vqa", "dev")
    with pytest.raises(ConfigError, match=r"image_size=8 is too small: objects need at least 16 px"):
        load_task("vqa", num_samples=5, image_size=8)
    with pytest.raises(ConfigError, match=r"noise must be in \[0, 1\], got 1.5"):
        load_task("vqa", num_samples=5, noise=1.5)
    with pytest.raises(ConfigError, match=r"label_noise must be in \[0, 1\]"):
        load_task("image_cls", num_samples=5, label_noise=2)
    with pytest.raises(ConfigError, match="needs one object"):
        load_task("image_cls", num_samples=5, objects=3)
    with pytest.raises(ConfigError, match="motion questions need a video"):
        load_task("vqa", num_samples=5, question_types=("motion",))
    with pytest.raises(ConfigError, match="caption_style applies to retrieval, not vqa"):
        load_task("vqa", num_samples=5, caption_style="canonical")
    with pytest.raises(ConfigError, match="caption_style must be 'varied' or 'canonical', got 'plain'"):
        load_task("retrieval", num_samples=5, caption_style="plain")
    with pytest.raises(ConfigError, match="label_by applies"):
        load_task("vqa", num_samples=5, label_by="shape")
    with pytest.raises(ConfigError, match="sample_rate"):
        load_task("audio_cls", num_samples=5, sample_rate=4000)
    with pytest.raises(ConfigError, match="num_samples"):
        load_task("vqa", num_samples=0)


def test_summary_prints_sizes_balance_and_heuristics(capsys):
    text = summarize("vqa", num_samples=1500)
    assert "sizes: train 1500, val 1000, test 1000" in text
    assert "class balance" in text and "yes" in text
    q = float(text.split("question-only majority heuristic")[1].split(":")[1].split()[0])
    i = float(text.split("image-only majority heuristic")[1].split(":")[1].split()[0])
    assert q <= 0.55 and i <= 0.55
    assert "majority-class rate" in summarize("image_cls", num_samples=300)
    assert "no classes" in summarize("retrieval", num_samples=50)
    assert summary_main(["--task", "text_cls", "--num-samples", "100"]) == 0
    assert "text_cls" in capsys.readouterr().out


def test_class_balance():
    ds = load_task("image_cls", num_samples=400)
    bal = class_balance(ds)
    assert [n for n, _ in bal] == list(SHAPES) and sum(c for _, c in bal) == 400
    assert min(c for _, c in bal) > 60
