"""A tiny Conformer CTC recogniser, written the way ESPnet / WeNet / torchaudio write it: Conv2dSubsampling
(two stride-2 Conv2d + ReLU, the (b, c, t, f) -> (b, t, c*f) transpose/contiguous/view, the mask sliced
[:, :, :-2:2] twice), RelPositionalEncoding (sin/cos table, x * sqrt(d) + dropout), relative-position
multi-head attention (linear_pos without bias, pos_bias_u / pos_bias_v parameters with xavier_uniform_,
matrix_ac + matrix_bd with the rel_shift trick: zero-pad, view, drop a row, view_as), masking with
masked_fill(mask, -inf) then softmax then masked_fill(mask, 0.0), the macaron feed-forward halves (Swish),
the convolution module (pointwise Conv1d to 2*C, F.glu(dim=1), depthwise Conv1d with groups=C,
BatchNorm1d, SiLU, padding masked to 0; bias-free as torchaudio's: a bias before train-mode batch norm gets
only rounding noise as gradient, which Adam would blow up into run-dependent steps), a final LayerNorm; SpecAugment masks drawn with python's random (as WeNet's processor does, so both runs mask
the same frames); a
CTC head trained with Adam and the Noam warmup (LambdaLR), gradient accumulation, clip_grad_norm_,
and greedy decoding."""
import math
import random

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


