"""Fusion heads: how an image feature map and a question meet (the seed's §2.2–2.3).

Every head takes ``img`` (B, C, h, w) — a feature map whose last two channels are the cells'
x/y coordinates — and the question as ``q`` (B, H) (final state) plus ``tokens`` (B, T, H) and
``mask`` (B, T), and returns answer logits (B, K).

- ``early``: pool the image, concatenate with the question, MLP.
- ``late``: one classifier per modality, logits mixed with learned softmax weights.
- ``gated``: a gated multimodal unit (Arevalo et al.): z = σ(W[v; q]), h = z·tanh(Wv v) + (1−z)·tanh(Wq q).
- ``cross_attention``: question tokens attend to the image cells (multi-head), masked mean.
- ``film``: the question predicts a per-channel scale and shift for each conv block (Perez et
  al., FiLM), then max-pool and MLP.
- ``relational``: FiLM blocks, then two question-guided attention hops over the
  coordinate-tagged cells pick two objects; an MLP compares them (what/where of each). Built for
  the two-object questions (``relation``, ``side``) that pooled heads cannot answer.
- ``find``: no pooled path; every answer comes through one shared "find" module. Two
  token-attention slots turn the question into two noun-phrase queries; each attends over the
  cells (softmax of key(cell)·query) and reads out the attended features and x/y. The head sees
  both readouts, their coordinate difference (x_A−x_B, y_A−y_B) and that difference scaled by
  the question. The easy questions (colour, shape, size) train the same find that relations use.
"""
from __future__ import annotations

import math

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import nn


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


def global_pool(img):
    """(B, C, h, w) → (B, 2C): mean and max over the cells."""
    flat = img.flatten(2)  # (B, C, hw)
    return tm.cat([flat.mean(dim=2), flat.max(dim=2)[0]], dim=1)


class EarlyFusion(nn.Module):
    def __init__(self, c: int, h: int, k: int, hidden: int = 256):
        super().__init__()
        self.head = mlp(2 * c + h, hidden, k)

    def forward(self, img, q, tokens, mask):
        return self.head(tm.cat([global_pool(img), q], dim=1))


class LateFusion(nn.Module):
    def __init__(self, c: int, h: int, k: int, hidden: int = 256):
        super().__init__()
        self.image_head, self.text_head = mlp(2 * c, hidden, k), mlp(h, hidden, k)
        self.mix = nn.Parameter(tm.zeros(2))

    def forward(self, img, q, tokens, mask):
        w = F.softmax(self.mix, dim=0)
        return self.image_head(global_pool(img)) * w[0] + self.text_head(q) * w[1]


class GatedFusion(nn.Module):
    def __init__(self, c: int, h: int, k: int, hidden: int = 256):
        super().__init__()
        self.v, self.t, self.z = nn.Linear(2 * c, hidden), nn.Linear(h, hidden), nn.Linear(2 * c + h, hidden)
        self.head = mlp(hidden, hidden, k)

    def forward(self, img, q, tokens, mask):
        v = global_pool(img)
        z = F.sigmoid(self.z(tm.cat([v, q], dim=1)))
        return self.head(z * tm.tanh(self.v(v)) + (1 - z) * tm.tanh(self.t(q)))


