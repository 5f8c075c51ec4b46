"""A keyword-spotting style audio classifier written with plain torch (no torchaudio), as
speech tutorials do: torch.stft with a registered hann_window buffer, center=True and
return_complex=True, the power spectrum through .abs().pow(2), a mel filterbank built with
torch.linspace / torch.clamp as a buffer and applied with torch.matmul, log(x + eps), per-utterance
normalisation, SpecAugment time and frequency masks through masked_fill with arange ranges,
a small Conv2d (bias=False before BatchNorm) + BatchNorm + AdaptiveAvgPool2d network, Adam with OneCycleLR, and
torch.istft reconstructing the waveform. Signals are synthesised with NumPy."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def hz_to_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_filterbank(n_freqs, n_mels, sample_rate):
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)               # (n_freqs, n_mels + 2)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up_slopes = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1), torch.min(down_slopes, up_slopes))  # (n_freqs, n_mels)


class LogMel(nn.Module):
    def __init__(self, sample_rate=800, n_fft=64, hop_length=16, n_mels=12):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft))
        self.register_buffer("fb", mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate))

    def forward(self, wav):                                             # (B, T)
        spec = torch.stft(wav, self.n_fft, hop_length=self.hop_length, window=self.window,
                          center=True, pad_mode="reflect", return_complex=True)   # (B, F, frames)
        power = spec.abs().pow(2.0)
        mel = torch.matmul(power.transpose(1, 2), self.fb).transpose(1, 2)       # (B, n_mels, frames)
        logmel = torch.log(mel + 1e-6)
        mean = logmel.mean(dim=(1, 2), keepdim=True)
        std = logmel.std(dim=(1, 2), keepdim=True)
        return (logmel - mean) / (std + 1e-5)


def spec_augment(x, freq_masks, time_masks):
    """x: (B, F, T); masks given as (start, width) per example, zeroing bands."""
    B, Fdim, T = x.shape
    f_idx = torch.arange(Fdim).view(1, Fdim, 1)
    t_idx = torch.arange(T).view(1, 1, T)
    f0, fw = freq_masks[:, 0].view(B, 1, 1), freq_masks[:, 1].view(B, 1, 1)
    t0, tw = time_masks[:, 0].view(B, 1, 1), time_masks[:, 1].view(B, 1, 1)
    mask = ((f_idx >= f0) & (f_idx < f0 + fw)) | ((t_idx >= t0) & (t_idx < t0 + tw))
    return x.masked_fill(mask, 0.0)


class KWSNet(nn.Module):
    def __init__(self, n_classes=3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 8, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.AdaptiveAvgPool2d((1, 1)))
        self.classifier = nn.Linear(8, n_classes)

    def forward(self, x):                                               # (B, n_mels, frames)
        x = self.features(x.unsqueeze(1))
        return self.classifier(torch.flatten(x, 1))


def make_batch(rng, n, sr=800, seconds=0.4):
    t = np.arange(int(sr * seconds)) / sr
    labels = rng.integers(0, 3, n)
    freqs = np.array([60.0, 150.0, 300.0])[labels] * (1 + 0.05 * rng.standard_normal(n))
    wav = np.sin(2 * np.pi * freqs[:, None] * t[None]) + 0.1 * rng.standard_normal((n, t.size))
    return torch.from_numpy(wav.astype(np.float32)), torch.from_numpy(labels).long()


rng = np.random.default_rng(0)
frontend = LogMel()
report("frontend", sorted(k for k, _ in frontend.named_buffers()), list(frontend.fb.shape),
       frontend.fb.sum(0).tolist(), frontend.window[:3].tolist())
torch.manual_seed(0)
model = KWSNet()
share_init(model)
steps = 5
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=steps)
for step in range(steps):
    wav, labels = make_batch(rng, 6)
    feats = frontend(wav)
    fm = torch.from_numpy(np.stack([rng.integers(0, 8, 6), rng.integers(0, 3, 6)], 1))
    tm_ = torch.from_numpy(np.stack([rng.integers(0, 18, 6), rng.integers(0, 4, 6)], 1))
    feats = spec_augment(feats, fm, tm_)
    logits = model(feats)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    report("step", step, list(feats.shape), loss.item(), scheduler.get_last_lr()[0],
           (feats == 0).float().mean().item(), model.features[1].running_var.tolist())

model.eval()
with torch.no_grad():
    wav, labels = make_batch(rng, 6)
    probs = F.softmax(model(frontend(wav)), dim=-1)
report("eval", probs.argmax(-1).tolist(), probs.max(-1).values.tolist())

# the STFT round trip
wav, _ = make_batch(rng, 2)
spec = torch.stft(wav, 64, hop_length=16, window=frontend.window, return_complex=True)
back = torch.istft(spec, 64, hop_length=16, window=frontend.window, length=wav.shape[-1])
# frame 0 is even (reflect padding), so its phase is +-pi by rounding: frames 1-4 are compared
report("istft", list(spec.shape), spec.dtype == torch.complex64, (back - wav).abs().max().item() < 1e-4,
       spec.angle()[0, 3, 1:5].tolist(), torch.view_as_real(spec).shape[-1])
