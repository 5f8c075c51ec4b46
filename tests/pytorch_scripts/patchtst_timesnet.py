"""PatchTST, TimesNet, Informer's embeddings/distilling and LSTNet, as their repositories write
them: PatchTST's nn.ReplicationPad1d((0, stride)) then x.unfold(dimension=-1, size, step), a
learned positional parameter, BatchNorm1d over tokens through a Transpose module in
nn.Sequential (LayerNorm in the trained model), residual attention passing the scores between layers (scale an
nn.Parameter(requires_grad=False)), a Flatten(start_dim=-2) head, OneCycleLR(steps_per_epoch,
pct_start, epochs); TimesNet's FFT_for_Period (abs of torch.fft.rfft, frequency_list[0] = 0,
topk indices to NumPy, periods by // on a NumPy array), zero padding to a multiple of the
period, the 2-D reshape and an Inception block of Conv2d kernels averaged by torch.stack(...,
-1).mean(-1), softmax period weights repeated and summed; Informer's sinusoidal
PositionalEmbedding (with its `pe.require_grad = False` typo) and FixedEmbedding temporal
tables, FullAttention with a TriangularCausalMask, masked_fill_ with -np.inf and einsum
"blhe,bshe->bhls", the distilling ConvLayer (circular Conv1d, BatchNorm1d, ELU,
MaxPool1d(3, 2, padding=1)); LSTNet's Conv2d over the window, GRU, skip-GRU through
view/permute/contiguous and the highway; best checkpoints through torch.save/torch.load."""
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class Transpose(nn.Module):
    def __init__(self, *dims, contiguous=False):
        super().__init__()
        self.dims, self.contiguous = dims, contiguous

    def forward(self, x):
        if self.contiguous:
            return x.transpose(*self.dims).contiguous()
        else:
            return x.transpose(*self.dims)


class _ScaledDotProductAttention(nn.Module):
    def __init__(self, d_model, n_heads, attn_dropout=0., res_attention=False, lsa=False):
        super().__init__()
        self.attn_dropout = nn.Dropout(attn_dropout)
        self.res_attention = res_attention
        head_dim = d_model // n_heads
        self.scale = nn.Parameter(torch.tensor(head_dim ** -0.5), requires_grad=lsa)
        self.lsa = lsa

    def forward(self, q: Tensor, k: Tensor, v: Tensor, prev=None, key_padding_mask=None, attn_mask=None):
        attn_scores = torch.matmul(q, k) * self.scale
        if prev is not None:
            attn_scores = attn_scores + prev
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                attn_scores.masked_fill_(attn_mask, -np.inf)
            else:
                attn_scores += attn_mask
        if key_padding_mask is not None:
            attn_scores.masked_fill_(key_padding_mask.unsqueeze(1).unsqueeze(2), -np.inf)
        attn_weights = F.softmax(attn_scores, dim=-1)
        attn_weights = self.attn_dropout(attn_weights)
        output = torch.matmul(attn_weights, v)
        if self.res_attention:
            return output, attn_weights, attn_scores
        else:
            return output, attn_weights


