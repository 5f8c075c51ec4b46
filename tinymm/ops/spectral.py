"""Short-time Fourier transform: ``stft`` and its inverse ``istft`` (PyTorch's semantics).

stft of a signal x (L,) or batch (B, L), window w of ``win_length`` zero-padded on both sides
to ``n_fft``, hop h:

    X[..., f, t] = Σ_k w[k] · x̃[t·h + k] · e^{−2πi·f·k/n_fft}        (× n_fft^{-1/2} if normalized)

where x̃ is x padded by n_fft//2 on both sides with ``pad_mode`` when ``center``. It is built
from recorded ops (one integer gather makes the padded frames, a multiply, ``fft.rfft``/``fft``),
so its gradients reach x and the window without a backward of its own.

istft inverts it by weighted overlap-add: each frame's inverse DFT times the window, summed at
t·h, divided by the overlap-added squared window (which must not vanish), then the centre
padding cropped (or the output cut/padded to ``length``). The one new Function is
``OverlapAdd`` (frames (B, T, n) -> signal (B, n + h·(T − 1))); its backward gathers the frames
back, a linear map whose adjoint is right for complex tensors too.
"""
from __future__ import annotations

import warnings

import numpy as np

from tinymm import backend
from tinymm.autograd import Function
from tinymm.ops import fft_ops
from tinymm.ops._util import xp_of
from tinymm.ops.complex_ops import view_as_real
from tinymm.ops.convert import as_tensor, cast
from tinymm.ops.index import add_at
from tinymm.tensor import Tensor


def _frame_index(n_frames: int, n_fft: int, hop: int) -> np.ndarray:
    """(n_frames, n_fft): the sample each frame position reads, t·hop + k."""
    return np.arange(n_frames)[:, None] * hop + np.arange(n_fft)[None, :]


def _padded_positions(pos: np.ndarray, length: int, pad: int, mode: str):
    """Map positions in the padded signal to positions in the signal (and, for "constant", a
    mask of the ones inside it), as ``F.pad`` with ``mode`` would pad ``pad`` on both sides."""
    i = pos - pad
    if mode == "reflect":
        period = 2 * (length - 1)
        i = np.abs(i) % period if period else np.zeros_like(i)
        return np.where(i >= length, period - i, i), None
    if mode == "replicate":
        return np.clip(i, 0, length - 1), None
    if mode == "circular":
        return i % length, None
    inside = (i >= 0) & (i < length)
    return np.clip(i, 0, length - 1), inside


def _window(name: str, window, win_length: int, n_fft: int, like: Tensor):
    if window is None:
        return None
    w = as_tensor(window, name)
    if w.ndim != 1 or w.shape[0] != win_length:
        raise RuntimeError(f"{name}: expected a 1D window tensor of size equal to win_length={win_length}, but got "
                           f"window with size {list(w.shape)}")
    if type(w._data) is not type(like._data):
        raise RuntimeError(f"{name}: window is on {w.device}, input on {like.device}")
    left = (n_fft - win_length) // 2
    if left or n_fft - win_length - left:
        xp = xp_of(w._data)
        zl = Tensor._wrap(xp.zeros(left, w._data.dtype))
        zr = Tensor._wrap(xp.zeros(n_fft - win_length - left, w._data.dtype))
        from tinymm.ops.shape import cat

        w = cat([zl, w, zr])
    return w


def _lengths(name, n_fft, hop_length, win_length):
    hop = n_fft // 4 if hop_length is None else int(hop_length)
    win = n_fft if win_length is None else int(win_length)
    if hop <= 0:
        raise RuntimeError(f"{name}: expected hop_length > 0, but got hop_length={hop}")
    if not 0 < win <= n_fft:
        raise RuntimeError(f"{name}: expected 0 < win_length <= n_fft, but got win_length={win}")
    return hop, win


