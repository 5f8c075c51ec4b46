"""CLIP with a grounding score: contrastive pretraining of the vqa ``find`` head's grounding layers.

    batch["image"] (B, 3, S, S), batch["caption_ids"] (B, T), batch["caption_mask"] (B, T)
    → logits (2, B, B): [0] CLIP's global cosine logits, [1] the grounding logits

The vqa default model (``VQAModel(fusion="find")``, :class:`~tinymm.models.fusion.FindFusion`)
answers through one "find" module: two token-attention slots turn the question's GRU states into
two queries, and each query attends over the feature-map cells (``key(relu(cell(f)))``). With
few labels those four layers (``cell``, ``key``, ``slot``, ``value``) start random, so the model
must learn to locate a described object from the labels alone. This model trains the same four
layers, under the same names (``self.find``), without any answer: a text's two queries should
*find* something in its own image and not in the others'. For text j and image i

    g[j, s, i, n] = query_j,s · key(relu(cell(f_i,n))) / sqrt(d)        (slot s, cell n)
    grounding="max":   ground[i, j] = Σ_s log mean_n exp(g[j, s, i, n])
    grounding="mass":  ground[i, j] = Σ_s log mean_n σ(g[j, s, i, n])

"max" is a soft maximum over cells (the best-matching cell, as FindFusion's softmax attention
picks it); "mass" is the log of FindFusion's own ``mass`` feature (the mean match probability
over the cells, what its count and exist answers read), so it also fixes the logits' level:
σ(g) near 1 on the cells that match the phrase, near 0 elsewhere. The loss (:func:`grounded_clip_loss`) is the symmetric InfoNCE of CLIP
on the global logits plus the same on ``ground``. Texts can be captions or questions — a question
names the objects it asks about, so (image, question) pairs of unlabelled vqa samples teach the
question words too.

:func:`load_grounding` copies the towers (``image`` → ``image``, ``text`` → ``question``) and the
four find layers (→ ``head.cell``/``key``/``slot``/``value``) into a VQAModel with the find head;
its answer MLP stays as initialised.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import nn
from tinymm.models.clip import CLIPConfig, CLIPModel, clip_loss, load_towers
from tinymm.models.pretrained import register


SCORES = ("max", "mass")


class FindGrounding(nn.Module):
    """FindFusion's grounding layers (same names and shapes): cells (B, n, C) → keys (B, n, d);
    token states (B, T, H) + mask → two slot queries (B, 2, d)."""

    def __init__(self, channels: int, hidden: int, d: int = 64, score: str = "max"):
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"FindGrounding: unknown score {score!r}; known: {', '.join(SCORES)}")
        self.score = score
        self.cell = nn.Linear(channels, d)
        self.key = nn.Linear(d, d)
        self.slot = nn.Linear(hidden, 2)
        self.value = nn.Linear(hidden, d)
        self.scale = 1.0 / math.sqrt(d)

    def keys(self, fmap):
        cells = fmap.flatten(2).transpose(1, 2)  # (B, n, C)
        return self.key(F.relu(self.cell(cells)))  # (B, n, d)

    def queries(self, tokens, mask):
        scores = self.slot(tokens).masked_fill(~mask.unsqueeze(-1), -1e9)  # (B, T, 2)
        return F.softmax(scores, dim=1).transpose(1, 2) @ self.value(tokens)  # (B, 2, d)

    def scores(self, keys, queries):
        """(Bi, n, d) keys, (Bt, 2, d) queries → (Bi, Bt) grounding logits (module docstring)."""
        bi, n, d = keys.shape
        bt = queries.shape[0]
        g = (queries.reshape(bt * 2, d) @ keys.reshape(bi * n, d).transpose(0, 1)) * self.scale  # (2Bt, Bi·n)
        g = g.reshape(bt, 2, bi, n)
        if self.score == "mass":
            g = F.logsigmoid(g)  # log σ(g): the cells' match probabilities, as FindFusion's mass
        found = g.logsumexp(dim=3) - math.log(n)  # (Bt, 2, Bi)
        return found.sum(dim=1).transpose(0, 1)  # (Bi, Bt)


@dataclass
class GroundedCLIPConfig(CLIPConfig):
    find_dim: int = 64
    grounding: str = "max"


@register
class GroundedCLIPModel(CLIPModel):
    """:class:`CLIPModel` plus ``find`` (a :class:`FindGrounding`); ``forward`` gives (2, B, B)."""

    def __init__(self, vocab_size: int, image_size: int = 32, channels: int = 32, embed_dim: int = 64,
                 hidden: int = 128, proj_dim: int = 128, proj_hidden: int = 256, temperature: float = 0.07,
                 find_dim: int = 64, grounding: str = "max"):
        super().__init__(vocab_size, image_size, channels, embed_dim, hidden, proj_dim, proj_hidden, temperature)
        self.config = GroundedCLIPConfig(vocab_size, image_size, channels, embed_dim, hidden, proj_dim,
                                         proj_hidden, temperature, find_dim, grounding)
        self.find = FindGrounding(channels, hidden, find_dim, grounding)

    def contrastive_loss(self, logits):
        """The loss of this model's output (what contrastive pretraining minimises)."""
        return grounded_clip_loss(logits)

    @classmethod
    def from_clip(cls, clip: CLIPModel, find_dim: int = 64, grounding: str = "max") -> "GroundedCLIPModel":
        """A GroundedCLIPModel holding a copy of ``clip``'s weights (``find`` freshly initialised)."""
        c = clip.config
        model = cls(c.vocab_size, c.image_size, c.channels, c.embed_dim, c.hidden, c.proj_dim, c.proj_hidden,
                    c.temperature, find_dim, grounding)
        state = model.state_dict()
        state.update(clip.state_dict())
        model.load_state_dict(state)
        return model

    def forward(self, batch):
        fmap = self.image(batch["image"])  # (B, C, S/4, S/4)
        final, tokens = self.text(batch["caption_ids"], batch["caption_mask"])  # (B, H), (B, T, H)
        img = F.normalize(self.image_proj(fmap.flatten(1)), dim=1)  # (B, P)
        txt = F.normalize(self.text_proj(final), dim=1)  # (B, P)
        scale = tm.clamp(self.logit_scale, max=math.log(100.0)).exp()
        global_logits = scale * (img @ txt.transpose(0, 1))  # (B, B)
        ground = self.find.scores(self.find.keys(fmap), self.find.queries(tokens, batch["caption_mask"]))  # (B, B)
        return tm.stack([global_logits, ground])  # (2, B, B)


