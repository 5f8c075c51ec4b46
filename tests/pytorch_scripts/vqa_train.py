"""A VQA classifier and its training loop, written the way bottom-up-top-down VQA
(hengyuan-hu/bottom-up-attention-vqa), MCAN and HF Trainer-era fine-tuning scripts write them: a
question encoder (nn.GRU over pack_padded_sequence with enforce_sorted=False), weight-normalised
FC layers (nn.utils.parametrizations.weight_norm(nn.Linear, dim=None): the old hook-based
weight_norm cannot be deepcopied into an EMA model), top-down attention over region features
(softmax over regions, (w * v).sum(1)), a transformer fusion stack run through
torch.utils.checkpoint.checkpoint(use_reentrant=False) via functools.partial while training and
through checkpoint_sequential for a head, soft-score targets built with scatter_ (VQA's
min(1, 0.3 * count)), BUTD's instance_bce_with_logits (* labels.size(1)), the VQA score from
one-hot scatter_ of the argmax, gradient accumulation with loss / accum_steps, a GradScaler on the
CPU (scale, unscale_ before clip_grad_norm_, step, update, get_scale, a skipped step on an inf
gradient and the backoff), autocast guards written as torch.autocast(device_type, dtype=torch.bfloat16,
enabled=use_amp), OneCycleLR (cosine, cycle_momentum on AdamW's betas), an EMA copy through
torch.optim.swa_utils.AveragedModel(multi_avg_fn=get_ema_multi_avg_fn), and the scaler's and
scheduler's state_dict round trip."""
import functools
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.nn.utils.parametrizations import weight_norm
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

NUM_ANS, VOCAB, R, V_DIM = 6, 20, 5, 12


class FCNet(nn.Module):
    """Simple class for non-linear fully connect network"""

    def __init__(self, dims):
        super().__init__()
        layers = []
        for i in range(len(dims) - 2):
            in_dim = dims[i]
            out_dim = dims[i + 1]
            layers.append(weight_norm(nn.Linear(in_dim, out_dim), dim=None))
            layers.append(nn.ReLU())
        layers.append(weight_norm(nn.Linear(dims[-2], dims[-1]), dim=None))
        layers.append(nn.ReLU())
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x)


class QuestionEmbedding(nn.Module):
    def __init__(self, in_dim, num_hid):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, in_dim, padding_idx=0)
        self.rnn = nn.GRU(in_dim, num_hid, num_layers=1, bidirectional=False, dropout=0.0, batch_first=True)

    def forward(self, q, q_len):
        w_emb = self.emb(q)
        packed = pack_padded_sequence(w_emb, q_len.cpu(), batch_first=True, enforce_sorted=False)
        output, hidden = self.rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=q.shape[1])
        return hidden[-1], output


class Attention(nn.Module):
    def __init__(self, v_dim, q_dim, num_hid):
        super().__init__()
        self.nonlinear = FCNet([v_dim + q_dim, num_hid])
        self.linear = weight_norm(nn.Linear(num_hid, 1), dim=None)

    def forward(self, v, q):
        """v: [batch, k, vdim], q: [batch, qdim]"""
        logits = self.logits(v, q)
        w = nn.functional.softmax(logits, 1)
        return w

    def logits(self, v, q):
        num_objs = v.size(1)
        q = q.unsqueeze(1).repeat(1, num_objs, 1)
        vq = torch.cat((v, q), 2)
        joint_repr = self.nonlinear(vq)
        logits = self.linear(joint_repr)
        return logits


class FusionLayer(nn.Module):
    def __init__(self, d, heads=2):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln1 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.ln2 = nn.LayerNorm(d)

    def forward(self, x, key_padding_mask):
        h = self.attn(x, x, x, key_padding_mask=key_padding_mask, need_weights=False)[0]
        x = self.ln1(x + h)
        return self.ln2(x + self.ff(x))


