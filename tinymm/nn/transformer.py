"""Transformer blocks with PyTorch's structure and parameter names.

Encoder layer, post-norm (``norm_first=False``, the original Transformer):
    x = norm1(x + dropout1(self_attn(x)))
    x = norm2(x + dropout2(linear2(dropout(activation(linear1(x))))))
pre-norm (``norm_first=True``, more stable when deep):
    x = x + dropout1(self_attn(norm1(x)))
    x = x + dropout2(ff(norm2(x)))
The decoder layer adds cross-attention (``multihead_attn``) over the encoder's ``memory``
between the two: in multimodal models, text queries attending to image or audio tokens.
``TransformerDecoder`` stacks decoder layers; ``Transformer`` is the whole encoder-decoder.
"""
from __future__ import annotations

import copy

import numpy as np

from tinymm.autograd import is_grad_enabled
from tinymm.nn import functional as F
from tinymm.nn import init
from tinymm.nn.functional._checks import ShapeError
from tinymm.nn.functional.mha import warn_mismatched_masks
from tinymm.nn.attention import MultiheadAttention
from tinymm.nn.containers import ModuleList
from tinymm.nn.layers import GELU, Dropout, LayerNorm, Linear, ReLU
from tinymm.nn.module import Module


def _activation(name):
    if callable(name):
        return name
    if name == "relu":
        return F.relu
    if name == "gelu":
        return F.gelu
    raise ValueError(f"Transformer: activation must be 'relu', 'gelu' or a callable, got {name!r}")