class _MultiheadAttention(nn.Module):
    def __init__(self, d_model, n_heads, d_k=None, d_v=None, res_attention=False, attn_dropout=0., proj_dropout=0.,
                 qkv_bias=True, lsa=False):
        super().__init__()
        d_k = d_model // n_heads if d_k is None else d_k
        d_v = d_model // n_heads if d_v is None else d_v
        self.n_heads, self.d_k, self.d_v = n_heads, d_k, d_v
        self.W_Q = nn.Linear(d_model, d_k * n_heads, bias=qkv_bias)
        self.W_K = nn.Linear(d_model, d_k * n_heads, bias=qkv_bias)
        self.W_V = nn.Linear(d_model, d_v * n_heads, bias=qkv_bias)
        self.res_attention = res_attention
        self.sdp_attn = _ScaledDotProductAttention(d_model, n_heads, attn_dropout=attn_dropout,
                                                   res_attention=self.res_attention, lsa=lsa)
        self.to_out = nn.Sequential(nn.Linear(n_heads * d_v, d_model), nn.Dropout(proj_dropout))

    def forward(self, Q: Tensor, K=None, V=None, prev=None, key_padding_mask=None, attn_mask=None):
        bs = Q.size(0)
        if K is None:
            K = Q
        if V is None:
            V = Q
        q_s = self.W_Q(Q).view(bs, -1, self.n_heads, self.d_k).transpose(1, 2)
        k_s = self.W_K(K).view(bs, -1, self.n_heads, self.d_k).permute(0, 2, 3, 1)
        v_s = self.W_V(V).view(bs, -1, self.n_heads, self.d_v).transpose(1, 2)
        if self.res_attention:
            output, attn_weights, attn_scores = self.sdp_attn(q_s, k_s, v_s, prev=prev,
                                                              key_padding_mask=key_padding_mask, attn_mask=attn_mask)
        else:
            output, attn_weights = self.sdp_attn(q_s, k_s, v_s, key_padding_mask=key_padding_mask, attn_mask=attn_mask)
        output = output.transpose(1, 2).contiguous().view(bs, -1, self.n_heads * self.d_v)
        output = self.to_out(output)
        if self.res_attention:
            return output, attn_weights, attn_scores
        else:
            return output, attn_weights


class TSTEncoderLayer(nn.Module):
    def __init__(self, q_len, d_model, n_heads, d_ff=256, norm='BatchNorm', attn_dropout=0, dropout=0., bias=True,
                 activation="gelu", res_attention=False, pre_norm=False):
        super().__init__()
        self.res_attention = res_attention
        self.self_attn = _MultiheadAttention(d_model, n_heads, attn_dropout=attn_dropout, proj_dropout=dropout,
                                             res_attention=res_attention)
        self.dropout_attn = nn.Dropout(dropout)
        if "batch" in norm.lower():
            self.norm_attn = nn.Sequential(Transpose(1, 2), nn.BatchNorm1d(d_model), Transpose(1, 2))
        else:
            self.norm_attn = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff, bias=bias), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(d_ff, d_model, bias=bias))
        self.dropout_ffn = nn.Dropout(dropout)
        if "batch" in norm.lower():
            self.norm_ffn = nn.Sequential(Transpose(1, 2), nn.BatchNorm1d(d_model), Transpose(1, 2))
        else:
            self.norm_ffn = nn.LayerNorm(d_model)
        self.pre_norm = pre_norm

    def forward(self, src: Tensor, prev=None, key_padding_mask=None, attn_mask=None):
        if self.pre_norm:
            src = self.norm_attn(src)
        if self.res_attention:
            src2, attn, scores = self.self_attn(src, src, src, prev, key_padding_mask=key_padding_mask, attn_mask=attn_mask)
        else:
            src2, attn = self.self_attn(src, src, src, key_padding_mask=key_padding_mask, attn_mask=attn_mask)
        src = src + self.dropout_attn(src2)
        if not self.pre_norm:
            src = self.norm_attn(src)
        if self.pre_norm:
            src = self.norm_ffn(src)
        src2 = self.ff(src)
        src = src + self.dropout_ffn(src2)
        if not self.pre_norm:
            src = self.norm_ffn(src)
        if self.res_attention:
            return src, scores
        else:
            return src


