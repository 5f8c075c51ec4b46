"""``nn.MultiheadAttention(add_bias_kv=True, add_zero_attn=True)``: the learned and the zero key
positions appended to every sequence, compared with PyTorch on a copied state dict (output,
weights, input and parameter gradients), in every layout and with masks."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def _pad_mask(m):
    return m.tensor([[False, False, True], [False, True, True]])


CASES = {
    "both, seq-first": (dict(add_bias_kv=True, add_zero_attn=True), (3, 2, 8), lambda m, mod, x: mod(x, x, x)),
    "bias_kv, batch-first, masks, per-head weights": (
        dict(add_bias_kv=True, batch_first=True), (2, 3, 8),
        lambda m, mod, x: mod(x, x, x, key_padding_mask=_pad_mask(m), attn_mask=m.triu(m.ones(3, 3, dtype=m.bool), 1),
                              average_attn_weights=False)),
    "zero_attn, kdim/vdim": (
        dict(add_zero_attn=True, kdim=6, vdim=5, batch_first=True), (2, 3, 8),
        lambda m, mod, x: mod(x, m.ones(2, 4, 6, dtype=m.float64), m.ones(2, 4, 5, dtype=m.float64) * 0.5)),
    "both, padding mask": (dict(add_zero_attn=True, add_bias_kv=True), (3, 2, 8),
                           lambda m, mod, x: mod(x, x, x, key_padding_mask=_pad_mask(m))),
    "bias_kv, unbatched, no weights": (dict(add_bias_kv=True), (3, 8), lambda m, mod, x: mod(x, x, x, need_weights=False)),
    "bias_kv, no in/out bias": (dict(add_bias_kv=True, bias=False, batch_first=True), (2, 3, 8), lambda m, mod, x: mod(x, x, x)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch(name):
    kwargs, shape, call = CASES[name]
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(8, 2, **kwargs).double()
    mine = tm.nn.MultiheadAttention(8, 2, **kwargs).double()
    assert list(mine.state_dict()) == list(ref.state_dict())
    mine.load_state_dict({k: tm.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
    x_np = np.random.default_rng(1).standard_normal(shape)
    results = []
    for m, mod in ((torch, ref), (tm, mine)):
        x = (torch.from_numpy(x_np.copy()) if m is torch else tm.tensor(x_np.copy())).requires_grad_(True)
        out, weights = call(m, mod, x)
        (out * out).sum().backward()
        results.append([out.detach().numpy(), None if weights is None else weights.detach().numpy(), x.grad.numpy()]
                       + [p.grad.numpy() for _, p in sorted(mod.named_parameters())])
    for want, got in zip(*results):
        assert (want is None) == (got is None)
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_bias_kv_parameters_are_initialised_and_trained():
    mha = tm.nn.MultiheadAttention(8, 2, add_bias_kv=True)
    assert mha.bias_k.shape == (1, 1, 8) and float(mha.bias_k.std()) > 0
    out, _ = mha(tm.randn(3, 2, 8), tm.randn(3, 2, 8), tm.randn(3, 2, 8))
    out.sum().backward()
    assert mha.bias_k.grad is not None and mha.bias_v.grad is not None


def test_is_causal_without_a_mask_is_refused_as_torch():
    x = np.zeros((3, 2, 8))
    with pytest.raises(RuntimeError):
        torch.nn.MultiheadAttention(8, 2, add_bias_kv=True)(*(torch.tensor(x, dtype=torch.float32),) * 3, is_causal=True)
    with pytest.raises(RuntimeError):
        tm.nn.MultiheadAttention(8, 2, add_bias_kv=True)(*(tm.tensor(x, dtype=tm.float32),) * 3, is_causal=True)