class BaseModel(nn.Module):
    def __init__(self, num_hid=16):
        super().__init__()
        self.q_emb = QuestionEmbedding(8, num_hid)
        self.v_att = Attention(V_DIM, num_hid, num_hid)
        self.q_net = FCNet([num_hid, num_hid])
        self.v_net = FCNet([V_DIM, num_hid])
        self.v_proj = nn.Linear(V_DIM, num_hid)
        self.fusion = nn.ModuleList([FusionLayer(num_hid) for _ in range(2)])
        self.classifier = nn.Sequential(
            weight_norm(nn.Linear(num_hid, 2 * num_hid), dim=None), nn.ReLU(), nn.Dropout(0.0),
            weight_norm(nn.Linear(2 * num_hid, NUM_ANS), dim=None))
        self.gradient_checkpointing = False
        self._gradient_checkpointing_func = functools.partial(checkpoint, use_reentrant=False)

    def forward(self, v, q, q_len):
        """v: [batch, num_objs, obj_dim], q: [batch_size, seq_length]"""
        q_emb, q_seq = self.q_emb(q, q_len)
        att = self.v_att(v, q_emb)
        v_emb = (att * v).sum(1)  # [batch, v_dim]
        q_repr = self.q_net(q_emb)
        v_repr = self.v_net(v_emb)
        joint_repr = q_repr * v_repr
        # a joint transformer over [joint; question tokens; regions]
        x = torch.cat([joint_repr.unsqueeze(1), q_seq, self.v_proj(v)], dim=1)
        q_pad = torch.arange(q.shape[1])[None, :] >= q_len[:, None]
        key_padding_mask = torch.cat([torch.zeros(q.shape[0], 1, dtype=torch.bool), q_pad,
                                      torch.zeros(q.shape[0], v.shape[1], dtype=torch.bool)], dim=1)
        for layer_module in self.fusion:
            if self.gradient_checkpointing and self.training:
                x = self._gradient_checkpointing_func(layer_module.__call__, x, key_padding_mask)
            else:
                x = layer_module(x, key_padding_mask)
        if self.gradient_checkpointing and self.training:
            return checkpoint_sequential(self.classifier, 2, x[:, 0], use_reentrant=False), att
        return self.classifier(x[:, 0]), att


def instance_bce_with_logits(logits, labels):
    assert logits.dim() == 2
    loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
    loss *= labels.size(1)
    return loss


def compute_score_with_logits(logits, labels):
    logits = torch.max(logits, 1)[1].data  # argmax
    one_hots = torch.zeros(*labels.size()).to(logits.device)
    one_hots.scatter_(1, logits.view(-1, 1), 1)
    scores = one_hots * labels
    return scores


def make_batch(rng, b=4):
    """Question "what colour is object k" (k in 0..2) with varying length; the answer is the
    colour (argmax of features 0..5) of region k; ten annotators, most say the right answer."""
    v = rng.standard_normal((b, R, V_DIM)).astype(np.float32) * 0.3
    colours = rng.integers(0, NUM_ANS, (b, R))
    for i in range(b):
        v[i, np.arange(R), colours[i]] += 1.0
    k = rng.integers(0, 3, b)
    q_len = rng.integers(3, 6, b)
    q = np.zeros((b, 6), np.int64)
    for i in range(b):
        q[i, :q_len[i]] = [2, 3, 4 + k[i]] + list(rng.integers(8, VOCAB, q_len[i] - 3))
    labels = torch.zeros(b, NUM_ANS)
    for i in range(b):
        answers = [colours[i, k[i]]] * 7 + list(rng.integers(0, NUM_ANS, 3))
        ans, counts = np.unique(answers, return_counts=True)
        scores = torch.tensor([min(1.0, 0.3 * c) for c in counts], dtype=torch.float32)
        labels[i].scatter_(0, torch.from_numpy(ans).long(), scores)
    return torch.from_numpy(v), torch.from_numpy(q), torch.from_numpy(q_len), labels


