"""Named tasks over the generated world, with fixed train/val/test splits (floor 6).

``load_task(name, split)`` returns a dataset: ``len(ds)`` and ``ds[i] -> dict``. The keys of a
sample, by task (every sample also has ``"index"``, its position in the split):

===========  ===================================================================  ===========
task         sample keys                                                          target
===========  ===================================================================  ===========
vqa          image, question, answer, question_type, scene                        answer
av_qa        image, audio, sample_rate, question (transcript), answer,            answer
             question_type, speaker, scene
video_qa     video, question, answer, question_type, scene                        answer
retrieval    image, caption, scene  (``index`` is the pair id)                    --
image_cls    image, label, scene                                                  label
text_cls     caption, label, scene                                                label
video_cls    video, label, scene                                                  label
audio_cls    audio, sample_rate, label, transcript, speaker                       label
===========  ===================================================================  ===========

Types: ``image`` float32 (3, H, W) in [0, 1]; ``video`` float32 (T, 3, H, W); ``audio`` float32
(L,) (variable L) with ``sample_rate`` an int; ``answer``/``label`` an int index into
``ds.answer_vocab``/``ds.class_names``; ``scene`` and ``speaker`` JSON-able dicts.

``vqa`` and ``av_qa`` share their scenes and questions (``av_qa[i]`` is ``vqa[i]`` with the
question spoken), as do ``image_cls`` and ``text_cls`` (the caption of ``text_cls[i]`` describes
the image of ``image_cls[i]``). ``av_qa`` also carries the question's text, for inspection and
for re-synthesis by augmentations; an audio model should not read it.

Splits: ``"train"``, ``"val"``, ``"test"`` come from disjoint random streams (see
:mod:`tinymm.data.generate`), are the same on every call and machine, and ``num_samples``
only cuts a split's length (the first 100 samples of a 1,000-sample split are the 100-sample
split). Default sizes: :data:`DEFAULT_SIZES`.
"""
from __future__ import annotations

import numpy as np

from tinymm.data.annotation import LABEL_KINDS, ClassMap, LabelNoise, apply_label_noise, labels_from_scenes
from tinymm.data.generate import BLOCK, SPLITS, World, check_num_samples, check_seed, check_split, family_key, item_rng
from tinymm.data.language import canonical_caption
from tinymm.data.questions import ALL_QA_TYPES, ANSWER_INDEX, ANSWER_VOCAB, QA_TYPES, VIDEO_QA_TYPES
from tinymm.data.speech import sample_speaker, speak
from tinymm.data.world import COLOURS, SHAPES, ConfigError, check_objects, check_rate, check_sample_rate

__all__ = [
    "TASKS",
    "DEFAULT_SIZES",
    "UnknownTaskError",
    "load_task",
    "TaskDataset",
    "QATask",
    "RetrievalTask",
    "ClassificationTask",
    "AudioClsTask",
    "AUDIO_WORDS",
]

TASKS = {
    "vqa": "image + text question -> answer",
    "av_qa": "image + spoken question -> answer",
    "retrieval": "image <-> caption pairs",
    "image_cls": "image -> label from the scene graph (default: the shape of its one object)",
    "text_cls": "caption -> label from the scene graph (default: the shape it names)",
    "video_cls": "video -> motion direction (left/right/up/down)",
    "audio_cls": "one spoken word -> which colour or shape word it is",
    "video_qa": "video + text question (motion, existence, attributes, count) -> answer",
}
DEFAULT_SIZES = {"train": 5000, "val": 1000, "test": 1000}
#: the words spoken in ``audio_cls``, i.e. its class names
AUDIO_WORDS = COLOURS + SHAPES
_TAG_AUDIO_CLS = 0xA0D10

_TYPE_ANSWERS = {
    "exist": ("no", "yes"), "relation": ("no", "yes"), "colour": COLOURS, "shape": SHAPES,
    "size": ("small", "large"), "count": ("0", "1", "2", "3"), "motion": ("left", "right", "up", "down"),
}


class UnknownTaskError(ValueError):
    """``load_task`` was given a name that is not in :data:`TASKS`."""


