"""Temporal Fusion Transformer pieces as pytorch-forecasting writes them: a TimeDistributed
wrapper reshaping with contiguous().view, GatedLinearUnit through F.glu, AddNorm with a
trainable sigmoid gate and TimeDistributedInterpolation (F.interpolate mode="linear",
align_corners=True) to resample widths, GatedResidualNetwork with ELU and an optional context,
VariableSelectionNetwork (single-variable GRNs in an nn.ModuleDict, softmax over variables,
torch.stack(dim=-1) weighted by unsqueeze(-2)), static covariate encoders giving the LSTM's
initial (h, c), InterpretableMultiHeadAttention (one value projection shared by all heads,
torch.bmm, masked_fill with -1e9, heads stacked and averaged), a causal mask from torch.triu,
and the QuantileLoss with torch.max over the pinball terms; trained a few steps with Adam,
clip_grad_norm_ and ReduceLROnPlateau, then the attention and variable-selection weights."""
import math
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class TimeDistributedInterpolation(nn.Module):
    def __init__(self, output_size: int, batch_first: bool = False, trainable: bool = False):
        super().__init__()
        self.output_size = output_size
        self.batch_first = batch_first
        self.trainable = trainable
        if self.trainable:
            self.mask = nn.Parameter(torch.zeros(self.output_size, dtype=torch.float32))
            self.gate = nn.Sigmoid()

    def interpolate(self, x):
        upsampled = F.interpolate(x.unsqueeze(1), self.output_size, mode="linear", align_corners=True).squeeze(1)
        if self.trainable:
            upsampled = upsampled * self.gate(self.mask.unsqueeze(0)) * 2.0
        return upsampled

    def forward(self, x):
        if len(x.size()) <= 2:
            return self.interpolate(x)
        x_reshape = x.contiguous().view(-1, x.size(-1))
        y = self.interpolate(x_reshape)
        if self.batch_first:
            y = y.contiguous().view(x.size(0), -1, y.size(-1))
        else:
            y = y.view(-1, x.size(1), y.size(-1))
        return y


class GatedLinearUnit(nn.Module):
    def __init__(self, input_size: int, hidden_size: int = None, dropout: float = None):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout is not None else dropout
        self.hidden_size = hidden_size or input_size
        self.fc = nn.Linear(input_size, self.hidden_size * 2)
        self.init_weights()

    def init_weights(self):
        for n, p in self.named_parameters():
            if "bias" in n:
                torch.nn.init.zeros_(p)
            elif "fc" in n:
                torch.nn.init.xavier_uniform_(p)

    def forward(self, x):
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.fc(x)
        x = F.glu(x, dim=-1)
        return x


