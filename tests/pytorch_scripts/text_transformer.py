"""A Transformer text classifier as the tutorials write it: nn.Embedding with padding_idx, a
learned positional table, nn.TransformerEncoder(batch_first) with src_key_padding_mask, CLS
pooling, AdamW with no decay on biases/norms, a linear warmup LambdaLR, clip_grad_norm_ and an
EMA of the weights (swa_utils.AveragedModel) evaluated with the padding mask."""
import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

PAD, CLS, VOCAB = 0, 1, 30


class TextClassifier(nn.Module):
    def __init__(self, vocab_size=VOCAB, d_model=16, nhead=2, num_layers=2, num_classes=3, max_len=12):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.pos = nn.Parameter(torch.zeros(1, max_len, d_model))
        layer = nn.TransformerEncoderLayer(d_model=d_model, nhead=nhead, dim_feedforward=32,
                                           dropout=0.0, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=num_layers, norm=nn.LayerNorm(d_model))
        self.head = nn.Sequential(nn.Dropout(0.0), nn.Linear(d_model, num_classes))
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, input_ids, attention_mask):
        x = self.embed(input_ids) * math.sqrt(self.embed.embedding_dim)
        x = x + self.pos[:, : input_ids.size(1)]
        x = self.encoder(x, src_key_padding_mask=~attention_mask.bool())
        return self.head(x[:, 0])


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps):
    def lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))
    return LambdaLR(optimizer, lr_lambda)


def collate(batch):
    lengths = [len(t) for t, _ in batch]
    ids = torch.full((len(batch), max(lengths)), PAD, dtype=torch.long)
    for i, (t, _) in enumerate(batch):
        ids[i, : len(t)] = torch.tensor(t)
    mask = (ids != PAD).long()
    labels = torch.tensor([y for _, y in batch])
    return ids, mask, labels


torch.manual_seed(0)
model = TextClassifier()
share_init(model)
rng = np.random.default_rng(0)
data = []
for _ in range(24):
    n = int(rng.integers(3, 11))
    toks = [CLS] + rng.integers(2, VOCAB, n).tolist()
    data.append((toks, int(sum(toks) % 3)))

no_decay = ["bias", "LayerNorm.weight", "norm"]
grouped = [
    {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
    {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
]
optimizer = torch.optim.AdamW(grouped, lr=3e-3, betas=(0.9, 0.98), eps=1e-8)
batches = [collate(data[i:i + 8]) for i in range(0, len(data), 8)]
total = 2 * len(batches)
scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=2, num_training_steps=total)
ema_model = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
step = 0
for epoch in range(2):
    model.train()
    for ids, mask, labels in batches:
        logits = model(ids, mask)
        loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
        optimizer.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        scheduler.step()
        ema_model.update_parameters(model)
        step += 1
        report(step, loss.item(), norm.item(), scheduler.get_last_lr()[0])
    model.eval()
    correct = 0
    with torch.no_grad():
        for ids, mask, labels in batches:
            preds = model(ids, mask).argmax(dim=-1)
            correct += (preds == labels).sum().item()
    report("epoch", epoch, correct / len(data))
report("pad row", model.embed.weight.grad[PAD].abs().sum().item(), model.embed.weight[PAD].abs().sum().item())
ema_model.eval()
with torch.no_grad():
    ids, mask, labels = batches[0]
    logits = ema_model(ids, mask)
    states = ema_model.module.encoder(ema_model.module.embed(ids), src_key_padding_mask=~mask.bool())
report("ema", ema_model.n_averaged.item(), logits[:2].tolist(), F.cross_entropy(logits, labels).item(),
       states.mean(dim=1)[:2, :4].tolist())
