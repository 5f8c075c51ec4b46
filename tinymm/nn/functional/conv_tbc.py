"""``torch.conv_tbc``: a 1-D convolution over time-major (Time, Batch, Channels) sequences, the
layout fairseq's ``ConvTBC`` (fconv models, speech encoders) keeps its activations in.

    out[t, b, o] = bias[o] + Σ_k Σ_c x̃[t + k, b, c] · weight[k, c, o]

where x̃ is x with ``pad`` zero steps on both ends of time. It is ``conv1d`` on the transposed
views (weight (K, C_in, C_out) read as (C_out, C_in, K)), so the gradients reach input, weight and
bias through conv1d's own backward. A negative ``pad`` crops that many steps off both ends, as
ATen's loop does (it just starts reading later)."""
from __future__ import annotations

from tinymm.nn.functional.conv import conv1d
from tinymm.ops.convert import as_tensor


def conv_tbc(input, weight, bias, pad: int = 0):
    """(T, B, C_in) input, (K, C_in, C_out) weight, (C_out,) bias -> (T + 2·pad − K + 1, B, C_out)."""
    if bias is None:  # ATen's signature has no optional bias
        raise TypeError("conv_tbc(): argument 'bias' (position 3) must be Tensor, not NoneType")
    x, w, b = as_tensor(input, "conv_tbc"), as_tensor(weight, "conv_tbc"), as_tensor(bias, "conv_tbc")
    if x.ndim != 3:
        raise RuntimeError(f"Input must have 3 dims: time, batch, in_channel (got shape {list(x.shape)})")
    if w.ndim != 3:
        raise RuntimeError("Weight tensor must have 3 dims: kernel_width, in_channels, out_channels "
                           f"(got shape {list(w.shape)}).")
    if b.ndim != 1 or b.shape[0] != w.shape[2]:
        raise RuntimeError(f"Bias size must equal dim 2 in the weight tensor (output channels): bias {list(b.shape)}, "
                           f"weight {list(w.shape)}.")
    if x.shape[2] != w.shape[1]:
        raise RuntimeError(f"Input dim 2 (input channels) is not == dim 1 in the weight tensor: input "
                           f"{list(x.shape)}, weight {list(w.shape)}")
    pad = int(pad)
    steps = x.shape[0] + 2 * pad - w.shape[0] + 1
    if steps < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {steps}: "
                           f"[{steps}, {x.shape[1]}, {w.shape[2]}]")
    xb = x.permute(1, 2, 0)  # (B, C_in, T)
    if pad < 0:
        xb = xb[:, :, -pad:x.shape[0] + pad]
        pad = 0
    out = conv1d(xb, w.permute(2, 1, 0), b, padding=pad)  # (B, C_out, T_out)
    return out.permute(2, 0, 1)
