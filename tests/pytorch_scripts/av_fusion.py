"""An audio-visual event classifier, written the way PANNs (audioset_tagging_cnn), torchaudio's
transforms and the R(2+1)D / SlowFast video models write it: a log-mel front end from torch.stft
(center=True, pad_mode="reflect", a registered torch.hann_window, return_complex=True, .abs() ** 2),
a slaney-style mel filterbank built from torch.linspace and clamped triangles, power_to_db with a
top_db floor through amax, delta features by F.pad(mode="replicate") + a grouped conv1d with a
torch.arange kernel, a waveform branch (Conv1d, BatchNorm1d, max_pool1d), a log-mel branch (PANNs'
ConvBlock: Conv2d, BatchNorm2d initialised with fill_, avg_pool2d, then mean over frequency and
max + mean over time), a video branch of (2+1)D factorised Conv3d blocks (kernels (1, 3, 3) then
(3, 1, 1), BatchNorm3d, MaxPool3d((1, 2, 2)), a strided residual shortcut) and AdaptiveAvgPool3d,
a TSN-style frame branch (view(B * T, ...) through a 2D conv, mean over frames), F.interpolate
trilinear to resize clips, late fusion with softmax-normalised learned weights over torch.stack of
the branch logits, multi-label BCEWithLogitsLoss with pos_weight, modality dropout by zeroing a
branch, Adam with a StepLR, and mAP computed in NumPy."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SR, N_FFT, HOP, N_MELS, CLASSES = 800, 64, 16, 12, 4


def mel_filterbank(n_freqs, f_min, f_max, n_mels, sample_rate):
    """torchaudio.functional.melscale_fbanks(norm="slaney", mel_scale="htk") in plain torch."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_min = 2595.0 * math.log10(1.0 + (f_min / 700.0))
    m_max = 2595.0 * math.log10(1.0 + (f_max / 700.0))
    m_pts = torch.linspace(m_min, m_max, n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1)
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    zero = torch.zeros(1)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]  # (n_freqs, n_mels)
    up_slopes = slopes[:, 2:] / f_diff[1:]  # (n_freqs, n_mels)
    fb = torch.max(zero, torch.min(down_slopes, up_slopes))
    enorm = 2.0 / (f_pts[2: n_mels + 2] - f_pts[:n_mels])
    fb *= enorm.unsqueeze(0)
    return fb


class LogMel(nn.Module):
    def __init__(self, sample_rate=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, top_db=80.0):
        super().__init__()
        self.n_fft, self.hop_length, self.top_db = n_fft, hop_length, top_db
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("fb", mel_filterbank(n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate),
                             persistent=False)

    def forward(self, waveform):                                           # (B, L)
        spec = torch.stft(waveform, self.n_fft, hop_length=self.hop_length, win_length=self.n_fft,
                          window=self.window, center=True, pad_mode="reflect", normalized=False,
                          onesided=True, return_complex=True)
        power = spec.abs() ** 2.0                                          # (B, F, T)
        mel = torch.matmul(power.transpose(-1, -2), self.fb).transpose(-1, -2)   # (B, M, T)
        x_db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        x_db = torch.max(x_db, (x_db.amax(dim=(-2, -1)) - self.top_db).view(-1, 1, 1))
        return x_db


def compute_deltas(specgram, win_length=5):
    """torchaudio.functional.compute_deltas: a regression over +-n frames, replicate-padded."""
    shape = specgram.size()
    specgram = specgram.reshape(1, -1, shape[-1])
    n = (win_length - 1) // 2
    denom = n * (n + 1) * (2 * n + 1) / 3
    specgram = F.pad(specgram, (n, n), mode="replicate")
    kernel = torch.arange(-n, n + 1, 1, device=specgram.device, dtype=specgram.dtype).repeat(specgram.shape[1], 1, 1)
    output = F.conv1d(specgram, kernel, groups=specgram.shape[1]) / denom
    return output.reshape(shape)


def init_layer(layer):
    nn.init.xavier_uniform_(layer.weight)
    if hasattr(layer, "bias") and layer.bias is not None:
        layer.bias.data.fill_(0.)


def init_bn(bn):
    bn.bias.data.fill_(0.)
    bn.weight.data.fill_(1.)