torch.manual_seed(0)
rng = np.random.default_rng(0)
device = "cuda" if torch.cuda.is_available() else "cpu"
model = BaseModel()
share_init(model)
report("weight_norm", sorted(k for k in model.state_dict() if k.startswith("classifier")),
       model.classifier[0].parametrizations.weight.original0.shape == torch.Size([]))
model.gradient_checkpointing = True

use_amp = False  # bfloat16 autocast is opt-in; the scaler itself runs on every device
accum_steps, epochs, steps_per_epoch = 2, 2, 6
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, betas=(0.9, 0.999))
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-2, total_steps=epochs * steps_per_epoch // accum_steps,
                                                pct_start=0.3, anneal_strategy="cos", div_factor=25.0,
                                                final_div_factor=1e3, cycle_momentum=True, base_momentum=0.85,
                                                max_momentum=0.95)
scaler = torch.amp.GradScaler(device, init_scale=2.0 ** 10, growth_interval=2)
ema_model = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.9))
report("start", scheduler.get_last_lr(), optimizer.param_groups[0]["betas"], scaler.get_scale())

for epoch in range(epochs):
    model.train()
    total_loss, train_score = 0.0, 0.0
    for i in range(steps_per_epoch):
        v, q, q_len, labels = make_batch(rng)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_amp):
            pred, att = model(v, q, q_len)
            loss = instance_bce_with_logits(pred, labels)
        scaler.scale(loss / accum_steps).backward()
        if epoch == 1 and i == 1:
            # a half-precision overflow, as it would show up: the step must be skipped and the scale backed off
            model.v_proj.weight.grad[0, 0] = float("inf")
        if (i + 1) % accum_steps == 0:
            scaler.unscale_(optimizer)
            grad_norm = nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            before = model.v_proj.weight.detach().clone()
            scale_before = scaler.get_scale()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            stepped = not torch.equal(before, model.v_proj.weight)
            if stepped:
                scheduler.step()
                ema_model.update_parameters(model)
            report("update", epoch, i, grad_norm.item() if math.isfinite(grad_norm.item()) else "inf", stepped,
                   scale_before, scaler.get_scale(), scheduler.get_last_lr(), optimizer.param_groups[0]["betas"][0])
        batch_score = compute_score_with_logits(pred, labels.data).sum()
        total_loss += loss.item() * v.size(0)
        train_score += batch_score.item()
    report("epoch", epoch, total_loss / (steps_per_epoch * 4), 100 * train_score / (steps_per_epoch * 4),
           att.squeeze(-1).sum(1).tolist())

# checkpointing changes nothing but memory: same loss and gradients with and without it
v, q, q_len, labels = make_batch(rng)
grads = []
for flag in (True, False):
    model.gradient_checkpointing = flag
    model.zero_grad()
    pred, _ = model(v, q, q_len)
    instance_bce_with_logits(pred, labels).backward()
    grads.append([p.grad.clone() for p in model.parameters()])
report("checkpoint", all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads)), grads[0][0].abs().sum().item(),
       model.classifier[3].parametrizations.weight.original0.grad.item())

model.eval()
ema_model.eval()
with torch.no_grad():
    v, q, q_len, labels = make_batch(rng, 8)
    pred, att = model(v, q, q_len)
    ema_pred, _ = ema_model(v, q, q_len)
    score = compute_score_with_logits(pred, labels).sum().item() / 8
    ema_score = compute_score_with_logits(ema_pred, labels).sum().item() / 8
report("eval", score, ema_score, pred.argmax(1).tolist(), torch.sigmoid(ema_pred).max(1).values.tolist(),
       int(ema_model.n_averaged))

state = {"scaler": scaler.state_dict(), "scheduler": scheduler.state_dict()}
scaler2 = torch.amp.GradScaler(device)
scaler2.load_state_dict(state["scaler"])
report("state", scaler2.get_scale(), scaler2.get_growth_interval(), sorted(state["scaler"]),
       state["scheduler"]["total_steps"], state["scheduler"]["_step_count"], state["scheduler"]["last_epoch"])
