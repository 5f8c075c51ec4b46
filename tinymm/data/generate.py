"""The generated world as one dataset holding every modality of each scene (floor 6).

:class:`World` samples ``num_samples`` scenes and, at construction, everything that is cheap in
bulk; the rest is made per item, on demand:

=============  ==============================================================  ===============
what           how                                                             when
=============  ==============================================================  ===============
scene graph    :func:`~tinymm.data.world.sample_scenes`, arrays (N, 3)         construction
image          :func:`~tinymm.data.render.render_images`, float32 (N,3,H,W)    construction
caption        :func:`~tinymm.data.language.make_caption`, list of str         construction
question       :func:`~tinymm.data.questions.make_question`, str + answer      construction
video          :func:`~tinymm.data.render.render_video`, (T,3,H,W)             per item (lazy)
spoken quest.  :func:`~tinymm.data.speech.speak`, float32 (L,)                 per item (lazy)
=============  ==============================================================  ===============

Memory: the images dominate, ``N * 3 * H * W * 4`` bytes: 12 KB per sample at 32x32, so 123 MB
for 10,000 and 86 MB for the default train + val + test (7,000); text adds ~100 bytes per sample.
Video (``T`` images per item) and audio (~100 KB per spoken question at 8 kHz) are never stored.

**Seeding.** Scenes come in blocks of :data:`BLOCK`; block ``b`` of split ``s`` of a world
family ``f`` with seed ``seed`` draws from ``SeedSequence([seed, crc32(f), s, b])`` (spawned into
independent streams for scenes, pixel noise, captions and questions). So the data is the same on
every machine; the first ``n`` samples of a split do not depend on the split's length; train,
val and test come from different streams (disjoint); and turning captions off does not change
the questions. Per-item randomness (speaker, video noise) is seeded by the item's index.
"""
from __future__ import annotations

import random
import zlib

import numpy as np

from tinymm.data.language import make_caption
from tinymm.data.questions import ALL_QA_TYPES, ANSWER_INDEX, QA_TYPES, QuestionError, make_question
from tinymm.data.render import render_images, render_video
from tinymm.data.speech import sample_speaker, speak
from tinymm.data.world import (
    ConfigError,
    Scenes,
    check_image_size,
    check_objects,
    check_rate,
    check_sample_rate,
    check_video_length,
    concat_scenes,
    sample_scenes,
)

__all__ = ["World", "SPLITS", "BLOCK", "check_split", "check_seed", "check_num_samples", "item_rng"]

SPLITS = ("train", "val", "test")
BLOCK = 1024
_TAG_SPEAKER = 0x5BEA4
_TAG_VIDEO = 0x71DE0


def check_split(split) -> int:
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    return SPLITS.index(split)


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def check_num_samples(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"num_samples must be a positive int, got {n!r}")
    return int(n)


def family_key(family: str) -> int:
    return zlib.crc32(family.encode("utf-8"))


def item_rng(seed: int, family: str, split: str, index: int, tag: int) -> np.random.Generator:
    """The generator of per-item randomness ``tag`` for item ``index``."""
    return np.random.default_rng(np.random.SeedSequence([seed, family_key(family), SPLITS.index(split), tag, index]))


def _python_rng(ss: np.random.SeedSequence) -> random.Random:
    return random.Random(int.from_bytes(ss.generate_state(2, np.uint32).tobytes(), "little"))


