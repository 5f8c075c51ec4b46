"""FT-Transformer and TabTransformer as rtdl and the tab-transformer-pytorch code write them:
a numerical feature tokenizer (per-feature weight and bias broadcast as weight[None] *
x[..., None]), a categorical tokenizer with category offsets from torch.tensor([0] +
cardinalities[:-1]).cumsum(0) in a non-persistent buffer, periodic (PLR) numerical embeddings
with cos/sin and an einsum per-feature linear, a CLS token expanded and appended, transformer
blocks kept in nn.ModuleDict with pre-norm, heads split by reshape/transpose, ReGLU via
chunk, only the CLS query computed in the last block, AdamW with parameter groups (no weight
decay on tokenizers, norms and biases), cross-entropy and binary_cross_entropy_with_logits
losses over TensorDataset batches; then TabTransformer's per-column nn.Embedding in a
ModuleList with a shared column embedding, LayerNorm of continuous features and an MLP head."""
import math
import typing as ty

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.init as nn_init
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset


def reglu(x: Tensor) -> Tensor:
    a, b = x.chunk(2, dim=-1)
    return a * F.relu(b)


class Tokenizer(nn.Module):
    category_offsets: ty.Optional[Tensor]

    def __init__(self, d_numerical: int, categories: ty.Optional[ty.List[int]], d_token: int, bias: bool) -> None:
        super().__init__()
        if categories is None:
            d_bias = d_numerical
            self.category_offsets = None
            self.category_embeddings = None
        else:
            d_bias = d_numerical + len(categories)
            category_offsets = torch.tensor([0] + categories[:-1]).cumsum(0)
            self.register_buffer('category_offsets', category_offsets, persistent=False)
            self.category_embeddings = nn.Embedding(sum(categories), d_token)
            nn_init.kaiming_uniform_(self.category_embeddings.weight, a=math.sqrt(5))
        self.weight = nn.Parameter(Tensor(d_numerical + 1, d_token))
        self.bias = nn.Parameter(Tensor(d_bias, d_token)) if bias else None
        nn_init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            nn_init.kaiming_uniform_(self.bias, a=math.sqrt(5))

    @property
    def n_tokens(self) -> int:
        return len(self.weight) + (0 if self.category_offsets is None else len(self.category_offsets))

    def forward(self, x_num: Tensor, x_cat: ty.Optional[Tensor]) -> Tensor:
        x_some = x_num if x_cat is None else x_cat
        assert x_some is not None
        x_num = torch.cat([torch.ones(len(x_some), 1, device=x_some.device)]  # [CLS]
                          + ([] if x_num is None else [x_num]), dim=1)
        x = self.weight[None] * x_num[:, :, None]
        if x_cat is not None:
            x = torch.cat([x, self.category_embeddings(x_cat + self.category_offsets[None])], dim=1)
        if self.bias is not None:
            bias = torch.cat([torch.zeros(1, self.bias.shape[1], device=x.device), self.bias])
            x = x + bias[None]
        return x


