"""Question answering over an image with the question *spoken*: ``av_qa``.

    batch["image"] (B, 3, S, S), batch["audio"] (B, L) + batch["audio_lengths"] (B,)
      → image: :class:`~tinymm.models.image.ConvBackbone` (B, C, S/4, S/4) + x/y channels
      → audio: :class:`~tinymm.models.audio.AudioEncoder` → pooled (B, H), frames (B, T, H), mask (B, T)
      → a fusion head (:data:`tinymm.models.fusion.HEADS`) with the spoken question in the place
        of the text question: pooled as ``q``, the frames as its tokens → logits (B, num_answers)

The baselines are the same model with one input cut, as in :class:`~tinymm.models.vqa.VQAModel`:
``use_audio=False`` answers from the image alone (the question is a learned constant),
``use_image=False`` from the audio alone (the feature map is zeros, coordinates kept). The
transcript in the batch (``question``) is never read.
"""
from __future__ import annotations

from dataclasses import dataclass

import tinymm as tm
from tinymm import nn
from tinymm.models._inputs import expect_shape, from_batch
from tinymm.models.audio import AudioEncoder
from tinymm.models.fusion import HEADS
from tinymm.models.image import ConvBackbone, coordinate_channels
from tinymm.models.pretrained import PretrainedMixin, register


@dataclass
class AVQAConfig:
    num_answers: int
    fusion: str = "film"
    sample_rate: int = 8000
    channels: int = 32  # image backbone width
    audio_channels: int = 64  # audio conv width
    hidden: int = 128  # audio encoder width = the question vector's size
    sequence: str = "gru"  # the audio encoder's sequence model
    head_hidden: int = 256
    use_image: bool = True
    use_audio: bool = True


@register
class AVQAModel(nn.Module, PretrainedMixin):
    def __init__(self, num_answers: int, fusion: str = "film", sample_rate: int = 8000, channels: int = 32,
                 audio_channels: int = 64, hidden: int = 128, sequence: str = "gru", head_hidden: int = 256,
                 use_image: bool = True, use_audio: bool = True):
        super().__init__()
        if fusion not in HEADS:
            raise ValueError(f"AVQAModel: unknown fusion {fusion!r}; known: {', '.join(HEADS)}")
        if not (use_image or use_audio):
            raise ValueError("AVQAModel: at least one of use_image and use_audio must be True")
        self.config = AVQAConfig(num_answers, fusion, sample_rate, channels, audio_channels, hidden, sequence,
                                 head_hidden, use_image, use_audio)
        if use_image:
            self.image = ConvBackbone(3, channels)
        if use_audio:
            self.audio = AudioEncoder(0, sample_rate, channels=audio_channels, hidden=hidden, sequence=sequence)
        else:
            self.no_question = nn.Parameter(tm.zeros(hidden))
        self.head = HEADS[fusion](channels + 2, hidden, num_answers, head_hidden)

    def forward(self, batch):
        image = from_batch("AVQAModel", batch, "image", tensor_ok=False)
        expect_shape("AVQAModel", "image", image, ("B", 3, "H", "W"))
        B = image.shape[0]
        if self.config.use_image:
            fmap = self.image(image)  # (B, C, S/4, S/4)
        else:  # the backbone's output shape, all zeros: the head sees only where cells are
            h, w = ((image.shape[2] - 1) // 2) // 2 + 1, ((image.shape[3] - 1) // 2) // 2 + 1
            fmap = tm.zeros(B, self.config.channels, h, w, device=image.device)
        img = tm.cat([fmap, coordinate_channels(B, fmap.shape[2], fmap.shape[3], fmap)], dim=1)  # (B, C+2, h, w)
        if self.config.use_audio:
            audio = from_batch("AVQAModel", batch, "audio")
            expect_shape("AVQAModel", "audio", audio, (B, "L"))
            self.audio.check_sample_rate(batch)
            q, tokens, mask = self.audio.encode(audio, batch.get("audio_lengths"))  # (B, H), (B, T, H), (B, T)
        else:
            q = self.no_question.unsqueeze(0).expand(B, -1)  # (B, H)
            tokens = q.unsqueeze(1)  # (B, 1, H)
            mask = tm.ones(B, 1, dtype=tm.bool_)
        return self.head(img, q, tokens, mask)  # (B, num_answers)
