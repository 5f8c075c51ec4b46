"""Grounded contrastive pretraining on captions and unlabelled vqa questions (no answers).

    clip = CLIPModel.from_pretrained("runs/clip3000/model")      # a CLIP run (tinymm pretrain)
    model, trainer = pretrain_grounded(clip, tokenizer, dict(caption_pairs=15000, vqa_samples=5000,
                                                             batch_size=128, lr=1e-3, epochs=4))
    load_grounding(model, vqa_model)                              # towers + the find head's grounding

The texts are the retrieval task's generated captions and the *questions* of the first
``vqa_samples`` samples of the vqa train split, each paired with its own image. The answers of
those samples are never read (:class:`QuestionPairs` takes the image and the question from the
world and nothing else), so this is the semi-supervised setting's unlabelled data: every input,
no label. The loss is :func:`~tinymm.models.clip_ground.grounded_clip_loss`.
"""
from __future__ import annotations

from tinymm.data import load_task
from tinymm.models.clip_ground import GroundedCLIPModel, grounded_clip_loss
from tinymm.train.pretrain import fit_contrastive


class QuestionPairs:
    """The vqa split's (image, question) pairs as ``{"image", "caption"}`` samples, without answers."""

    def __init__(self, split: str = "train", num_samples: int = 5000, image_size: int = 32):
        self.world = load_task("vqa", split, num_samples=num_samples, image_size=image_size).world

    def __len__(self) -> int:
        return len(self.world)

    def fit_cache(self, num_samples=None) -> bool:
        """Keep the world's blocks cached for a shuffled reader (``World.fit_cache``)."""
        return self.world.fit_cache(num_samples)

    def __getitem__(self, i: int) -> dict:
        question, _, _ = self.world.question(i)  # (text, answer, type): only the text is kept
        return {"image": self.world.image(i), "caption": question, "index": i}


class ConcatPairs:
    """Several pair datasets one after the other (indices of the first, then of the second, ...)."""

    def __init__(self, *parts):
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def fit_cache(self, num_samples=None) -> bool:
        """A shuffle reads anywhere in every part: each keeps all its blocks cached."""
        return all([p.fit_cache(None) for p in self.parts])

    def __getitem__(self, i: int) -> dict:
        for p in self.parts:
            if i < len(p):
                s = p[i]
                return {"image": s["image"], "caption": s["caption"]}
            i -= len(p)
        raise IndexError(i)


def pretrain_grounded(clip, tokenizer, p: dict, seed: int = 0, log=None):
    """Continue ``clip`` (a CLIPModel) as a :class:`GroundedCLIPModel` on ``p["caption_pairs"]``
    retrieval pairs + ``p["vqa_samples"]`` unlabelled vqa (image, question) pairs, for
    ``p["epochs"]`` at ``p["batch_size"]`` and AdamW ``p["lr"]`` (warm-up + cosine), with the
    grounding score ``p.get("grounding", "max")``. Returns (model, trainer)."""
    import tinymm as tm
    from tinymm.data import make_collate

    tm.manual_seed(seed)
    model = GroundedCLIPModel.from_clip(clip, grounding=p.get("grounding", "max"))
    size = clip.config.image_size
    captions = load_task("retrieval", "train", num_samples=p["caption_pairs"], image_size=size)
    parts = [captions] + ([QuestionPairs("train", p["vqa_samples"], size)] if p["vqa_samples"] else [])
    train = ConcatPairs(*parts)  # the shuffling loader keeps every part's blocks cached (fit_cache)
    collate = _PairCollate(make_collate(tokenizer, text_keys=("caption",)))
    trainer = fit_contrastive(model, train, collate, p, seed, log=log, loss=grounded_clip_loss)
    return model, trainer


class _PairCollate:
    def __init__(self, text):
        self.text = text

    def __call__(self, samples):
        import numpy as np

        batch = self.text(samples)
        batch["target"] = np.arange(len(samples), dtype=np.int64)
        return batch