class CrossAttentionFusion(nn.Module):
    def __init__(self, c: int, h: int, k: int, hidden: int = 256, heads: int = 4):
        super().__init__()
        d = 64
        self.kv, self.qp = nn.Linear(c, d), nn.Linear(h, d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.head = mlp(d + h, hidden, k)

    def forward(self, img, q, tokens, mask):
        cells = self.kv(img.flatten(2).transpose(1, 2))  # (B, hw, d)
        out, _ = self.attn(self.qp(tokens), cells, cells, need_weights=False)  # (B, T, d)
        m = mask.to(out.dtype).unsqueeze(-1)  # (B, T, 1)
        pooled = (out * m).sum(dim=1) / m.sum(dim=1)  # (B, d)
        return self.head(tm.cat([pooled, q], dim=1))


class FiLMBlock(nn.Module):
    """conv → BN (no affine) → γ(q)·x + β(q) → ReLU, with a residual connection."""

    def __init__(self, c_in: int, c: int, h: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c, affine=False)
        self.film = nn.Linear(h, 2 * c)
        self.c = c

    def forward(self, x, q):
        gb = self.film(q)  # (B, 2C)
        gamma = (gb[:, : self.c] + 1).unsqueeze(-1).unsqueeze(-1)  # (B, C, 1, 1)
        beta = gb[:, self.c:].unsqueeze(-1).unsqueeze(-1)
        y = F.relu(self.bn(self.conv(x)) * gamma + beta)  # (B, C, h, w)
        return y + x[:, : self.c] if x.shape[1] >= self.c else y


def with_coords(y, img):
    """Re-attach the coordinate channels (the last two of ``img``) to a feature map ``y``."""
    return tm.cat([y, img[:, -2:]], dim=1)


class FiLMFusion(nn.Module):
    def __init__(self, c: int, h: int, k: int, hidden: int = 256, blocks: int = 2):
        super().__init__()
        ch = c - 2  # the feature channels, without the two coordinates
        self.blocks = nn.ModuleList([FiLMBlock(c, ch, h) for _ in range(blocks)])
        self.head = mlp(2 * ch + h, hidden, k)

    def modulate(self, img, q):
        x = img
        for blk in self.blocks:
            x = with_coords(blk(x, q), img)
        return x

    def forward(self, img, q, tokens, mask):
        x = self.modulate(img, q)[:, :-2]
        return self.head(tm.cat([global_pool(x), q], dim=1))


class AttentionHop(nn.Module):
    """Question-guided soft selection of one cell: softmax over cells of key(cell)·query."""

    def __init__(self, c: int, d_query: int, d: int = 64):
        super().__init__()
        self.key, self.query, self.scale = nn.Linear(c, d), nn.Linear(d_query, d), 1.0 / math.sqrt(d)

    def forward(self, cells, query):
        scores = (self.key(cells) @ self.query(query).unsqueeze(-1)).squeeze(-1) * self.scale  # (B, hw)
        weights = F.softmax(scores, dim=-1)
        return (weights.unsqueeze(1) @ cells).squeeze(1)  # (B, c)


class RelationalFusion(FiLMFusion):
    def __init__(self, c: int, h: int, k: int, hidden: int = 256, blocks: int = 2):
        super().__init__(c, h, k, hidden, blocks)
        self.hop1 = AttentionHop(c, h)
        self.hop2 = AttentionHop(c, h + c)
        self.head = mlp(2 * (c - 2) + 2 * c + h, hidden, k)

    def forward(self, img, q, tokens, mask):
        x = self.modulate(img, q)  # (B, c, h, w), coordinates last
        cells = x.flatten(2).transpose(1, 2)  # (B, hw, c)
        a = self.hop1(cells, q)  # (B, c): the first object's features and where it is
        b = self.hop2(cells, tm.cat([q, a], dim=1))  # (B, c): the second, given the first
        return self.head(tm.cat([global_pool(x[:, :-2]), a, b, q], dim=1))


class FindFusion(nn.Module):
    """Shared grounding: attribute and relation answers all go through the same find module.

    Pooled heads (and FiLM's global pool) can answer colour/shape/size without locating the
    object, so their attention hops never learn to ground a noun phrase, and from a yes/no
    relation answer alone the grounding gets no first-order signal (the answer is an XOR of the
    relation word and the objects' order). Here the only view of the image is what two
    question-made queries pick out, so the single-object questions teach the find module to
    locate a described object, and relations reuse it on two phrases.

    Measured on ``vqa`` (``tinymm train --model find``, quick preset, 2,400 steps): test 0.854
    overall, relation 0.88, side 0.88 (the ``relational`` head: 0.714, both relations at chance),
    at ~0.7x ``relational``'s CPU time per step. Trained on relation/side questions alone it stayed
    at chance for 1,000 steps: the grounding comes from the single-object questions.
    """

    def __init__(self, c: int, h: int, k: int, hidden: int = 256, d: int = 64):
        super().__init__()
        self.cell = nn.Linear(c - 2, d)  # per-cell features, coordinates left out of the keys
        self.key = nn.Linear(d, d)
        self.slot = nn.Linear(h, 2)  # token scores of the two noun-phrase slots
        self.value = nn.Linear(h, d)  # what a token adds to its slot's query
        self.axis = nn.Linear(h, 2)  # per-question weights of (dx, dy): sign and axis of the relation
        self.scale = 1.0 / math.sqrt(d)
        self.head = mlp(2 * (d + 2) + 6 + h, hidden, k)

    def forward(self, img, q, tokens, mask):
        cells = img.flatten(2).transpose(1, 2)  # (B, n, c), coordinates last
        feats = F.relu(self.cell(cells[:, :, :-2]))  # (B, n, d)
        scores = self.slot(tokens).masked_fill(~mask.unsqueeze(-1), -1e9)  # (B, T, 2)
        queries = F.softmax(scores, dim=1).transpose(1, 2) @ self.value(tokens)  # (B, 2, d)
        logits = (queries @ self.key(feats).transpose(1, 2)) * self.scale  # (B, 2, n)
        found = F.softmax(logits, dim=-1) @ tm.cat([feats, cells[:, :, -2:]], dim=2)  # (B, 2, d+2)
        mass = F.sigmoid(logits).mean(dim=-1)  # (B, 2): how much of the image matches (count, exist)
        delta = found[:, 0, -2:] - found[:, 1, -2:]  # (B, 2): x_A − x_B, y_A − y_B
        return self.head(tm.cat([found[:, 0], found[:, 1], delta, delta * self.axis(q), mass, q], dim=1))


HEADS = {
    "early": EarlyFusion,
    "late": LateFusion,
    "gated": GatedFusion,
    "cross_attention": CrossAttentionFusion,
    "film": FiLMFusion,
    "relational": RelationalFusion,
    "find": FindFusion,
}