def stft(input, n_fft: int, hop_length=None, win_length=None, window=None, center: bool = True,
         pad_mode: str = "reflect", normalized: bool = False, onesided=None, return_complex=None) -> Tensor:
    """``torch.stft``: (n_freq, n_frames) or (B, n_freq, n_frames), complex. As PyTorch, a real
    input needs ``return_complex`` given; ``return_complex=False`` gives the real view (…, 2)."""
    x = as_tensor(input, "stft")
    complex_in = x._data.dtype.kind == "c"
    w_complex = window is not None and as_tensor(window, "stft")._data.dtype.kind == "c"
    if return_complex is None:
        if not (complex_in or w_complex):
            raise RuntimeError("stft requires the return_complex parameter be given for real inputs, and will further "
                               "require that return_complex=True in a future PyTorch release.")
        return_complex = True
    if not return_complex:
        warnings.warn("stft with return_complex=False is deprecated. In a future pytorch release, stft will return "
                      "complex tensors for all inputs, and return_complex=False will raise an error.", UserWarning,
                      stacklevel=2)
    if x._data.dtype.kind not in "fc":
        x = cast(x, backend.get_default_dtype())
    if x.ndim not in (1, 2):
        raise RuntimeError(f"stft: expected a 1D or 2D tensor, but got {x.ndim}D tensor")
    batched = x.ndim == 2
    if not batched:
        x = x.reshape(1, -1)
    n_fft = int(n_fft)
    hop, win = _lengths("stft", n_fft, hop_length, win_length)
    length = x.shape[1]
    pad = n_fft // 2 if center else 0
    if pad_mode not in ("reflect", "constant", "replicate", "circular"):
        raise NotImplementedError(f"stft: unsupported pad_mode {pad_mode!r}")
    if center and pad_mode == "reflect" and pad >= length:
        raise RuntimeError(f"stft: reflect padding of {pad} needs a signal longer than that, got length {length}")
    total = length + 2 * pad
    if not 0 < n_fft <= total:
        raise RuntimeError(f"stft: expected 0 < n_fft < {total}, but got n_fft={n_fft}")
    n_frames = 1 + (total - n_fft) // hop
    source, inside = _padded_positions(_frame_index(n_frames, n_fft, hop), length, pad, pad_mode if center else "none")
    xp = xp_of(x._data)
    frames = x[:, xp.asarray(source)]  # (B, n_frames, n_fft), one recorded gather
    if inside is not None and not inside.all():
        real = np.dtype(f"f{x._data.dtype.itemsize // 2}") if complex_in else x._data.dtype
        frames = frames * Tensor._wrap(xp.asarray(inside.astype(real)))
    w = _window("stft", window, win, n_fft, x)
    if w is None:
        warnings.warn("A window was not provided. A rectangular window will be applied,which is known to cause spectral "
                      "leakage. Other windows such as torch.hann_window or torch.hamming_window are recommended to reduce "
                      "spectral leakage.To suppress this warning and use a rectangular window, explicitly set "
                      "`window=torch.ones(n_fft, device=<device>)`.", UserWarning, stacklevel=2)
    else:
        frames = frames * w
    if onesided is None:
        onesided = not (complex_in or w_complex)
    if onesided and (complex_in or w_complex):
        raise RuntimeError("Cannot have onesided output if window or input is complex")
    norm = "ortho" if normalized else "backward"
    spec = fft_ops.rfft(frames, dim=-1, norm=norm) if onesided else fft_ops.fft(frames, dim=-1, norm=norm)
    spec = spec.transpose(1, 2)  # (B, n_freq, n_frames)
    if not batched:
        spec = spec.reshape(spec.shape[1:])
    return spec if return_complex else view_as_real(spec)