class TransformerEncoderLayer(Module):
    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation="relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, dtype=None, device=None):
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation_name = activation if isinstance(activation, str) else getattr(activation, "__name__", "custom")
        self.activation = _activation(activation)

    def _sa(self, x, mask, key_padding_mask, is_causal):
        out, _ = self.self_attn(x, x, x, key_padding_mask=key_padding_mask, attn_mask=mask,
                                need_weights=False, is_causal=is_causal)
        return self.dropout1(out)

    def _ff(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        x = src
        if self.norm_first:
            x = x + self._sa(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff(self.norm2(x))
        else:
            x = self.norm1(x + self._sa(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff(x))
        return x


def _additive(mask, dtype):
    """A bool mask (True = blocked) as PyTorch's canonical additive float mask; a float one as it is."""
    if mask.dtype.kind != "b":
        return mask
    return mask.new_zeros(mask.shape, dtype=dtype).masked_fill(mask, float("-inf"))


def _nested_layer(layer) -> bool:
    """Whether PyTorch's TransformerEncoder could take its nested-tensor path with this layer
    (``use_nested_tensor``): post-norm, batch_first, one embed dim, biases, ReLU or GELU, equal
    norm eps and an even head count. (PyTorch warns when it cannot; tinymm says nothing.)"""
    attn = getattr(layer, "self_attn", None)
    return (isinstance(layer, TransformerEncoderLayer) and not layer.norm_first and attn.batch_first
            and attn._qkv_same_embed_dim and attn.in_proj_bias is not None
            and (layer.activation in (F.relu, F.gelu) or isinstance(layer.activation, (ReLU, GELU)))
            and layer.norm1.eps == layer.norm2.eps
            and attn.num_heads % 2 == 0)


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (same initial weights, as PyTorch) and an
    optional final ``norm``."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):
        super().__init__()
        if num_layers <= 0:
            raise ValueError(f"TransformerEncoder: num_layers must be positive, got {num_layers}")
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.use_nested_tensor = enable_nested_tensor and _nested_layer(encoder_layer)
        self.mask_check = mask_check

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        x = src
        layer_mask, layer_padding = mask, src_key_padding_mask
        if mask is not None and src_key_padding_mask is not None and mask.dtype != src_key_padding_mask.dtype:
            # PyTorch warns here and hands its layers both masks as additive floats (so they do not warn again)
            warn_mismatched_masks(src_key_padding_mask, "src_key_padding_mask", mask, "mask")
            layer_mask, layer_padding = (_additive(m, src.dtype) for m in (mask, src_key_padding_mask))
        # PyTorch's None ("detect it from the mask") is False here: the mask is applied either way
        for layer in self.layers:
            x = layer(x, src_mask=layer_mask, src_key_padding_mask=layer_padding, is_causal=bool(is_causal))
        pad = self._nested_padding(src, mask, src_key_padding_mask)
        if pad is not None:  # PyTorch's nested-tensor path: padded positions come back as zeros
            x = x.masked_fill(pad.unsqueeze(-1), 0.0)
        return self.norm(x) if self.norm is not None else x

    def _nested_padding(self, src, mask, src_key_padding_mask):
        """The (B, T) bool padding when PyTorch would run the layers on a nested tensor (and so
        return zeros at padded positions): evaluation mode, batched (B, T, E) input, a
        right-padded key padding mask and no attention mask, nothing needing a gradient; else None.
        The layer conditions (post-norm, batch_first, ...) were checked at construction."""
        first = self.layers[0]
        if (not self.use_nested_tensor or first.training or src_key_padding_mask is None or mask is not None
                or src.ndim != 3):
            return None
        attn = first.self_attn
        weights = (src, attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.weight, attn.out_proj.bias,
                   first.norm1.weight, first.norm1.bias, first.norm2.weight, first.norm2.bias,
                   first.linear1.weight, first.linear1.bias, first.linear2.weight, first.linear2.bias)
        if is_grad_enabled() and any(getattr(t, "requires_grad", False) for t in weights):
            return None
        pad = src_key_padding_mask
        pad = pad if pad.dtype == np.bool_ else pad != 0  # a float mask pads where it is not 0
        keep = ~pad.numpy(force=True)
        # right padding: each row keeps a prefix, so no kept position follows a padded one
        if self.mask_check and bool(np.any(keep[:, 1:] & ~keep[:, :-1])):
            return None
        return pad


class TransformerDecoderLayer(Module):
    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation="relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, dtype=None, device=None):
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation(activation)

    def _sa(self, x, mask, kpm, is_causal):
        out, _ = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=kpm, need_weights=False, is_causal=is_causal)
        return self.dropout1(out)

    def _mha(self, x, mem, mask, kpm, is_causal):
        out, _ = self.multihead_attn(x, mem, mem, attn_mask=mask, key_padding_mask=kpm, need_weights=False, is_causal=is_causal)
        return self.dropout2(out)

    def _ff(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool = False, memory_is_causal: bool = False):
        x = tgt
        if self.norm_first:
            x = x + self._sa(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff(self.norm3(x))
        else:
            x = self.norm1(x + self._sa(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff(x))
        return x


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer`` (same initial weights, as PyTorch) and an
    optional final ``norm``; each layer attends to the same encoder ``memory``."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None):
        super().__init__()
        if num_layers <= 0:
            raise ValueError(f"TransformerDecoder: num_layers must be positive, got {num_layers}")
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal: bool = False):
        # is_causal is only a hint when a mask is given (the mask is applied either way), so
        # PyTorch's None ("detect it from the mask") is simply False here.
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return self.norm(x) if self.norm is not None else x


class Transformer(Module):
    """The encoder-decoder Transformer ("Attention Is All You Need") with PyTorch's structure:
    ``encoder`` (TransformerEncoder with a final LayerNorm) and ``decoder`` (TransformerDecoder
    with a final LayerNorm), so state-dict keys match ``torch.nn.Transformer``'s. Every weight
    matrix starts Xavier-uniform, as PyTorch's. ``batch_first`` defaults to False as in PyTorch
    (inputs (S, N, E)); pass True for (N, S, E)."""

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation="relu", custom_encoder: Module | None = None, custom_decoder: Module | None = None,
                 layer_norm_eps: float = 1e-5, batch_first: bool = False, norm_first: bool = False,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        layer_kw = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                        layer_norm_eps=layer_norm_eps, batch_first=batch_first, norm_first=norm_first, bias=bias, **kw)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(d_model, nhead, **layer_kw), num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(d_model, nhead, **layer_kw), num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        self._reset_parameters()
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first

    def _reset_parameters(self):
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal: bool = False):
        """src (S, N, E) and tgt (T, N, E) ((N, S, E), (N, T, E) with ``batch_first``) → (T, N, E);
        unbatched src (S, E) and tgt (T, E) → (T, E)."""
        batch_dim = 0 if self.batch_first else 1
        if src.ndim != tgt.ndim or src.ndim not in (2, 3):
            raise ShapeError(f"Transformer: src and tgt must both be 3-D ({'(N, S, E)' if self.batch_first else '(S, N, E)'}) "
                             f"or both unbatched 2-D (S, E), got shapes {tuple(src.shape)} and {tuple(tgt.shape)}")
        if src.ndim == 3 and src.shape[batch_dim] != tgt.shape[batch_dim]:
            raise ShapeError(f"Transformer: the batch number of src and tgt must be equal, got shapes "
                             f"{tuple(src.shape)} and {tuple(tgt.shape)} (batch_first={self.batch_first})")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ShapeError(f"Transformer: the feature number of src and tgt must be equal to d_model={self.d_model}, "
                             f"got shapes {tuple(src.shape)} and {tuple(tgt.shape)}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=bool(src_is_causal))
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None):
        """The (sz, sz) float causal mask: 0 on and below the diagonal, −inf above."""
        from tinymm import backend
        from tinymm.tensor import Tensor

        xp = backend.array_module(device)
        dt = np.dtype(dtype) if dtype is not None else backend.get_default_dtype()
        return Tensor._of(xp.triu(xp.full((sz, sz), -np.inf, dtype=dt), 1))