class ConvBlock(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.init_weight()

    def init_weight(self):
        init_layer(self.conv1)
        init_layer(self.conv2)
        init_bn(self.bn1)
        init_bn(self.bn2)

    def forward(self, input, pool_size=(2, 2), pool_type="avg"):
        x = F.relu_(self.bn1(self.conv1(input)))
        x = F.relu_(self.bn2(self.conv2(x)))
        if pool_type == "max":
            x = F.max_pool2d(x, kernel_size=pool_size)
        elif pool_type == "avg":
            x = F.avg_pool2d(x, kernel_size=pool_size)
        elif pool_type == "avg+max":
            x = F.avg_pool2d(x, kernel_size=pool_size) + F.max_pool2d(x, kernel_size=pool_size)
        else:
            raise Exception("Incorrect argument!")
        return x


class AudioBranch(nn.Module):
    """PANNs Cnn-style over (log-mel, delta) channels; (B, 2, T, M) -> logits."""

    def __init__(self):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(N_MELS)
        self.conv_block1 = ConvBlock(in_channels=2, out_channels=8)
        self.conv_block2 = ConvBlock(in_channels=8, out_channels=16)
        self.fc1 = nn.Linear(16, 16, bias=True)
        self.fc_audioset = nn.Linear(16, CLASSES, bias=True)
        init_bn(self.bn0)
        init_layer(self.fc1)
        init_layer(self.fc_audioset)

    def forward(self, x):
        x = x.transpose(1, 3)
        x = self.bn0(x)
        x = x.transpose(1, 3)
        x = self.conv_block1(x, pool_size=(2, 2), pool_type="avg")
        x = F.dropout(x, p=0.0, training=self.training)
        x = self.conv_block2(x, pool_size=(2, 2), pool_type="avg+max")
        x = torch.mean(x, dim=3)
        (x1, _) = torch.max(x, dim=2)
        x2 = torch.mean(x, dim=2)
        x = x1 + x2
        embedding = F.relu_(self.fc1(x))
        return self.fc_audioset(embedding), embedding


class WaveBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv1d(1, 8, kernel_size=11, stride=5, padding=5, bias=False)
        self.bn0 = nn.BatchNorm1d(8)
        self.conv1 = nn.Conv1d(8, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(16)
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, wave):                                               # (B, L)
        x = F.relu_(self.bn0(self.conv0(wave[:, None, :])))
        x = F.max_pool1d(x, kernel_size=4)
        x = F.relu_(self.bn1(self.conv1(x)))
        return self.fc(x.amax(dim=-1))


class SpatioTemporalConv(nn.Module):
    """R(2+1)D: a (1, k, k) spatial conv, BN, ReLU, then a (k, 1, 1) temporal conv."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        spatial_kernel_size = (1, kernel_size, kernel_size)
        spatial_stride = (1, stride, stride)
        spatial_padding = (0, padding, padding)
        temporal_kernel_size = (kernel_size, 1, 1)
        temporal_stride = (stride, 1, 1)
        temporal_padding = (padding, 0, 0)
        intermed_channels = int(math.floor((kernel_size * kernel_size * kernel_size * in_channels * out_channels) /
                                           (kernel_size * kernel_size * in_channels + kernel_size * out_channels)))
        self.spatial_conv = nn.Conv3d(in_channels, intermed_channels, spatial_kernel_size,
                                      stride=spatial_stride, padding=spatial_padding, bias=False)
        self.bn = nn.BatchNorm3d(intermed_channels)
        self.relu = nn.ReLU()
        self.temporal_conv = nn.Conv3d(intermed_channels, out_channels, temporal_kernel_size,
                                       stride=temporal_stride, padding=temporal_padding, bias=False)

    def forward(self, x):
        x = self.relu(self.bn(self.spatial_conv(x)))
        return self.temporal_conv(x)


class SpatioTemporalResBlock(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, downsample=False):
        super().__init__()
        self.downsample = downsample
        padding = kernel_size // 2
        if self.downsample:
            self.downsampleconv = SpatioTemporalConv(in_channels, out_channels, 1, stride=2)
            self.downsamplebn = nn.BatchNorm3d(out_channels)
            self.conv1 = SpatioTemporalConv(in_channels, out_channels, kernel_size, padding=padding, stride=2)
        else:
            self.conv1 = SpatioTemporalConv(in_channels, out_channels, kernel_size, padding=padding)
        self.bn1 = nn.BatchNorm3d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = SpatioTemporalConv(out_channels, out_channels, kernel_size, padding=padding)
        self.bn2 = nn.BatchNorm3d(out_channels)
        self.outrelu = nn.ReLU()

    def forward(self, x):
        res = self.relu1(self.bn1(self.conv1(x)))
        res = self.bn2(self.conv2(res))
        if self.downsample:
            x = self.downsamplebn(self.downsampleconv(x))
        return self.outrelu(x + res)


class VideoBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = SpatioTemporalConv(3, 8, 3, stride=1, padding=1)
        self.pool1 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.res = SpatioTemporalResBlock(8, 12, 3, downsample=True)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(12, CLASSES)

    def forward(self, clip):                                              # (B, C, T, H, W)
        x = self.pool1(self.conv1(clip))
        x = self.res(x)
        x = self.pool(x).view(-1, 12)
        return self.fc(x)


class FrameBranch(nn.Module):
    """TSN-style: a 2D net on every frame, scores averaged over the segments."""

    def __init__(self):
        super().__init__()
        self.base = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                                  nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
        self.new_fc = nn.Linear(8, CLASSES)

    def forward(self, clip):                                              # (B, C, T, H, W)
        B, C, T, H, W = clip.shape
        frames = clip.permute(0, 2, 1, 3, 4).contiguous().view(B * T, C, H, W)
        base_out = self.new_fc(self.base(frames))
        base_out = base_out.view((-1, T) + base_out.size()[1:])
        return base_out.mean(dim=1, keepdim=False)


class AVFusion(nn.Module):
    def __init__(self):
        super().__init__()
        self.logmel = LogMel()
        self.audio = AudioBranch()
        self.wave = WaveBranch()
        self.video = VideoBranch()
        self.frames = FrameBranch()
        self.fusion_weights = nn.Parameter(torch.zeros(4))

    def forward(self, wave, clip, drop_modality=None):
        mel = self.logmel(wave)                                          # (B, M, T)
        feats = torch.stack([mel, compute_deltas(mel)], dim=1).transpose(2, 3)   # (B, 2, T, M)
        clip = F.interpolate(clip, size=(4, 8, 8), mode="trilinear", align_corners=False)
        audio_logits, _ = self.audio(feats)
        logits = torch.stack([audio_logits, self.wave(wave), self.video(clip), self.frames(clip)], dim=0)
        if drop_modality is not None:
            logits = logits.clone()
            logits[drop_modality] = 0.0
        w = F.softmax(self.fusion_weights, dim=0)
        return (w[:, None, None] * logits).sum(dim=0), logits, mel


def make_batch(rng, b=4):
    """Clips of 6 frames 10 x 10 and 0.2 s of audio; a class present (multi-label) puts a tone
    at its own frequency in the audio and a moving bright square in its colour channel."""
    labels = (rng.random((b, CLASSES)) < 0.4).astype(np.float32)
    t = np.arange(160) / SR
    wave = rng.standard_normal((b, 160)).astype(np.float32) * 0.05
    clip = rng.standard_normal((b, 3, 6, 10, 10)).astype(np.float32) * 0.2
    for i in range(b):
        for c in np.nonzero(labels[i])[0]:
            wave[i] += 0.5 * np.sin(2 * np.pi * (60 + 80 * c) * t).astype(np.float32)
            for f in range(6):
                clip[i, c % 3, f, f:f + 4, 2 + c:6 + c] += 1.0
    return torch.from_numpy(wave), torch.from_numpy(clip), torch.from_numpy(labels)


def average_precision(y_true, y_score):
    order = np.argsort(-y_score, kind="stable")
    y = y_true[order]
    if y.sum() == 0:
        return float("nan")
    precision = np.cumsum(y) / (np.arange(len(y)) + 1)
    return float((precision * y).sum() / y.sum())


torch.manual_seed(0)
rng = np.random.default_rng(0)
model = AVFusion()
share_init(model)
report("fb", model.logmel.fb.sum(0).tolist(), model.logmel.fb.shape[0])
criterion = nn.BCEWithLogitsLoss(pos_weight=torch.full((CLASSES,), 1.5))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.9, 0.999), eps=1e-08, weight_decay=0., amsgrad=True)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
for step in range(5):
    wave, clip, target = make_batch(rng)
    model.train()
    drop = 2 if step == 3 else None
    output, branch_logits, mel = model(wave, clip, drop_modality=drop)
    loss = criterion(output, target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    report("step", step, loss.item(), F.softmax(model.fusion_weights, 0).tolist(),
           model.video.fc.weight.grad.abs().sum().item(), scheduler.get_last_lr()[0], mel.mean().item(),
           tuple(mel.shape), model.video.res.bn1.running_var.mean().item())

model.eval()
with torch.no_grad():
    wave, clip, target = make_batch(rng, 8)
    output, branch_logits, mel = model(wave, clip)
    probs = torch.sigmoid(output).numpy()
    branch_probs = torch.sigmoid(branch_logits)
y = target.numpy()
aps = [average_precision(y[:, k], probs[:, k]) for k in range(CLASSES)]
report("eval", [round(a, 6) if not math.isnan(a) else None for a in aps], np.nanmean(aps).item(),
       branch_probs.mean(dim=(1, 2)).tolist(), mel.amax(dim=(-2, -1)).tolist(), mel.amin(dim=(-2, -1)).tolist())
deltas = compute_deltas(mel)
report("deltas", deltas[0, :3, :4].tolist(), deltas.abs().mean().item())
