"""The PyTorch examples' word_language_model, shrunk: an RNNModel (Embedding → dropout → LSTM →
dropout → Linear) with tied encoder/decoder weights, init_weights with uniform_/zeros_,
batchify/get_batch over a flat token stream, truncated BPTT with repackage_hidden (detach),
clip_grad_norm_, the example's hand-written SGD (p.data.add_(p.grad, alpha=-lr)), ReduceLROnPlateau on the validation loss,
perplexity through math.exp, and a greedy generation loop."""
import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super(RNNModel, self).__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            if nhid != ninp:
                raise ValueError('When using the tied flag, nhid must be equal to emsize')
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == 'LSTM':
            return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                    weight.new_zeros(self.nlayers, bsz, self.nhid))
        else:
            return weight.new_zeros(self.nlayers, bsz, self.nhid)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    data = data.view(bsz, -1).t().contiguous()
    return data


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    else:
        return tuple(repackage_hidden(v) for v in h)


bptt = 5


def get_batch(source, i):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


torch.manual_seed(1111)
ntokens = 20
rng = np.random.default_rng(0)
stream = np.cumsum(rng.integers(1, 4, 170)) % ntokens
train_data = batchify(torch.from_numpy(stream[:130]).long(), 4)
val_data = batchify(torch.from_numpy(stream[130:]).long(), 2)
model = RNNModel('LSTM', ntokens, 12, 12, 2, dropout=0.0, tie_weights=True)
share_init(model)
report("tied", model.decoder.weight is model.encoder.weight, len(list(model.parameters())),
       sorted(model.state_dict().keys()) == sorted(['encoder.weight', 'decoder.weight', 'decoder.bias'] +
       [f'rnn.{k}_l{l}' for l in range(2) for k in ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh')]))
criterion = nn.NLLLoss()
lr = 5.0
clip = 0.25
holder = torch.optim.SGD(model.parameters(), lr=lr)  # only to drive the scheduler, as some forks do
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(holder, 'min', factor=0.25, patience=0)


def evaluate(data_source):
    model.eval()
    total_loss = 0.
    hidden = model.init_hidden(2)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


for epoch in range(1, 4):
    model.train()
    total_loss = 0.
    hidden = model.init_hidden(4)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        data, targets = get_batch(train_data, i)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        total_loss += loss.item()
    val_loss = evaluate(val_data)
    scheduler.step(val_loss)
    lr = holder.param_groups[0]['lr']
    report(epoch, batch, total_loss / (batch + 1), val_loss, math.exp(val_loss), lr)

model.eval()
hidden = model.init_hidden(1)
input = torch.randint(ntokens, (1, 1), dtype=torch.long).fill_(3)
words = []
with torch.no_grad():
    for i in range(8):
        output, hidden = model(input, hidden)
        word_idx = output.squeeze().argmax().item()
        input.fill_(word_idx)
        words.append(word_idx)
report(words, model.encoder.weight.grad.norm().item())
