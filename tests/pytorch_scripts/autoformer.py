"""Autoformer and FEDformer as the THUML Time-Series-Library writes them: series decomposition by a
moving average (the ends replicated with x[:, 0:1, :].repeat, then nn.AvgPool1d with stride 1;
FEDformer's multi-kernel version weighting the trends through a softmax of nn.Linear(1, k)),
the token embedding as a circular-padded Conv1d with kaiming_normal_(mode='fan_in',
nonlinearity='leaky_relu'), AutoCorrelation through torch.fft.rfft / torch.conj / irfft(n=L),
top-k delays from torch.topk, aggregation by torch.roll in training and by torch.gather over a
doubled series in inference, the seasonal-only my_Layernorm, encoder/decoder layers with 1x1
Conv1d feed-forward and progressive trend accumulation; FEDformer's FourierBlock with complex
parameters (torch.rand(..., dtype=torch.cfloat)), a complex einsum and modes written into a
cfloat zeros tensor before irfft; RevIN normalisation (var(unbiased=False), detach) as PatchTST
writes it; trained with Adam, MSE and the library's adjust_learning_rate ('type1')."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class moving_avg(nn.Module):
    def __init__(self, kernel_size, stride):
        super(moving_avg, self).__init__()
        self.kernel_size = kernel_size
        self.avg = nn.AvgPool1d(kernel_size=kernel_size, stride=stride, padding=0)

    def forward(self, x):
        front = x[:, 0:1, :].repeat(1, (self.kernel_size - 1) // 2, 1)
        end = x[:, -1:, :].repeat(1, (self.kernel_size - 1) // 2, 1)
        x = torch.cat([front, x, end], dim=1)
        x = self.avg(x.permute(0, 2, 1))
        x = x.permute(0, 2, 1)
        return x


class series_decomp(nn.Module):
    def __init__(self, kernel_size):
        super(series_decomp, self).__init__()
        self.moving_avg = moving_avg(kernel_size, stride=1)

    def forward(self, x):
        moving_mean = self.moving_avg(x)
        res = x - moving_mean
        return res, moving_mean


class series_decomp_multi(nn.Module):
    def __init__(self, kernel_size):
        super(series_decomp_multi, self).__init__()
        self.moving_avg = [moving_avg(kernel, stride=1) for kernel in kernel_size]
        self.layer = torch.nn.Linear(1, len(kernel_size))

    def forward(self, x):
        moving_mean = []
        for func in self.moving_avg:
            moving_avg_ = func(x)
            moving_mean.append(moving_avg_.unsqueeze(-1))
        moving_mean = torch.cat(moving_mean, dim=-1)
        moving_mean = torch.sum(moving_mean * nn.Softmax(-1)(self.layer(x.unsqueeze(-1))), dim=-1)
        res = x - moving_mean
        return res, moving_mean


class my_Layernorm(nn.Module):
    def __init__(self, channels):
        super(my_Layernorm, self).__init__()
        self.layernorm = nn.LayerNorm(channels)

    def forward(self, x):
        x_hat = self.layernorm(x)
        bias = torch.mean(x_hat, dim=1).unsqueeze(1).repeat(1, x.shape[1], 1)
        return x_hat - bias


class TokenEmbedding(nn.Module):
    def __init__(self, c_in, d_model):
        super(TokenEmbedding, self).__init__()
        padding = 1 if torch.__version__ >= '1.5.0' else 2
        self.tokenConv = nn.Conv1d(in_channels=c_in, out_channels=d_model, kernel_size=3, padding=padding,
                                   padding_mode='circular', bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode='fan_in', nonlinearity='leaky_relu')

    def forward(self, x):
        x = self.tokenConv(x.permute(0, 2, 1)).transpose(1, 2)
        return x


class TimeFeatureEmbedding(nn.Module):
    def __init__(self, d_model, d_inp=2):
        super(TimeFeatureEmbedding, self).__init__()
        self.embed = nn.Linear(d_inp, d_model, bias=False)

    def forward(self, x):
        return self.embed(x)


class DataEmbedding_wo_pos(nn.Module):
    def __init__(self, c_in, d_model, dropout=0.1):
        super(DataEmbedding_wo_pos, self).__init__()
        self.value_embedding = TokenEmbedding(c_in=c_in, d_model=d_model)
        self.temporal_embedding = TimeFeatureEmbedding(d_model=d_model)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x, x_mark):
        if x_mark is None:
            x = self.value_embedding(x)
        else:
            x = self.value_embedding(x) + self.temporal_embedding(x_mark)
        return self.dropout(x)


class AutoCorrelation(nn.Module):
    def __init__(self, mask_flag=True, factor=1, scale=None, attention_dropout=0.1, output_attention=False):
        super(AutoCorrelation, self).__init__()
        self.factor = factor
        self.scale = scale
        self.mask_flag = mask_flag
        self.output_attention = output_attention
        self.dropout = nn.Dropout(attention_dropout)

    def time_delay_agg_training(self, values, corr):
        head = values.shape[1]
        channel = values.shape[2]
        length = values.shape[3]
        top_k = int(self.factor * math.log(length))
        mean_value = torch.mean(torch.mean(corr, dim=1), dim=1)
        index = torch.topk(torch.mean(mean_value, dim=0), top_k, dim=-1)[1]
        weights = torch.stack([mean_value[:, index[i]] for i in range(top_k)], dim=-1)
        tmp_corr = torch.softmax(weights, dim=-1)
        tmp_values = values
        delays_agg = torch.zeros_like(values).float()
        for i in range(top_k):
            pattern = torch.roll(tmp_values, -int(index[i]), -1)
            delays_agg = delays_agg + pattern * \
                (tmp_corr[:, i].unsqueeze(1).unsqueeze(1).unsqueeze(1).repeat(1, head, channel, length))
        return delays_agg

    def time_delay_agg_inference(self, values, corr):
        batch = values.shape[0]
        head = values.shape[1]
        channel = values.shape[2]
        length = values.shape[3]
        init_index = torch.arange(length).unsqueeze(0).unsqueeze(0).unsqueeze(0).repeat(batch, head, channel, 1).to(values.device)
        top_k = int(self.factor * math.log(length))
        mean_value = torch.mean(torch.mean(corr, dim=1), dim=1)
        weights, delay = torch.topk(mean_value, top_k, dim=-1)
        tmp_corr = torch.softmax(weights, dim=-1)
        tmp_values = values.repeat(1, 1, 1, 2)
        delays_agg = torch.zeros_like(values).float()
        for i in range(top_k):
            tmp_delay = init_index + delay[:, i].unsqueeze(1).unsqueeze(1).unsqueeze(1).repeat(1, head, channel, length)
            pattern = torch.gather(tmp_values, dim=-1, index=tmp_delay)
            delays_agg = delays_agg + pattern * \
                (tmp_corr[:, i].unsqueeze(1).unsqueeze(1).unsqueeze(1).repeat(1, head, channel, length))
        return delays_agg

    def forward(self, queries, keys, values, attn_mask):
        B, L, H, E = queries.shape
        _, S, _, D = values.shape
        if L > S:
            zeros = torch.zeros_like(queries[:, :(L - S), :]).float()
            values = torch.cat([values, zeros], dim=1)
            keys = torch.cat([keys, zeros], dim=1)
        else:
            values = values[:, :L, :, :]
            keys = keys[:, :L, :, :]
        q_fft = torch.fft.rfft(queries.permute(0, 2, 3, 1).contiguous(), dim=-1)
        k_fft = torch.fft.rfft(keys.permute(0, 2, 3, 1).contiguous(), dim=-1)
        res = q_fft * torch.conj(k_fft)
        corr = torch.fft.irfft(res, n=L, dim=-1)
        if self.training:
            V = self.time_delay_agg_training(values.permute(0, 2, 3, 1).contiguous(), corr).permute(0, 3, 1, 2)
        else:
            V = self.time_delay_agg_inference(values.permute(0, 2, 3, 1).contiguous(), corr).permute(0, 3, 1, 2)
        if self.output_attention:
            return (V.contiguous(), corr.permute(0, 3, 1, 2))
        else:
            return (V.contiguous(), None)


class AutoCorrelationLayer(nn.Module):
    def __init__(self, correlation, d_model, n_heads, d_keys=None, d_values=None):
        super(AutoCorrelationLayer, self).__init__()
        d_keys = d_keys or (d_model // n_heads)
        d_values = d_values or (d_model // n_heads)
        self.inner_correlation = correlation
        self.query_projection = nn.Linear(d_model, d_keys * n_heads)
        self.key_projection = nn.Linear(d_model, d_keys * n_heads)
        self.value_projection = nn.Linear(d_model, d_values * n_heads)
        self.out_projection = nn.Linear(d_values * n_heads, d_model)
        self.n_heads = n_heads

    def forward(self, queries, keys, values, attn_mask):
        B, L, _ = queries.shape
        _, S, _ = keys.shape
        H = self.n_heads
        queries = self.query_projection(queries).view(B, L, H, -1)
        keys = self.key_projection(keys).view(B, S, H, -1)
        values = self.value_projection(values).view(B, S, H, -1)
        out, attn = self.inner_correlation(queries, keys, values, attn_mask)
        out = out.view(B, L, -1)
        return self.out_projection(out), attn


class FourierBlock(nn.Module):
    def __init__(self, in_channels, out_channels, seq_len, modes=0, mode_select_method='random'):
        super(FourierBlock, self).__init__()
        self.index = list(range(0, min(modes, seq_len // 2)))  # 'lowest' modes: deterministic
        self.scale = (1 / (in_channels * out_channels))
        self.weights1 = nn.Parameter(
            self.scale * torch.rand(2, in_channels // 2, out_channels // 2, len(self.index), dtype=torch.cfloat))

    def compl_mul1d(self, input, weights):
        return torch.einsum("bhi,hio->bho", input, weights)

    def forward(self, q, k, v, mask):
        B, L, H, E = q.shape
        x = q.permute(0, 2, 3, 1)
        x_ft = torch.fft.rfft(x, dim=-1)
        out_ft = torch.zeros(B, H, E, L // 2 + 1, device=x.device, dtype=torch.cfloat)
        for wi, i in enumerate(self.index):
            out_ft[:, :, :, wi] = self.compl_mul1d(x_ft[:, :, :, i], self.weights1[:, :, :, wi])
        x = torch.fft.irfft(out_ft, n=x.size(-1))
        return (x, None)


class EncoderLayer(nn.Module):
    def __init__(self, attention, d_model, d_ff=None, moving_avg=5, dropout=0.1, activation="relu", decomp=None):
        super(EncoderLayer, self).__init__()
        d_ff = d_ff or 4 * d_model
        self.attention = attention
        self.conv1 = nn.Conv1d(in_channels=d_model, out_channels=d_ff, kernel_size=1, bias=False)
        self.conv2 = nn.Conv1d(in_channels=d_ff, out_channels=d_model, kernel_size=1, bias=False)
        self.decomp1 = decomp or series_decomp(moving_avg)
        self.decomp2 = decomp or series_decomp(moving_avg)
        self.dropout = nn.Dropout(dropout)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(self, x, attn_mask=None):
        new_x, attn = self.attention(x, x, x, attn_mask=attn_mask)
        x = x + self.dropout(new_x)
        x, _ = self.decomp1(x)
        y = x
        y = self.dropout(self.activation(self.conv1(y.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        res, _ = self.decomp2(x + y)
        return res, attn


class DecoderLayer(nn.Module):
    def __init__(self, self_attention, cross_attention, d_model, c_out, d_ff=None, moving_avg=5, dropout=0.1,
                 activation="relu"):
        super(DecoderLayer, self).__init__()
        d_ff = d_ff or 4 * d_model
        self.self_attention = self_attention
        self.cross_attention = cross_attention
        self.conv1 = nn.Conv1d(in_channels=d_model, out_channels=d_ff, kernel_size=1, bias=False)
        self.conv2 = nn.Conv1d(in_channels=d_ff, out_channels=d_model, kernel_size=1, bias=False)
        self.decomp1 = series_decomp(moving_avg)
        self.decomp2 = series_decomp(moving_avg)
        self.decomp3 = series_decomp(moving_avg)
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Conv1d(in_channels=d_model, out_channels=c_out, kernel_size=3, stride=1, padding=1,
                                    padding_mode='circular', bias=False)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(self, x, cross, x_mask=None, cross_mask=None):
        x = x + self.dropout(self.self_attention(x, x, x, attn_mask=x_mask)[0])
        x, trend1 = self.decomp1(x)
        x = x + self.dropout(self.cross_attention(x, cross, cross, attn_mask=cross_mask)[0])
        x, trend2 = self.decomp2(x)
        y = x
        y = self.dropout(self.activation(self.conv1(y.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        x, trend3 = self.decomp3(x + y)
        residual_trend = trend1 + trend2 + trend3
        residual_trend = self.projection(residual_trend.permute(0, 2, 1)).transpose(1, 2)
        return x, residual_trend


class Autoformer(nn.Module):
    def __init__(self, seq_len=16, label_len=8, pred_len=6, enc_in=2, d_model=8, n_heads=2, e_layers=1, d_layers=1,
                 d_ff=16, moving_avg=5, factor=1, fourier_modes=None):
        super(Autoformer, self).__init__()
        self.seq_len, self.label_len, self.pred_len = seq_len, label_len, pred_len
        self.decomp = series_decomp(moving_avg)
        self.enc_embedding = DataEmbedding_wo_pos(enc_in, d_model, 0.0)
        self.dec_embedding = DataEmbedding_wo_pos(enc_in, d_model, 0.0)

        def enc_attention():
            if fourier_modes:
                return FourierBlock(d_model, d_model, seq_len, modes=fourier_modes)
            return AutoCorrelation(False, factor, attention_dropout=0.0, output_attention=False)

        self.encoder_layers = nn.ModuleList([
            EncoderLayer(AutoCorrelationLayer(enc_attention(), d_model, n_heads), d_model, d_ff, moving_avg=moving_avg,
                         dropout=0.0, activation="gelu") for _ in range(e_layers)])
        self.encoder_norm = my_Layernorm(d_model)
        self.decoder_layers = nn.ModuleList([
            DecoderLayer(AutoCorrelationLayer(AutoCorrelation(True, factor, attention_dropout=0.0), d_model, n_heads),
                         AutoCorrelationLayer(AutoCorrelation(False, factor, attention_dropout=0.0), d_model, n_heads),
                         d_model, enc_in, d_ff, moving_avg=moving_avg, dropout=0.0, activation="gelu")
            for _ in range(d_layers)])
        self.decoder_norm = my_Layernorm(d_model)
        self.decoder_projection = nn.Linear(d_model, enc_in, bias=True)

    def forward(self, x_enc, x_mark_enc, x_dec, x_mark_dec):
        mean = torch.mean(x_enc, dim=1).unsqueeze(1).repeat(1, self.pred_len, 1)
        zeros = torch.zeros([x_dec.shape[0], self.pred_len, x_dec.shape[2]], device=x_enc.device)
        seasonal_init, trend_init = self.decomp(x_enc)
        trend_init = torch.cat([trend_init[:, -self.label_len:, :], mean], dim=1)
        seasonal_init = torch.cat([seasonal_init[:, -self.label_len:, :], zeros], dim=1)
        enc_out = self.enc_embedding(x_enc, x_mark_enc)
        for layer in self.encoder_layers:
            enc_out, _ = layer(enc_out)
        enc_out = self.encoder_norm(enc_out)
        dec_out = self.dec_embedding(seasonal_init, x_mark_dec)
        trend = trend_init
        for layer in self.decoder_layers:
            dec_out, residual_trend = layer(dec_out, enc_out)
            trend = trend + residual_trend
        dec_out = self.decoder_norm(dec_out)
        dec_out = self.decoder_projection(dec_out)
        dec_out = trend + dec_out
        return dec_out[:, -self.pred_len:, :]


class RevIN(nn.Module):
    def __init__(self, num_features: int, eps=1e-5, affine=True, subtract_last=False):
        super(RevIN, self).__init__()
        self.num_features = num_features
        self.eps = eps
        self.affine = affine
        self.subtract_last = subtract_last
        if self.affine:
            self.affine_weight = nn.Parameter(torch.ones(self.num_features))
            self.affine_bias = nn.Parameter(torch.zeros(self.num_features))

    def forward(self, x, mode: str):
        if mode == 'norm':
            self._get_statistics(x)
            x = self._normalize(x)
        elif mode == 'denorm':
            x = self._denormalize(x)
        else:
            raise NotImplementedError
        return x

    def _get_statistics(self, x):
        dim2reduce = tuple(range(1, x.ndim - 1))
        if self.subtract_last:
            self.last = x[:, -1, :].unsqueeze(1)
        else:
            self.mean = torch.mean(x, dim=dim2reduce, keepdim=True).detach()
        self.stdev = torch.sqrt(torch.var(x, dim=dim2reduce, keepdim=True, unbiased=False) + self.eps).detach()

    def _normalize(self, x):
        x = x - (self.last if self.subtract_last else self.mean)
        x = x / self.stdev
        if self.affine:
            x = x * self.affine_weight
            x = x + self.affine_bias
        return x

    def _denormalize(self, x):
        if self.affine:
            x = x - self.affine_bias
            x = x / (self.affine_weight + self.eps * self.eps)
        x = x * self.stdev
        x = x + (self.last if self.subtract_last else self.mean)
        return x


def adjust_learning_rate(optimizer, epoch, learning_rate, lradj='type1'):
    if lradj == 'type1':
        lr_adjust = {epoch: learning_rate * (0.5 ** ((epoch - 1) // 1))}
    else:
        lr_adjust = {}
    if epoch in lr_adjust.keys():
        lr = lr_adjust[epoch]
        for param_group in optimizer.param_groups:
            param_group['lr'] = lr
        return lr


def make_windows(rng, n, seq_len, label_len, pred_len):
    length = seq_len + pred_len
    t0 = rng.integers(0, 50, (n, 1))
    tt = t0 + np.arange(length)[None, :]
    a = np.sin(2 * np.pi * tt / 8.0) + 0.02 * tt + 0.1 * rng.standard_normal((n, length))
    b = np.cos(2 * np.pi * tt / 5.0) * 0.5 + 0.1 * rng.standard_normal((n, length))
    series = np.stack([a, b], axis=-1).astype(np.float32)
    marks = np.stack([(tt % 8) / 7.0 - 0.5, (tt % 5) / 4.0 - 0.5], axis=-1).astype(np.float32)
    x_enc, y = series[:, :seq_len], series[:, seq_len - label_len:]
    x_mark, y_mark = marks[:, :seq_len], marks[:, seq_len - label_len:]
    return [torch.from_numpy(v) for v in (x_enc, x_mark, y, y_mark)]


rng = np.random.default_rng(2024)
seq_len, label_len, pred_len = 16, 8, 6
decomp = series_decomp(5)
x = torch.tensor(rng.standard_normal((2, 9, 3)), dtype=torch.float32)
res, trend = decomp(x)
padded = F.pad(x.permute(0, 2, 1), (2, 2), mode="replicate")
report("decomp", trend[0, :, 0].tolist(), (trend - F.avg_pool1d(padded, 5, stride=1).permute(0, 2, 1)).abs().max().item(),
       (res + trend - x).abs().max().item())

for name, kwargs in [("autoformer", {}), ("fedformer", {"fourier_modes": 4})]:
    torch.manual_seed(0)
    model = Autoformer(seq_len, label_len, pred_len, **kwargs)
    share_init(model, name)
    report(name, "params", sum(p.numel() for p in model.parameters()),
           [str(p.dtype) .replace("tinymm", "torch") for p in model.parameters()][:3])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.MSELoss()
    for epoch in range(2):
        model.train()
        for i in range(2):
            batch_x, batch_x_mark, batch_y, batch_y_mark = make_windows(rng, 4, seq_len, label_len, pred_len)
            optimizer.zero_grad()
            dec_inp = torch.zeros_like(batch_y[:, -pred_len:, :]).float()
            dec_inp = torch.cat([batch_y[:, :label_len, :], dec_inp], dim=1).float()
            outputs = model(batch_x, batch_x_mark, dec_inp, batch_y_mark)
            f_dim = 0
            outputs = outputs[:, -pred_len:, f_dim:]
            batch_y = batch_y[:, -pred_len:, f_dim:]
            loss = criterion(outputs, batch_y)
            loss.backward()
            optimizer.step()
            report(name, epoch, i, loss.item(), model.enc_embedding.value_embedding.tokenConv.weight.grad.abs().sum().item())
        lr = adjust_learning_rate(optimizer, epoch + 1, 1e-3)
        report(name, "lr", lr)
    model.eval()
    with torch.no_grad():
        batch_x, batch_x_mark, batch_y, batch_y_mark = make_windows(rng, 3, seq_len, label_len, pred_len)
        dec_inp = torch.cat([batch_y[:, :label_len, :], torch.zeros_like(batch_y[:, -pred_len:, :])], dim=1)
        pred = model(batch_x, batch_x_mark, dec_inp, batch_y_mark)
    report(name, "eval", pred[0].tolist(), F.mse_loss(pred, batch_y[:, -pred_len:]).item())

# the two delay aggregations agree when every sample picks the same delays
ac = AutoCorrelation(factor=1)
vals = torch.tensor(rng.standard_normal((1, 2, 3, 12)), dtype=torch.float32)
corr = torch.tensor(rng.standard_normal((1, 2, 3, 12)), dtype=torch.float32)
report("delay agg", ac.time_delay_agg_training(vals, corr).sum().item(),
       (ac.time_delay_agg_training(vals, corr) - ac.time_delay_agg_inference(vals, corr)).abs().max().item())

fb = model.encoder_layers[0].attention.inner_correlation
report("fourier", fb.weights1.dtype == torch.cfloat, list(fb.weights1.shape), fb.weights1.grad.abs().sum().item())

torch.manual_seed(0)
multi = series_decomp_multi([3, 5, 7])
share_init(multi, "multi")
r, tr = multi(x)
(tr.square().sum() + r.abs().sum()).backward()
report("decomp multi", tr[1, :, 2].tolist(), multi.layer.weight.grad.flatten().tolist())

rev = RevIN(3)
xr = torch.tensor(rng.standard_normal((4, 10, 3)) * 3 + 5, dtype=torch.float32)
z = rev(xr, 'norm')
report("revin", z.mean(1).abs().max().item() < 1e-5, z.std(1, unbiased=False).sub(1).abs().max().item() < 1e-3,
       (rev(z, 'denorm') - xr).abs().max().item() < 1e-4)
rev2 = RevIN(3, affine=False, subtract_last=True)
z2 = rev2(xr, 'norm')
report("revin last", z2[:, -1].abs().max().item(), rev2.stdev.squeeze().tolist()[0])
