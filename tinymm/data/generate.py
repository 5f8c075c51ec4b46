"""The generated world as one dataset holding every modality of each scene (floor 6).

:class:`World` holds ``num_samples`` scenes, generated lazily in blocks of :data:`BLOCK`: a
block is made when one of its samples is first read, and a byte-bounded cache keeps the
recently used blocks, so memory does not grow with the world's length:

=============  ==============================================================  ===============
what           how                                                             when
=============  ==============================================================  ===============
scene graph    :func:`~tinymm.data.world.sample_scenes`, arrays (B, 3)         per block
image          :func:`~tinymm.data.render.render_images`, float32 (B,3,H,W)    per block
caption        :func:`~tinymm.data.language.make_caption`, list of str         per block
question       :func:`~tinymm.data.questions.make_question`, str + answer      per block
video          :func:`~tinymm.data.render.render_video`, (T,3,H,W)             per item
spoken quest.  :func:`~tinymm.data.speech.speak`, float32 (L,)                 per item
=============  ==============================================================  ===============

Memory: a cached block of images takes ``B * 3 * H * W * 4`` bytes (12 MB at 32x32); the cache
holds at most ``World.cache_bytes`` (256 MiB). The whole-world arrays (``world.images`` etc.)
are built only when asked for, and refused with the estimated size above 4 GiB.
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
import threading
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


#: generation is lazy, so only indexing limits the size; len() needs it to fit in an index
MAX_SAMPLES = 10**12


def check_num_samples(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"num_samples must be a positive int, got {n!r}")
    if n > MAX_SAMPLES:
        raise ConfigError(f"num_samples must be at most {MAX_SAMPLES:.0e}, got {n}")
    return int(n)


def family_key(family: str) -> int:
    return zlib.crc32(family.encode("utf-8"))


def item_rng(seed: int, family: str, split: str, index: int, tag: int) -> np.random.Generator:
    """The generator of per-item randomness ``tag`` for item ``index``."""
    return np.random.default_rng(np.random.SeedSequence([seed, family_key(family), SPLITS.index(split), tag, index]))


def _python_rng(ss: np.random.SeedSequence) -> random.Random:
    return random.Random(int.from_bytes(ss.generate_state(2, np.uint32).tobytes(), "little"))


class _Block:
    """One block of :data:`BLOCK` (or fewer, at the end) generated samples."""

    __slots__ = ("scenes", "images", "captions", "questions", "qtypes", "answers", "nbytes")

    def __init__(self, scenes, captions, questions, qtypes, answers):
        self.scenes, self.captions, self.questions, self.qtypes, self.answers = scenes, captions, questions, qtypes, answers
        self.images = None
        text = sum(len(t) for t in (captions or ())) + sum(len(t) for t in (questions or ()))
        # scene arrays, the strings with Python's per-object overhead, the answers
        self.nbytes = len(scenes) * (8 + 7 * 3 * 8) + text + 80 * len(scenes) * (
            (captions is not None) + 2 * (questions is not None))


class World:
    """``num_samples`` generated scenes with all their modalities (see the module docstring).

    Indexing returns a dict with ``"image"``, ``"caption"``, ``"question"``, ``"answer"``,
    ``"question_type"``, ``"scene"`` and ``"index"`` (whichever were generated); ``video(i)``,
    ``audio(i)`` and ``speaker(i)`` make the lazy modalities. Tasks (:mod:`tinymm.data.tasks`)
    are views that pick the keys of one task.

    Generation is lazy, block by block: constructing a world of any size is instant, indexing
    generates (and caches) the block of :data:`BLOCK` samples that holds the item, and the cache
    keeps at most :attr:`cache_bytes` (256 MiB) of blocks, least recently used first out. So a
    world of 10**8 samples costs no more memory than one of 10**4; the whole-world arrays
    (``images``, ``captions``, ``questions``, ``answers``, ``question_type_names``, ``scenes``)
    are built on first access, and refused (``MemoryError`` naming the size) beyond
    :attr:`max_materialize_samples` (2**21) samples or :attr:`max_materialize_bytes` (4 GiB);
    :meth:`head` gives the first ``n``. Values do not depend on the order of access.
    """

    cache_bytes = 256 * 2**20
    max_materialize_bytes = 4 * 2**30
    #: the most :meth:`fit_cache` lets the cache grow to for a shuffled reader
    max_cache_bytes = 4 * 2**30
    #: generating the text of one sample takes ~50 us: past this many, a whole-world array
    #: would take minutes, so it is refused (read ``head(what, n)`` or index items instead)
    max_materialize_samples = 2**21

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
        self.num_samples = check_num_samples(num_samples)
        check_split(split)
        if not isinstance(family, str):
            raise ConfigError(f"family must be a str (it seeds the world's streams), got {family!r}")
        self.split, self.seed, self.family = split, check_seed(seed), family
        self.image_size = check_image_size(image_size)
        self.objects = check_objects(objects)
        self.noise = check_rate("noise", noise)
        self.video_length = check_video_length(video_length)
        self.sample_rate = check_sample_rate(sample_rate)
        if isinstance(question_types, str) or not hasattr(question_types, "__iter__"):
            raise ConfigError(f"question_types must be a sequence of type names from {ALL_QA_TYPES}, got {question_types!r}")
        self.question_types = tuple(question_types)
        bad = [t for t in self.question_types if not isinstance(t, str) or t not in ALL_QA_TYPES]
        if bad or not self.question_types:
            raise ConfigError(f"question_types must be a non-empty subset of {ALL_QA_TYPES}, got {question_types!r}")
        if questions and video and {"relation", "side"} & set(self.question_types):
            raise ConfigError("relation/side questions are not asked about video worlds (paths move objects)")
        self.video_world = bool(video)
        self.shared_motion = bool(shared_motion)
        self.has_images, self.has_captions, self.has_questions = bool(images), bool(captions), bool(questions)
        self.num_blocks = -(-self.num_samples // BLOCK)
        self._key, self._split_id = family_key(family), SPLITS.index(split)
        self._cache: dict[int, _Block] = {}  # insertion order = recency (oldest first)
        self._cached_bytes = 0
        self._full: dict[str, object] = {}
        self._lock = threading.RLock()  # a DataLoader's prefetch thread may read alongside the caller
        self._block(0)  # generate the first block now: a bad question_types/objects pair fails here

    def __len__(self) -> int:
        return self.num_samples

    def __getstate__(self) -> dict:
        # copies and pickles carry the settings, not the lock or the cache (blocks regenerate)
        state = dict(self.__dict__)
        state.update(_lock=None, _cache={}, _cached_bytes=0, _full={})
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ blocks

    def _seeds(self, b: int):
        # (scenes, pixel noise, captions, questions), as the module docstring describes
        return np.random.SeedSequence([self.seed, self._key, self._split_id, b]).spawn(4)

    def _block_len(self, b: int) -> int:
        return min(BLOCK, self.num_samples - b * BLOCK)

    def _block(self, b: int) -> _Block:
        """Block ``b`` (scenes and text), from the cache or generated now."""
        with self._lock:
            blk = self._cache.pop(b, None)
            if blk is None:
                blk = self._generate(b)
                self._cached_bytes += blk.nbytes
            self._cache[b] = blk  # most recently used last
            self._evict(keep=b)
            return blk

    def _evict(self, keep: int) -> None:
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            oldest = next(iter(self._cache))
            if oldest == keep:
                break
            self._cached_bytes -= self._cache.pop(oldest).nbytes

    def _generate(self, b: int) -> _Block:
        ss_scene, _, ss_caption, ss_question = self._seeds(b)
        m = self._block_len(b)
        # Always draw a whole block of scenes, so a sample does not depend on the world's length.
        sc = sample_scenes(
            BLOCK, np.random.default_rng(ss_scene), image_size=self.image_size, objects=self.objects,
            video=self.video_world, video_length=self.video_length, shared_motion=self.shared_motion,
        ).take(slice(0, m))
        captions = questions = qtypes = answers = None
        if self.has_captions or self.has_questions:
            dicts = sc.to_dicts()
        if self.has_captions:
            r = _python_rng(ss_caption)
            captions = [make_caption(d, r) for d in dicts]
        if self.has_questions:
            r = _python_rng(ss_question)
            questions, qtypes, answers = [], [], []
            for d in dicts:
                try:
                    q, a, t = make_question(d, r, self.question_types)
                except QuestionError:  # e.g. only relation types asked of a 1-object scene
                    raise ConfigError(
                        f"question_types={self.question_types} cannot be asked of scenes with "
                        f"{self.objects} objects"
                    ) from None
                questions.append(q)
                qtypes.append(t)
                answers.append(ANSWER_INDEX[a])
            answers = np.asarray(answers, dtype=np.int64)
        return _Block(sc, captions, questions, qtypes, answers)

    def _block_images(self, b: int) -> np.ndarray:
        """The images of block ``b``, float32 (m, 3, H, W), rendered on first use."""
        if not self.has_images:
            raise ValueError("this world was generated without images")
        with self._lock:
            blk = self._block(b)
            if blk.images is None:
                blk.images = render_images(blk.scenes, noise=self.noise, rng=np.random.default_rng(self._seeds(b)[1]))
                blk.nbytes += blk.images.nbytes
                self._cached_bytes += blk.images.nbytes
                self._evict(keep=b)
            return blk.images

    def block_of(self, i: int) -> tuple[int, int]:
        """(block, position in the block) of sample ``i``."""
        i = self._check(i)
        return i // BLOCK, i % BLOCK

    def fit_cache(self, num_samples: int | None = None) -> bool:
        """Grow the block cache so that ``num_samples`` consecutive samples (default: the whole
        world) stay cached, and say whether they fit.

        A reader that visits samples in random order (a shuffled epoch) touches blocks in random
        order: with a cache smaller than the blocks it visits, least-recently-used eviction drops
        blocks that are needed again soon, and each batch regenerates dozens of blocks (~0.1 s
        each at 32x32) — a shuffled epoch over 30,000 pairs ran ~100x slower than over 10,000.
        The cache is raised to the blocks' size (plus a quarter for text and a block of
        straddle), at most :attr:`max_cache_bytes`; returns False when they do not fit in that.
        It never shrinks the cache.
        """
        n = self.num_samples if num_samples is None else min(check_num_samples(num_samples), self.num_samples)
        span = min(self.num_samples, n + BLOCK)  # a window of n samples can straddle one more block
        need = int(1.25 * self.estimated_bytes() * span / self.num_samples)
        if need > self.max_cache_bytes:
            return False
        if need > self.cache_bytes:
            self.cache_bytes = need  # an instance attribute: other worlds keep the default
        return True

    # ------------------------------------------------------------------ whole-world arrays

    def estimated_bytes(self, what: str = "all") -> int:
        """Bytes the whole-world array ``what`` ("images", "text" or "all") would take."""
        H, n = self.image_size, self.num_samples
        images = n * 3 * H * H * 4 if self.has_images else 0
        text = n * 200 * (self.has_captions + self.has_questions) + n * 180
        return {"images": images, "text": text, "all": images + text}[what]

    def head(self, what: str, n: int):
        """The first ``n`` entries of the whole-world array ``what`` ("images", "captions",
        "questions", "question_type_names", "answers" or "scenes"), generating only the blocks
        they lie in."""
        n = min(check_num_samples(n), self.num_samples)
        if what in self._full:
            full = self._full[what]
            return full.take(slice(0, n)) if what == "scenes" else full[:n]
        if what not in ("images", "captions", "questions", "question_type_names", "answers", "scenes"):
            raise ValueError(f"World.head: unknown field {what!r}")
        if (what == "images" and not self.has_images) or (what == "captions" and not self.has_captions) or (
                what in ("questions", "question_type_names", "answers") and not self.has_questions):
            raise ValueError(f"this world was generated without {what}")
        if n > self.max_materialize_samples:
            raise MemoryError(
                f"World.{what} for {n} samples would generate them all now (at most "
                f"{self.max_materialize_samples}); use head({what!r}, n) for the first n, or index samples "
                f"(world[i]), which generates them block by block"
            )
        need = self.estimated_bytes("images" if what == "images" else "text") * n // self.num_samples
        if need > self.max_materialize_bytes:
            raise MemoryError(
                f"World.{what} for {n} samples would take about {need / 2**30:.1f} GiB "
                f"(limit {self.max_materialize_bytes / 2**30:.0f} GiB); index samples (world[i]) instead, "
                f"which generates them block by block"
            )
        blocks = range(-(-n // BLOCK))
        if what == "images":
            H = self.image_size
            out = np.empty((n, 3, H, H), dtype=np.float32)
            for b in blocks:
                part = self._block_images(b)
                out[b * BLOCK : b * BLOCK + len(part)] = part[: n - b * BLOCK]
        elif what == "scenes":
            out = concat_scenes([self._block(b).scenes for b in blocks]).take(slice(0, n))
        elif what == "answers":
            out = np.concatenate([self._block(b).answers for b in blocks])[:n]
        else:
            field = {"captions": "captions", "questions": "questions", "question_type_names": "qtypes"}[what]
            out = [t for b in blocks for t in getattr(self._block(b), field)][:n]
        return out

    def _materialize(self, what: str):
        if what not in self._full:
            self._full[what] = self.head(what, self.num_samples)
        return self._full[what]

    @property
    def images(self) -> np.ndarray | None:
        """All images, float32 (N, 3, H, W) (built on first access; see the class docstring)."""
        return self._materialize("images") if self.has_images else None

    @property
    def captions(self) -> list[str] | None:
        return self._materialize("captions") if self.has_captions else None

    @property
    def questions(self) -> list[str] | None:
        return self._materialize("questions") if self.has_questions else None

    @property
    def question_type_names(self) -> list[str] | None:
        return self._materialize("question_type_names") if self.has_questions else None

    @property
    def answers(self) -> np.ndarray | None:
        return self._materialize("answers") if self.has_questions else None

    @property
    def scenes(self) -> Scenes:
        return self._materialize("scenes")

    # ------------------------------------------------------------------ items

    def _check(self, i) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(i).__name__}")
        j = int(i) + (self.num_samples if i < 0 else 0)
        if not 0 <= j < self.num_samples:
            raise IndexError(f"index {i} out of range for {self.num_samples} samples")
        return j

    def scene(self, i: int) -> dict:
        b, k = self.block_of(i)
        return self._block(b).scenes.scene(k)

    def image(self, i: int) -> np.ndarray:
        b, k = self.block_of(i)
        return self._block_images(b)[k].copy()

    def caption(self, i: int) -> str:
        if not self.has_captions:
            raise ValueError("this world was generated without captions")
        b, k = self.block_of(i)
        return self._block(b).captions[k]

    def question(self, i: int) -> tuple[str, int, str]:
        """(question, answer index, question type) of sample ``i``."""
        if not self.has_questions:
            raise ValueError("this world was generated without questions")
        b, k = self.block_of(i)
        blk = self._block(b)
        return blk.questions[k], int(blk.answers[k]), blk.qtypes[k]

    def video(self, i: int) -> np.ndarray:
        """Frames of scene ``i``: float32 (T, 3, H, W), rendered now."""
        b, k = self.block_of(i)
        i = b * BLOCK + k
        rng = item_rng(self.seed, self.family, self.split, i, _TAG_VIDEO) if self.noise > 0 else None
        return render_video(self._block(b).scenes.take(slice(k, k + 1)), noise=self.noise, rng=rng)[0]

    def speaker(self, i: int) -> dict:
        return sample_speaker(item_rng(self.seed, self.family, self.split, self._check(i), _TAG_SPEAKER))

    def audio(self, i: int) -> np.ndarray:
        """Question ``i`` spoken by speaker ``i``: float32 (L,), synthesised now."""
        q = self.question(i)[0]
        return speak(q, self.speaker(i), self.sample_rate)

    def __getitem__(self, i) -> dict:
        b, k = self.block_of(i)
        blk = self._block(b)
        s = {}
        if self.has_images:
            s["image"] = self._block_images(b)[k].copy()
        if self.has_captions:
            s["caption"] = blk.captions[k]
        if self.has_questions:
            s["question"] = blk.questions[k]
            s["answer"] = int(blk.answers[k])
            s["question_type"] = blk.qtypes[k]
        s["scene"] = blk.scenes.scene(k)
        s["index"] = b * BLOCK + k
        return s
