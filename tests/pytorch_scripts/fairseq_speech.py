"""A tiny fairseq speech-to-text model, written the way fairseq's speech_to_text / fconv code writes
it: Conv1dSubsampler (Conv1d with stride 2, nn.functional.glu(dim=1), output lengths by
(lengths.float() - 1) / 2 + 1 then floor().long()), lengths_to_padding_mask, make_positions
(cumsum of the non-pad mask, type_as, + padding_idx), SinusoidalPositionalEmbedding (get_embedding
with padding_idx row zeroed, index_select then view, detach, the torch.onnx.is_in_onnx_export()
check fairseq's module has), ConvTBC blocks in time-major layout (torch.conv_tbc, weights (k, in, out)
initialised with normal_(std=sqrt(4 * (1 - dropout) / (k * in))), nn.utils.weight_norm with dim=2,
padding masked with masked_fill before each conv, GLU residuals scaled by sqrt(0.5)), a Transformer
decoder (nn.TransformerDecoderLayer, generate_square_subsequent_mask, memory_key_padding_mask),
fairseq's label_smoothed_nll_loss (gather, ignore_index mask, eps / (V - 1)), Adam with the
inverse_sqrt schedule, and a greedy decode with an EOS stop."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, EOS, BOS = 1, 2, 0
VOCAB = 9


def lengths_to_padding_mask(lens):
    bsz, max_lens = lens.size(0), torch.max(lens).item()
    mask = torch.arange(max_lens).to(lens.device).view(1, max_lens)
    mask = mask.expand(bsz, -1) >= lens.view(bsz, 1).expand(-1, max_lens)
    return mask


def make_positions(tensor, padding_idx):
    mask = tensor.ne(padding_idx).int()
    return (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + padding_idx


class SinusoidalPositionalEmbedding(nn.Module):
    def __init__(self, embedding_dim, padding_idx, init_size=64):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.register_buffer("weights", SinusoidalPositionalEmbedding.get_embedding(init_size, embedding_dim, padding_idx),
                             persistent=False)

    @staticmethod
    def get_embedding(num_embeddings, embedding_dim, padding_idx=None):
        half_dim = embedding_dim // 2
        emb = math.log(10000) / (half_dim - 1)
        emb = torch.exp(torch.arange(half_dim, dtype=torch.float) * -emb)
        emb = torch.arange(num_embeddings, dtype=torch.float).unsqueeze(1) * emb.unsqueeze(0)
        emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1).view(num_embeddings, -1)
        if embedding_dim % 2 == 1:
            emb = torch.cat([emb, torch.zeros(num_embeddings, 1)], dim=1)
        if padding_idx is not None:
            emb[padding_idx, :] = 0
        return emb

    def forward(self, input):
        bspair = torch.onnx.is_in_onnx_export()
        bsz, seq_len = input.shape
        positions = make_positions(input, self.padding_idx)
        if bspair:
            raise RuntimeError("this tiny model is not exported")
        return self.weights.index_select(0, positions.view(-1)).view(bsz, seq_len, -1).detach()


class Conv1dSubsampler(nn.Module):
    def __init__(self, in_channels, mid_channels, out_channels, kernel_sizes=(3, 3)):
        super().__init__()
        self.n_layers = len(kernel_sizes)
        self.conv_layers = nn.ModuleList(
            nn.Conv1d(in_channels if i == 0 else mid_channels // 2,
                      mid_channels if i < self.n_layers - 1 else out_channels * 2, k, stride=2, padding=k // 2)
            for i, k in enumerate(kernel_sizes))

    def get_out_seq_lens_tensor(self, in_seq_lens_tensor):
        out = in_seq_lens_tensor.clone()
        for _ in range(self.n_layers):
            out = ((out.float() - 1) / 2 + 1).floor().long()
        return out

    def forward(self, src_tokens, src_lengths):
        bsz, in_seq_len, _ = src_tokens.size()  # B x T x (C x D)
        x = src_tokens.transpose(1, 2).contiguous()  # -> B x (C x D) x T
        for conv in self.conv_layers:
            x = conv(x)
            x = nn.functional.glu(x, dim=1)
        _, _, out_seq_len = x.size()
        x = x.transpose(1, 2).transpose(0, 1).contiguous()  # -> T x B x (C x D)
        return x, self.get_out_seq_lens_tensor(src_lengths)


class ConvTBC(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, padding=0):
        super(ConvTBC, self).__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kernel_size,)
        self.padding = (padding,)
        self.weight = torch.nn.Parameter(torch.Tensor(self.kernel_size[0], in_channels, out_channels))
        self.bias = torch.nn.Parameter(torch.Tensor(out_channels))
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.xavier_normal_(self.weight)
        nn.init.zeros_(self.bias)

    def conv_tbc(self, input):
        return torch.conv_tbc(input.contiguous(), self.weight, self.bias, self.padding[0])

    def forward(self, input):
        return self.conv_tbc(input)


def ConvTBCNorm(in_channels, out_channels, kernel_size, dropout=0.0, **kwargs):
    m = ConvTBC(in_channels, out_channels, kernel_size, **kwargs)
    std = math.sqrt((4 * (1.0 - dropout)) / (m.kernel_size[0] * in_channels))
    m.weight.data.normal_(mean=0, std=std)
    m.bias.data.zero_()
    return nn.utils.weight_norm(m, dim=2)


class SpeechEncoder(nn.Module):
    def __init__(self, in_dim=8, embed_dim=16, convolutions=((16, 3), (16, 3))):
        super().__init__()
        self.subsample = Conv1dSubsampler(in_dim, 16, embed_dim)
        self.embed_scale = math.sqrt(embed_dim)
        self.embed_positions = SinusoidalPositionalEmbedding(embed_dim, PAD)
        self.convolutions = nn.ModuleList()
        for out_channels, kernel_size in convolutions:
            self.convolutions.append(ConvTBCNorm(embed_dim, out_channels * 2, kernel_size, padding=kernel_size // 2))
        self.layer_norm = nn.LayerNorm(embed_dim)

    def forward(self, src_tokens, src_lengths):
        x, input_lengths = self.subsample(src_tokens, src_lengths)
        encoder_padding_mask = lengths_to_padding_mask(input_lengths)
        positions = self.embed_positions(encoder_padding_mask.long() * PAD + (~encoder_padding_mask).long() * 5)
        x = self.embed_scale * x + positions.transpose(0, 1)
        for conv in self.convolutions:
            residual = x
            x = x.masked_fill(encoder_padding_mask.t().unsqueeze(-1), 0)
            x = conv(x)
            x = F.glu(x, dim=2)
            x = (x + residual) * math.sqrt(0.5)
        x = self.layer_norm(x)
        return {"encoder_out": x, "encoder_padding_mask": encoder_padding_mask}


class S2TModel(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.encoder = SpeechEncoder(embed_dim=d)
        self.embed_tokens = nn.Embedding(VOCAB, d, padding_idx=PAD)
        self.embed_positions = SinusoidalPositionalEmbedding(d, PAD)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d, 2, 32, dropout=0.0, norm_first=True), num_layers=1)
        self.output_projection = nn.Linear(d, VOCAB, bias=False)
        nn.init.normal_(self.embed_tokens.weight, mean=0, std=d ** -0.5)
        nn.init.constant_(self.embed_tokens.weight[PAD], 0)

    def decode(self, prev_output_tokens, enc):
        x = self.embed_tokens(prev_output_tokens) * math.sqrt(16) + self.embed_positions(prev_output_tokens)
        x = x.transpose(0, 1)
        t = x.size(0)
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        x = self.decoder(x, enc["encoder_out"], tgt_mask=mask, memory_key_padding_mask=enc["encoder_padding_mask"],
                         tgt_key_padding_mask=prev_output_tokens.eq(PAD))
        return self.output_projection(x.transpose(0, 1))

    def forward(self, src_tokens, src_lengths, prev_output_tokens):
        return self.decode(prev_output_tokens, self.encoder(src_tokens, src_lengths))


def label_smoothed_nll_loss(lprobs, target, epsilon, ignore_index=None, reduce=True):
    if target.dim() == lprobs.dim() - 1:
        target = target.unsqueeze(-1)
    nll_loss = -lprobs.gather(dim=-1, index=target)
    smooth_loss = -lprobs.sum(dim=-1, keepdim=True)
    if ignore_index is not None:
        pad_mask = target.eq(ignore_index)
        nll_loss.masked_fill_(pad_mask, 0.0)
        smooth_loss.masked_fill_(pad_mask, 0.0)
    else:
        nll_loss = nll_loss.squeeze(-1)
        smooth_loss = smooth_loss.squeeze(-1)
    if reduce:
        nll_loss = nll_loss.sum()
        smooth_loss = smooth_loss.sum()
    eps_i = epsilon / (lprobs.size(-1) - 1)
    loss = (1.0 - epsilon - eps_i) * nll_loss + eps_i * smooth_loss
    return loss, nll_loss


torch.manual_seed(0)
model = S2TModel()
share_init(model)
report("keys", sorted(k for k in model.state_dict() if "convolutions.0" in k),
       list(model.encoder.convolutions[0].weight_g.shape))

rng = np.random.default_rng(0)
src_tokens = torch.from_numpy(rng.standard_normal((3, 20, 8)).astype(np.float32))
src_lengths = torch.tensor([20, 15, 9])
src_tokens = src_tokens.masked_fill(lengths_to_padding_mask(src_lengths).unsqueeze(-1), 0.0)
target = torch.tensor([[3, 4, 5, EOS], [6, 7, EOS, PAD], [8, EOS, PAD, PAD]])
prev_output_tokens = torch.cat([torch.full((3, 1), EOS), target[:, :-1]], 1).masked_fill(
    torch.cat([torch.zeros(3, 1, dtype=torch.bool), target[:, :-1].eq(PAD)], 1), PAD)
report("positions", make_positions(prev_output_tokens, PAD).tolist())

optimizer = torch.optim.Adam(model.parameters(), lr=5e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=1e-4)
warmup_updates, warmup_init_lr, lr = 3, 1e-7, 5e-3
lr_step = (lr - warmup_init_lr) / warmup_updates
decay_factor = lr * warmup_updates ** 0.5
for num_updates in range(6):
    model.train()
    net_output = model(src_tokens, src_lengths, prev_output_tokens)
    lprobs = F.log_softmax(net_output, dim=-1, dtype=torch.float32)
    loss, nll_loss = label_smoothed_nll_loss(lprobs.view(-1, lprobs.size(-1)), target.view(-1), 0.1, ignore_index=PAD)
    sample_size = target.ne(PAD).sum()
    optimizer.zero_grad()
    (loss / sample_size).backward()
    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    new_lr = warmup_init_lr + (num_updates + 1) * lr_step if num_updates + 1 < warmup_updates \
        else decay_factor * (num_updates + 1) ** -0.5
    for g in optimizer.param_groups:
        g["lr"] = new_lr
    optimizer.step()
    report("update", num_updates, loss.item() / sample_size.item() / math.log(2), nll_loss.item(), gnorm.item(), new_lr,
           model.encoder.convolutions[1].weight_v.grad.abs().sum().item())

model.eval()
with torch.no_grad():
    enc = model.encoder(src_tokens, src_lengths)
    tokens = torch.full((3, 1), EOS)
    finished = torch.zeros(3, dtype=torch.bool)
    for step in range(5):
        lprobs = model.decode(tokens, enc)[:, -1].log_softmax(-1)
        lprobs[:, PAD] = -math.inf
        next_tok = lprobs.argmax(-1).masked_fill(finished, PAD)
        tokens = torch.cat([tokens, next_tok[:, None]], 1)
        finished |= next_tok.eq(EOS)
        if finished.all():
            break
report("decode", tokens.tolist(), enc["encoder_padding_mask"].sum(1).tolist(), enc["encoder_out"].abs().sum().item())
