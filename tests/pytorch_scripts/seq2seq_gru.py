"""The PyTorch "translation with a sequence to sequence network and attention" tutorial, with
packed input: a GRU encoder over pack_padded_sequence / pad_packed_sequence, Bahdanau
(additive) attention with Wa/Ua/Va, masked_fill on padding, torch.bmm for the context, an
attention GRU decoder that feeds back topk(1) predictions or, chosen by random.random() under a
fixed seed, the target (teacher forcing); NLLLoss on log_softmax, two Adam optimizers, and
greedy evaluation that stops at EOS with .item()."""
import random
import numpy as np
import torch
import torch.nn as nn
from torch import optim
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
SOS_token = 0
EOS_token = 1
PAD_token = 2
MAX_LENGTH = 6


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size, dropout_p=0.1):
        super(EncoderRNN, self).__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(input_size, hidden_size, padding_idx=PAD_token)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, input, lengths):
        embedded = self.dropout(self.embedding(input))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, hidden = self.gru(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, padding_value=0.0, total_length=input.size(1))
        return output, hidden


class BahdanauAttention(nn.Module):
    def __init__(self, hidden_size):
        super(BahdanauAttention, self).__init__()
        self.Wa = nn.Linear(hidden_size, hidden_size)
        self.Ua = nn.Linear(hidden_size, hidden_size)
        self.Va = nn.Linear(hidden_size, 1)

    def forward(self, query, keys, mask=None):
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))
        scores = scores.squeeze(2).unsqueeze(1)
        if mask is not None:
            scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = F.softmax(scores, dim=-1)
        context = torch.bmm(weights, keys)
        return context, weights


class AttnDecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size, dropout_p=0.1):
        super(AttnDecoderRNN, self).__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.attention = BahdanauAttention(hidden_size)
        self.gru = nn.GRU(2 * hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, encoder_outputs, encoder_hidden, mask, target_tensor=None, teacher_forcing_ratio=0.5):
        batch_size = encoder_outputs.size(0)
        decoder_input = torch.empty(batch_size, 1, dtype=torch.long, device=device).fill_(SOS_token)
        decoder_hidden = encoder_hidden
        decoder_outputs = []
        attentions = []

        for i in range(MAX_LENGTH):
            decoder_output, decoder_hidden, attn_weights = self.forward_step(
                decoder_input, decoder_hidden, encoder_outputs, mask)
            decoder_outputs.append(decoder_output)
            attentions.append(attn_weights)

            use_teacher_forcing = True if random.random() < teacher_forcing_ratio else False
            if target_tensor is not None and use_teacher_forcing:
                decoder_input = target_tensor[:, i].unsqueeze(1)  # Teacher forcing
            else:
                _, topi = decoder_output.topk(1)
                decoder_input = topi.squeeze(-1).detach()  # detach from history as input

        decoder_outputs = torch.cat(decoder_outputs, dim=1)
        decoder_outputs = F.log_softmax(decoder_outputs, dim=-1)
        attentions = torch.cat(attentions, dim=1)
        return decoder_outputs, decoder_hidden, attentions

    def forward_step(self, input, hidden, encoder_outputs, mask):
        embedded = self.dropout(self.embedding(input))
        query = hidden.permute(1, 0, 2)
        context, attn_weights = self.attention(query, encoder_outputs, mask)
        input_gru = torch.cat((embedded, context), dim=2)
        output, hidden = self.gru(input_gru, hidden)
        output = self.out(output)
        return output, hidden, attn_weights


def make_batch(pairs):
    lengths = torch.tensor([len(s) for s, _ in pairs], dtype=torch.long)
    src = torch.full((len(pairs), int(lengths.max())), PAD_token, dtype=torch.long)
    tgt = torch.full((len(pairs), MAX_LENGTH), PAD_token, dtype=torch.long)
    for i, (s, t) in enumerate(pairs):
        src[i, :len(s)] = torch.tensor(s)
        tgt[i, :len(t)] = torch.tensor(t)
    return src.to(device), lengths, tgt.to(device)


random.seed(0)
torch.manual_seed(0)
vocab = 9
rng = np.random.default_rng(0)
pairs = []
for n in (4, 2, 5, 3):
    s = rng.integers(3, vocab, n).tolist()
    pairs.append((s + [EOS_token], list(reversed(s)) + [EOS_token]))
src, lengths, tgt = make_batch(pairs)
mask = src != PAD_token

encoder = EncoderRNN(vocab, 8, dropout_p=0.0).to(device)
decoder = AttnDecoderRNN(8, vocab, dropout_p=0.0).to(device)
share_init(encoder, "encoder")
share_init(decoder, "decoder")
encoder_optimizer = optim.Adam(encoder.parameters(), lr=0.01)
decoder_optimizer = optim.Adam(decoder.parameters(), lr=0.01)
criterion = nn.NLLLoss(ignore_index=PAD_token)

for epoch in range(1, 6):
    encoder_optimizer.zero_grad()
    decoder_optimizer.zero_grad()
    encoder_outputs, encoder_hidden = encoder(src, lengths)
    decoder_outputs, _, _ = decoder(encoder_outputs, encoder_hidden, mask, tgt)
    loss = criterion(decoder_outputs.view(-1, decoder_outputs.size(-1)), tgt.view(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(encoder.parameters(), 5.0)
    torch.nn.utils.clip_grad_norm_(decoder.parameters(), 5.0)
    encoder_optimizer.step()
    decoder_optimizer.step()
    report(epoch, loss.item())


def evaluate(encoder, decoder, src, lengths):
    with torch.no_grad():
        encoder_outputs, encoder_hidden = encoder(src, lengths)
        decoder_outputs, decoder_hidden, decoder_attn = decoder(encoder_outputs, encoder_hidden, src != PAD_token)
        _, topi = decoder_outputs.topk(1)
        decoded_ids = topi.squeeze()
        words = []
        for row in decoded_ids:
            out = []
            for idx in row:
                if idx.item() == EOS_token:
                    out.append('<EOS>')
                    break
                out.append(idx.item())
            words.append(out)
    return words, decoder_attn


encoder.eval()
decoder.eval()
words, attn = evaluate(encoder, decoder, src, lengths)
report("decoded", words)
report("attention", attn[1].tolist(), attn.sum(-1).tolist())
report("padded output", encoder(src, lengths)[0][1, 3:].abs().sum().item())
