"""Attention three ways: the plain NumPy formula, the fused kernel, and a multi-head
cross-attention layer where text tokens attend to image patches.

    python examples/attention_tour.py
"""
import time

import numpy as np

import tinymm as tm
import tinymm.nn.functional as F
from tinymm import nn
from tinymm.kernels.attention import reference_forward


def main(argv=None):
    rng = np.random.default_rng(0)
    B, H, N, D = 2, 4, 512, 64
    q, k, v = (rng.standard_normal((B, H, N, D)).astype(np.float32) for _ in range(3))

    # 1. softmax(Q·Kᵀ/√d)·V as written (it builds the N×N matrix).
    t0 = time.perf_counter()
    o_ref, lse = reference_forward(q, k, v, is_causal=True)
    t_ref = time.perf_counter() - t0

    # 2. The same through autograd and the fused kernel (blocks of queries, N×N never stored).
    qt, kt, vt = (tm.tensor(a, requires_grad=True) for a in (q, k, v))
    t0 = time.perf_counter()
    o = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True)
    o.sum().backward()
    t_fused = time.perf_counter() - t0
    print(f"reference forward {t_ref * 1e3:.1f} ms; fused forward+backward {t_fused * 1e3:.1f} ms "
          f"(first call includes compilation)")
    print(f"max |fused - reference| = {np.abs(o.detach().numpy() - o_ref).max():.2e}; "
          f"per-row log-sum-exp saved for backward: shape {lse.shape}")

    # 3. Cross-attention: 6 text tokens (dim 32) attend to 16 image patches (dim 48).
    text = tm.randn(B, 6, 32)
    patches = nn.PatchEmbedding(img_size=32, patch_size=8, in_chans=3, embed_dim=48)(tm.randn(B, 3, 32, 32))
    xattn = nn.MultiheadAttention(embed_dim=32, num_heads=4, kdim=48, vdim=48, batch_first=True)
    out, weights = xattn(text, patches, patches, average_attn_weights=True)
    print(f"text {text.shape} x image patches {patches.shape} -> {out.shape}; "
          f"attention weights {weights.shape}, rows sum to {weights.detach().numpy().sum(-1).mean():.3f}")


if __name__ == "__main__":
    main()
