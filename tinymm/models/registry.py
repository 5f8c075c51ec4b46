"""From a task name and a model name to a model, its collate and its loss: ``build`` and ``recipe``.

    rec = recipe("vqa")                        # tokenizer, collate, loss, target, class names
    model = build("vqa", "relational", vocab_size=len(rec.tokenizer))

The models meet the Trainer at one contract: ``model(batch)`` takes the dict ``rec.collate``
yields (arrays as Tensors) and returns logits; ``rec.loss(output, batch)`` is the loss.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import tinymm.nn.functional as F
from tinymm.data import Tokenizer, load_task, make_collate
from tinymm.models.audio import AudioEncoder
from tinymm.models.av_qa import AVQAModel
from tinymm.models.fusion import HEADS
from tinymm.models.image import ImageClassifier
from tinymm.models.resnet import ResNet
from tinymm.models.video import VideoEncoder
from tinymm.models.video_qa import VideoQAModel
from tinymm.models.vit import ViT
from tinymm.models.vqa import VQAModel
from tinymm.models.text_classifier import TextClassifier

#: (task, model name) → how to build it: a class and the config it gets beyond the task's sizes
MODELS = {
    ("vqa", "relational"): (VQAModel, {"fusion": "relational"}),
    ("vqa", "film"): (VQAModel, {"fusion": "film"}),
    ("vqa", "early"): (VQAModel, {"fusion": "early"}),
    ("vqa", "late"): (VQAModel, {"fusion": "late"}),
    ("vqa", "gated"): (VQAModel, {"fusion": "gated"}),
    ("vqa", "cross_attention"): (VQAModel, {"fusion": "cross_attention"}),
    ("vqa", "find"): (VQAModel, {"fusion": "find"}),
    ("vqa", "image_only"): (VQAModel, {"fusion": "film", "use_question": False}),
    ("vqa", "text_only"): (VQAModel, {"fusion": "early", "use_image": False}),
    ("image_cls", "cnn"): (ImageClassifier, {}),
    # --- encoders and the audio/video task models (image_cls, audio_cls, video_cls, av_qa, video_qa)
    ("image_cls", "resnet"): (ResNet, {}),
    ("image_cls", "vit"): (ViT, {}),
    ("audio_cls", "gru"): (AudioEncoder, {"sequence": "gru"}),
    ("audio_cls", "transformer"): (AudioEncoder, {"sequence": "transformer", "num_layers": 2}),
    ("video_cls", "gru"): (VideoEncoder, {"temporal": "gru"}),
    ("video_cls", "lstm"): (VideoEncoder, {"temporal": "lstm"}),
    ("video_cls", "attention"): (VideoEncoder, {"temporal": "attention"}),
    **{("av_qa", head): (AVQAModel, {"fusion": head}) for head in HEADS},
    ("av_qa", "image_only"): (AVQAModel, {"fusion": "film", "use_audio": False}),
    ("av_qa", "audio_only"): (AVQAModel, {"fusion": "early", "use_image": False}),
    **{("video_qa", head): (VideoQAModel, {"fusion": head}) for head in HEADS},
    ("video_qa", "video_only"): (VideoQAModel, {"fusion": "film", "use_question": False}),
    ("video_qa", "text_only"): (VideoQAModel, {"fusion": "early", "use_video": False}),
    # --- end of the audio/video block
}
DEFAULT_MODEL = {"vqa": "find", "image_cls": "cnn",
                 "audio_cls": "gru", "video_cls": "gru", "av_qa": "film", "video_qa": "film"}
BASELINES = {"vqa": ("image_only", "text_only"),
             "av_qa": ("image_only", "audio_only"), "video_qa": ("video_only", "text_only")}
#: the sample rate of the audio tasks' clips (``load_task``'s default), which their models' features assume
AUDIO_SAMPLE_RATE = 8000

# --- text_cls (caption -> label): a Transformer text encoder (default) or a GRU, + a linear head.
# TextClassifier.from_pretrained(...) builds one on a pretrained encoder (tinymm MLM or MiniLM).
MODELS.update({
    ("text_cls", "transformer"): (TextClassifier, {"encoder": "transformer"}),
    ("text_cls", "gru"): (TextClassifier, {"encoder": "gru"}),
})
DEFAULT_MODEL["text_cls"] = "transformer"
# --- end text_cls


class UnknownModelError(ValueError):
    """``build`` was given a task/model pair that is not in :data:`MODELS`."""


def known_models(task: str) -> list[str]:
    return [m for (t, m) in MODELS if t == task]


@dataclass
class Recipe:
    """What a task needs around its model: target key, class names, text tokenizer, collate, loss."""

    task: str
    target_key: str
    class_names: list
    text_keys: tuple = ()
    tokenizer: Tokenizer | None = None
    image_size: int = 32
    extra: dict = field(default_factory=dict)

    @property
    def collate(self):
        if self.tokenizer is None:
            from tinymm.data import default_collate

            return default_collate
        return make_collate(self.tokenizer, text_keys=self.text_keys)

    def loss(self, output, batch):
        return F.cross_entropy(output, batch[self.target_key])

    def model_sizes(self) -> dict:
        """The config values a model of this task takes from the task itself."""
        if self.task == "text_cls":  # --- text_cls
            return {"vocab_size": len(self.tokenizer), "num_labels": len(self.class_names)}
        if self.task == "vqa":
            return {"vocab_size": len(self.tokenizer), "num_answers": len(self.class_names)}
        # --- audio/video tasks
        if self.task == "audio_cls":
            return {"num_classes": len(self.class_names), "sample_rate": AUDIO_SAMPLE_RATE}
        if self.task == "av_qa":
            return {"num_answers": len(self.class_names), "sample_rate": AUDIO_SAMPLE_RATE}
        if self.task == "video_qa":
            return {"vocab_size": len(self.tokenizer), "num_answers": len(self.class_names),
                    "image_size": self.image_size}
        # --- end of the audio/video tasks
        return {"num_classes": len(self.class_names), "image_size": self.image_size}


def task_tokenizer(task: str, image_size: int = 32) -> Tokenizer:
    """A word tokenizer over the task's texts (the first 4,000 training questions and captions).

    The world's language is templated, so this covers its vocabulary; a word it never saw
    encodes as ``[UNK]``. The vocabulary depends only on the generated world, not on a run.
    """
    ds = load_task(task, "train", num_samples=4000, image_size=image_size)
    if task in ("vqa", "video_qa"):  # the questions alone, without rendering images or videos (10-60x faster)
        return Tokenizer.build(ds.world.question(i)[0] for i in range(len(ds)))
    return Tokenizer.build(ds[i]["caption"] for i in range(len(ds)))


def recipe(task: str, image_size: int = 32, tokenizer: Tokenizer | None = None) -> Recipe:
    if task == "retrieval":  # contrastive: its own recipe (block below)
        return retrieval_recipe(image_size, tokenizer)
    if task not in DEFAULT_MODEL:
        raise UnknownModelError(f"no models for task {task!r} yet; tasks with models: {', '.join(DEFAULT_MODEL)}")
    ds = load_task(task, "val", num_samples=1, image_size=image_size)
    if task == "vqa":
        tok = tokenizer or task_tokenizer(task, image_size)
        return Recipe(task, "answer", list(ds.answer_vocab), ("question",), tok, image_size)
    if task == "text_cls":  # --- text_cls: the word tokenizer of its captions, or the model's own
        tok = tokenizer or task_tokenizer(task, image_size)
        return Recipe(task, "label", list(ds.class_names), ("caption",), tok, image_size)
    # --- audio/video tasks: av_qa's question is spoken (its transcript is never tokenised)
    if task == "video_qa":
        tok = tokenizer or task_tokenizer(task, image_size)
        return Recipe(task, "answer", list(ds.answer_vocab), ("question",), tok, image_size)
    if task == "av_qa":
        return Recipe(task, "answer", list(ds.answer_vocab), (), None, image_size)
    # --- end of the audio/video tasks; image_cls, audio_cls, video_cls:
    return Recipe(task, "label", list(ds.class_names), (), None, image_size)


def preset_config(task: str, name: str | None, hints: dict) -> dict:
    """The entries of ``hints`` (a preset's size knobs, e.g. ``tinymm train --preset tiny``'s
    ``channels``/``hidden``/...) that the model ``name`` of ``task`` takes; the others are dropped.

    Models differ in their knobs (the seed CNN has none); a preset's hints apply where they fit.
    A user's own ``**config`` to :func:`build` is never filtered.
    """
    import inspect

    cls, preset = MODELS[(task, check(task, name))]
    takes = set(inspect.signature(cls.__init__).parameters) - set(preset)
    return {k: v for k, v in hints.items() if k in takes}


def check(task: str, name: str | None = None) -> str:
    """The model name ``build`` would use for (task, name); raise UnknownModelError if there is none."""
    from tinymm.data import TASKS

    if task not in TASKS:
        raise UnknownModelError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    if task not in DEFAULT_MODEL:
        raise UnknownModelError(f"no models for task {task!r} yet; tasks with models: {', '.join(DEFAULT_MODEL)}")
    name = name or DEFAULT_MODEL[task]
    if (task, name) not in MODELS:
        known = ", ".join(known_models(task)) or "none"
        raise UnknownModelError(f"unknown model {name!r} for task {task!r}; known: {known}")
    return name


def build(task: str, name: str | None = None, rec: Recipe | None = None, **config):
    """The model ``name`` (default: the task's default) for ``task``, sized from its recipe."""
    name = check(task, name)
    cls, preset = MODELS[(task, name)]
    rec = rec or recipe(task)
    return cls(**{**rec.model_sizes(), **preset, **config})


# ----------------------------------------------------------------------------- retrieval (CLIP)
# The contrastive task: image-caption pairs, no classes. Its model returns the (B, B) logits of
# the batch's images against its captions; the loss is the symmetric InfoNCE.
from tinymm.models.clip import CLIPModel, clip_loss  # noqa: E402

MODELS[("retrieval", "clip")] = (CLIPModel, {})
DEFAULT_MODEL["retrieval"] = "clip"
# --- model4: CLIP + the find head's grounding score (its output is (2, B, B); see clip_ground.py)
from tinymm.models.clip_ground import GroundedCLIPModel, grounded_clip_loss  # noqa: E402

MODELS[("retrieval", "grounded_clip")] = (GroundedCLIPModel, {})
# --- end model4


class RetrievalCollate:
    """Tokenise the captions (``caption_ids``/``caption_mask``) and add ``target`` = arange(B):
    image ``i`` of a batch belongs with caption ``i``, so the Trainer's accuracy on the
    (B, B) logits is the in-batch image→caption top-1."""

    def __init__(self, tokenizer: Tokenizer):
        self.text = make_collate(tokenizer, text_keys=("caption",))

    def __call__(self, samples):
        import numpy as np

        batch = self.text(samples)
        batch["target"] = np.arange(len(samples), dtype=np.int64)
        return batch


@dataclass
class RetrievalRecipe(Recipe):
    @property
    def collate(self):
        return RetrievalCollate(self.tokenizer)

    def loss(self, output, batch):
        return grounded_clip_loss(output) if output.ndim == 3 else clip_loss(output)  # model4: grounded_clip

    def model_sizes(self) -> dict:
        return {"vocab_size": len(self.tokenizer), "image_size": self.image_size}


def caption_question_tokenizer(num_samples: int = 4000) -> Tokenizer:
    """A word tokenizer over the first ``num_samples`` training captions *and* vqa questions:
    the retrieval default, so that a contrastively pretrained text tower reads vqa questions
    with the same ids (:func:`tinymm.models.clip.load_towers`). Only the texts are generated."""
    captions = load_task("retrieval", "train", num_samples=num_samples).world
    questions = load_task("vqa", "train", num_samples=num_samples).world
    texts = [captions.caption(i) for i in range(num_samples)]
    texts += [questions.question(i)[0] for i in range(num_samples)]
    return Tokenizer.build(texts)


def retrieval_recipe(image_size: int = 32, tokenizer: Tokenizer | None = None) -> RetrievalRecipe:
    return RetrievalRecipe("retrieval", "target", [], ("caption",), tokenizer or caption_question_tokenizer(),
                           image_size)
