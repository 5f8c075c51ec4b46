"""``MultiheadAttention``: self- and cross-attention with PyTorch's parameters and masks.

    Q = query·W_qᵀ + b_q,  K = key·W_kᵀ + b_k,  V = value·W_vᵀ + b_v     (B, L|S, E)
    split E into H heads of E/H                                           (B, H, L|S, E/H)
    O = SDPA(Q, K, V, mask)  → merge heads → out_proj                     (B, L, E)

Parameters carry PyTorch's names: ``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E,) when
keys and values have the embedding size, else ``q_proj_weight``, ``k_proj_weight`` (E, kdim),
``v_proj_weight`` (E, vdim); then ``out_proj.weight``/``out_proj.bias``. A state dict copied
from ``torch.nn.MultiheadAttention`` gives the same outputs and gradients.

Mask conventions are PyTorch's, and differ from SDPA's: in ``key_padding_mask`` (B, S) and a
bool ``attn_mask`` (L, S) or (B·H, L, S), True means "do NOT attend"; float masks are added.
For cross-attention the query comes from one modality and key/value from another
(``kdim``/``vdim`` may differ from ``embed_dim``).
"""
from __future__ import annotations


from tinymm.nn import functional as F
from tinymm.nn import init
from tinymm.nn.layers import Linear
from tinymm.nn.module import Module
from tinymm.nn.parameter import Parameter
from tinymm.nn.functional.attention import attention_weights, scaled_dot_product_attention
from tinymm.nn.functional.mha import AttentionShapeError
from tinymm.nn.functional.mha import merge_masks  # noqa: F401  (opse: moved to floor 4 for F.multi_head_attention_forward)
from tinymm import ops as O
from tinymm.factories import empty
from tinymm.sdp_backends import SDPBackend, sdpa_kernel  # noqa: F401  (probe3: torch.nn.attention's names)


class HeadsError(ValueError, AssertionError):
    """num_heads does not divide embed_dim (PyTorch asserts: catchable as AssertionError too)."""


class NonDynamicallyQuantizableLinear(Linear):
    """PyTorch's class of ``MultiheadAttention.out_proj``: a Linear under the name that prints
    (PyTorch uses the name to keep dynamic quantization off it)."""


class MultiheadAttention(Module):
    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, dtype=None, device=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be positive, got {embed_dim}, {num_heads}")
        if embed_dim % num_heads:
            raise HeadsError(f"MultiheadAttention: num_heads={num_heads} does not divide embed_dim={embed_dim}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self.batch_first = batch_first
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, dtype=dtype, device=device))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, dtype=dtype, device=device))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, dtype=dtype, device=device))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, dtype=dtype, device=device))
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, dtype=dtype, device=device))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, dtype=dtype, device=device)
        if add_bias_kv:  # one learned key/value position appended to every sequence
            self.bias_k = Parameter(empty(1, 1, embed_dim, dtype=dtype, device=device))
            self.bias_v = Parameter(empty(1, 1, embed_dim, dtype=dtype, device=device))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        # PyTorch: Xavier-uniform projections (over the stacked (3E, E) matrix), zero biases.
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _project(self, query, key, value):
        e = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e : 2 * e], b[2 * e :])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:  # self-attention: one (3E, E) product
                qkv = F.linear(query, w, b)
                return O.split(qkv, e, dim=-1)
            wq, wk, wv = w[:e], w[e : 2 * e], w[2 * e :]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                average_attn_weights: bool = True, is_causal: bool = False):
        """query (L, B, E), key (S, B, kdim), value (S, B, vdim) as PyTorch's default, or (B, L, E)
        ... with ``batch_first=True``; unbatched (L, E), (S, kdim), (S, vdim) too. Returns (output,
        weights or None), output in the layout of ``query``: the weights are (B, L, S) averaged
        over heads, or (B, H, L, S) with ``average_attn_weights=False`` (without B when unbatched)."""
        if self.bias_k is not None or self.add_zero_attn:
            return self._forward_extra_kv(query, key, value, key_padding_mask, need_weights, attn_mask,
                                          average_attn_weights, is_causal)
        if is_causal and attn_mask is not None:
            is_causal = False  # PyTorch's is_causal is a hint that attn_mask is causal: apply the mask itself
        unbatched = query.ndim == 2
        if unbatched:
            if key.ndim != 2 or value.ndim != 2:
                raise AttentionShapeError(f"MultiheadAttention: an unbatched (L, E) query needs unbatched key and value, "
                                 f"got query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}")
            if key_padding_mask is not None and getattr(key_padding_mask, "ndim", 2) == 1:
                key_padding_mask = O.unsqueeze(key_padding_mask, 0)
            query, key, value = (O.unsqueeze(t, 0) for t in (query, key, value))  # (1, N, E)
        elif not self.batch_first:
            query, key, value = (O.transpose(t, 0, 1) for t in (query, key, value))
        for name, t, want in (("query", query, self.embed_dim), ("key", key, self.kdim), ("value", value, self.vdim)):
            if t.ndim != 3 or t.shape[-1] != want:
                raise AttentionShapeError(f"MultiheadAttention: {name} must be (B, N, {want}), got shape {tuple(t.shape)}")
        B, L, _ = query.shape
        S = key.shape[1]
        if key.shape[:2] != value.shape[:2] or key.shape[0] != B:
            raise AttentionShapeError(f"MultiheadAttention: batch/length mismatch: query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}")
        q, k, v = self._project(query, key, value)
        H, d = self.num_heads, self.head_dim
        q, k, v = (O.transpose(O.reshape(t, B, t.shape[1], H, d), 1, 2) for t in (q, k, v))  # (B, H, N, d)
        mask = merge_masks(key_padding_mask, attn_mask, B, H, L, S, q.dtype)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            # PyTorch returns the weights after dropout, the ones that multiplied v; a query whose
            # keys are all masked gets NaN weights (softmax of -inf), as PyTorch's weights path
            w = F.dropout(attention_weights(q, k, mask, is_causal, empty_rows_nan=True), p, self.training)  # (B, H, L, S)
            out = O.matmul(w, v)
            weights = w.mean(dim=1) if average_attn_weights else w
        else:
            out = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal, training=self.training)
        out = O.reshape(O.transpose(out, 1, 2), B, L, self.embed_dim)  # (B, L, E)
        out = self.out_proj(out)
        if unbatched:
            return O.squeeze(out, 0), (None if weights is None else O.squeeze(weights, 0))
        if not self.batch_first:
            out = O.transpose(out, 0, 1)
        return out, weights

    def _forward_extra_kv(self, query, key, value, key_padding_mask, need_weights, attn_mask,
                          average_attn_weights, is_causal):
        """With ``add_bias_kv`` / ``add_zero_attn`` the extra key positions change every mask's
        width: PyTorch's functional form handles them, in its (L, N, E) layout."""
        batched_first = self.batch_first and query.ndim == 3
        if batched_first:
            query, key, value = (O.transpose(t, 0, 1) for t in (query, key, value))
        separate = not self._qkv_same_embed_dim
        out, weights = F.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias,
            self.bias_k, self.bias_v, self.add_zero_attn, self.dropout, self.out_proj.weight, self.out_proj.bias,
            training=self.training, key_padding_mask=key_padding_mask, need_weights=need_weights,
            attn_mask=attn_mask, use_separate_proj_weight=separate, q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights, is_causal=is_causal)
        return (O.transpose(out, 0, 1) if batched_first else out), weights