class World:
    """``num_samples`` generated scenes with all their modalities (see the module docstring).

    Indexing returns a dict with ``"image"``, ``"caption"``, ``"question"``, ``"answer"``,
    ``"question_type"``, ``"scene"`` and ``"index"`` (whichever were generated); ``video(i)``,
    ``audio(i)`` and ``speaker(i)`` make the lazy modalities. Tasks (:mod:`tinymm.data.tasks`)
    are views that pick the keys of one task.
    """

    def __init__(
        self,
        num_samples: int,
        *,
        split: str = "train",
        seed: int = 0,
        family: str = "world",
        image_size: int = 32,
        objects=(1, 3),
        noise: float = 0.0,
        video: bool = False,
        video_length: int = 8,
        sample_rate: int = 8000,
        question_types=QA_TYPES,
        shared_motion: bool = False,
        images: bool = True,
        captions: bool = True,
        questions: bool = True,
    ):
        self.num_samples = n = check_num_samples(num_samples)
        check_split(split)
        self.split, self.seed, self.family = split, check_seed(seed), family
        self.image_size = check_image_size(image_size)
        self.objects = check_objects(objects)
        self.noise = check_rate("noise", noise)
        self.video_length = check_video_length(video_length)
        self.sample_rate = check_sample_rate(sample_rate)
        self.question_types = tuple(question_types)
        bad = [t for t in self.question_types if t not in ALL_QA_TYPES]
        if bad or not self.question_types:
            raise ConfigError(f"question_types must be a non-empty subset of {ALL_QA_TYPES}, got {question_types!r}")
        if questions and video and {"relation", "side"} & set(self.question_types):
            raise ConfigError("relation/side questions are not asked about video worlds (paths move objects)")
        self.video_world = bool(video)

        H = self.image_size
        self.images = np.empty((n, 3, H, H), dtype=np.float32) if images else None
        self.captions: list[str] | None = [] if captions else None
        self.questions: list[str] | None = [] if questions else None
        self.question_type_names: list[str] | None = [] if questions else None
        answers: list[int] = []
        parts: list[Scenes] = []
        key = family_key(family)
        split_id = SPLITS.index(split)
        for b in range(-(-n // BLOCK)):
            ss_scene, ss_render, ss_caption, ss_question = np.random.SeedSequence(
                [self.seed, key, split_id, b]
            ).spawn(4)
            m = min(BLOCK, n - b * BLOCK)
            sc = sample_scenes(
                BLOCK, np.random.default_rng(ss_scene), image_size=H, objects=self.objects,
                video=video, video_length=self.video_length, shared_motion=shared_motion,
            ).take(slice(0, m))
            parts.append(sc)
            if images:
                render_images(
                    sc, noise=self.noise, rng=np.random.default_rng(ss_render),
                    out=self.images[b * BLOCK : b * BLOCK + m],
                )
            if captions or questions:
                dicts = sc.to_dicts()
            if captions:
                r = _python_rng(ss_caption)
                self.captions.extend(make_caption(d, r) for d in dicts)
            if questions:
                r = _python_rng(ss_question)
                for d in dicts:
                    try:
                        q, a, t = make_question(d, r, self.question_types)
                    except QuestionError:  # e.g. only relation types asked of a 1-object scene
                        raise ConfigError(
                            f"question_types={self.question_types} cannot be asked of scenes with "
                            f"{self.objects} objects"
                        ) from None
                    self.questions.append(q)
                    self.question_type_names.append(t)
                    answers.append(ANSWER_INDEX[a])
        self.scenes = concat_scenes(parts)
        self.answers = np.asarray(answers, dtype=np.int64) if questions else None

    def __len__(self) -> int:
        return self.num_samples

    def _check(self, i) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(i).__name__}")
        j = int(i) + (self.num_samples if i < 0 else 0)
        if not 0 <= j < self.num_samples:
            raise IndexError(f"index {i} out of range for {self.num_samples} samples")
        return j

    def scene(self, i: int) -> dict:
        return self.scenes.scene(self._check(i))

    def image(self, i: int) -> np.ndarray:
        if self.images is None:
            raise ValueError("this world was generated without images")
        return self.images[self._check(i)].copy()

    def video(self, i: int) -> np.ndarray:
        """Frames of scene ``i``: float32 (T, 3, H, W), rendered now."""
        i = self._check(i)
        rng = item_rng(self.seed, self.family, self.split, i, _TAG_VIDEO) if self.noise > 0 else None
        return render_video(self.scenes.take(slice(i, i + 1)), noise=self.noise, rng=rng)[0]

    def speaker(self, i: int) -> dict:
        return sample_speaker(item_rng(self.seed, self.family, self.split, self._check(i), _TAG_SPEAKER))

    def audio(self, i: int) -> np.ndarray:
        """Question ``i`` spoken by speaker ``i``: float32 (L,), synthesised now."""
        if self.questions is None:
            raise ValueError("this world was generated without questions")
        i = self._check(i)
        return speak(self.questions[i], self.speaker(i), self.sample_rate)

    def __getitem__(self, i) -> dict:
        i = self._check(i)
        s = {}
        if self.images is not None:
            s["image"] = self.images[i].copy()
        if self.captions is not None:
            s["caption"] = self.captions[i]
        if self.questions is not None:
            s["question"] = self.questions[i]
            s["answer"] = int(self.answers[i])
            s["question_type"] = self.question_type_names[i]
        s["scene"] = self.scenes.scene(i)
        s["index"] = i
        return s
