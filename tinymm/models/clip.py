"""A CLIP-style dual encoder: an image tower and a text tower mapped into one embedding space.

    batch["image"] (B, 3, S, S), batch["caption_ids"] (B, T), batch["caption_mask"] (B, T)
    → logits_per_image (B, B): exp(logit_scale) · cos(image_i, text_j)

The towers are the classes :class:`~tinymm.models.vqa.VQAModel` uses, with its sub-module
names and default sizes: ``image`` is a :class:`ConvBackbone` and ``text`` a
:class:`GRUTextEncoder`, so after contrastive pretraining :func:`load_towers` copies them into a
VQAModel's ``image`` and ``question`` (same ``channels``, ``embed_dim``, ``hidden`` and vocabulary).
On top of each tower a projection maps into the shared space of ``proj_dim``:

- image: the feature map (B, C, S/4, S/4) is flattened, so *where* an object is stays in the
  embedding (captions say "left of", "above"), then a two-layer MLP;
- text: the GRU's state at the last real token, then one linear layer.

Both embeddings are L2-normalised; their dot products are cosines. The learnable temperature
is kept as ``logit_scale = log(1 / T)`` (initially T = 0.07) and, as in CLIP, clamped so that
``exp(logit_scale) <= 100``: the clamp keeps the logits from growing without bound (a clamped
scale gets no gradient until the others pull it back).

The loss (:func:`clip_loss`) is the symmetric InfoNCE of CLIP: each image must pick its caption
among the batch's captions, each caption its image, cross-entropy both ways, averaged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import nn
from tinymm.models.image import ConvBackbone
from tinymm.models.pretrained import PretrainedMixin, register
from tinymm.models.text import GRUTextEncoder

#: CLIP's ceiling on the logit scale: exp(logit_scale) <= 100
MAX_LOGIT_SCALE = math.log(100.0)


def clip_logits(image_embeds, text_embeds, logit_scale):
    """(B, B) similarity logits ``exp(min(logit_scale, log 100)) · image_embeds @ text_embeds.T``.

    ``image_embeds`` (B, D) and ``text_embeds`` (B, D) are expected L2-normalised (the model's
    ``encode_*`` return them so); ``logit_scale`` is a scalar Tensor, the log of 1 / temperature.
    """
    if image_embeds.ndim != 2 or text_embeds.ndim != 2 or image_embeds.shape[1] != text_embeds.shape[1]:
        raise ValueError(f"clip_logits: expected (B, D) image and (B', D) text embeddings, got "
                         f"{tuple(image_embeds.shape)} and {tuple(text_embeds.shape)}")
    scale = tm.clamp(logit_scale, max=MAX_LOGIT_SCALE).exp()
    return scale * (image_embeds @ text_embeds.transpose(0, 1))  # (B, B)


def clip_loss(logits_per_image):
    """Symmetric InfoNCE over a (B, B) logits matrix whose true pairs are on the diagonal:

        loss = ½ · [ CE(logits, arange(B)) + CE(logits.T, arange(B)) ]

    the first term ranks captions for each image (rows), the second images for each caption.
    """
    if logits_per_image.ndim != 2 or logits_per_image.shape[0] != logits_per_image.shape[1]:
        raise ValueError(f"clip_loss: expected a square (B, B) logits matrix, got {tuple(logits_per_image.shape)}")
    labels = tm.tensor(np.arange(logits_per_image.shape[0]), device=logits_per_image.device)
    image_to_text = F.cross_entropy(logits_per_image, labels)
    text_to_image = F.cross_entropy(logits_per_image.transpose(0, 1), labels)
    return (image_to_text + text_to_image) * 0.5


def _image_tower(model, image_size: int, channels: int, proj_hidden: int, proj_dim: int) -> None:
    """Give ``model`` its ``image`` backbone and ``image_proj`` MLP (shared by both CLIP models)."""
    if image_size < 4 or image_size % 4:
        raise ValueError(f"{type(model).__name__}: image_size must be a multiple of 4 (two stride-2 stages), "
                         f"got {image_size}")
    side = image_size // 4
    model.image = ConvBackbone(3, channels)
    model.image_proj = nn.Sequential(nn.Linear(channels * side * side, proj_hidden), nn.ReLU(),
                                     nn.Linear(proj_hidden, proj_dim))


def _embed_image(model, image):
    fmap = model.image(image)  # (B, C, S/4, S/4)
    return F.normalize(model.image_proj(fmap.flatten(1)), dim=1)  # (B, P)


def _check_temperature(owner, temperature):
    if not 0 < temperature:
        raise ValueError(f"{owner}: temperature must be positive, got {temperature}")
    return nn.Parameter(tm.tensor(math.log(1.0 / temperature)))


@dataclass
class CLIPConfig:
    vocab_size: int
    image_size: int = 32
    channels: int = 32
    embed_dim: int = 64
    hidden: int = 128
    proj_dim: int = 128
    proj_hidden: int = 256
    temperature: float = 0.07


@register
class CLIPModel(nn.Module, PretrainedMixin):
    """Dual encoder; ``forward(batch)`` gives the (B, B) logits, :func:`clip_loss` the loss."""

    def __init__(self, vocab_size: int, image_size: int = 32, channels: int = 32, embed_dim: int = 64,
                 hidden: int = 128, proj_dim: int = 128, proj_hidden: int = 256, temperature: float = 0.07):
        super().__init__()
        self.config = CLIPConfig(vocab_size, image_size, channels, embed_dim, hidden, proj_dim, proj_hidden,
                                 temperature)
        _image_tower(self, image_size, channels, proj_hidden, proj_dim)
        self.text = GRUTextEncoder(vocab_size, embed_dim, hidden)
        self.text_proj = nn.Linear(hidden, proj_dim)
        self.logit_scale = _check_temperature("CLIPModel", temperature)

    def encode_image(self, image):
        """(B, 3, S, S) → L2-normalised (B, proj_dim)."""
        return _embed_image(self, image)

    def encode_text(self, ids, mask):
        """Token ids (B, T) + mask (B, T) → L2-normalised (B, proj_dim)."""
        final, _ = self.text(ids, mask)  # (B, H)
        return F.normalize(self.text_proj(final), dim=1)  # (B, P)

    def forward(self, batch):
        img = self.encode_image(batch["image"])  # (B, P)
        txt = self.encode_text(batch["caption_ids"], batch["caption_mask"])  # (B, P)
        return clip_logits(img, txt, self.logit_scale)  # (B, B)


@dataclass
class LockedTextConfig:
    text_dim: int = 384
    image_size: int = 32
    channels: int = 32
    proj_hidden: int = 256
    temperature: float = 0.07


@register
class LockedTextCLIP(nn.Module, PretrainedMixin):
    """Locked-text tuning ("LiT"): the text side is a frozen sentence encoder whose caption
    embeddings (B, text_dim) are computed once, outside, and arrive in ``batch["text_embeds"]``;
    only the image tower (the same ConvBackbone + MLP as :class:`CLIPModel`, projecting to
    ``text_dim``) and the temperature learn to match them.

        batch["image"] (B, 3, S, S), batch["text_embeds"] (B, text_dim) → logits (B, B)
    """

    def __init__(self, text_dim: int = 384, image_size: int = 32, channels: int = 32, proj_hidden: int = 256,
                 temperature: float = 0.07):
        super().__init__()
        self.config = LockedTextConfig(text_dim, image_size, channels, proj_hidden, temperature)
        _image_tower(self, image_size, channels, proj_hidden, text_dim)
        self.logit_scale = _check_temperature("LockedTextCLIP", temperature)

    def encode_image(self, image):
        """(B, 3, S, S) → L2-normalised (B, text_dim)."""
        return _embed_image(self, image)

    def forward(self, batch):
        img = self.encode_image(batch["image"])  # (B, D)
        txt = F.normalize(batch["text_embeds"], dim=1)  # (B, D), constant
        return clip_logits(img, txt, self.logit_scale)  # (B, B)


def load_towers(clip: CLIPModel, target, image: str = "image", text: str = "question") -> None:
    """Copy ``clip``'s image and text towers into ``target``'s sub-modules named ``image`` and
    ``text`` (default: a VQAModel's ``image`` and ``question``); projections stay behind.

    Raises ValueError naming the first weight whose shape differs (another ``channels``,
    ``hidden`` or vocabulary size).
    """
    for src, name in ((clip.image, image), (clip.text, text)):
        dst = getattr(target, name, None)
        if dst is None:
            raise ValueError(f"load_towers: {type(target).__name__} has no sub-module {name!r}")
        theirs, ours = dst.state_dict(), src.state_dict()
        for key, value in ours.items():
            if key not in theirs or tuple(theirs[key].shape) != tuple(value.shape):
                got = tuple(theirs[key].shape) if key in theirs else "missing"
                raise ValueError(f"load_towers: {name}.{key} is {got} in {type(target).__name__}, "
                                 f"{tuple(value.shape)} in the CLIP model")
        dst.load_state_dict(ours)
