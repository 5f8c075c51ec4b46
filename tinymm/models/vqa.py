"""Question answering over an image: a CNN backbone, a GRU question encoder and a fusion head.

    batch["image"] (B, 3, S, S), batch["question_ids"] (B, T), batch["question_mask"] (B, T)
    → logits (B, num_answers)

``fusion`` picks the head (:data:`tinymm.models.fusion.HEADS`). The unimodal baselines are the
same model with one input cut: ``use_question=False`` answers from the image alone (the
question is replaced by a learned constant), ``use_image=False`` from the question alone (the
feature map is replaced by zeros, coordinates kept). Comparing them with the fused model
shows how much each modality is needed.
"""
from __future__ import annotations

from dataclasses import dataclass

import tinymm as tm
from tinymm import nn
from tinymm.models.fusion import HEADS
from tinymm.models.image import ConvBackbone, coordinate_channels
from tinymm.models.pretrained import PretrainedMixin, register
from tinymm.models.text import GRUTextEncoder


@dataclass
class VQAConfig:
    vocab_size: int
    num_answers: int
    fusion: str = "relational"
    channels: int = 32
    embed_dim: int = 64
    hidden: int = 128
    head_hidden: int = 256
    use_image: bool = True
    use_question: bool = True


@register
class VQAModel(nn.Module, PretrainedMixin):
    def __init__(self, vocab_size: int, num_answers: int, fusion: str = "relational", channels: int = 32,
                 embed_dim: int = 64, hidden: int = 128, head_hidden: int = 256,
                 use_image: bool = True, use_question: bool = True):
        super().__init__()
        if fusion not in HEADS:
            raise ValueError(f"VQAModel: unknown fusion {fusion!r}; known: {', '.join(HEADS)}")
        if not (use_image or use_question):
            raise ValueError("VQAModel: at least one of use_image and use_question must be True")
        self.config = VQAConfig(vocab_size, num_answers, fusion, channels, embed_dim, hidden, head_hidden,
                                use_image, use_question)
        self.image = ConvBackbone(3, channels)
        self.question = GRUTextEncoder(vocab_size, embed_dim, hidden)
        if not use_question:
            self.no_question = nn.Parameter(tm.zeros(hidden))
        self.head = HEADS[fusion](channels + 2, hidden, num_answers, head_hidden)

    def forward(self, batch):
        image, ids, mask = batch["image"], batch["question_ids"], batch["question_mask"]
        B = image.shape[0]
        fmap = self.image(image)  # (B, C, S/4, S/4)
        if not self.config.use_image:
            fmap = fmap * 0.0
        img = tm.cat([fmap, coordinate_channels(B, fmap.shape[2], fmap.shape[3], fmap)], dim=1)  # (B, C+2, h, w)
        if self.config.use_question:
            q, tokens = self.question(ids, mask)  # (B, H), (B, T, H)
        else:
            q = self.no_question.unsqueeze(0).expand(B, -1)  # (B, H)
            tokens = q.unsqueeze(1)
            mask = tm.ones(B, 1, dtype=tm.bool_)
        return self.head(img, q, tokens, mask)  # (B, num_answers)