class ResampleNorm(nn.Module):
    def __init__(self, input_size: int, output_size: int = None, trainable_add: bool = True):
        super().__init__()
        self.input_size = input_size
        self.trainable_add = trainable_add
        self.output_size = output_size or input_size
        if self.input_size != self.output_size:
            self.resample = TimeDistributedInterpolation(self.output_size, batch_first=True, trainable=False)
        if self.trainable_add:
            self.mask = nn.Parameter(torch.zeros(self.output_size, dtype=torch.float))
            self.gate = nn.Sigmoid()
        self.norm = nn.LayerNorm(self.output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size != self.output_size:
            x = self.resample(x)
        if self.trainable_add:
            x = x * self.gate(self.mask) * 2.0
        return self.norm(x)


class AddNorm(nn.Module):
    def __init__(self, input_size: int, skip_size: int = None, trainable_add: bool = True):
        super().__init__()
        self.input_size = input_size
        self.trainable_add = trainable_add
        self.skip_size = skip_size or input_size
        if self.input_size != self.skip_size:
            self.resample = TimeDistributedInterpolation(self.input_size, batch_first=True, trainable=False)
        if self.trainable_add:
            self.mask = nn.Parameter(torch.zeros(self.input_size, dtype=torch.float))
            self.gate = nn.Sigmoid()
        self.norm = nn.LayerNorm(self.input_size)

    def forward(self, x: torch.Tensor, skip: torch.Tensor):
        if self.input_size != self.skip_size:
            skip = self.resample(skip)
        if self.trainable_add:
            skip = skip * self.gate(self.mask) * 2.0
        output = self.norm(x + skip)
        return output


class GateAddNorm(nn.Module):
    def __init__(self, input_size, hidden_size=None, skip_size=None, trainable_add=False, dropout=None):
        super().__init__()
        self.hidden_size = hidden_size or input_size
        self.skip_size = skip_size or self.hidden_size
        self.glu = GatedLinearUnit(input_size, hidden_size=self.hidden_size, dropout=dropout)
        self.add_norm = AddNorm(self.hidden_size, skip_size=self.skip_size, trainable_add=trainable_add)

    def forward(self, x, skip):
        output = self.glu(x)
        output = self.add_norm(output, skip)
        return output


class GatedResidualNetwork(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, dropout=0.0, context_size=None, residual=False):
        super().__init__()
        self.input_size = input_size
        self.output_size = output_size
        self.context_size = context_size
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.residual = residual
        if self.input_size != self.output_size and not self.residual:
            residual_size = self.input_size
        else:
            residual_size = self.output_size
        if self.output_size != residual_size:
            self.resample_norm = ResampleNorm(residual_size, self.output_size)
        self.fc1 = nn.Linear(self.input_size, self.hidden_size)
        self.elu = nn.ELU()
        if self.context_size is not None:
            self.context = nn.Linear(self.context_size, self.hidden_size, bias=False)
        self.fc2 = nn.Linear(self.hidden_size, self.hidden_size)
        self.init_weights()
        self.gate_norm = GateAddNorm(input_size=self.hidden_size, skip_size=self.output_size,
                                     hidden_size=self.output_size, dropout=self.dropout, trainable_add=False)

    def init_weights(self):
        for name, p in self.named_parameters():
            if "bias" in name:
                torch.nn.init.zeros_(p)
            elif "fc1" in name or "fc2" in name:
                torch.nn.init.kaiming_normal_(p, a=0, mode="fan_in", nonlinearity="leaky_relu")
            elif "context" in name:
                torch.nn.init.xavier_uniform_(p)

    def forward(self, x, context=None, residual=None):
        if residual is None:
            residual = x
        if self.input_size != self.output_size and not self.residual:
            residual = self.resample_norm(residual)
        x = self.fc1(x)
        if context is not None:
            context = self.context(context)
            x = x + context
        x = self.elu(x)
        x = self.fc2(x)
        x = self.gate_norm(x, residual)
        return x


class VariableSelectionNetwork(nn.Module):
    def __init__(self, input_sizes: Dict[str, int], hidden_size: int, dropout: float = 0.1,
                 context_size: int = None, prescalers: Dict[str, nn.Linear] = {}):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_sizes = input_sizes
        self.dropout = dropout
        self.context_size = context_size
        if self.num_inputs > 1:
            self.flattened_grn = GatedResidualNetwork(
                self.input_size_total, min(self.hidden_size, self.num_inputs), self.num_inputs,
                self.dropout, self.context_size, residual=False)
        self.single_variable_grns = nn.ModuleDict()
        for name, input_size in self.input_sizes.items():
            self.single_variable_grns[name] = GatedResidualNetwork(
                input_size, min(input_size, self.hidden_size), output_size=self.hidden_size, dropout=self.dropout)
        self.prescalers = nn.ModuleDict(prescalers)
        self.softmax = nn.Softmax(dim=-1)

    @property
    def input_size_total(self):
        return sum(self.input_sizes.values())

    @property
    def num_inputs(self):
        return len(self.input_sizes)

    def forward(self, x: Dict[str, torch.Tensor], context: torch.Tensor = None):
        var_outputs = []
        weight_inputs = []
        for name in self.input_sizes.keys():
            variable_embedding = x[name]
            if name in self.prescalers:
                variable_embedding = self.prescalers[name](variable_embedding)
            weight_inputs.append(variable_embedding)
            var_outputs.append(self.single_variable_grns[name](variable_embedding))
        var_outputs = torch.stack(var_outputs, dim=-1)
        flat_embedding = torch.cat(weight_inputs, dim=-1)
        sparse_weights = self.flattened_grn(flat_embedding, context)
        sparse_weights = self.softmax(sparse_weights).unsqueeze(-2)
        outputs = var_outputs * sparse_weights
        outputs = outputs.sum(dim=-1)
        return outputs, sparse_weights


class ScaledDotProductAttention(nn.Module):
    def __init__(self, dropout: float = None, scale: bool = True):
        super(ScaledDotProductAttention, self).__init__()
        if dropout is None:
            self.dropout = dropout
        else:
            self.dropout = nn.Dropout(p=dropout)
        self.softmax = nn.Softmax(dim=2)
        self.scale = scale

    def forward(self, q, k, v, mask=None):
        attn = torch.bmm(q, k.permute(0, 2, 1))
        if self.scale:
            dimension = torch.as_tensor(k.size(-1), dtype=attn.dtype, device=attn.device).sqrt()
            attn = attn / dimension
        if mask is not None:
            attn = attn.masked_fill(mask, -1e9)
        attn = self.softmax(attn)
        if self.dropout is not None:
            attn = self.dropout(attn)
        output = torch.bmm(attn, v)
        return output, attn


class InterpretableMultiHeadAttention(nn.Module):
    def __init__(self, n_head: int, d_model: int, dropout: float = 0.0):
        super(InterpretableMultiHeadAttention, self).__init__()
        self.n_head = n_head
        self.d_model = d_model
        self.d_k = self.d_q = self.d_v = d_model // n_head
        self.dropout = nn.Dropout(p=dropout)
        self.v_layer = nn.Linear(self.d_model, self.d_v)
        self.q_layers = nn.ModuleList([nn.Linear(self.d_model, self.d_q) for _ in range(self.n_head)])
        self.k_layers = nn.ModuleList([nn.Linear(self.d_model, self.d_k) for _ in range(self.n_head)])
        self.attention = ScaledDotProductAttention()
        self.w_h = nn.Linear(self.d_v, self.d_model, bias=False)
        self.init_weights()

    def init_weights(self):
        for name, p in self.named_parameters():
            if "bias" not in name:
                torch.nn.init.xavier_uniform_(p)
            else:
                torch.nn.init.zeros_(p)

    def forward(self, q, k, v, mask=None) -> Tuple[torch.Tensor, torch.Tensor]:
        heads = []
        attns = []
        vs = self.v_layer(v)
        for i in range(self.n_head):
            qs = self.q_layers[i](q)
            ks = self.k_layers[i](k)
            head, attn = self.attention(qs, ks, vs, mask)
            head_dropout = self.dropout(head)
            heads.append(head_dropout)
            attns.append(attn)
        head = torch.stack(heads, dim=2) if self.n_head > 1 else heads[0]
        attn = torch.stack(attns, dim=2)
        outputs = torch.mean(head, dim=2) if self.n_head > 1 else head
        outputs = self.w_h(outputs)
        outputs = self.dropout(outputs)
        return outputs, attn


class QuantileLoss(nn.Module):
    def __init__(self, quantiles: List[float] = [0.1, 0.5, 0.9]):
        super().__init__()
        self.quantiles = quantiles

    def loss(self, y_pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        losses = []
        for i, q in enumerate(self.quantiles):
            errors = target - y_pred[..., i]
            losses.append(torch.max((q - 1) * errors, q * errors).unsqueeze(-1))
        losses = 2 * torch.cat(losses, dim=2)
        return losses

    def forward(self, y_pred, target, weight=None):
        losses = self.loss(y_pred, target)
        if weight is not None:
            losses = losses * weight.unsqueeze(-1)
        return losses.sum(dim=-1).mean()


class TinyTFT(nn.Module):
    def __init__(self, hidden=8, heads=2, n_groups=3, quantiles=(0.1, 0.5, 0.9)):
        super().__init__()
        self.hidden = hidden
        self.static_embedding = nn.Embedding(n_groups, 3)
        hc = 4  # hidden_continuous_size: each real variable is prescaled from 1 to hc features
        self.prescalers = nn.ModuleDict({name: nn.Linear(1, hc) for name in ["scale", "target", "time_idx", "price"]})
        self.static_vsn = VariableSelectionNetwork({"group": 3, "scale": hc}, hidden, dropout=0.0,
                                                   prescalers={"scale": self.prescalers["scale"]})
        self.encoder_vsn = VariableSelectionNetwork({"target": hc, "time_idx": hc, "price": hc}, hidden,
                                                    dropout=0.0, context_size=hidden, prescalers=self.prescalers)
        self.decoder_vsn = VariableSelectionNetwork({"time_idx": hc, "price": hc}, hidden, dropout=0.0,
                                                    context_size=hidden,
                                                    prescalers={k: self.prescalers[k] for k in ["time_idx", "price"]})
        self.static_context_variable_selection = GatedResidualNetwork(hidden, hidden, hidden, dropout=0.0)
        self.static_context_initial_hidden_lstm = GatedResidualNetwork(hidden, hidden, hidden, dropout=0.0)
        self.static_context_initial_cell_lstm = GatedResidualNetwork(hidden, hidden, hidden, dropout=0.0)
        self.static_context_enrichment = GatedResidualNetwork(hidden, hidden, hidden, dropout=0.0)
        self.lstm_encoder = nn.LSTM(input_size=hidden, hidden_size=hidden, num_layers=1, batch_first=True)
        self.lstm_decoder = nn.LSTM(input_size=hidden, hidden_size=hidden, num_layers=1, batch_first=True)
        self.post_lstm_gate_encoder = GatedLinearUnit(hidden, dropout=0.0)
        self.post_lstm_gate_decoder = self.post_lstm_gate_encoder
        self.post_lstm_add_norm_encoder = AddNorm(hidden, trainable_add=False)
        self.post_lstm_add_norm_decoder = self.post_lstm_add_norm_encoder
        self.static_enrichment = GatedResidualNetwork(hidden, hidden, hidden, dropout=0.0, context_size=hidden)
        self.multihead_attn = InterpretableMultiHeadAttention(d_model=hidden, n_head=heads, dropout=0.0)
        self.post_attn_gate_norm = GateAddNorm(hidden, dropout=0.0, trainable_add=False)
        self.pos_wise_ff = GatedResidualNetwork(hidden, hidden, hidden, dropout=0.0)
        self.pre_output_gate_norm = GateAddNorm(hidden, dropout=None, trainable_add=False)
        self.output_layer = nn.Linear(hidden, len(quantiles))

    def expand_static_context(self, context, timesteps):
        return context[:, None].expand(-1, timesteps, -1)

    def get_attention_mask(self, encoder_lengths, decoder_length):
        attend_step = torch.arange(decoder_length, device=self.device)
        predict_step = torch.arange(0, decoder_length, device=self.device)[:, None]
        decoder_mask = attend_step >= predict_step
        decoder_mask = decoder_mask.unsqueeze(0).expand(encoder_lengths.size(0), -1, -1)
        max_len = encoder_lengths.max()
        encoder_mask = torch.arange(max_len, device=encoder_lengths.device).unsqueeze(0).expand(
            encoder_lengths.size(0), -1) >= encoder_lengths.unsqueeze(-1)
        encoder_mask = encoder_mask.unsqueeze(1).expand(-1, decoder_length, -1)
        mask = torch.cat((encoder_mask, decoder_mask), dim=2)
        return mask

    @property
    def device(self):
        return next(self.parameters()).device

    def forward(self, x):
        enc_len = x["encoder_target"].size(1)
        dec_len = x["decoder_time_idx"].size(1)
        timesteps = enc_len + dec_len
        static_embedding, static_variable_selection = self.static_vsn(
            {"group": self.static_embedding(x["groups"]), "scale": x["target_scale"]})
        static_context_variable_selection = self.expand_static_context(
            self.static_context_variable_selection(static_embedding), timesteps)
        embeddings_varying_encoder, encoder_sparse_weights = self.encoder_vsn(
            {"target": x["encoder_target"].unsqueeze(-1), "time_idx": x["encoder_time_idx"].unsqueeze(-1),
             "price": x["encoder_price"].unsqueeze(-1)},
            static_context_variable_selection[:, :enc_len])
        embeddings_varying_decoder, decoder_sparse_weights = self.decoder_vsn(
            {"time_idx": x["decoder_time_idx"].unsqueeze(-1), "price": x["decoder_price"].unsqueeze(-1)},
            static_context_variable_selection[:, enc_len:])
        input_hidden = self.static_context_initial_hidden_lstm(static_embedding).expand(1, -1, -1)
        input_cell = self.static_context_initial_cell_lstm(static_embedding).expand(1, -1, -1)
        encoder_output, (hidden, cell) = self.lstm_encoder(embeddings_varying_encoder, (input_hidden, input_cell))
        decoder_output, _ = self.lstm_decoder(embeddings_varying_decoder, (hidden, cell))
        lstm_output_encoder = self.post_lstm_gate_encoder(encoder_output)
        lstm_output_encoder = self.post_lstm_add_norm_encoder(lstm_output_encoder, embeddings_varying_encoder)
        lstm_output_decoder = self.post_lstm_gate_decoder(decoder_output)
        lstm_output_decoder = self.post_lstm_add_norm_decoder(lstm_output_decoder, embeddings_varying_decoder)
        lstm_output = torch.cat([lstm_output_encoder, lstm_output_decoder], dim=1)
        static_context_enrichment = self.static_context_enrichment(static_embedding)
        attn_input = self.static_enrichment(lstm_output, self.expand_static_context(static_context_enrichment, timesteps))
        attn_output, attn_output_weights = self.multihead_attn(
            q=attn_input[:, enc_len:], k=attn_input, v=attn_input,
            mask=self.get_attention_mask(encoder_lengths=x["encoder_lengths"], decoder_length=dec_len))
        attn_output = self.post_attn_gate_norm(attn_output, attn_input[:, enc_len:])
        output = self.pos_wise_ff(attn_output)
        output = self.pre_output_gate_norm(output, lstm_output[:, enc_len:])
        output = self.output_layer(output)
        return output, attn_output_weights, encoder_sparse_weights, static_variable_selection


def make_batch(rng, batch, enc_len, dec_len):
    groups = rng.integers(0, 3, batch)
    t = np.arange(enc_len + dec_len)[None, :] + rng.integers(0, 20, (batch, 1))
    price = rng.uniform(0.5, 1.5, (batch, enc_len + dec_len))
    level = 1.0 + groups[:, None] * 0.5
    y = level * (1.0 + 0.3 * np.sin(2 * math.pi * t / 7.0)) / price + 0.05 * rng.standard_normal(t.shape)
    scale = np.abs(y[:, :enc_len]).mean(axis=1, keepdims=True)
    y = y / scale
    tn = (t - 20.0) / 20.0
    f = lambda a: torch.tensor(a, dtype=torch.float32)
    return {
        "groups": torch.tensor(groups), "target_scale": f(scale),
        "encoder_target": f(y[:, :enc_len]), "encoder_time_idx": f(tn[:, :enc_len]), "encoder_price": f(price[:, :enc_len]),
        "decoder_time_idx": f(tn[:, enc_len:]), "decoder_price": f(price[:, enc_len:]),
        "encoder_lengths": torch.tensor(rng.integers(enc_len - 2, enc_len + 1, batch)),
    }, f(y[:, enc_len:])


torch.manual_seed(42)
rng = np.random.default_rng(42)
model = TinyTFT()
share_init(model, "tft")
report("tft params", sum(p.numel() for p in model.parameters() if p.requires_grad),
       sorted(model.encoder_vsn.single_variable_grns.keys()), len(list(model.modules())))

# the interpolating resampler, alone
interp = TimeDistributedInterpolation(5, batch_first=True, trainable=True)
xi = torch.tensor(rng.standard_normal((2, 3, 3)), dtype=torch.float32)
report("interp", interp(xi).detach().numpy().round(5).tolist())

loss_fn = QuantileLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=0)
for step in range(6):
    x, y = make_batch(rng, 6, 8, 4)
    model.train()
    out, attn, enc_w, static_w = model(x)
    loss = loss_fn(out, y)
    optimizer.zero_grad()
    loss.backward()
    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    optimizer.step()
    scheduler.step(loss.item() if step % 2 else 10.0)
    report("tft step", step, loss.item(), gn.item(), optimizer.param_groups[0]["lr"])

model.eval()
with torch.no_grad():
    x, y = make_batch(rng, 4, 8, 4)
    out, attn, enc_w, static_w = model(x)
report("tft out", list(out.shape), list(attn.shape), list(enc_w.shape), list(static_w.shape))
report("tft quantiles", out[0].numpy().tolist())
report("tft monotone-ish", (out[..., 2] - out[..., 0]).mean().item())
report("attn rows", attn.sum(-1).sub(1).abs().max().item() < 1e-5, attn[0, 0, 0].tolist())
# encoder padding positions get (numerically) zero attention
pad = x["encoder_lengths"]
masked = torch.stack([attn[i, :, :, pad[i]:8].sum() for i in range(4)])
report("masked attention", masked.max().item() < 1e-6, pad.tolist())
report("variable importance", enc_w.squeeze(-2).mean(dim=(0, 1)).tolist(), static_w.squeeze(1).mean(0).tolist())
