"""DataLoader batching, padding collate, deterministic shuffling, prefetch thread, small datasets."""
import threading

import numpy as np
import pytest

from tinymm.data.loader import (
    ArrayDataset,
    DataLoader,
    Dataset,
    Subset,
    TextCollate,
    default_collate,
    make_collate,
    random_split,
)
from tinymm.data.tokenizer import Tokenizer


class ToyWorld:
    """Samples shaped like the generated world's: image, variable-length audio, text, scene."""

    def __init__(self, n=10):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        return {
            "image": rng.random((3, 4, 5), dtype=np.float32),
            "audio": rng.standard_normal(20 + 7 * i).astype(np.float32),
            "sample_rate": 8000,
            "caption": f"a red cube number {i}" if i % 2 else "a blue sphere",
            "question": "what colour is the cube?",
            "answer": i % 3,
            "label": i % 2,
            "scene": {"objects": [{"shape": "cube", "id": i}]},
            "index": i,
        }


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "tinymm-prefetch"]


def test_toy_world_is_a_dataset():
    assert isinstance(ToyWorld(), Dataset)
    assert isinstance(ArrayDataset(x=np.zeros(3)), Dataset)


def test_default_collate_stacks_pads_and_lists():
    ds = ToyWorld(4)
    batch = default_collate([ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 4, 5) and batch["image"].dtype == np.float32
    lengths = [20 + 7 * i for i in range(4)]
    assert batch["audio"].shape == (4, max(lengths)) and batch["audio"].dtype == np.float32
    assert batch["audio_lengths"].tolist() == lengths and batch["audio_lengths"].dtype == np.int64
    assert batch["audio_mask"].dtype == np.bool_
    for i, n in enumerate(lengths):
        np.testing.assert_array_equal(batch["audio"][i, :n], ds[i]["audio"])
        assert (batch["audio"][i, n:] == 0).all()
        assert batch["audio_mask"][i].tolist() == [True] * n + [False] * (max(lengths) - n)
    assert batch["answer"].dtype == np.int64 and batch["answer"].tolist() == [0, 1, 2, 0]
    assert batch["index"].tolist() == [0, 1, 2, 3] and batch["sample_rate"].tolist() == [8000] * 4
    assert batch["caption"] == [ds[i]["caption"] for i in range(4)]
    assert batch["scene"] == [ds[i]["scene"] for i in range(4)]


def test_default_collate_numbers_and_padding_rules():
    b = default_collate([{"x": 1.5, "y": np.float64(2.0), "z": True}, {"x": 2, "y": np.float64(1.0), "z": False}])
    assert b["x"].dtype == np.float32 and b["y"].dtype == np.float64 and b["z"].dtype == np.bool_
    # audio always gets lengths/mask (same keys every batch), even when the lengths agree
    b = default_collate([{"audio": np.ones(5, np.float32)}, {"audio": np.ones(5, np.float32)}])
    assert b["audio"].shape == (2, 5) and b["audio_mask"].all() and b["audio_lengths"].tolist() == [5, 5]
    # other keys are padded only when their first axis differs (e.g. video with varying T)
    video = [np.ones((t, 3, 2, 2), np.float32) for t in (2, 4)]
    b = default_collate([{"video": v} for v in video])
    assert b["video"].shape == (2, 4, 3, 2, 2) and b["video_lengths"].tolist() == [2, 4]
    assert b["video_mask"].tolist() == [[True, True, False, False], [True] * 4]
    b = default_collate([{"emb": np.ones(3)}, {"emb": np.ones(3)}])
    assert set(b) == {"emb"}


def test_default_collate_errors():
    with pytest.raises(ValueError, match="empty"):
        default_collate([])
    with pytest.raises(TypeError, match="sample 1 is a tuple"):
        default_collate([{"a": 1}, (1,)])
    with pytest.raises(KeyError, match="sample 1 has different keys"):
        default_collate([{"a": 1}, {"b": 1}])
    with pytest.raises(ValueError, match="cannot be padded"):
        default_collate([{"image": np.zeros((3, 4, 4))}, {"image": np.zeros((3, 5, 5))}])
    with pytest.raises(TypeError, match="list of sample dicts"):
        default_collate({"a": 1})


def test_text_collate_tokenises_and_pads():
    ds = ToyWorld(6)
    tok = Tokenizer.build([ds[i]["caption"] for i in range(6)] + [ds[0]["question"]])
    collate = make_collate(tok, max_length=6)
    assert isinstance(collate, TextCollate)
    samples = [ds[i] for i in range(4)]
    b = collate(samples)
    ids, mask = b["caption_ids"], b["caption_mask"]
    assert ids.dtype == np.int64 and mask.dtype == np.bool_ and ids.shape == mask.shape == (4, 6)
    assert tok.decode(ids[0]) == "a blue sphere"
    assert tok.decode(ids[1]) == "a red cube number"  # truncated to [CLS] + 4 words + [SEP]
    assert mask[0].tolist() == [True] * 5 + [False]
    assert b["question_ids"].shape == (4, 6)  # "what colour is the cube ?" is 6 tokens + 2 -> cut to 6
    assert b["caption"] == [s["caption"] for s in samples]
    assert b["audio_mask"].shape == b["audio"].shape  # the rest went through default_collate
    loose = make_collate(tok)(samples)
    assert loose["caption_ids"].shape == (4, 7)
    with pytest.raises(TypeError, match="batch_encode"):
        make_collate(object())


def test_loader_batches_len_and_drop_last():
    ds = ArrayDataset(x=np.arange(10), y=np.arange(10) * 2.0)
    loader = DataLoader(ds, batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b["x"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0]["y"].dtype == np.float64
    loader = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(loader) == 2 and [len(b["x"]) for b in loader] == [4, 4]
    assert len(DataLoader(ds, batch_size=20, drop_last=True)) == 0 and list(DataLoader(ds, 20, drop_last=True)) == []


def test_shuffling_is_deterministic_per_seed_and_epoch():
    ds = ArrayDataset(x=np.arange(50))
    a = DataLoader(ds, batch_size=8, shuffle=True, seed=3)
    b = DataLoader(ds, batch_size=8, shuffle=True, seed=3)
    order = lambda loader: np.concatenate([batch["x"] for batch in loader]).tolist()  # noqa: E731
    e0, e1 = order(a), order(a)  # iterating twice gives epochs 0 and 1
    assert sorted(e0) == sorted(e1) == list(range(50))
    assert e0 != e1 and e0 != list(range(50))
    assert order(b) == e0 and order(b) == e1
    assert e0 == np.random.default_rng([3, 0]).permutation(50).tolist()
    b.set_epoch(1)
    assert order(b) == e1
    assert a.indices(5).tolist() == b.indices(5).tolist()
    assert order(DataLoader(ds, 8, shuffle=True, seed=4)) != e0
    unseeded = DataLoader(ds, 8, shuffle=True)
    assert isinstance(unseeded.seed, int)
    assert order(DataLoader(ds, 8, shuffle=True, seed=unseeded.seed)) == order(unseeded)


def test_prefetch_gives_the_same_batches_and_cleans_up():
    ds = ToyWorld(9)
    plain = list(DataLoader(ds, batch_size=2, shuffle=True, seed=1))
    fetched = list(DataLoader(ds, batch_size=2, shuffle=True, seed=1, prefetch=2))
    assert len(plain) == len(fetched) == 5
    for p, f in zip(plain, fetched):
        assert p.keys() == f.keys()
        np.testing.assert_array_equal(p["audio"], f["audio"])
        assert p["caption"] == f["caption"]
    assert _prefetch_threads() == []
    # breaking out early stops and joins the thread
    loader = DataLoader(ArrayDataset(x=np.arange(1000)), batch_size=1, prefetch=3)
    for i, _ in enumerate(loader):
        if i == 2:
            break
    assert _prefetch_threads() == []
    it = iter(loader)
    next(it)
    it.close()
    assert _prefetch_threads() == []
    with iter(loader) as it:
        next(it)
    assert _prefetch_threads() == []


class Exploding:
    def __len__(self):
        return 10

    def __getitem__(self, i):
        if i == 5:
            raise RuntimeError("sample 5 is broken")
        return {"x": i}


@pytest.mark.parametrize("prefetch", [0, 2])
def test_worker_exceptions_reach_the_loop(prefetch):
    loader = DataLoader(Exploding(), batch_size=2, prefetch=prefetch)
    seen = []
    with pytest.raises(RuntimeError, match="sample 5 is broken"):
        for b in loader:
            seen.append(b["x"].tolist())
    assert seen == [[0, 1], [2, 3]]
    assert _prefetch_threads() == []


def test_loader_errors_name_the_argument():
    ds = ArrayDataset(x=np.arange(3))
    with pytest.raises(ValueError, match="DataLoader: batch_size must be a positive int, got 0"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=2.0)
    with pytest.raises(ValueError, match="prefetch"):
        DataLoader(ds, prefetch=-1)
    with pytest.raises(ValueError, match="seed"):
        DataLoader(ds, seed=-5)
    with pytest.raises(TypeError, match="collate_fn must be callable"):
        DataLoader(ds, collate_fn="stack")
    with pytest.raises(TypeError, match="__len__ and __getitem__"):
        DataLoader(42)
    with pytest.raises(ValueError, match="set_epoch"):
        DataLoader(ds).set_epoch(-1)


def test_array_dataset_subset_and_random_split():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    ds = ArrayDataset(image=x, label=y)
    assert len(ds) == 10 and ds[3]["image"].tolist() == [6, 7] and ds[-1]["label"] == 9
    with pytest.raises(ValueError, match="share their first dimension"):
        ArrayDataset(a=np.zeros(3), b=np.zeros(4))
    with pytest.raises(IndexError, match="out of range"):
        ds[10]
    sub = Subset(ds, [7, 2])
    assert len(sub) == 2 and sub[0]["label"] == 7 and sub[-1]["label"] == 2
    with pytest.raises(IndexError, match="indices must lie in"):
        Subset(ds, [10])
    parts = random_split(ds, (0.5, 0.3, 0.2), seed=0)
    assert [len(p) for p in parts] == [5, 3, 2]
    labels = [sorted(p[i]["label"] for i in range(len(p))) for p in parts]
    assert sorted(sum(labels, [])) == list(range(10))
    again = random_split(ds, (0.5, 0.3, 0.2), seed=0)
    assert [p.indices.tolist() for p in again] == [p.indices.tolist() for p in parts]
    assert [len(p) for p in random_split(ds, [7, 3])] == [7, 3]
    assert [len(p) for p in random_split(ArrayDataset(x=np.arange(11)), [0.5, 0.5])] == [6, 5]
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.6])
    # a loader over a split
    b = next(iter(DataLoader(parts[0], batch_size=5)))
    assert b["label"].tolist() == parts[0].indices.tolist()