class TaskDataset:
    """Base of the task datasets: length, bounds-checked indexing, class names, label noise.

    Targets are made block by block (:data:`~tinymm.data.generate.BLOCK` samples), with the
    block's data, so a dataset of any length is built instantly and indexing costs the same.
    ``targets``, ``clean_targets`` and ``label_noise`` cover the whole split: they are built on
    first access (generating every block once) and kept.
    """

    task: str = ""
    class_names: list[str] | None = None
    label_rate: float = 0.0
    world: World | None = None
    _BLOCK_TARGETS_KEPT = 4096  # blocks whose targets stay cached (8 KB each)

    def __init__(self, split: str, seed: int, n: int):
        self.split, self.seed, self._n = split, seed, n
        self._targets_cache: dict[int, tuple] = {}
        self._full: dict[str, object] = {}

    def __len__(self) -> int:
        return self._n

    @property
    def num_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    @property
    def class_map(self) -> ClassMap:
        return ClassMap(tuple(self.class_names))

    def _index(self, i) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"{self.task}: index must be an int, got {type(i).__name__}")
        j = int(i) + (self._n if i < 0 else 0)
        if not 0 <= j < self._n:
            raise IndexError(f"{self.task}: index {i} out of range for {self._n} samples")
        return j

    def __getitem__(self, i) -> dict:
        return self._sample(self._index(i))

    def fit_cache(self, num_samples: int | None = None) -> bool:
        """Keep ``num_samples`` consecutive samples' generated blocks cached for random access
        (:meth:`World.fit_cache <tinymm.data.generate.World.fit_cache>`); a shuffling
        :class:`~tinymm.data.loader.DataLoader` calls it. False when they do not fit."""
        return True if self.world is None else self.world.fit_cache(num_samples)

    def _sample(self, i: int) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ targets, block by block

    def _clean_block(self, b: int) -> tuple[np.ndarray, list | None]:
        """(clean targets of block ``b``, per-sample classes a label flip may pick or None)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _block_targets(self, b: int) -> tuple[np.ndarray, np.ndarray, LabelNoise | None]:
        """(clean, stored, label-noise record with in-block indices) of block ``b``."""
        hit = self._targets_cache.get(b)
        if hit is not None:
            return hit
        clean, allowed = self._clean_block(b)
        noisy, rec = clean, None
        if self.label_rate > 0:
            # Block 0 keeps the stream a whole-split draw used before generation became lazy.
            ss = np.random.SeedSequence([self.seed, family_key(self.task), SPLITS.index(self.split), 0x401CE + b])
            noisy, rec = apply_label_noise(clean, len(self.class_names), self.label_rate,
                                           np.random.default_rng(ss), allowed=allowed)
        if len(self._targets_cache) >= self._BLOCK_TARGETS_KEPT:
            try:
                self._targets_cache.pop(next(iter(self._targets_cache)))
            except (StopIteration, KeyError, RuntimeError):  # another thread got there first
                pass
        self._targets_cache[b] = hit = (clean, noisy, rec)
        return hit

    def target(self, i: int) -> int:
        """The stored target (after label noise) of sample ``i``."""
        i = self._index(i)
        return int(self._block_targets(i // BLOCK)[1][i % BLOCK])

    def head_targets(self, n: int) -> np.ndarray:
        """The stored targets of the first ``n`` samples, generating only their blocks."""
        n = min(check_num_samples(n), self._n)
        if "targets" in self._full:
            return self._full["targets"][:n]
        return np.concatenate([self._block_targets(b)[1] for b in range(-(-n // BLOCK))])[:n]

    def _whole(self, what: str):
        if what not in self._full:
            if self.class_names is None:
                return None
            limit = World.max_materialize_samples
            if self._n > limit:
                raise MemoryError(
                    f"{self.task}: {what} of all {self._n} samples would generate every sample now (at most "
                    f"{limit}); use head_targets(n) for the first n, or read targets per item (ds[i])"
                )
            blocks = [self._block_targets(b) for b in range(-(-self._n // BLOCK))]
            self._full["clean_targets"] = np.concatenate([blk[0] for blk in blocks])
            self._full["targets"] = np.concatenate([blk[1] for blk in blocks])
            if self.label_rate > 0:
                recs = [(b * BLOCK, blk[2]) for b, blk in enumerate(blocks)]
                self._full["label_noise"] = LabelNoise(
                    self.label_rate,
                    np.concatenate([off + r.indices for off, r in recs]).astype(np.int64),
                    np.concatenate([r.original for _, r in recs]).astype(np.int64),
                    np.concatenate([r.noisy for _, r in recs]).astype(np.int64),
                )
            else:
                self._full["label_noise"] = None
        return self._full[what]

    @property
    def targets(self) -> np.ndarray | None:
        """Labels/answers of the whole split as stored (after label noise), int64 (N,)."""
        return self._whole("targets")

    @property
    def clean_targets(self) -> np.ndarray | None:
        """The targets before label noise."""
        return self._whole("clean_targets")

    @property
    def label_noise(self) -> LabelNoise | None:
        """The record of flipped targets (indices into the split), or None without label noise."""
        return self._whole("label_noise") if self.label_rate > 0 else None

    def __repr__(self) -> str:
        k = "" if self.num_classes is None else f", num_classes={self.num_classes}"
        return f"<{type(self).__name__} {self.task!r} split={self.split!r} n={self._n}{k}>"


class QATask(TaskDataset):
    """``vqa`` (image), ``av_qa`` (image + spoken question) and ``video_qa`` (video)."""

    def __init__(self, task, split, *, num_samples, seed, image_size, noise, objects, video_length,
                 sample_rate, question_types, label_noise):
        super().__init__(split, seed, num_samples)
        self.task = task
        video = task == "video_qa"
        self.world = World(
            num_samples, split=split, seed=seed, family="video_qa" if video else "qa",
            image_size=image_size, objects=objects, noise=noise, video=video,
            video_length=video_length, sample_rate=sample_rate, question_types=question_types,
            images=not video, captions=False, questions=True,
        )
        self.class_names = list(ANSWER_VOCAB)
        self.label_rate = label_noise

    def _clean_block(self, b):
        blk = self.world._block(b)
        allowed = None
        if self.label_rate > 0:
            allowed = []
            for t, a in zip(blk.qtypes, blk.answers):
                words = _TYPE_ANSWERS.get(t) or (("left", "right") if ANSWER_VOCAB[a] in ("left", "right") else ("above", "below"))
                allowed.append(np.array([ANSWER_INDEX[w] for w in words]))
        return blk.answers, allowed

    @property
    def answer_vocab(self) -> list[str]:
        return self.class_names

    @property
    def question_types(self) -> list[str]:
        return self.world.question_type_names

    def _sample(self, i):
        w = self.world
        s = {}
        if self.task == "video_qa":
            s["video"] = w.video(i)
        else:
            s["image"] = w.image(i)
        if self.task == "av_qa":
            s["audio"] = w.audio(i)
            s["sample_rate"] = w.sample_rate
            s["speaker"] = w.speaker(i)
        q, _, qtype = w.question(i)
        s["question"] = q
        s["answer"] = self.target(i)
        s["question_type"] = qtype
        s["scene"] = w.scene(i)
        s["index"] = i
        return s


class RetrievalTask(TaskDataset):
    """Image-caption pairs; ``index`` is the pair id (no classes).

    ``caption_style``: ``"varied"`` (the world's captions: synonyms, prefixes, random object
    order, so several strings describe one scene) or ``"canonical"``
    (:func:`~tinymm.data.language.canonical_caption`: one wording per scene, read off its graph;
    the images and scenes are the same either way).
    """

    task = "retrieval"

    def __init__(self, split, *, num_samples, seed, image_size, noise, objects, caption_style="varied"):
        super().__init__(split, seed, num_samples)
        self.caption_style = caption_style
        self.world = World(num_samples, split=split, seed=seed, family="retrieval", image_size=image_size,
                           objects=objects, noise=noise, captions=caption_style == "varied", questions=False)

    def caption(self, i) -> str:
        i = self._index(i)
        if self.caption_style == "canonical":
            return canonical_caption(self.world.scene(i))
        return self.world.caption(i)

    def _sample(self, i):
        w = self.world
        return {"image": w.image(i), "caption": self.caption(i), "scene": w.scene(i), "index": i}


class ClassificationTask(TaskDataset):
    """``image_cls``, ``text_cls`` and ``video_cls``: one label per scene, read off its graph."""

    def __init__(self, task, split, *, num_samples, seed, image_size, noise, objects, video_length, label_by, label_noise):
        super().__init__(split, seed, num_samples)
        self.task = task
        self.label_by = label_by
        video = task == "video_cls"
        self.world = World(
            num_samples, split=split, seed=seed, family="video_cls" if video else "cls",
            image_size=image_size, objects=objects, noise=noise, video=video, video_length=video_length,
            shared_motion=video, images=task == "image_cls", captions=task == "text_cls", questions=False,
        )
        self.class_names = list(LABEL_KINDS[label_by])
        self.label_rate = label_noise

    def _clean_block(self, b):
        return labels_from_scenes(self.world._block(b).scenes, self.label_by), None

    def _sample(self, i):
        w = self.world
        s = {}
        if self.task == "image_cls":
            s["image"] = w.image(i)
        elif self.task == "text_cls":
            s["caption"] = w.caption(i)
        else:
            s["video"] = w.video(i)
        s["label"] = self.target(i)
        s["scene"] = w.scene(i)
        s["index"] = i
        return s


class AudioClsTask(TaskDataset):
    """One colour or shape word (:data:`AUDIO_WORDS`) per clip, said by a random speaker.

    Labels are drawn per block (uniform over the 9 words); the audio (~0.3-0.7 s) is
    synthesised per item.
    """

    task = "audio_cls"

    def __init__(self, split, *, num_samples, seed, sample_rate, label_noise):
        super().__init__(split, seed, num_samples)
        self.sample_rate = check_sample_rate(sample_rate)
        self.class_names = list(AUDIO_WORDS)
        self.label_rate = label_noise

    def _clean_block(self, b):
        m = min(BLOCK, self._n - b * BLOCK)
        ss = np.random.SeedSequence([self.seed, family_key("audio_cls"), SPLITS.index(self.split), b])
        return np.random.default_rng(ss).integers(0, len(AUDIO_WORDS), BLOCK)[:m].astype(np.int64), None

    def speaker(self, i: int) -> dict:
        return sample_speaker(item_rng(self.seed, "audio_cls", self.split, self._index(i), _TAG_AUDIO_CLS))

    def _sample(self, i):
        clean, noisy, _ = self._block_targets(i // BLOCK)
        word = AUDIO_WORDS[clean[i % BLOCK]]
        sp = self.speaker(i)
        return {
            "audio": speak([word], sp, self.sample_rate),
            "sample_rate": self.sample_rate,
            "label": int(noisy[i % BLOCK]),
            "transcript": word,
            "speaker": sp,
            "index": i,
        }


def load_task(
    name: str,
    split: str = "train",
    *,
    num_samples: int | None = None,
    image_size: int = 32,
    seed: int = 0,
    noise: float = 0.0,
    objects=None,
    video_length: int = 8,
    sample_rate: int = 8000,
    label_noise: float = 0.0,
    label_by: str | None = None,
    question_types=None,
    caption_style: str | None = None,
) -> TaskDataset:
    """The dataset of task ``name`` (one of :data:`TASKS`) and ``split``.

    - ``num_samples``: length of the split; default ``DEFAULT_SIZES[split]`` (5000/1000/1000).
    - ``image_size``: side of images and frames in px (>= 16); ``noise``: std of Gaussian pixel
      noise in [0, 1]; ``objects``: objects per scene, an int or (min, max) within [1, 3]
      (default (1, 3); 1 for ``image_cls``/``text_cls``/``video_cls`` unless
      ``label_by="count"``); ``video_length``: frames T (video tasks).
    - ``sample_rate``: Hz in [8000, 16000] (``av_qa``, ``audio_cls``).
    - ``label_noise``: fraction in [0, 1] of targets flipped to another class (a QA answer only
      to another answer of its question type), recorded in ``ds.label_noise``.
    - ``label_by``: ``image_cls``/``text_cls`` label: "shape" (default), "colour", "size" or
      "count".
    - ``question_types``: QA types to ask (default :data:`~tinymm.data.questions.QA_TYPES`; for
      ``video_qa``, :data:`~tinymm.data.questions.VIDEO_QA_TYPES`).
    - ``caption_style``: ``retrieval`` only: ``"varied"`` (default, the world's captions) or
      ``"canonical"`` (one wording per scene: :func:`~tinymm.data.language.canonical_caption`).

    Raises :class:`UnknownTaskError` for an unknown name and
    :class:`~tinymm.data.world.ConfigError` (both ``ValueError``) for knobs out of range.
    """
    if not isinstance(name, str):
        raise TypeError(f"load_task: name must be a task name (str), got {type(name).__name__} {name!r:.80}; "
                        f"known tasks: {', '.join(TASKS)}")
    if name not in TASKS:
        raise UnknownTaskError(f"load_task: unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    check_split(split)
    seed = check_seed(seed)
    n = check_num_samples(DEFAULT_SIZES[split] if num_samples is None else num_samples)
    label_noise = check_rate("label_noise", label_noise)
    check_rate("noise", noise)
    if label_by is not None and name not in ("image_cls", "text_cls"):
        raise ConfigError(f"label_by applies to image_cls and text_cls, not {name}")
    if caption_style is not None and name != "retrieval":
        raise ConfigError(f"caption_style applies to retrieval, not {name}")
    if question_types is not None and name not in ("vqa", "av_qa", "video_qa"):
        raise ConfigError(f"question_types applies to vqa, av_qa and video_qa, not {name}")
    if name in ("vqa", "av_qa", "video_qa"):
        video = name == "video_qa"
        qt = VIDEO_QA_TYPES if video else QA_TYPES
        if question_types is not None:
            try:
                if isinstance(question_types, (str, bytes, dict)):
                    raise TypeError
                qt = tuple(question_types)
            except TypeError:
                raise ConfigError(f"question_types must be a list of type names from {ALL_QA_TYPES}, "
                                  f"got {question_types!r}") from None
        if not video and "motion" in qt:
            raise ConfigError("motion questions need a video: use task 'video_qa'")
        if not qt or any(not isinstance(t, str) or t not in ALL_QA_TYPES for t in qt):
            raise ConfigError(f"question_types must be a subset of {ALL_QA_TYPES}, got {question_types!r}")
        return QATask(name, split, num_samples=n, seed=seed, image_size=image_size, noise=noise,
                      objects=(1, 3) if objects is None else objects, video_length=video_length,
                      sample_rate=sample_rate, question_types=qt, label_noise=label_noise)
    if name == "retrieval":
        if label_noise:
            raise ConfigError("retrieval has no labels to add noise to")
        style = "varied" if caption_style is None else caption_style
        if style not in ("varied", "canonical"):
            raise ConfigError(f"caption_style must be 'varied' or 'canonical', got {caption_style!r}")
        return RetrievalTask(split, num_samples=n, seed=seed, image_size=image_size, noise=noise,
                             objects=(1, 3) if objects is None else objects, caption_style=style)
    if name == "audio_cls":
        return AudioClsTask(split, num_samples=n, seed=seed, sample_rate=sample_rate, label_noise=label_noise)
    # image_cls, text_cls, video_cls
    by = "motion" if name == "video_cls" else (label_by or "shape")
    if by not in ("shape", "colour", "size", "count", "motion"):
        raise ConfigError(f"label_by must be one of shape, colour, size, count; got {label_by!r}")
    objs = check_objects(objects) if objects is not None else ((1, 3) if by == "count" else (1, 1))
    if by in ("shape", "colour", "size") and objs[1] > 1:
        raise ConfigError(f"label_by={by!r} needs one object per scene, got objects={objects!r}")
    return ClassificationTask(name, split, num_samples=n, seed=seed, image_size=image_size, noise=noise,
                              objects=objs, video_length=video_length, label_by=by, label_noise=label_noise)
