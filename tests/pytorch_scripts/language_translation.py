"""The PyTorch examples' language_translation (after the "Language Translation with
nn.Transformer" tutorial), shrunk to a toy reversal task: a sinusoidal PositionalEncoding buffer,
TokenEmbedding scaled by sqrt(emb_size) with padding_idx, nn.Transformer in its default
(seq, batch, feature) layout, xavier_uniform_ on every matrix, create_mask with
nn.Transformer.generate_square_subsequent_mask and src/tgt key padding masks, a collate_fn
with pad_sequence, CrossEntropyLoss(ignore_index=PAD, label_smoothing=0.1), Adam with
betas=(0.9, 0.98) and eps=1e-9, evaluation under torch.no_grad(), and greedy_decode through
model.encode / model.decode that stops at EOS."""
import argparse
import math

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

special_symbols = {"<unk>": 0, "<pad>": 1, "<bos>": 2, "<eos>": 3}
UNK_IDX, PAD_IDX, BOS_IDX, EOS_IDX = 0, 1, 2, 3
VOCAB = 12


class PositionalEncoding(nn.Module):
    def __init__(self, emb_size, dropout, maxlen=50):
        super(PositionalEncoding, self).__init__()
        den = torch.exp(- torch.arange(0, emb_size, 2) * math.log(10000) / emb_size)
        pos = torch.arange(0, maxlen).reshape(maxlen, 1)
        pos_embedding = torch.zeros((maxlen, emb_size))
        pos_embedding[:, 0::2] = torch.sin(pos * den)
        pos_embedding[:, 1::2] = torch.cos(pos * den)
        pos_embedding = pos_embedding.unsqueeze(-2)

        self.dropout = nn.Dropout(dropout)
        self.register_buffer('pos_embedding', pos_embedding)

    def forward(self, token_embedding):
        return self.dropout(token_embedding + self.pos_embedding[:token_embedding.size(0), :])


class TokenEmbedding(nn.Module):
    def __init__(self, vocab_size, emb_size):
        super(TokenEmbedding, self).__init__()
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=PAD_IDX)
        self.emb_size = emb_size

    def forward(self, tokens):
        return self.embedding(tokens.long()) * math.sqrt(self.emb_size)


class Translator(nn.Module):
    def __init__(self, num_encoder_layers, num_decoder_layers, embed_size, num_heads,
                 src_vocab_size, tgt_vocab_size, dim_feedforward, dropout):
        super(Translator, self).__init__()
        self.transformer = nn.Transformer(
            d_model=embed_size,
            nhead=num_heads,
            num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers,
            dim_feedforward=dim_feedforward,
            dropout=dropout
        )
        self.ff = nn.Linear(embed_size, tgt_vocab_size)
        self.src_embedding = TokenEmbedding(src_vocab_size, embed_size)
        self.tgt_embedding = TokenEmbedding(tgt_vocab_size, embed_size)
        self.positional_encoding = PositionalEncoding(embed_size, dropout=dropout)
        self._init_weights()

    def _init_weights(self):
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, src, trg, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_key_padding_mask):
        src_emb = self.positional_encoding(self.src_embedding(src))
        tgt_emb = self.positional_encoding(self.tgt_embedding(trg))
        outs = self.transformer(src_emb, tgt_emb, src_mask, tgt_mask, None,
                                src_padding_mask, tgt_padding_mask, memory_key_padding_mask)
        return self.ff(outs)

    def encode(self, src, src_mask):
        embed = self.src_embedding(src)
        pos_encoded = self.positional_encoding(embed)
        return self.transformer.encoder(pos_encoded, src_mask)

    def decode(self, tgt, memory, tgt_mask):
        embed = self.tgt_embedding(tgt)
        pos_encoded = self.positional_encoding(embed)
        return self.transformer.decoder(pos_encoded, memory, tgt_mask)


def create_mask(src, tgt, pad_idx, device):
    src_seq_len = src.shape[0]
    tgt_seq_len = tgt.shape[0]
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(tgt_seq_len, device=device)
    src_mask = torch.zeros((src_seq_len, src_seq_len), device=device).type(torch.bool)
    src_padding_mask = (src == pad_idx).transpose(0, 1)
    tgt_padding_mask = (tgt == pad_idx).transpose(0, 1)
    return src_mask, tgt_mask, src_padding_mask, tgt_padding_mask


def collate_fn(batch):
    src_batch, tgt_batch = [], []
    for src_sample, tgt_sample in batch:
        src_batch.append(torch.cat((torch.tensor([BOS_IDX]), torch.tensor(src_sample), torch.tensor([EOS_IDX]))))
        tgt_batch.append(torch.cat((torch.tensor([BOS_IDX]), torch.tensor(tgt_sample), torch.tensor([EOS_IDX]))))
    src_batch = pad_sequence(src_batch, padding_value=PAD_IDX)
    tgt_batch = pad_sequence(tgt_batch, padding_value=PAD_IDX)
    return src_batch, tgt_batch