def make_pad_mask(lengths, max_len=0):
    batch_size = lengths.size(0)
    max_len = max_len if max_len > 0 else lengths.max().item()
    seq_range = torch.arange(0, max_len, dtype=torch.int64, device=lengths.device)
    seq_range_expand = seq_range.unsqueeze(0).expand(batch_size, max_len)
    seq_length_expand = lengths.unsqueeze(-1)
    mask = seq_range_expand >= seq_length_expand
    return mask


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class Conv2dSubsampling4(nn.Module):
    def __init__(self, idim, odim, dropout_rate):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, odim, 3, 2), nn.ReLU(), nn.Conv2d(odim, odim, 3, 2), nn.ReLU())
        self.out = nn.Linear(odim * (((idim - 1) // 2 - 1) // 2), odim)

    def forward(self, x, x_mask):
        x = x.unsqueeze(1)  # (b, c=1, t, f)
        x = self.conv(x)
        b, c, t, f = x.size()
        x = self.out(x.transpose(1, 2).contiguous().view(b, t, c * f))
        return x, x_mask[:, :, :-2:2][:, :, :-2:2]


class RelPositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout_rate, max_len=64):
        super().__init__()
        self.d_model = d_model
        self.xscale = math.sqrt(self.d_model)
        self.dropout = torch.nn.Dropout(p=dropout_rate)
        pe = torch.zeros(max_len, self.d_model)
        position = torch.arange(0, max_len, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, self.d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / self.d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(0), persistent=False)

    def forward(self, x):
        x = x * self.xscale
        pos_emb = self.pe[:, :x.size(1)]
        return self.dropout(x), self.dropout(pos_emb)


class RelPositionMultiHeadedAttention(nn.Module):
    def __init__(self, n_head, n_feat, dropout_rate):
        super().__init__()
        self.d_k = n_feat // n_head
        self.h = n_head
        self.linear_q = nn.Linear(n_feat, n_feat)
        self.linear_k = nn.Linear(n_feat, n_feat)
        self.linear_v = nn.Linear(n_feat, n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.dropout = nn.Dropout(p=dropout_rate)
        self.linear_pos = nn.Linear(n_feat, n_feat, bias=False)
        self.pos_bias_u = nn.Parameter(torch.Tensor(self.h, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.Tensor(self.h, self.d_k))
        torch.nn.init.xavier_uniform_(self.pos_bias_u)
        torch.nn.init.xavier_uniform_(self.pos_bias_v)

    def rel_shift(self, x, zero_triu=False):
        zero_pad = torch.zeros((*x.size()[:3], 1), device=x.device, dtype=x.dtype)
        x_padded = torch.cat([zero_pad, x], dim=-1)
        x_padded = x_padded.view(*x.size()[:2], x.size(3) + 1, x.size(2))
        x = x_padded[:, :, 1:].view_as(x)
        if zero_triu:
            ones = torch.ones((x.size(2), x.size(3)))
            x = x * torch.tril(ones, x.size(3) - x.size(2))[None, None, :, :]
        return x

    def forward_qkv(self, query, key, value):
        n_batch = query.size(0)
        q = self.linear_q(query).view(n_batch, -1, self.h, self.d_k)
        k = self.linear_k(key).view(n_batch, -1, self.h, self.d_k)
        v = self.linear_v(value).view(n_batch, -1, self.h, self.d_k)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def forward_attention(self, value, scores, mask):
        n_batch = value.size(0)
        if mask is not None:
            mask = mask.unsqueeze(1).eq(0)  # (batch, 1, *, time2)
            min_value = float(torch.finfo(scores.dtype).min)
            scores = scores.masked_fill(mask, min_value)
            self.attn = torch.softmax(scores, dim=-1).masked_fill(mask, 0.0)
        else:
            self.attn = torch.softmax(scores, dim=-1)
        p_attn = self.dropout(self.attn)
        x = torch.matmul(p_attn, value)
        x = x.transpose(1, 2).contiguous().view(n_batch, -1, self.h * self.d_k)
        return self.linear_out(x)

    def forward(self, query, key, value, mask, pos_emb):
        q, k, v = self.forward_qkv(query, key, value)
        q = q.transpose(1, 2)  # (batch, time1, head, d_k)
        n_batch_pos = pos_emb.size(0)
        p = self.linear_pos(pos_emb).view(n_batch_pos, -1, self.h, self.d_k)
        p = p.transpose(1, 2)
        q_with_bias_u = (q + self.pos_bias_u).transpose(1, 2)
        q_with_bias_v = (q + self.pos_bias_v).transpose(1, 2)
        matrix_ac = torch.matmul(q_with_bias_u, k.transpose(-2, -1))
        matrix_bd = torch.matmul(q_with_bias_v, p.transpose(-2, -1))
        matrix_bd = self.rel_shift(matrix_bd)
        scores = (matrix_ac + matrix_bd) / math.sqrt(self.d_k)
        return self.forward_attention(v, scores, mask)


class PositionwiseFeedForward(nn.Module):
    def __init__(self, idim, hidden_units, dropout_rate, activation=Swish()):
        super().__init__()
        self.w_1 = nn.Linear(idim, hidden_units)
        self.w_2 = nn.Linear(hidden_units, idim)
        self.dropout = nn.Dropout(dropout_rate)
        self.activation = activation

    def forward(self, x):
        return self.w_2(self.dropout(self.activation(self.w_1(x))))


class ConvolutionModule(nn.Module):
    def __init__(self, channels, kernel_size, bias=False):
        super().__init__()
        assert (kernel_size - 1) % 2 == 0
        self.pointwise_conv1 = nn.Conv1d(channels, 2 * channels, kernel_size=1, stride=1, padding=0, bias=bias)
        self.depthwise_conv = nn.Conv1d(channels, channels, kernel_size, stride=1, padding=(kernel_size - 1) // 2,
                                        groups=channels, bias=bias)
        self.norm = nn.BatchNorm1d(channels)
        self.pointwise_conv2 = nn.Conv1d(channels, channels, kernel_size=1, stride=1, padding=0, bias=bias)
        self.activation = nn.SiLU()

    def forward(self, x, mask_pad=None):
        x = x.transpose(1, 2)  # (batch, channels, time)
        if mask_pad is not None:
            x.masked_fill_(~mask_pad, 0.0)
        x = self.pointwise_conv1(x)
        x = nn.functional.glu(x, dim=1)
        x = self.depthwise_conv(x)
        x = self.activation(self.norm(x))
        x = self.pointwise_conv2(x)
        if mask_pad is not None:
            x.masked_fill_(~mask_pad, 0.0)
        return x.transpose(1, 2)


class ConformerEncoderLayer(nn.Module):
    def __init__(self, size, self_attn, feed_forward, feed_forward_macaron, conv_module, dropout_rate=0.1):
        super().__init__()
        self.self_attn = self_attn
        self.feed_forward = feed_forward
        self.feed_forward_macaron = feed_forward_macaron
        self.conv_module = conv_module
        self.norm_ff = nn.LayerNorm(size, eps=1e-5)
        self.norm_mha = nn.LayerNorm(size, eps=1e-5)
        self.norm_ff_macaron = nn.LayerNorm(size, eps=1e-5)
        self.ff_scale = 0.5
        self.norm_conv = nn.LayerNorm(size, eps=1e-5)
        self.norm_final = nn.LayerNorm(size, eps=1e-5)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x, mask, pos_emb, mask_pad):
        residual = x
        x = self.norm_ff_macaron(x)
        x = residual + self.ff_scale * self.dropout(self.feed_forward_macaron(x))
        residual = x
        x = self.norm_mha(x)
        x_att = self.self_attn(x, x, x, mask, pos_emb)
        x = residual + self.dropout(x_att)
        residual = x
        x = self.norm_conv(x)
        x = self.conv_module(x, mask_pad)
        x = residual + self.dropout(x)
        residual = x
        x = self.norm_ff(x)
        x = residual + self.ff_scale * self.dropout(self.feed_forward(x))
        x = self.norm_final(x)
        return x, mask


class ConformerCTC(nn.Module):
    def __init__(self, idim, vocab_size, d=16, heads=2, units=32, blocks=2, kernel=5, dropout=0.1):
        super().__init__()
        self.embed = Conv2dSubsampling4(idim, d, dropout)
        self.pos_enc = RelPositionalEncoding(d, dropout)
        self.encoders = nn.ModuleList([
            ConformerEncoderLayer(d, RelPositionMultiHeadedAttention(heads, d, dropout),
                                  PositionwiseFeedForward(d, units, dropout), PositionwiseFeedForward(d, units, dropout),
                                  ConvolutionModule(d, kernel), dropout) for _ in range(blocks)])
        self.after_norm = nn.LayerNorm(d, eps=1e-5)
        self.ctc_lo = nn.Linear(d, vocab_size)

    def forward(self, xs, xs_lens):
        T = xs.size(1)
        masks = ~make_pad_mask(xs_lens, T).unsqueeze(1)  # (B, 1, T)
        xs, masks = self.embed(xs, masks)
        xs, pos_emb = self.pos_enc(xs)
        mask_pad = masks
        for layer in self.encoders:
            xs, masks = layer(xs, masks, pos_emb, mask_pad)
        xs = self.after_norm(xs)
        return self.ctc_lo(xs), masks.squeeze(1).sum(1)


def spec_aug(xs, num_t_mask=1, num_f_mask=1, max_t=3, max_f=2):
    y = xs.clone()
    for i in range(y.size(0)):
        max_frames, max_freq = y.size(1), y.size(2)
        for _ in range(num_t_mask):
            start = random.randint(0, max_frames - 1)
            length = random.randint(1, max_t)
            y[i, start:min(max_frames, start + length), :] = 0
        for _ in range(num_f_mask):
            start = random.randint(0, max_freq - 1)
            length = random.randint(1, max_f)
            y[i, :, start:start + length] = 0
    return y


torch.manual_seed(0)
vocab = 6
model = ConformerCTC(idim=12, vocab_size=vocab, dropout=0.0)
share_init(model)
rng = np.random.default_rng(0)
feats = torch.from_numpy(rng.standard_normal((3, 30, 12)).astype(np.float32))
feats_lens = torch.tensor([30, 26, 21])
targets = torch.tensor([[1, 2, 3], [2, 4, 0], [5, 0, 0]])
target_lens = torch.tensor([3, 2, 1])
ctc = nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)

warmup = 4
optimizer = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
scheduler = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda step: 16 ** -0.5 * min((step + 1) ** -0.5, (step + 1) * warmup ** -1.5) * 0.5)
accum_grad = 2
model.train()
for step in range(6):
    random.seed(100 + step)
    x = spec_aug(feats)
    logits, out_lens = model(x, feats_lens)
    log_probs = logits.log_softmax(2).transpose(0, 1)
    loss = ctc(log_probs, targets, out_lens, target_lens) / logits.size(0)
    (loss / accum_grad).backward()
    report("step", step, loss.item(), out_lens.tolist(), (x == 0).sum().item())
    if (step + 1) % accum_grad == 0:
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
        report("update", grad_norm.item(), scheduler.get_last_lr()[0])

model.eval()
with torch.no_grad():
    logits, out_lens = model(feats, feats_lens)
    attn = model.encoders[0].self_attn.attn
    hyps = logits.argmax(-1)
    decoded = []
    for i in range(hyps.size(0)):
        seq = torch.unique_consecutive(hyps[i, :out_lens[i]])
        decoded.append([t for t in seq.tolist() if t != 0])
report("eval", logits.abs().sum().item(), attn[1, 0, 0].tolist(), (attn[2] == 0).sum().item(), decoded,
       model.encoders[1].conv_module.norm.running_var.tolist(), model.encoders[0].conv_module.norm.num_batches_tracked.item())