class PatchTST(nn.Module):
    def __init__(self, c_in, context_window, target_window, patch_len, stride, n_layers=2, d_model=16, n_heads=4,
                 d_ff=32, padding_patch="end", res_attention=True, norm="BatchNorm"):
        super().__init__()
        self.patch_len, self.stride, self.padding_patch = patch_len, stride, padding_patch
        patch_num = int((context_window - patch_len) / stride + 1)
        if padding_patch == 'end':
            self.padding_patch_layer = nn.ReplicationPad1d((0, stride))
            patch_num += 1
        self.W_P = nn.Linear(patch_len, d_model)
        W_pos = torch.empty((patch_num, d_model))
        nn.init.uniform_(W_pos, -0.02, 0.02)
        self.W_pos = nn.Parameter(W_pos, requires_grad=True)
        self.layers = nn.ModuleList([TSTEncoderLayer(patch_num, d_model, n_heads, d_ff=d_ff, norm=norm,
                                                     res_attention=res_attention)
                                     for _ in range(n_layers)])
        self.res_attention = res_attention
        self.n_vars = c_in
        self.head = nn.Sequential(nn.Flatten(start_dim=-2), nn.Linear(d_model * patch_num, target_window))

    def forward(self, z):  # z: [bs x nvars x seq_len]
        if self.padding_patch == 'end':
            z = self.padding_patch_layer(z)
        z = z.unfold(dimension=-1, size=self.patch_len, step=self.stride)  # [bs x nvars x patch_num x patch_len]
        n_vars = z.shape[1]
        x = self.W_P(z)
        u = torch.reshape(x, (x.shape[0] * x.shape[1], x.shape[2], x.shape[3]))
        u = u + self.W_pos
        scores = None
        for mod in self.layers:
            if self.res_attention:
                u, scores = mod(u, prev=scores)
            else:
                u = mod(u)
        z = torch.reshape(u, (-1, n_vars, u.shape[-2], u.shape[-1]))
        z = z.permute(0, 1, 3, 2)  # [bs x nvars x d_model x patch_num]
        return self.head(z)


def FFT_for_Period(x, k=2):
    xf = torch.fft.rfft(x, dim=1)
    frequency_list = abs(xf).mean(0).mean(-1)
    frequency_list[0] = 0
    _, top_list = torch.topk(frequency_list, k)
    top_list = top_list.detach().cpu().numpy()
    period = x.shape[1] // top_list
    return period, abs(xf).mean(-1)[:, top_list]


class Inception_Block_V1(nn.Module):
    def __init__(self, in_channels, out_channels, num_kernels=6, init_weight=True):
        super(Inception_Block_V1, self).__init__()
        self.num_kernels = num_kernels
        kernels = []
        for i in range(self.num_kernels):
            kernels.append(nn.Conv2d(in_channels, out_channels, kernel_size=2 * i + 1, padding=i))
        self.kernels = nn.ModuleList(kernels)
        if init_weight:
            self._initialize_weights()

    def _initialize_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def forward(self, x):
        res_list = []
        for i in range(self.num_kernels):
            res_list.append(self.kernels[i](x))
        res = torch.stack(res_list, dim=-1).mean(-1)
        return res


