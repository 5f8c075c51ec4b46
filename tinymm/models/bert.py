"""BERT, the encoder, in one file: a config dataclass, the modules, and a loader for Hugging
Face checkpoints (floor 7).

    ids (B, N) ──embeddings: word + position + token type → LayerNorm → dropout──► h (B, N, C)
    h ──N × layer──► h        layer: h = LN(h + Wo·SDPA(Wq·h, Wk·h, Wv·h, key padding mask))
                                     h = LN(h + W2·GELU(W1·h))          (post-LayerNorm, GELU with erf)
    h[:, 0] ──dense → tanh──► pooled (B, C)                              (optional pooler)

Parameter names are Hugging Face's (``embeddings.word_embeddings.weight``,
``encoder.layer.0.attention.self.query.weight``, ``encoder.layer.0.output.LayerNorm.bias``, …),
so a ``model.safetensors`` written by ``transformers``' ``BertModel`` loads into
``BertModel.from_pretrained(folder)`` name for name, and ``state_dict()`` goes back the other
way. Attention runs through the fused ``scaled_dot_product_attention`` kernel with a boolean key
padding mask (B, 1, 1, N): padded keys get no weight, padded query rows are computed and ignored.

Padding is not computed outside attention: when the mask has padded positions, the T real tokens
are packed into (T, C) rows after the embeddings (``tinymm.nn.functional.packing``); the linear
layers, GELU, LayerNorms and residual adds run on those rows, and only attention unpacks them to
(B, N, ...). A real token's values are the same either way; a batch with 25 % padding costs
about 25 % less. Padded positions of ``last_hidden_state`` therefore hold zeros (Hugging Face's
hold whatever the layers computed there; neither is meaningful).
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from tinymm import nn
from tinymm.nn import functional as F
from tinymm.nn.functional.packing import HeadsToRows, PackRows, RowsToHeads, UnpackRows
from tinymm import ops as O
from tinymm.serialization import CheckpointError, read_header
from tinymm.tensor import Tensor

__all__ = ["BertConfig", "BertModel", "BertCheckpointError"]


class BertCheckpointError(CheckpointError):
    """A checkpoint whose tensor names or shapes do not fit the BERT built from its config."""


@dataclasses.dataclass
class BertConfig:
    """The fields of a Hugging Face BERT ``config.json`` that shape the network (defaults:
    bert-base-uncased). Dropout probabilities apply only in training mode."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    position_embedding_type: str = "absolute"

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"BertConfig: hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"BertConfig: hidden_act {self.hidden_act!r} is not supported (gelu, gelu_new, gelu_pytorch_tanh)")
        if self.position_embedding_type != "absolute":
            raise ValueError(f"BertConfig: position_embedding_type {self.position_embedding_type!r} is not supported, only 'absolute'")

    @classmethod
    def from_dict(cls, d: dict) -> "BertConfig":
        """Keep the fields this model uses; ignore the rest (``architectures``, ``transformers_version``, …)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json_file(cls, path) -> "BertConfig":
        with open(os.fspath(path), encoding="utf-8") as f:
            d = json.load(f)
        if d.get("model_type", "bert") not in ("bert",):
            raise ValueError(f"BertConfig: {os.fspath(path)} describes a {d.get('model_type')!r} model, not 'bert'")
        return cls.from_dict(d)

    def to_dict(self) -> dict:
        return {"model_type": "bert", **dataclasses.asdict(self)}

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids):
        n = input_ids.shape[1]
        positions = Tensor._of(np.arange(n, dtype=np.int64), device=self.position_embeddings.weight.device)
        h = self.word_embeddings(input_ids)                                  # (B, N, C)
        h = h + self.position_embeddings(positions)                          # (N, C) broadcast
        h = h + self.token_type_embeddings(token_type_ids)                   # (B, N, C)
        return self.dropout(self.LayerNorm(h))


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        c = cfg.hidden_size
        self.num_heads, self.head_dim = cfg.num_attention_heads, cfg.head_dim
        self.query = nn.Linear(c, c)
        self.key = nn.Linear(c, c)
        self.value = nn.Linear(c, c)
        self.dropout_p = cfg.attention_probs_dropout_prob

    def forward(self, h, key_mask, packing=None):
        """h: (B, N, C), or (T, C) real-token rows when ``packing`` = (B, N, rows, (b, n) of each
        row) is given."""
        b, n, c = h.shape if packing is None else (packing[0], packing[1], h.shape[-1])
        # One GEMM for q, k and v (the three weights stacked, a 3C×C copy per call, far cheaper
        # than the (B·N)×C activations), then one copy to the heads layout the kernel wants.
        w = O.cat([self.query.weight, self.key.weight, self.value.weight], 0)   # (3C, C)
        bias = O.cat([self.query.bias, self.key.bias, self.value.bias], 0)      # (3C,)
        qkv = F.linear(h, w, bias)                                              # (B, N, 3C) or (T, 3C)
        if packing is None:
            qkv = qkv.reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).contiguous()  # (3, B, H, N, D)
        else:
            qkv = RowsToHeads.apply(qkv.reshape(-1, 3, self.num_heads, self.head_dim), packing[3], b, n)  # (3, B, H, N, D)
        q, k, v = qkv[0], qkv[1], qkv[2]                                        # (B, H, N, D) each
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask,
                                           dropout_p=self.dropout_p, training=self.training)  # (B, H, N, D)
        if packing is None:
            return o.transpose(1, 2).reshape(b, n, c)                           # (B, N, C)
        return HeadsToRows.apply(o, packing[3]).reshape(-1, c)                  # (T, C)


class BertSelfOutput(nn.Module):
    """Projection, dropout, then the residual LayerNorm (post-LN, as in the original BERT)."""

    def __init__(self, cfg: BertConfig, d_in: int):
        super().__init__()
        self.dense = nn.Linear(d_in, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg, cfg.hidden_size)

    def forward(self, h, key_mask, packing=None):
        return self.output(self.self(h, key_mask, packing), h)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        # "gelu" is the exact GELU with erf; the "_new"/"_tanh" variants are the tanh approximation.
        self.approximate = "none" if cfg.hidden_act == "gelu" else "tanh"

    def forward(self, h):
        return F.gelu(self.dense(h), approximate=self.approximate)                # (B, N, 4C)


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertSelfOutput(cfg, cfg.intermediate_size)

    def forward(self, h, key_mask, packing=None):
        h = self.attention(h, key_mask, packing)                                 # (B, N, C) or (T, C)
        return self.output(self.intermediate(h), h)                             # (B, N, C) or (T, C)


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(cfg) for _ in range(cfg.num_hidden_layers)])

    def forward(self, h, key_mask, packing=None):
        for layer in self.layer:
            h = layer(h, key_mask, packing)
        return h


class BertPooler(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, h):
        return F.tanh(self.dense(h[:, 0]))                                      # (B, C)


class BertModel(nn.Module):
    """BERT's encoder. ``forward(input_ids, attention_mask=None, token_type_ids=None)`` takes
    (B, N) integer arrays or Tensors (mask: 1/True on real tokens) and returns
    ``(last_hidden_state (B, N, C), pooler_output (B, C) or None)``.

    Initialisation follows Hugging Face's BERT (normal(0, 0.02) weights, zero biases, unit
    LayerNorms), so a model built from a config alone is the "random initialisation" baseline.
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self._init_like_bert()

    def _init_like_bert(self):
        rng = np.random.default_rng(0)
        std = 0.02
        for name, p in self.named_parameters():
            if name.endswith("LayerNorm.weight"):
                p._data[...] = 1.0
            elif name.endswith("bias"):
                p._data[...] = 0.0
            else:
                p._data[...] = rng.normal(0.0, std, size=p.shape).astype(p.dtype)
        pad = self.config.pad_token_id
        if pad is not None and 0 <= pad < self.config.vocab_size:
            self.embeddings.word_embeddings.weight._data[pad] = 0.0

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        ids = _as_index_array(input_ids, "input_ids")
        if ids.ndim != 2:
            raise ValueError(f"BertModel: input_ids must be (batch, length), got shape {tuple(ids.shape)}")
        b, n = ids.shape
        if n == 0:
            raise ValueError(f"BertModel: input_ids has no tokens (shape {tuple(ids.shape)}); a sequence holds at least [CLS]")
        cfg = self.config
        if n > cfg.max_position_embeddings:
            raise ValueError(f"BertModel: {n} tokens, the model has {cfg.max_position_embeddings} positions")
        if ids.size and (ids.min() < 0 or ids.max() >= cfg.vocab_size):
            raise ValueError(f"BertModel: input_ids must lie in [0, {cfg.vocab_size}), got values in [{ids.min()}, {ids.max()}]")
        types = np.zeros_like(ids) if token_type_ids is None else _as_index_array(token_type_ids, "token_type_ids")
        if types.shape != ids.shape:
            raise ValueError(f"BertModel: token_type_ids has shape {tuple(types.shape)}, input_ids {tuple(ids.shape)}")
        if types.size and (types.min() < 0 or types.max() >= cfg.type_vocab_size):
            raise ValueError(f"BertModel: token_type_ids must lie in [0, {cfg.type_vocab_size}), got values in [{types.min()}, {types.max()}]")
        device = self.embeddings.word_embeddings.weight.device
        key_mask = packing = None
        if attention_mask is not None:
            mask = _as_index_array(attention_mask, "attention_mask")
            if mask.shape != ids.shape:
                raise ValueError(f"BertModel: attention_mask has shape {tuple(mask.shape)}, input_ids {tuple(ids.shape)}")
            if mask.dtype != bool and mask.size and (mask.min() < 0 or mask.max() > 1):
                raise ValueError(f"BertModel: attention_mask must hold 0 (padding) and 1 (token), got values in "
                                 f"[{mask.min()}, {mask.max()}]")
            if not mask.all():  # an all-ones mask changes nothing: skip the masked kernel path
                key_mask = Tensor._of(mask.astype(bool).reshape(b, 1, 1, n), device=device)   # (B, 1, 1, N)
                # the packing Functions trust these: built once here from the checked mask
                rows = Tensor._of(np.flatnonzero(mask.reshape(-1)), device=device)._data         # (T,) real tokens
                packing = (b, n, rows, divmod(rows, n))
        h = self.embeddings(Tensor._of(ids, device=device), Tensor._of(types, device=device))    # (B, N, C)
        if packing is None:
            h = self.encoder(h, key_mask)                                              # (B, N, C)
        else:
            c = h.shape[-1]
            h = PackRows.apply(h.reshape(b * n, c), rows)                              # (T, C)
            h = self.encoder(h, key_mask, packing)                                     # (T, C)
            h = UnpackRows.apply(h, rows, b * n).reshape(b, n, c)                      # (B, N, C), zeros at padding
        pooled = self.pooler(h) if self.pooler is not None else None                   # (B, C)
        return h, pooled

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, folder, dtype=None, device: str = "cpu") -> "BertModel":
        """Build from ``folder/config.json`` and load ``folder/model.safetensors`` (Hugging Face
        names). A pooler is built only when the file has its weights."""
        folder = os.fspath(folder)
        config = BertConfig.from_json_file(os.path.join(folder, "config.json"))
        weights = os.path.join(folder, "model.safetensors")
        header, _ = read_header(weights)
        model = cls(config, add_pooling_layer=any(k.startswith("pooler.") for k in header))
        model.load_safetensors(weights)
        if dtype is not None:
            model.to(dtype)
        if device != "cpu":
            model.to(device)
        return model.eval()

    # Buffers that transformers writes but that carry no learned state here.
    _IGNORED_KEYS = ("embeddings.position_ids",)

    def load_safetensors(self, path) -> None:
        """Copy the tensors of a safetensors file into this model, refusing any file whose tensor
        names or shapes do not match exactly (the first mismatch is named in the error)."""
        from safetensors import safe_open

        path = os.fspath(path)
        header, _ = read_header(path)
        own = dict(self.named_parameters())
        found = {k: tuple(v["shape"]) for k, v in header.items() if k not in self._IGNORED_KEYS}
        for name, p in own.items():
            if name not in found:
                raise BertCheckpointError(f"BertModel: {path} has no tensor {name!r} (expected shape {tuple(p.shape)})")
            if found[name] != tuple(p.shape):
                raise BertCheckpointError(
                    f"BertModel: {path}: tensor {name!r} has shape {found[name]}, the config gives {tuple(p.shape)}")
        for name in found:
            if name not in own:
                raise BertCheckpointError(f"BertModel: {path} has a tensor {name!r} that this BERT has no place for")
        with safe_open(path, framework="numpy") as f:
            for name, p in own.items():
                p._data[...] = f.get_tensor(name).astype(p.dtype, copy=False)


def _as_index_array(x, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x._data
    if hasattr(x, "get"):  # a CuPy array: indices are checked on the host
        x = x.get()
    a = np.asarray(x)
    if a.dtype.kind not in "iub":
        raise TypeError(f"BertModel: {name} must hold integers (or bools for the mask), got {a.dtype}")
    return a


def bert_flops(cfg: BertConfig, batch: int, length: int) -> float:
    """Multiply-adds ×2 of one forward pass: the GEMMs and the two attention GEMMs."""
    c, f, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    tokens = batch * length
    gemm = 2 * tokens * (4 * c * c + 2 * c * f)
    attn = 4 * batch * length * length * c
    return float(layers * (gemm + attn))

