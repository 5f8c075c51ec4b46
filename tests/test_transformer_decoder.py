"""TransformerDecoderLayer, TransformerDecoder and Transformer against PyTorch: a torch state
dict loads (same keys), outputs and every parameter gradient agree, with causal target masks,
padding masks on target and memory, norm_first, both batch layouts."""
import numpy as np
import pytest

import tinymm as tm
from tinymm import nn
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)
# PyTorch's own notes about its mask types and nested tensors, not about the comparison
pytestmark = [pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")]
E, H, FF = 8, 2, 16


def _load(ours, theirs):
    sd = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(sd)
    ours.load_state_dict(sd)


def _compare(o1, o2, ours, theirs, atol=2e-5):
    np.testing.assert_allclose(o1.detach().numpy(), o2.detach().numpy(), atol=atol, rtol=1e-4)
    r = np.random.default_rng(1).standard_normal(o1.shape).astype(np.float32)
    (o1 * tm.tensor(r)).sum().backward()
    (o2 * torch.tensor(r)).sum().backward()
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads[name].grad.numpy(), atol=1e-4, rtol=1e-3, err_msg=name)


def _inputs(batch_first, B=2, T=4, S=5):
    rng = np.random.default_rng(0)
    tgt = rng.standard_normal((B, T, E) if batch_first else (T, B, E)).astype(np.float32)
    mem = rng.standard_normal((B, S, E) if batch_first else (S, B, E)).astype(np.float32)
    tkpm = np.zeros((B, T), bool)
    tkpm[1, -1] = True
    mkpm = np.zeros((B, S), bool)
    mkpm[0, -2:] = True
    return tgt, mem, tkpm, mkpm


@needs_torch
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_stack_matches_torch_with_masks(norm_first, batch_first):
    torch.manual_seed(0)
    kw = dict(dim_feedforward=FF, dropout=0.0, batch_first=batch_first, norm_first=norm_first)
    theirs = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(E, H, **kw), 2, torch.nn.LayerNorm(E))
    ours = nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, **kw), 2, nn.LayerNorm(E))
    _load(ours, theirs)
    tgt, mem, tkpm, mkpm = _inputs(batch_first)
    T = tgt.shape[1] if batch_first else tgt.shape[0]
    causal = torch.nn.Transformer.generate_square_subsequent_mask(T)
    o1 = ours(tm.tensor(tgt), tm.tensor(mem), tgt_mask=nn.Transformer.generate_square_subsequent_mask(T),
              tgt_key_padding_mask=tm.tensor(tkpm), memory_key_padding_mask=tm.tensor(mkpm))
    o2 = theirs(torch.tensor(tgt), torch.tensor(mem), tgt_mask=causal, tgt_key_padding_mask=torch.tensor(tkpm),
                memory_key_padding_mask=torch.tensor(mkpm))
    _compare(o1, o2, ours, theirs)


@needs_torch
@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_matches_torch(batch_first):
    torch.manual_seed(1)
    kw = dict(d_model=E, nhead=H, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=FF, dropout=0.0,
              activation="gelu", batch_first=batch_first)
    theirs = torch.nn.Transformer(**kw)
    ours = nn.Transformer(**kw)
    _load(ours, theirs)
    src, _, skpm, _ = _inputs(batch_first, T=5)
    tgt, _, tkpm, _ = _inputs(batch_first, T=4)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(4)
    o1 = ours(tm.tensor(src), tm.tensor(tgt), tgt_mask=nn.Transformer.generate_square_subsequent_mask(4),
              src_key_padding_mask=tm.tensor(skpm), tgt_key_padding_mask=tm.tensor(tkpm),
              memory_key_padding_mask=tm.tensor(skpm))
    o2 = theirs(torch.tensor(src), torch.tensor(tgt), tgt_mask=causal, src_key_padding_mask=torch.tensor(skpm),
                tgt_key_padding_mask=torch.tensor(tkpm), memory_key_padding_mask=torch.tensor(skpm))
    _compare(o1, o2, ours, theirs)


@needs_torch
@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_unbatched_input_and_causal_hint_with_a_mask(batch_first):
    # PyTorch takes unbatched (S, E), (T, E); tgt_is_causal beside an explicit tgt_mask is a hint
    torch.manual_seed(2)
    kw = dict(d_model=E, nhead=H, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=FF, dropout=0.0,
              batch_first=batch_first)
    theirs = torch.nn.Transformer(**kw)
    ours = nn.Transformer(**kw)
    _load(ours, theirs)
    src, tgt = (np.random.default_rng(3).standard_normal((n, E)).astype(np.float32) for n in (5, 4))
    o1 = ours(tm.tensor(src), tm.tensor(tgt), tgt_mask=nn.Transformer.generate_square_subsequent_mask(4),
              tgt_is_causal=True)
    o2 = theirs(torch.tensor(src), torch.tensor(tgt), tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(4),
                tgt_is_causal=True)
    assert o1.shape == (4, E)
    _compare(o1, o2, ours, theirs)


def test_transformer_defaults_and_init():
    m = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=8)
    assert m.batch_first is False  # PyTorch's default: (S, N, E)
    w = m.encoder.layers[0].linear1.weight.detach().numpy()
    assert np.abs(w).max() <= np.sqrt(6 / (8 + 8)) + 1e-7  # Xavier-uniform bound
    mask = nn.Transformer.generate_square_subsequent_mask(3).detach().numpy()
    assert (mask == np.triu(np.full((3, 3), -np.inf), 1)).all()


def test_transformer_shape_errors_are_named():
    m = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=8)
    with pytest.raises(RuntimeError, match="batch number of src and tgt must be equal"):
        m(tm.randn(5, 2, 8), tm.randn(4, 3, 8))
    with pytest.raises(RuntimeError, match="feature number of src and tgt must be equal to d_model=8"):
        m(tm.randn(5, 2, 6), tm.randn(4, 2, 6))
    with pytest.raises(ValueError, match="num_layers must be positive"):
        nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2), 0)
