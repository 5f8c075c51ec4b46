"""``torch.nn.attention.flex_attention``: attention whose scores a user function rewrites.

    scores = scale * Q K^T                                     (B, Hq, L, S)
    scores = where(mask_mod(b, h, q, kv), score_mod(scores, b, h, q, kv), -inf)
    out    = softmax(scores) V          (a row with nothing allowed gives 0, its lse -inf)

PyTorch runs ``score_mod`` / ``mask_mod`` under ``vmap`` on 0-d index tensors; here they run once
on broadcastable int64 index tensors ``b: (B,1,1,1)``, ``h: (1,H,1,1)``, ``q: (1,1,L,1)``,
``kv: (1,1,1,S)``. The functions flex attention accepts are the ones ``vmap`` can batch: made of
elementwise tensor ops and indexing captured tensors by the indices (``doc_id[q_idx]``), with no
Python branching on values; those give the same result on broadcast indices. Everything is built
from differentiable ops, so gradients reach query, key, value and any tensor a ``score_mod``
captures (a learned bias table); PyTorch's own CPU FlexAttention refuses inputs that require grad. This is PyTorch's unfused eager path: it materialises the
(B, H, L, S) scores, as ``torch.nn.attention.flex_attention`` does without ``torch.compile``.

``BlockMask`` keeps the block-level summary that ``create_block_mask`` computes (which
BLOCK_SIZE tiles hold any, or only, allowed entries) for ``to_dense`` / ``sparsity``; the
attention itself evaluates ``mask_mod`` per entry, as PyTorch's eager path does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import tinymm
from tinymm.nn import functional as F

_DEFAULT_SPARSE_BLOCK_SIZE = 128


def noop_mask(batch, head, token_q, token_kv):
    """Returns a noop mask_mod"""
    return batch.new_ones(size=(), dtype=tinymm.bool, device=batch.device)


def _identity(score, batch, head, token_q, token_kv):
    return score


def or_masks(*mask_mods):
    """Returns a mask_mod that's the union of provided mask_mods"""
    if not all(callable(arg) for arg in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")

    def or_mask(b, h, q_idx, kv_idx):
        result = b.new_zeros((), dtype=tinymm.bool)
        for mask in mask_mods:
            result = result | mask(b, h, q_idx, kv_idx)
        return result

    return or_mask


def and_masks(*mask_mods):
    """Returns a mask_mod that's the intersection of provided mask_mods"""
    if not all(callable(arg) for arg in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")

    def and_mask(b, h, q_idx, kv_idx):
        result = b.new_ones((), dtype=tinymm.bool)
        for mask in mask_mods:
            result = result & mask(b, h, q_idx, kv_idx)
        return result

    return and_mask


def _grid(B, H, L, S, device):
    """The four index tensors, each along its own axis of (B, H, L, S)."""
    b = tinymm.arange(B, device=device).view(B, 1, 1, 1)
    h = tinymm.arange(H, device=device).view(1, H, 1, 1)
    q = tinymm.arange(L, device=device).view(1, 1, L, 1)
    kv = tinymm.arange(S, device=device).view(1, 1, 1, S)
    return b, h, q, kv


def _is_score_mod(fn) -> bool:
    import inspect

    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.default is inspect.Parameter.empty
                  and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) == 5


def _dense_mask(mask_mod, B, H, L, S, device):
    b, h, q, kv = _grid(B, H, L, S, device)
    mask = mask_mod(b, h, q, kv)
    if not isinstance(mask, tinymm.Tensor):
        mask = tinymm.tensor(bool(mask), device=device)
    return mask.to(tinymm.bool).expand(B, H, L, S)


def create_mask(mod_fn, B, H, Q_LEN, KV_LEN, device=None):
    """The dense (B, H, Q_LEN, KV_LEN) boolean mask of a mask_mod, or of a score_mod (entries it
    sends to -inf are False); B or H None means 1."""
    device = "cpu" if device is None else device
    B = 1 if B is None else B
    H = 1 if H is None else H
    if _is_score_mod(mod_fn):
        b, h, q, kv = _grid(B, H, Q_LEN, KV_LEN, device)
        out = mod_fn(tinymm.zeros(B, H, Q_LEN, KV_LEN, device=device), b, h, q, kv)
        return tinymm.where(tinymm.isneginf(out), False, True).expand(B, H, Q_LEN, KV_LEN)
    return _dense_mask(mod_fn, B, H, Q_LEN, KV_LEN, device)


class BlockMask:
    """Which BLOCK_SIZE tiles of the (Q_LEN, KV_LEN) score matrix hold allowed entries, plus the
    mask_mod that says which entries inside them are allowed."""

    def __init__(self, kv_num_blocks, full_kv_num_blocks, block_dense, full_dense, BLOCK_SIZE, mask_mod,
                 seq_lengths):
        self.kv_num_blocks = kv_num_blocks  # (B, H, q_blocks) int32: partly allowed tiles per q tile
        self.full_kv_num_blocks = full_kv_num_blocks  # (B, H, q_blocks) int32: wholly allowed tiles
        self._partial_dense = block_dense
        self._full_dense = full_dense
        self.BLOCK_SIZE = BLOCK_SIZE
        self.mask_mod = mask_mod if mask_mod is not None else noop_mask
        self.seq_lengths = seq_lengths

    @property
    def shape(self):
        return tuple(self.kv_num_blocks.shape[:-1]) + tuple(self.seq_lengths)

    def numel(self) -> int:
        return math.prod(self.shape)

    def sparsity(self) -> float:
        """Percentage of the score matrix the block-sparse kernel would skip (PyTorch's formula,
        which counts whole tiles, so it goes negative when the tiles outgrow the sequence)."""
        computed = int(self.kv_num_blocks.sum().item()) + int(self.full_kv_num_blocks.sum().item())
        computed_size = computed * self.BLOCK_SIZE[0] * self.BLOCK_SIZE[1]
        return 100 * (1 - computed_size / self.numel())

    def to_dense(self):
        """(B, H, q_blocks, kv_blocks) int32: 1 where a tile is computed at all."""
        return (self._partial_dense | self._full_dense).to(tinymm.int32)

    def __repr__(self):
        name = getattr(self.mask_mod, "__name__", self.mask_mod)
        return (f"BlockMask(shape={self.shape}, BLOCK_SIZE={self.BLOCK_SIZE}, sparsity={self.sparsity():.2f}%, "
                f"mask_mod={name})")


def create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device=None, BLOCK_SIZE=_DEFAULT_SPARSE_BLOCK_SIZE,
                      _compile=False, separate_full_blocks=True):
    """A BlockMask for ``mask_mod`` over (B, H, Q_LEN, KV_LEN); B or H None broadcasts (size 1)."""
    if not callable(mask_mod):
        raise TypeError(f"create_block_mask: mask_mod must be callable, got {type(mask_mod).__name__}")
    if _is_score_mod(mask_mod):
        raise RuntimeError("create_block_mask: expected a mask_mod (b, h, q_idx, kv_idx), got a 5-argument "
                           "score_mod; use create_mask for score_mods")
    device = "cpu" if device is None else device
    B = 1 if B is None else B
    H = 1 if H is None else H
    bq, bkv = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)
    mask = _dense_mask(mask_mod, B, H, Q_LEN, KV_LEN, device)
    nq, nkv = -(-Q_LEN // bq), -(-KV_LEN // bkv)
    # padded to whole tiles with False, as PyTorch does: a tile past the end is never "full"
    padded = F.pad(mask.to(tinymm.int32), (0, nkv * bkv - KV_LEN, 0, nq * bq - Q_LEN))
    tiles = padded.view(B, H, nq, bq, nkv, bkv).permute(0, 1, 2, 4, 3, 5).reshape(B, H, nq, nkv, bq * bkv)
    allowed_count = tiles.sum(-1)
    any_allowed = allowed_count > 0
    all_allowed = allowed_count == bq * bkv
    if separate_full_blocks:
        partial, full = any_allowed & ~all_allowed, all_allowed
    else:
        partial, full = any_allowed, tinymm.zeros_like(any_allowed)
    return BlockMask(partial.sum(-1).to(tinymm.int32), full.sum(-1).to(tinymm.int32), partial, full,
                     (bq, bkv), mask_mod, (Q_LEN, KV_LEN))


@dataclass(frozen=True)
class AuxRequest:
    """Which auxiliary outputs flex_attention should return."""
    lse: bool = False
    max_scores: bool = False


@dataclass
class AuxOutput:
    lse: Optional[object] = None
    max_scores: Optional[object] = None


def flex_attention(query, key, value, score_mod: Optional[Callable] = None, block_mask: Optional[BlockMask] = None,
                   scale: Optional[float] = None, enable_gqa: bool = False, return_lse: bool = False,
                   kernel_options=None, *, return_aux: Optional[AuxRequest] = None):
    """query (B, Hq, L, E), key (B, Hkv, S, E), value (B, Hkv, S, Ev) -> (B, Hq, L, Ev)
    [, lse (B, Hq, L) in float32 / float64]."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, tinymm.Tensor):
            raise TypeError(f"flex_attention: {name} must be a Tensor, got {type(t).__name__}")
    if query.dim() != 4 or key.dim() != 4 or value.dim() != 4:
        raise NotImplementedError("NYI: query, key, and value must be 4D tensors")
    if query.dtype != key.dtype or query.dtype != value.dtype:
        raise ValueError(f"Expected query, key, and value to have the same dtype, but got query.dtype: "
                         f"{query.dtype}, key.dtype: {key.dtype}, and value.dtype: {value.dtype} instead.")
    if query.size(-1) != key.size(-1):
        raise ValueError(f"Expect query and key to have the same embedding dimension, but got "
                         f"E={query.size(-1)} and E={key.size(-1)}.")
    if key.size(-2) != value.size(-2) or key.size(1) != value.size(1):
        raise ValueError(f"flex_attention: key {tuple(key.shape)} and value {tuple(value.shape)} must agree "
                         f"in heads and sequence length")
    Hq, Hkv = query.size(1), key.size(1)
    if not enable_gqa and Hq != Hkv:
        raise ValueError(f"Expect query and key/value to have the same number of heads but got Hq={Hq} and "
                         f"Hkv={Hkv}. Try setting enable_gqa=True for GQA.")
    if enable_gqa and Hq % Hkv != 0:
        raise ValueError(f"Expect number of query heads to be a multiple of kv heads for GQA but got Hq={Hq} "
                         f"and Hkv={Hkv}.")
    Bq, Bkv = query.size(0), key.size(0)
    if Bq != Bkv:
        if block_mask is None:
            raise ValueError(f"Expect query and key/value to have the same batch size, or non-none block_mask, "
                             f"but got block_mask=None, Bq={Bq}, and Bkv={Bkv}.")
        if Bkv != 1:
            raise RuntimeError(f"Bq and Bkv must broadcast. Got Bq={Bq} and Bkv={Bkv}")
    L, S = query.size(-2), key.size(-2)
    if block_mask is not None:
        mq, mkv = block_mask.seq_lengths
        if L > mq or S > mkv:
            raise ValueError(f"block_mask was created for block_mask.shape={block_mask.shape} but got q_len={L} "
                             f"and kv_len={S}. As the block mask was created for a smaller length than you're "
                             f"using it for, you likely need to create a new block mask.")
        if L != mq or S != mkv:
            raise ValueError(f"block_mask was created for block_mask.shape={block_mask.shape} but got q_len={L} "
                             f"and kv_len={S}. As the block mask was created for a larger length than you're "
                             f"using it for, create a new block mask with the correct length.")
    if return_lse and return_aux is not None:
        raise ValueError("Cannot specify both return_lse and return_aux. return_lse is deprecated, please use "
                         "return_aux=AuxRequest(lse=True) instead.")
    if scale is None:
        scale = 1.0 / math.sqrt(query.size(-1))

    G = Hq // Hkv
    if G > 1:
        key = key.repeat_interleave(G, dim=1)
        value = value.repeat_interleave(G, dim=1)
    key = key.expand(Bq, *key.shape[1:])
    value = value.expand(Bq, *value.shape[1:])

    # float32 working precision for half inputs (PyTorch's eager path does the same)
    work = tinymm.float64 if query.dtype == tinymm.float64 else tinymm.float32
    scores = (query.to(work) @ key.to(work).transpose(-2, -1)) * scale  # (B, H, L, S)
    b, h, q, kv = _grid(Bq, Hq, L, S, query.device)
    modded = scores if score_mod is None else score_mod(scores, b, h, q, kv)
    if block_mask is not None:
        allowed = _dense_mask(block_mask.mask_mod, Bq, Hq, L, S, query.device)
        modded = tinymm.where(allowed, modded, tinymm.tensor(-math.inf, dtype=work, device=query.device))
    modded = modded.expand(Bq, Hq, L, S)

    # a row with nothing allowed: output 0 and lse -inf, without a NaN in either pass
    empty = (modded == -math.inf).all(dim=-1, keepdim=True)  # (B, H, L, 1)
    safe = tinymm.where(empty, tinymm.zeros((), dtype=work, device=query.device), modded)
    lse = tinymm.logsumexp(safe, dim=-1, keepdim=True)
    weights = tinymm.where(empty, tinymm.zeros((), dtype=work, device=query.device), tinymm.exp(modded - lse))
    out = weights.to(query.dtype) @ value
    want_lse = return_lse or (return_aux is not None and return_aux.lse)
    want_max = return_aux is not None and return_aux.max_scores
    lse_out = tinymm.where(empty, tinymm.tensor(-math.inf, dtype=work, device=query.device), lse).squeeze(-1) \
        if want_lse else None
    max_out = modded.amax(dim=-1) if want_max else None
    if return_aux is not None:
        return out, AuxOutput(lse=lse_out, max_scores=max_out)
    if return_lse:
        return out, lse_out
    return out


__all__ = ["AuxOutput", "AuxRequest", "BlockMask", "and_masks", "create_block_mask", "create_mask", "flex_attention",
           "noop_mask", "or_masks"]