class MultiheadAttention(nn.Module):
    def __init__(self, d: int, n_heads: int, dropout: float, initialization: str) -> None:
        if n_heads > 1:
            assert d % n_heads == 0
        assert initialization in ['xavier', 'kaiming']
        super().__init__()
        self.W_q = nn.Linear(d, d)
        self.W_k = nn.Linear(d, d)
        self.W_v = nn.Linear(d, d)
        self.W_out = nn.Linear(d, d) if n_heads > 1 else None
        self.n_heads = n_heads
        self.dropout = nn.Dropout(dropout) if dropout else None
        for m in [self.W_q, self.W_k, self.W_v]:
            if initialization == 'xavier' and (n_heads > 1 or m is not self.W_v):
                nn_init.xavier_uniform_(m.weight, gain=1 / math.sqrt(2))
            nn_init.zeros_(m.bias)
        if self.W_out is not None:
            nn_init.zeros_(self.W_out.bias)

    def _reshape(self, x: Tensor) -> Tensor:
        batch_size, n_tokens, d = x.shape
        d_head = d // self.n_heads
        return (x.reshape(batch_size, n_tokens, self.n_heads, d_head).transpose(1, 2)
                .reshape(batch_size * self.n_heads, n_tokens, d_head))

    def forward(self, x_q: Tensor, x_kv: Tensor) -> Tensor:
        q, k, v = self.W_q(x_q), self.W_k(x_kv), self.W_v(x_kv)
        for tensor in [q, k, v]:
            assert tensor.shape[-1] % self.n_heads == 0
        batch_size = len(q)
        d_head_key = k.shape[-1] // self.n_heads
        d_head_value = v.shape[-1] // self.n_heads
        n_q_tokens = q.shape[1]
        q = self._reshape(q)
        k = self._reshape(k)
        attention = F.softmax(q @ k.transpose(1, 2) / math.sqrt(d_head_key), dim=-1)
        if self.dropout is not None:
            attention = self.dropout(attention)
        x = attention @ self._reshape(v)
        x = (x.reshape(batch_size, self.n_heads, n_q_tokens, d_head_value).transpose(1, 2)
             .reshape(batch_size, n_q_tokens, self.n_heads * d_head_value))
        if self.W_out is not None:
            x = self.W_out(x)
        return x


class FTTransformer(nn.Module):
    """rtdl's original: the CLS token is the tokenizer's first column (weight row 0, no bias)."""

    def __init__(self, *, d_numerical: int, categories: ty.Optional[ty.List[int]], token_bias: bool, n_layers: int,
                 d_token: int, n_heads: int, d_ffn_factor: float, attention_dropout: float, ffn_dropout: float,
                 residual_dropout: float, prenormalization: bool, initialization: str, d_out: int) -> None:
        super().__init__()
        self.tokenizer = Tokenizer(d_numerical, categories, d_token, token_bias)
        n_tokens = self.tokenizer.n_tokens
        d_hidden = int(d_token * d_ffn_factor)
        self.layers = nn.ModuleList([])
        for layer_idx in range(n_layers):
            layer = nn.ModuleDict({
                'attention': MultiheadAttention(d_token, n_heads, attention_dropout, initialization),
                'linear0': nn.Linear(d_token, d_hidden * 2),
                'linear1': nn.Linear(d_hidden, d_token),
                'norm1': nn.LayerNorm(d_token),
            })
            if not prenormalization or layer_idx:
                layer['norm0'] = nn.LayerNorm(d_token)
            self.layers.append(layer)
        self.activation = reglu
        self.last_activation = F.relu
        self.prenormalization = prenormalization
        self.last_normalization = nn.LayerNorm(d_token) if prenormalization else None
        self.ffn_dropout = ffn_dropout
        self.residual_dropout = residual_dropout
        self.head = nn.Linear(d_token, d_out)

    def _start_residual(self, x, layer, norm_idx):
        x_residual = x
        if self.prenormalization:
            norm_key = f'norm{norm_idx}'
            if norm_key in layer:
                x_residual = layer[norm_key](x_residual)
        return x_residual

    def _end_residual(self, x, x_residual, layer, norm_idx):
        if self.residual_dropout:
            x_residual = F.dropout(x_residual, self.residual_dropout, self.training)
        x = x + x_residual
        if not self.prenormalization:
            x = layer[f'norm{norm_idx}'](x)
        return x

    def forward(self, x_num: Tensor, x_cat: ty.Optional[Tensor]) -> Tensor:
        x = self.tokenizer(x_num, x_cat)
        for layer_idx, layer in enumerate(self.layers):
            is_last_layer = layer_idx + 1 == len(self.layers)
            layer = ty.cast(ty.Dict[str, nn.Module], layer)
            x_residual = self._start_residual(x, layer, 0)
            x_residual = layer['attention'](
                (x_residual[:, :1] if is_last_layer else x_residual),  # only the CLS query in the last block
                x_residual)
            if is_last_layer:
                x = x[:, : x_residual.shape[1]]
            x = self._end_residual(x, x_residual, layer, 0)
            x_residual = self._start_residual(x, layer, 1)
            x_residual = layer['linear0'](x_residual)
            x_residual = self.activation(x_residual)
            if self.ffn_dropout:
                x_residual = F.dropout(x_residual, self.ffn_dropout, self.training)
            x_residual = layer['linear1'](x_residual)
            x = self._end_residual(x, x_residual, layer, 1)
        assert x.shape[1] == 1
        x = x[:, 0]
        if self.last_normalization is not None:
            x = self.last_normalization(x)
        x = self.last_activation(x)
        x = self.head(x)
        x = x.squeeze(-1)
        return x

    def optimization_param_groups(self) -> ty.List[ty.Dict[str, ty.Any]]:
        no_wd_names = ['tokenizer', '.norm', '.bias']
        assert isinstance(getattr(self, no_wd_names[1][1:]).__class__, type) if hasattr(self, 'norm') else True

        def needs_wd(name):
            return all(x not in name for x in no_wd_names)

        return [
            {'params': [v for k, v in self.named_parameters() if needs_wd(k)]},
            {'params': [v for k, v in self.named_parameters() if not needs_wd(k)], 'weight_decay': 0.0},
        ]