def greedy_decode(model, src, src_mask, max_len, start_symbol, end_symbol, device):
    src = src.to(device)
    src_mask = src_mask.to(device)
    memory = model.encode(src, src_mask)
    ys = torch.ones(1, 1).fill_(start_symbol).type(torch.long).to(device)
    for i in range(max_len - 1):
        memory = memory.to(device)
        tgt_mask = (nn.Transformer.generate_square_subsequent_mask(ys.size(0), device=device).type(torch.bool)).to(device)
        out = model.decode(ys, memory, tgt_mask)
        out = out.transpose(0, 1)
        prob = model.ff(out[:, -1])
        _, next_word = torch.max(prob, dim=1)
        next_word = next_word.item()
        ys = torch.cat([ys, torch.ones(1, 1).type_as(src.data).fill_(next_word)], dim=0)
        if next_word == end_symbol:
            break
    return ys


def train(model, train_dl, loss_fn, optim, device):
    model.train()
    losses = 0
    for src, tgt in train_dl:
        src = src.to(device)
        tgt = tgt.to(device)
        tgt_input = tgt[:-1, :]
        src_mask, tgt_mask, src_padding_mask, tgt_padding_mask = create_mask(src, tgt_input, PAD_IDX, device)
        logits = model(src, tgt_input, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, src_padding_mask)
        optim.zero_grad()
        tgt_out = tgt[1:, :]
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
        loss.backward()
        optim.step()
        losses += loss.item()
    return losses / len(list(train_dl))


def evaluate(model, val_dl, loss_fn, device):
    model.eval()
    losses = 0
    with torch.no_grad():
        for src, tgt in val_dl:
            src = src.to(device)
            tgt = tgt.to(device)
            tgt_input = tgt[:-1, :]
            src_mask, tgt_mask, src_padding_mask, tgt_padding_mask = create_mask(src, tgt_input, PAD_IDX, device)
            logits = model(src, tgt_input, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, src_padding_mask)
            tgt_out = tgt[1:, :]
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
            losses += loss.item()
    return losses / len(list(val_dl))


parser = argparse.ArgumentParser(description="Train a Transformer model for Language Translation")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--batch", type=int, default=4)
parser.add_argument("--enc_layers", type=int, default=2)
parser.add_argument("--dec_layers", type=int, default=2)
parser.add_argument("--embed_size", type=int, default=16)
parser.add_argument("--attn_heads", type=int, default=2)
parser.add_argument("--dim_feedforward", type=int, default=32)
parser.add_argument("--dropout", type=float, default=0.1)
parser.add_argument("--lr", type=float, default=1e-3)
opts = parser.parse_args(["--dropout", "0.0", "--lr", "3e-3"])

torch.manual_seed(0)
device = torch.device("cpu")
rng = np.random.default_rng(0)
pairs = []
for n in (3, 5, 4, 2, 5, 3, 4, 4):
    s = rng.integers(4, VOCAB, n).tolist()
    pairs.append((s, s[::-1]))
train_dl = DataLoader(pairs[:6], batch_size=opts.batch, collate_fn=collate_fn)
val_dl = DataLoader(pairs[6:], batch_size=opts.batch, collate_fn=collate_fn)

model = Translator(
    num_encoder_layers=opts.enc_layers,
    num_decoder_layers=opts.dec_layers,
    embed_size=opts.embed_size,
    num_heads=opts.attn_heads,
    src_vocab_size=VOCAB,
    tgt_vocab_size=VOCAB,
    dim_feedforward=opts.dim_feedforward,
    dropout=opts.dropout
).to(device)
share_init(model)

loss_fn = torch.nn.CrossEntropyLoss(ignore_index=PAD_IDX, label_smoothing=0.1)
optim = torch.optim.Adam(model.parameters(), lr=opts.lr, betas=(0.9, 0.98), eps=1e-9)

src, tgt = next(iter(train_dl))
masks = create_mask(src, tgt[:-1, :], PAD_IDX, device)
report("batch", list(src.shape), src[:, 1].tolist(), masks[1].tolist(), masks[2].tolist(), masks[3].dtype == torch.bool)

for idx, epoch in enumerate(range(1, opts.epochs + 1)):
    train_loss = train(model, train_dl, loss_fn, optim, device)
    val_loss = evaluate(model, val_dl, loss_fn, device)
    print(f"Epoch: {epoch}, Train loss: {train_loss:.3f}, Val loss: {val_loss:.3f}")
    report(epoch, train_loss, val_loss)

model.eval()
for s, _ in pairs[:3]:
    src = torch.tensor([BOS_IDX] + s + [EOS_IDX]).view(-1, 1)
    num_tokens = src.shape[0]
    src_mask = (torch.zeros(num_tokens, num_tokens)).type(torch.bool)
    tgt_tokens = greedy_decode(model, src, src_mask, max_len=num_tokens + 3, start_symbol=BOS_IDX,
                               end_symbol=EOS_IDX, device=device).flatten()
    report("decoded", s, tgt_tokens.tolist())
with torch.no_grad():
    memory = model.encode(src, src_mask)
    out = model.decode(torch.tensor([[BOS_IDX]]), memory, None)
report("encoded", list(memory.shape), memory[0, 0, :4].tolist(), model.ff(out[-1]).softmax(-1).tolist())
report("padding row", model.src_embedding.embedding.weight[PAD_IDX].abs().sum().item(),
       model.src_embedding.embedding.weight.grad[PAD_IDX].abs().sum().item())
