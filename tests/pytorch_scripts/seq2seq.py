"""A seq2seq with attention (the PyTorch seq2seq tutorials' shape): packed bidirectional 2-layer
LSTM encoder, additive attention with masked_fill, GRU decoder with teacher forcing, Adam."""
import sys, numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
class Encoder(nn.Module):
    def __init__(self, vocab, emb, hid):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=0)
        self.rnn = nn.LSTM(emb, hid, num_layers=2, bidirectional=True, batch_first=True, dropout=0.0)
        self.fc = nn.Linear(hid * 2, hid)
    def forward(self, src, lengths):
        emb = self.embedding(src)
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, c) = self.rnn(packed)
        out, out_len = pad_packed_sequence(out, batch_first=True)
        hidden = torch.tanh(self.fc(torch.cat((h[-2,:,:], h[-1,:,:]), dim=1)))
        return out, hidden
class Attention(nn.Module):
    def __init__(self, hid):
        super().__init__()
        self.attn = nn.Linear(hid * 3, hid); self.v = nn.Linear(hid, 1, bias=False)
    def forward(self, hidden, enc, mask):
        src_len = enc.shape[1]
        hidden = hidden.unsqueeze(1).repeat(1, src_len, 1)
        energy = torch.tanh(self.attn(torch.cat((hidden, enc), dim=2)))
        a = self.v(energy).squeeze(2).masked_fill(mask == 0, -1e10)
        return F.softmax(a, dim=1)
class Decoder(nn.Module):
    def __init__(self, vocab, emb, hid):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb); self.attention = Attention(hid)
        self.rnn = nn.GRU(hid * 2 + emb, hid); self.fc_out = nn.Linear(hid * 3 + emb, vocab)
    def forward(self, inp, hidden, enc, mask):
        emb = self.embedding(inp.unsqueeze(0))
        a = self.attention(hidden, enc, mask).unsqueeze(1)
        weighted = torch.bmm(a, enc).permute(1, 0, 2)
        out, hidden = self.rnn(torch.cat((emb, weighted), dim=2), hidden.unsqueeze(0))
        pred = self.fc_out(torch.cat((out.squeeze(0), weighted.squeeze(0), emb.squeeze(0)), dim=1))
        return pred, hidden.squeeze(0), a.squeeze(1)
torch.manual_seed(0)
enc, dec = Encoder(11, 6, 8), Decoder(11, 6, 8)
params = list(enc.parameters()) + list(dec.parameters())
share_init(enc, "enc")
share_init(dec, "dec")
rng = np.random.default_rng(0)
lens = [5, 3, 4]
seqs = [torch.tensor(rng.integers(1, 11, n)) for n in lens]
src = pad_sequence(seqs, batch_first=True, padding_value=0)
lengths = torch.tensor(lens)
trg = torch.tensor(rng.integers(1, 11, (4, 3)))
opt = torch.optim.Adam(params, lr=1e-2)
for it in range(5):
    opt.zero_grad()
    out, hidden = enc(src, lengths)
    mask = (src != 0)[:, :out.shape[1]]
    inp = trg[0]; loss = 0
    for t in range(1, trg.shape[0]):
        pred, hidden, att = dec(inp, hidden, out, mask)
        loss = loss + F.cross_entropy(pred, trg[t]); inp = trg[t]
    loss.backward(); nn.utils.clip_grad_norm_(params, 1.0); opt.step()
    report(loss.item())
report(att.detach().numpy().tolist())