class PeriodicEmbeddings(nn.Module):
    """PLR embeddings: periodic features, then a per-feature linear layer and ReLU."""

    def __init__(self, n_features: int, n_frequencies: int, frequency_scale: float, d_embedding: int) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.normal(0.0, frequency_scale, (n_features, n_frequencies)))
        self.weight = nn.Parameter(torch.empty(n_features, 2 * n_frequencies, d_embedding))
        self.bias = nn.Parameter(torch.empty(n_features, d_embedding))
        d_rsqrt = (2 * n_frequencies) ** -0.5
        nn.init.uniform_(self.weight, -d_rsqrt, d_rsqrt)
        nn.init.uniform_(self.bias, -d_rsqrt, d_rsqrt)

    def forward(self, x: Tensor) -> Tensor:
        x = 2 * math.pi * self.frequencies * x[..., None]
        x = torch.cat([torch.cos(x), torch.sin(x)], -1)
        x = torch.einsum('...fi,fio->...fo', x, self.weight) + self.bias
        return F.relu(x)


class TabTransformer(nn.Module):
    def __init__(self, *, categories, num_continuous, dim, depth, heads, dim_out, mlp_hidden_mults=(4, 2),
                 num_special_tokens=2):
        super().__init__()
        self.num_categories = len(categories)
        self.num_unique_categories = sum(categories)
        self.num_special_tokens = num_special_tokens
        total_tokens = self.num_unique_categories + num_special_tokens
        categories_offset = F.pad(torch.tensor(list(categories)), (1, 0), value=num_special_tokens)
        categories_offset = categories_offset.cumsum(dim=-1)[:-1]
        self.register_buffer('categories_offset', categories_offset)
        self.embeds = nn.Embedding(total_tokens, dim)
        self.column_embedding = nn.Parameter(torch.randn(self.num_categories, dim) * 0.02)
        self.transformer = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model=dim, nhead=heads, dim_feedforward=dim * 2, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True),
            num_layers=depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(num_continuous)
        input_size = (dim * self.num_categories) + num_continuous
        dims = [input_size, *map(lambda t: input_size * t, mlp_hidden_mults), dim_out]
        layers = []
        for ind, (dim_in, dim_out_) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(dim_in, dim_out_))
            if ind < len(dims) - 2:
                layers.append(nn.ReLU())
        self.mlp = nn.Sequential(*layers)

    def forward(self, x_categ, x_cont):
        assert x_categ.shape[-1] == self.num_categories, f'you must pass in {self.num_categories} values for your categories input'
        x_categ = x_categ + self.categories_offset
        x = self.embeds(x_categ) + self.column_embedding.unsqueeze(0)
        x = self.transformer(x)
        flat_categ = x.flatten(1)
        normed_cont = self.norm(x_cont)
        x = torch.cat((flat_categ, normed_cont), dim=-1)
        return self.mlp(x)