def test_data_modules_stay_on_their_floor():
    """tinymm.data is floor 6: these modules import only NumPy, the standard library and floors <= 2
    (importing the ``tinymm`` package itself loads Tensor, so this reads the import statements)."""
    import ast
    import importlib

    allowed = ("tinymm.data", "tinymm.backend", "tinymm.kernels", "tinymm._atomic")
    for name in ("loader", "tokenizer", "audio_features", "real"):
        module = importlib.import_module(f"tinymm.data.{name}")
        tree = ast.parse(open(module.__file__, encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = [node.module or ""] if node.level == 0 else ["tinymm.data"]
            else:
                continue
            for t in targets:
                assert not t.startswith("torch"), f"tinymm.data.{name} imports {t}"
                if t == "tinymm" or t.startswith("tinymm."):
                    assert t.startswith(allowed), f"tinymm.data.{name} imports {t} (above floor 2)"


def test_epoch_size_walks_windows_of_fresh_samples():
    ds = ArrayDataset(x=np.arange(10))
    for shuffle in (False, True):
        dl = DataLoader(ds, batch_size=3, shuffle=shuffle, seed=1, epoch_size=4)
        assert len(dl) == 2
        seen = [np.concatenate([b["x"] for b in dl]) for _ in range(3)]  # epochs 0, 1, 2
        assert sorted(seen[0]) == [0, 1, 2, 3]
        assert sorted(seen[1]) == [4, 5, 6, 7]
        assert sorted(seen[2]) == [0, 1, 8, 9]  # wraps around the end
        dl.set_epoch(1)
        assert np.array_equal(np.concatenate([b["x"] for b in dl]), seen[1])  # a function of (seed, epoch)
    with pytest.raises(ValueError, match="epoch_size=11 is larger than the dataset"):
        DataLoader(ds, epoch_size=11)
    with pytest.raises(ValueError, match="epoch_size must be a positive int"):
        DataLoader(ds, epoch_size=0)
