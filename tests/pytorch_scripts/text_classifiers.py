"""Two text classifiers as the PyTorch text tutorials write them: the "text classification with
torchtext" model (nn.EmbeddingBag in mean mode fed one flat token tensor plus offsets built with
torch.tensor(...).cumsum(dim=0), collate_batch over a DataLoader, init_weights with uniform_,
SGD with StepLR and clip_grad_norm_), and a padded-batch bidirectional LSTM/GRU classifier
(pad_sequence, pack_padded_sequence with enforce_sorted=False, pad_packed_sequence, the last
hidden states of both directions concatenated, a masked mean over time), whose encoder runs
through torch.utils.checkpoint.checkpoint (use_reentrant=False) and checkpoint_sequential; the
gradients with and without checkpointing agree."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.checkpoint import checkpoint, checkpoint_sequential
from torch.utils.data import DataLoader


class TextClassificationModel(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_class):
        super(TextClassificationModel, self).__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, sparse=False)
        self.fc = nn.Linear(embed_dim, num_class)
        self.init_weights()

    def init_weights(self):
        initrange = 0.5
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.fc.weight.data.uniform_(-initrange, initrange)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        embedded = self.embedding(text, offsets)
        return self.fc(embedded)


def make_corpus(rng, n, vocab):
    """Label k's sentences use mostly tokens k*5 .. k*5+4; lengths 2..7."""
    data = []
    for _ in range(n):
        label = int(rng.integers(0, 3))
        length = int(rng.integers(2, 8))
        own = rng.integers(label * 5, label * 5 + 5, length)
        noise = rng.integers(0, vocab, length)
        data.append((label, np.where(rng.random(length) < 0.8, own, noise).tolist()))
    return data


def collate_batch(batch):
    label_list, text_list, offsets = [], [], [0]
    for _label, _text in batch:
        label_list.append(_label)
        processed_text = torch.tensor(_text, dtype=torch.int64)
        text_list.append(processed_text)
        offsets.append(processed_text.size(0))
    label_list = torch.tensor(label_list, dtype=torch.int64)
    offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
    text_list = torch.cat(text_list)
    return label_list, text_list, offsets


rng = np.random.default_rng(0)
vocab = 16
train_iter = make_corpus(rng, 24, vocab)
test_iter = make_corpus(rng, 8, vocab)
torch.manual_seed(0)
model = TextClassificationModel(vocab, 8, 3)
share_init(model, "bag")
criterion = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=5.0)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.1)
dataloader = DataLoader(train_iter, batch_size=8, shuffle=False, collate_fn=collate_batch)

for epoch in range(2):
    model.train()
    total_acc, total_count = 0, 0
    for idx, (label, text, offsets) in enumerate(dataloader):
        optimizer.zero_grad()
        predicted_label = model(text, offsets)
        loss = criterion(predicted_label, label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        total_acc += (predicted_label.argmax(1) == label).sum().item()
        total_count += label.size(0)
        report("bag", epoch, idx, loss.item(), offsets.tolist(), model.embedding.weight.grad.abs().sum().item())
    scheduler.step()
    model.eval()
    with torch.no_grad():
        label, text, offsets = collate_batch(test_iter)
        acc = (model(text, offsets).argmax(1) == label).sum().item() / label.size(0)
    report("epoch", epoch, total_acc / total_count, acc, scheduler.get_last_lr())

# EmbeddingBag's other modes, per_sample_weights, padding_idx and 2-D input
bag = nn.EmbeddingBag(vocab, 3, mode="sum", padding_idx=0)
share_init(bag, "bag_sum")
text, offsets = torch.tensor([1, 0, 2, 3, 4, 0]), torch.tensor([0, 2, 2])
w = torch.tensor([0.5, 1.0, 2.0, 1.0, -1.0, 3.0], requires_grad=True)
out = bag(text, offsets, per_sample_weights=w)
out.sum().backward()
report("bag sum", out.tolist(), w.grad.tolist(), bag.weight.grad[:3].tolist())
bag_max = nn.EmbeddingBag.from_pretrained(torch.arange(12.).view(6, 2), mode="max")
report("bag max", bag_max(torch.tensor([[1, 5], [2, 3]])).tolist(), bag_max.weight.requires_grad,
       F.embedding_bag(torch.tensor([1, 2, 4]), bag_max.weight, torch.tensor([0, 1]), mode="mean").tolist())


class RNNClassifier(nn.Module):
    def __init__(self, vocab, emb, hidden, classes, cell="lstm"):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=0)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(emb, hidden, num_layers=1, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(4 * hidden, classes)

    def encode(self, emb, lengths):
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        packed_out, hidden = self.rnn(packed)
        h = hidden[0] if isinstance(hidden, tuple) else hidden
        out, out_lengths = pad_packed_sequence(packed_out, batch_first=True)
        return out, out_lengths, torch.cat([h[-2], h[-1]], dim=1)

    def forward(self, tokens, lengths, use_checkpoint=False):
        emb = self.embedding(tokens)
        if use_checkpoint:
            out, out_lengths, last = checkpoint(self.encode, emb, lengths, use_reentrant=False)
        else:
            out, out_lengths, last = self.encode(emb, lengths)
        mask = (torch.arange(out.size(1))[None, :] < out_lengths[:, None]).unsqueeze(-1)
        mean = (out * mask).sum(1) / out_lengths[:, None].float()
        return self.fc(torch.cat([last, mean], dim=1))


sents = [torch.tensor(s) for _, s in train_iter[:6]]
labels = torch.tensor([l for l, _ in train_iter[:6]])
lengths = torch.tensor([len(s) for s in sents])
padded = pad_sequence(sents, batch_first=True, padding_value=0)
report("padded", list(padded.shape), lengths.tolist())
for cell in ("lstm", "gru"):
    torch.manual_seed(1)
    clf = RNNClassifier(vocab, 6, 5, 3, cell)
    share_init(clf, cell)
    opt = torch.optim.Adam(clf.parameters(), lr=1e-2)
    for step in range(3):
        logits = clf(padded, lengths, use_checkpoint=(step == 1))
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        report(cell, step, loss.item(), clf.rnn.weight_hh_l0_reverse.grad.norm().item(), clf.embedding.weight.grad[0].abs().sum().item())
    grads = []
    for use in (False, True):
        clf.zero_grad()
        F.cross_entropy(clf(padded, lengths, use_checkpoint=use), labels).backward()
        grads.append(torch.cat([p.grad.flatten() for p in clf.parameters()]))
    report(cell, "checkpointed grads", (grads[0] - grads[1]).abs().max().item() < 1e-6)

# checkpoint_sequential over an nn.Sequential in segments
torch.manual_seed(2)
seq = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
share_init(seq, "seq")
x = torch.from_numpy(rng.standard_normal((5, 4)).astype(np.float32)).requires_grad_()
y = checkpoint_sequential(seq, 2, x, use_reentrant=False)
y.pow(2).sum().backward()
report("checkpoint_sequential", y.tolist(), x.grad.tolist(), seq[0].weight.grad.sum().item())