def grounded_clip_loss(logits):
    """CLIP's symmetric InfoNCE on the global logits plus the same on the grounding logits."""
    if logits.ndim != 3 or logits.shape[0] != 2:
        raise ValueError(f"grounded_clip_loss: expected (2, B, B) logits, got {tuple(logits.shape)}")
    return clip_loss(logits[0]) + clip_loss(logits[1])


def load_grounding(src: GroundedCLIPModel, target) -> None:
    """Copy ``src``'s towers and find layers into a VQAModel with the ``find`` head (see the module
    docstring). Raises ValueError naming the first weight whose shape differs."""
    load_towers(src, target)
    head = getattr(target, "head", None)
    for name in ("cell", "key", "slot", "value"):
        dst = getattr(head, name, None)
        if dst is None:
            raise ValueError(f"load_grounding: {type(target).__name__}.head has no layer {name!r} "
                             f"(it needs the 'find' fusion head)")
        ours = getattr(src.find, name).state_dict()
        for key, value in ours.items():
            theirs = dst.state_dict()[key]
            if tuple(theirs.shape) != tuple(value.shape):
                raise ValueError(f"load_grounding: head.{name}.{key} is {tuple(theirs.shape)} in "
                                 f"{type(target).__name__}, {tuple(value.shape)} in the grounded CLIP model")
        dst.load_state_dict(ours)