class OverlapAdd(Function):
    """frames (B, T, n) summed into a signal (B, n + hop·(T − 1)) at offsets t·hop."""

    complex_grad = True

    @staticmethod
    def forward(ctx, frames, hop):
        b, t, n = frames.shape
        xp = xp_of(frames)
        index = xp.asarray(_frame_index(t, n, hop))
        ctx.index = index
        out = xp.zeros((b, n + hop * (t - 1)), frames.dtype)
        add_at(out, (slice(None), index), frames)
        return out

    @staticmethod
    def backward(ctx, g):
        return g[:, ctx.index]


def istft(input, n_fft: int, hop_length=None, win_length=None, window=None, center: bool = True,
          normalized: bool = False, onesided=None, length=None, return_complex: bool = False) -> Tensor:
    """``torch.istft``: the signal (L,) or (B, L) whose stft is ``input`` (complex, (n_freq,
    n_frames) or batched), by weighted overlap-add."""
    z = as_tensor(input, "istft")
    if z._data.dtype.kind != "c":
        raise RuntimeError("istft requires a complex-valued input tensor matching the output from stft with "
                           "return_complex=True.")
    if z.ndim not in (2, 3):
        raise RuntimeError(f"istft: expected a tensor with 2 or 3 dimensions of complex, but got {z.ndim}D")
    batched = z.ndim == 3
    if not batched:
        z = z.reshape(1, *z.shape)
    n_fft = int(n_fft)
    hop, win = _lengths("istft", n_fft, hop_length, win_length)
    fft_size, n_frames = z.shape[1], z.shape[2]
    if onesided is None:
        onesided = fft_size != n_fft
    if onesided and n_fft // 2 + 1 != fft_size:
        raise RuntimeError(f"istft: expected the frequency dimension (2nd to last) of the input tensor to match "
                           f"n_fft / 2 + 1 when onesided=True, but got {fft_size}")
    if not onesided and n_fft != fft_size:
        raise RuntimeError(f"istft: expected the frequency dimension (2nd to last) of the input tensor to match "
                           f"n_fft when onesided=False, but got {fft_size}")
    w = _window("istft", window, win, n_fft, z)
    if w is None:
        xp = xp_of(z._data)
        w = Tensor._wrap(xp.ones(n_fft, np.dtype(f"f{z._data.dtype.itemsize // 2}")))
    norm = "ortho" if normalized else "backward"
    spec = z.transpose(1, 2)  # (B, n_frames, n_freq)
    if return_complex:
        if onesided:
            raise RuntimeError("Cannot have onesided output if window or input is complex")
        frames = fft_ops.ifft(spec, n=n_fft, dim=-1, norm=norm)
    else:
        if w._data.dtype.kind == "c":
            raise RuntimeError("Complex windows are incompatible with return_complex=False")
        if not onesided:
            spec = spec[:, :, : n_fft // 2 + 1]
        frames = fft_ops.irfft(spec, n=n_fft, dim=-1, norm=norm)
    y = OverlapAdd.apply(frames * w, hop)  # (B, n_fft + hop·(T − 1))
    envelope = OverlapAdd.apply((w * w).reshape(1, 1, n_fft).expand(1, n_frames, n_fft), hop)
    expected = n_fft + hop * (n_frames - 1)
    start = n_fft // 2 if center else 0
    if length is not None:
        end = start + int(length)
    else:
        end = expected - n_fft // 2 if center else expected
    stop = min(end, expected)
    y = y[:, start:stop]
    envelope = envelope[:, start:stop]
    if bool((envelope.abs()._data < 1e-11).any()):
        raise RuntimeError("istft: window overlap add min: 1e-11 is too small (the window's overlap-added squares "
                           "vanish somewhere: choose another window or hop)")
    y = y / envelope
    if end > expected:
        from tinymm.ops.shape import cat

        y = cat([y, Tensor._wrap(xp_of(y._data).zeros((y.shape[0], end - expected), y._data.dtype))], dim=1)
    if not batched:
        y = y.reshape(y.shape[1:])
    return y


SPECTRAL_OPS = ((stft, "stft", "stft"), (istft, "istft", "istft"))