def make_table(rng, n):
    x_num = rng.standard_normal((n, 4)).astype(np.float32)
    x_cat = np.stack([rng.integers(0, c, n) for c in (3, 5, 2)], axis=1)
    logit = 1.5 * x_num[:, 0] - x_num[:, 1] * x_num[:, 2] + (x_cat[:, 0] == 1) - 0.8 * (x_cat[:, 1] >= 3)
    y_bin = (logit + 0.3 * rng.standard_normal(n) > 0).astype(np.float32)
    y_multi = np.digitize(logit, [-0.7, 0.7])
    return torch.from_numpy(x_num), torch.from_numpy(x_cat), torch.from_numpy(y_bin), torch.from_numpy(y_multi)


rng = np.random.default_rng(11)
x_num, x_cat, y_bin, y_multi = make_table(rng, 48)
categories = [3, 5, 2]

torch.manual_seed(0)
model = FTTransformer(d_numerical=4, categories=categories, token_bias=True, n_layers=2, d_token=8, n_heads=2,
                      d_ffn_factor=4 / 3, attention_dropout=0.0, ffn_dropout=0.0, residual_dropout=0.0,
                      prenormalization=True, initialization='kaiming', d_out=3)
share_init(model, "ft")
report("ft state", sorted(model.state_dict().keys())[:5], 'tokenizer.category_offsets' in model.state_dict(),
       model.tokenizer.category_offsets.tolist(), model.tokenizer.n_tokens, 'norm0' in model.layers[0])
groups = model.optimization_param_groups()
optimizer = torch.optim.AdamW(groups, lr=1e-3, weight_decay=1e-5)
report("ft groups", [len(g['params']) for g in optimizer.param_groups], [g['weight_decay'] for g in optimizer.param_groups])
loader = DataLoader(TensorDataset(x_num, x_cat, y_multi), batch_size=16, shuffle=False)
for epoch in range(2):
    model.train()
    for i, (xn, xc, yb) in enumerate(loader):
        optimizer.zero_grad(set_to_none=True)
        logits = model(xn, xc)
        loss = F.cross_entropy(logits, yb)
        loss.backward()
        optimizer.step()
        report("ft", epoch, i, loss.item(), model.tokenizer.weight.grad is not None)
model.eval()
with torch.no_grad():
    probs = torch.softmax(model(x_num, x_cat), dim=1)
    pred = probs.argmax(1)
report("ft eval", probs[:3].tolist(), (pred == y_multi).float().mean().item())

# binary target: the same backbone with one output and BCE-with-logits
torch.manual_seed(1)
binary = FTTransformer(d_numerical=4, categories=categories, token_bias=True, n_layers=1, d_token=8, n_heads=1,
                       d_ffn_factor=2.0, attention_dropout=0.0, ffn_dropout=0.0, residual_dropout=0.0,
                       prenormalization=False, initialization='xavier', d_out=1)
share_init(binary, "ft_binary")
opt = torch.optim.AdamW(binary.parameters(), lr=3e-3)
for step in range(3):
    out = binary(x_num, x_cat)
    loss = F.binary_cross_entropy_with_logits(out, y_bin)
    opt.zero_grad()
    loss.backward()
    opt.step()
    report("ft binary", step, list(out.shape), loss.item())

torch.manual_seed(2)
plr = PeriodicEmbeddings(4, n_frequencies=3, frequency_scale=0.1, d_embedding=5)
share_init(plr, "plr")
e = plr(x_num[:6])
e.square().mean().backward()
report("plr", list(e.shape), e.sum().item(), plr.frequencies.grad.tolist())

torch.manual_seed(3)
tab = TabTransformer(categories=categories, num_continuous=4, dim=8, depth=2, heads=2, dim_out=1)
share_init(tab, "tab")
report("tab offsets", tab.categories_offset.tolist(), tab.embeds.num_embeddings)
opt = torch.optim.Adam(tab.parameters(), lr=2e-3)
pos_weight = (1 - y_bin).sum() / y_bin.sum()
criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
for step in range(3):
    out = tab(x_cat, x_num).squeeze(1)
    loss = criterion(out, y_bin)
    opt.zero_grad()
    loss.backward()
    opt.step()
    report("tab", step, loss.item(), tab.column_embedding.grad.abs().sum().item())
try:
    tab(x_cat[:, :2], x_num)
except AssertionError as e:
    report("tab assert", str(e))
