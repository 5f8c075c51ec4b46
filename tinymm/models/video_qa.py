"""Question answering over a video: ``video_qa`` (motion, existence, attributes, counting).

    batch["video"] (B, T, 3, S, S), batch["question_ids"] (B, Tq), batch["question_mask"] (B, Tq)
      → video: :class:`~tinymm.models.video.VideoEncoder` → per-frame states (B, T, H)
      → laid out as a 1×T feature map (B, H, 1, T) with x/y channels (x = time), so every
        fusion head of :data:`tinymm.models.fusion.HEADS` applies, frames playing the cells
      → question: :class:`~tinymm.models.text.GRUTextEncoder` → q (B, Hq), tokens (B, Tq, Hq)
      → the head → logits (B, num_answers)

Baselines: ``use_question=False`` (video only: the question is a learned constant) and
``use_video=False`` (question only: the frame map is zeros, time coordinates kept).
"""
from __future__ import annotations

from dataclasses import dataclass

import tinymm as tm
from tinymm import nn
from tinymm.models._inputs import expect_shape, from_batch
from tinymm.models.fusion import HEADS
from tinymm.models.image import coordinate_channels
from tinymm.models.pretrained import PretrainedMixin, register
from tinymm.models.text import GRUTextEncoder
from tinymm.models.video import VideoEncoder


@dataclass
class VideoQAConfig:
    vocab_size: int
    num_answers: int
    fusion: str = "film"
    image_size: int = 32
    channels: int = 16  # frame CNN width
    embed_dim: int = 64  # per-frame embedding and word embedding size
    hidden: int = 128  # temporal states and question vector size
    temporal: str = "gru"
    head_hidden: int = 256
    use_video: bool = True
    use_question: bool = True


@register
class VideoQAModel(nn.Module, PretrainedMixin):
    def __init__(self, vocab_size: int, num_answers: int, fusion: str = "film", image_size: int = 32,
                 channels: int = 16, embed_dim: int = 64, hidden: int = 128, temporal: str = "gru",
                 head_hidden: int = 256, use_video: bool = True, use_question: bool = True):
        super().__init__()
        if fusion not in HEADS:
            raise ValueError(f"VideoQAModel: unknown fusion {fusion!r}; known: {', '.join(HEADS)}")
        if not (use_video or use_question):
            raise ValueError("VideoQAModel: at least one of use_video and use_question must be True")
        self.config = VideoQAConfig(vocab_size, num_answers, fusion, image_size, channels, embed_dim, hidden,
                                    temporal, head_hidden, use_video, use_question)
        if use_video:
            self.video = VideoEncoder(0, image_size, channels, embed_dim, hidden, temporal)
        if use_question:
            self.question = GRUTextEncoder(vocab_size, embed_dim, hidden)
        else:
            self.no_question = nn.Parameter(tm.zeros(hidden))
        self.head = HEADS[fusion](hidden + 2, hidden, num_answers, head_hidden)

    def forward(self, batch):
        video = from_batch("VideoQAModel", batch, "video", tensor_ok=False)
        expect_shape("VideoQAModel", "video", video, ("B", "T", 3, self.config.image_size, self.config.image_size))
        B, T = video.shape[:2]
        if self.config.use_video:
            _, states, _ = self.video.encode(video, batch.get("video_lengths"))  # (B, T, H)
            fmap = states.transpose(1, 2).unsqueeze(2)  # (B, H, 1, T)
        else:
            fmap = tm.zeros(B, self.config.hidden, 1, T, device=video.device)
        img = tm.cat([fmap, coordinate_channels(B, 1, T, fmap)], dim=1)  # (B, H+2, 1, T)
        if self.config.use_question:
            ids, mask = batch["question_ids"], batch["question_mask"]
            expect_shape("VideoQAModel", "question_ids", ids, (B, "Tq"))
            q, tokens = self.question(ids, mask)  # (B, H), (B, Tq, H)
        else:
            q = self.no_question.unsqueeze(0).expand(B, -1)  # (B, H)
            tokens = q.unsqueeze(1)  # (B, 1, H)
            mask = tm.ones(B, 1, dtype=tm.bool_)
        return self.head(img, q, tokens, mask)  # (B, num_answers)