class TimesBlock(nn.Module):
    def __init__(self, seq_len, pred_len, top_k, d_model, d_ff, num_kernels):
        super(TimesBlock, self).__init__()
        self.seq_len, self.pred_len, self.k = seq_len, pred_len, top_k
        self.conv = nn.Sequential(Inception_Block_V1(d_model, d_ff, num_kernels=num_kernels), nn.GELU(),
                                  Inception_Block_V1(d_ff, d_model, num_kernels=num_kernels))

    def forward(self, x):
        B, T, N = x.size()
        period_list, period_weight = FFT_for_Period(x, self.k)
        res = []
        for i in range(self.k):
            period = period_list[i]
            if (self.seq_len + self.pred_len) % period != 0:
                length = (((self.seq_len + self.pred_len) // period) + 1) * period
                padding = torch.zeros([x.shape[0], (length - (self.seq_len + self.pred_len)), x.shape[2]]).to(x.device)
                out = torch.cat([x, padding], dim=1)
            else:
                length = (self.seq_len + self.pred_len)
                out = x
            out = out.reshape(B, length // period, period, N).permute(0, 3, 1, 2).contiguous()
            out = self.conv(out)
            out = out.permute(0, 2, 3, 1).reshape(B, -1, N)
            res.append(out[:, :(self.seq_len + self.pred_len), :])
        res = torch.stack(res, dim=-1)
        period_weight = F.softmax(period_weight, dim=1)
        period_weight = period_weight.unsqueeze(1).unsqueeze(1).repeat(1, T, N, 1)
        res = torch.sum(res * period_weight, -1)
        res = res + x
        return res, period_list


class PositionalEmbedding(nn.Module):
    def __init__(self, d_model, max_len=5000):
        super(PositionalEmbedding, self).__init__()
        pe = torch.zeros(max_len, d_model).float()
        pe.require_grad = False
        position = torch.arange(0, max_len).float().unsqueeze(1)
        div_term = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        pe = pe.unsqueeze(0)
        self.register_buffer('pe', pe)

    def forward(self, x):
        return self.pe[:, :x.size(1)]


class FixedEmbedding(nn.Module):
    def __init__(self, c_in, d_model):
        super(FixedEmbedding, self).__init__()
        w = torch.zeros(c_in, d_model).float()
        w.require_grad = False
        position = torch.arange(0, c_in).float().unsqueeze(1)
        div_term = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
        w[:, 0::2] = torch.sin(position * div_term)
        w[:, 1::2] = torch.cos(position * div_term)
        self.emb = nn.Embedding(c_in, d_model)
        self.emb.weight = nn.Parameter(w, requires_grad=False)

    def forward(self, x):
        return self.emb(x).detach()


class TriangularCausalMask():
    def __init__(self, B, L, device="cpu"):
        mask_shape = [B, 1, L, L]
        with torch.no_grad():
            self._mask = torch.triu(torch.ones(mask_shape, dtype=torch.bool), diagonal=1).to(device)

    @property
    def mask(self):
        return self._mask


class FullAttention(nn.Module):
    def __init__(self, mask_flag=True, scale=None, attention_dropout=0.1, output_attention=False):
        super(FullAttention, self).__init__()
        self.scale = scale
        self.mask_flag = mask_flag
        self.output_attention = output_attention
        self.dropout = nn.Dropout(attention_dropout)

    def forward(self, queries, keys, values, attn_mask):
        B, L, H, E = queries.shape
        _, S, _, D = values.shape
        scale = self.scale or 1. / math.sqrt(E)
        scores = torch.einsum("blhe,bshe->bhls", queries, keys)
        if self.mask_flag:
            if attn_mask is None:
                attn_mask = TriangularCausalMask(B, L, device=queries.device)
            scores.masked_fill_(attn_mask.mask, -np.inf)
        A = self.dropout(torch.softmax(scale * scores, dim=-1))
        V = torch.einsum("bhls,bshd->blhd", A, values)
        if self.output_attention:
            return (V.contiguous(), A)
        else:
            return (V.contiguous(), None)


class ConvLayer(nn.Module):
    def __init__(self, c_in):
        super(ConvLayer, self).__init__()
        self.downConv = nn.Conv1d(in_channels=c_in, out_channels=c_in, kernel_size=3, padding=2, padding_mode='circular')
        self.norm = nn.BatchNorm1d(c_in)
        self.activation = nn.ELU()
        self.maxPool = nn.MaxPool1d(kernel_size=3, stride=2, padding=1)

    def forward(self, x):
        x = self.downConv(x.permute(0, 2, 1))
        x = self.norm(x)
        x = self.activation(x)
        x = self.maxPool(x)
        x = x.transpose(1, 2)
        return x


class LSTNet(nn.Module):
    def __init__(self, m, window=24, hidRNN=8, hidCNN=8, hidSkip=4, CNN_kernel=4, skip=6, highway_window=4,
                 output_fun="tanh"):
        super(LSTNet, self).__init__()
        self.P, self.m, self.hidR, self.hidC, self.hidS, self.Ck, self.skip = window, m, hidRNN, hidCNN, hidSkip, CNN_kernel, skip
        self.pt = int((self.P - self.Ck) / self.skip)
        self.hw = highway_window
        self.conv1 = nn.Conv2d(1, self.hidC, kernel_size=(self.Ck, self.m))
        self.GRU1 = nn.GRU(self.hidC, self.hidR)
        self.dropout = nn.Dropout(p=0.0)
        if self.skip > 0:
            self.GRUskip = nn.GRU(self.hidC, self.hidS)
            self.linear1 = nn.Linear(self.hidR + self.skip * self.hidS, self.m)
        else:
            self.linear1 = nn.Linear(self.hidR, self.m)
        if self.hw > 0:
            self.highway = nn.Linear(self.hw, 1)
        self.output = None
        if output_fun == 'sigmoid':
            self.output = F.sigmoid
        if output_fun == 'tanh':
            self.output = F.tanh

    def forward(self, x):
        batch_size = x.size(0)
        c = x.view(-1, 1, self.P, self.m)
        c = F.relu(self.conv1(c))
        c = self.dropout(c)
        c = torch.squeeze(c, 3)
        r = c.permute(2, 0, 1).contiguous()
        _, r = self.GRU1(r)
        r = self.dropout(torch.squeeze(r, 0))
        if self.skip > 0:
            s = c[:, :, int(-self.pt * self.skip):].contiguous()
            s = s.view(batch_size, self.hidC, self.pt, self.skip)
            s = s.permute(2, 0, 3, 1).contiguous()
            s = s.view(self.pt, batch_size * self.skip, self.hidC)
            _, s = self.GRUskip(s)
            s = s.view(batch_size, self.skip * self.hidS)
            s = self.dropout(s)
            r = torch.cat((r, s), 1)
        res = self.linear1(r)
        if self.hw > 0:
            z = x[:, -self.hw:, :]
            z = z.permute(0, 2, 1).contiguous().view(-1, self.hw)
            z = self.highway(z)
            z = z.view(-1, self.m)
            res = res + z
        if self.output:
            res = self.output(res)
        return res


def series(rng, n, length, channels):
    tt = rng.integers(0, 30, (n, 1)) + np.arange(length)[None, :]
    base = np.stack([np.sin(2 * np.pi * tt / (4 + 2 * c)) * (1 + 0.3 * c) + 0.01 * tt for c in range(channels)], -1)
    return (base + 0.1 * rng.standard_normal(base.shape)).astype(np.float32)


rng = np.random.default_rng(99)
seq_len, pred_len, C = 24, 6, 3

# PatchTST's default BatchNorm layers, one step in train mode and the output in eval mode
torch.manual_seed(0)
ptst = PatchTST(C, seq_len, pred_len, patch_len=8, stride=4)
share_init(ptst, "patchtst_bn")
s = torch.from_numpy(series(rng, 4, seq_len + pred_len, C))
loss = F.mse_loss(ptst(s[:, :seq_len].permute(0, 2, 1)), s[:, seq_len:].permute(0, 2, 1))
loss.backward()
ptst.eval()
with torch.no_grad():
    out = ptst(s[:, :seq_len].permute(0, 2, 1))
report("patchtst bn", loss.item(), ptst.W_P.weight.grad.abs().sum().item(), ptst.layers[1].norm_attn[1].running_mean[:3].tolist(),
       out[0, 0].tolist())

# PatchTST on channel-independent patches, trained. (With LayerNorm: behind BatchNorm, the biases
# of W_V, to_out and ff have exactly zero gradient, and Adam turns that gradient's rounding noise
# into whole steps, which the running means then carry into eval: noise, differing per library.)
torch.manual_seed(0)
ptst = PatchTST(C, seq_len, pred_len, patch_len=8, stride=4, norm="LayerNorm")
share_init(ptst, "patchtst")
report("patchtst", ptst.W_pos.shape[0], ptst.layers[0].self_attn.sdp_attn.scale.requires_grad,
       sum(p.numel() for p in ptst.parameters() if p.requires_grad))
epochs, steps_per_epoch = 2, 3
opt = torch.optim.Adam(ptst.parameters(), lr=1e-3)
sched = torch.optim.lr_scheduler.OneCycleLR(optimizer=opt, steps_per_epoch=steps_per_epoch, pct_start=0.3, epochs=epochs,
                                            max_lr=1e-3)
best = float("inf")
path = os.path.join(TMP, "checkpoint.pth")
for epoch in range(epochs):
    ptst.train()
    for i in range(steps_per_epoch):
        s = torch.from_numpy(series(rng, 4, seq_len + pred_len, C))
        x, y = s[:, :seq_len].permute(0, 2, 1), s[:, seq_len:].permute(0, 2, 1)
        opt.zero_grad()
        out = ptst(x)
        loss = F.mse_loss(out, y)
        loss.backward()
        opt.step()
        sched.step()
        report("patchtst", epoch, i, loss.item(), sched.get_last_lr()[0])
    ptst.eval()
    with torch.no_grad():
        s = torch.from_numpy(series(rng, 4, seq_len + pred_len, C))
        vali = F.mse_loss(ptst(s[:, :seq_len].permute(0, 2, 1)), s[:, seq_len:].permute(0, 2, 1)).item()
    if vali < best:
        best = vali
        torch.save(ptst.state_dict(), path)
    report("patchtst vali", epoch, vali)
ptst.load_state_dict(torch.load(path))
report("patchtst best", best, ptst.layers[1].norm_ffn.weight[:4].tolist())

# TimesNet blocks
torch.manual_seed(1)
block = TimesBlock(seq_len, 0, top_k=2, d_model=C, d_ff=4, num_kernels=3)
share_init(block, "timesnet")
x = torch.from_numpy(series(rng, 2, seq_len, C))
period, weight = FFT_for_Period(x, 2)
report("periods", period.tolist(), weight.tolist())
out, periods = block(x)
out.square().mean().backward()
report("timesblock", out[0, :3].tolist(), block.conv[0].kernels[2].weight.grad.abs().sum().item())

# Informer's embeddings, causal full attention and distilling
pe = PositionalEmbedding(8)
fe = FixedEmbedding(24, 8)
marks = torch.from_numpy(rng.integers(0, 24, (2, 5)))
report("informer emb", pe(torch.zeros(2, 5, 8))[0, 4].tolist(), fe(marks)[1, 0].tolist(), fe.emb.weight.requires_grad,
       [n for n, _ in pe.named_buffers()])
att = FullAttention(mask_flag=True, attention_dropout=0.0, output_attention=True)
q = torch.tensor(rng.standard_normal((2, 5, 2, 4)), dtype=torch.float32)
V, A = att(q, q * 0.5, q + 1, None)
report("full attention", A[0, 1, 2].tolist(), V[1, 3, 0].tolist())
torch.manual_seed(2)
distil = ConvLayer(4)
share_init(distil, "distil")
h = torch.tensor(rng.standard_normal((3, 11, 4)), dtype=torch.float32, requires_grad=True)
d = distil(h)
d.sum().backward()
report("distil", list(d.shape), d[0, :2].tolist(), h.grad.abs().sum().item(), distil.norm.running_mean.tolist())

# LSTNet
torch.manual_seed(3)
lst = LSTNet(C, window=24)
share_init(lst, "lstnet")
opt = torch.optim.Adam(lst.parameters(), lr=1e-3)
crit = nn.L1Loss(reduction="sum")
for step in range(3):
    s = torch.from_numpy(series(rng, 5, seq_len + 1, C))
    x, y = s[:, :seq_len], s[:, seq_len]
    out = lst(x)
    loss = crit(out, torch.tanh(y))
    opt.zero_grad()
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(lst.parameters(), 10.0)
    opt.step()
    report("lstnet", step, loss.item(), grad_norm.item())
