"""A tokenizer-free byte-level LM trained on packed sequences, as pretraining repos (torchtitan,
OLMo, flash-attn's varlen users, ByT5-style byte models) write it: bytes by torch.frombuffer on a
bytearray and by torch.tensor(list(s.encode())), documents joined with an EOS byte and packed into
fixed-length rows; cu_seqlens from F.pad(torch.cumsum(lengths), (1, 0)) with dtype=torch.int32;
per-token document ids by torch.bucketize / torch.searchsorted(right=True) against cu_seqlens and by
a cumsum over EOS flags; position ids restarting per document by arange minus cu_seqlens gathered
at the document id; torch.unique_consecutive(return_counts=True) and torch.repeat_interleave with
tensor repeats recovering the lengths; a block-diagonal causal boolean mask fed to
F.scaled_dot_product_attention, checked against running each document alone; a loss that ignores
the cross-document targets; decoding bytes back with bytes(tensor.tolist()).decode(); and the same
document masking through torch.nn.attention.flex_attention (mask_mod over a captured document-id
tensor, and_masks, create_block_mask, an ALiBi score_mod, return_lse)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

EOS = 0
docs = ["hello world", "packed rows", "byte level", "tiny", "attention is all", "ok"]


def encode(text):
    return torch.frombuffer(bytearray(text, "utf-8"), dtype=torch.uint8).long()


stream = torch.cat([torch.cat([encode(d), torch.tensor([EOS])]) for d in docs])
report("bytes", stream[:12].tolist(), stream.dtype == torch.int64, tuple(stream.shape),
       torch.equal(encode(docs[0]), torch.tensor(list(docs[0].encode()))))

seq_len = 16
n_rows = stream.numel() // (seq_len + 1)
rows = stream[: n_rows * (seq_len + 1)].view(n_rows, seq_len + 1)
inputs, targets = rows[:, :-1], rows[:, 1:].clone()


def doc_boundaries(row):
    """cu_seqlens of one packed row: a document ends after each EOS (and at the row's end)"""
    is_eos = row == EOS
    ends = torch.nonzero(is_eos, as_tuple=True)[0] + 1
    if ends.numel() == 0 or ends[-1] != row.numel():
        ends = torch.cat([ends, torch.tensor([row.numel()])])
    lengths = torch.diff(ends, prepend=torch.tensor([0]))
    cu_seqlens = F.pad(torch.cumsum(lengths, dim=0, dtype=torch.int32), (1, 0))
    return lengths, cu_seqlens


def document_ids(cu_seqlens, n):
    pos = torch.arange(n, dtype=torch.int32)
    by_bucketize = torch.bucketize(pos, cu_seqlens[1:], right=True)
    by_search = torch.searchsorted(cu_seqlens, pos, right=True) - 1
    return by_bucketize, by_search


infos = []
for r in range(n_rows):
    lengths, cu = doc_boundaries(inputs[r])
    doc_b, doc_s = document_ids(cu, seq_len)
    # the same ids by a shifted cumsum over the EOS flags
    doc_c = torch.cumsum(F.pad((inputs[r] == EOS).long(), (1, 0))[:-1], 0)
    pos_ids = torch.arange(seq_len) - cu[doc_b].long()
    values, counts = torch.unique_consecutive(doc_b, return_counts=True)
    infos.append((lengths, cu, doc_b, pos_ids))
    report(f"row {r}", cu.tolist(), cu.dtype == torch.int32, doc_b.tolist(), torch.equal(doc_b, doc_s),
           torch.equal(doc_b.long(), doc_c), pos_ids.tolist(), torch.equal(counts, lengths),
           torch.equal(torch.repeat_interleave(values, counts), doc_b))

doc_ids = torch.stack([i[2] for i in infos]).long()  # (B, T)
position_ids = torch.stack([i[3] for i in infos])  # (B, T)
# block-diagonal causal mask: same document and not in the future
causal = torch.ones(seq_len, seq_len, dtype=torch.bool).tril()
block_mask = (doc_ids[:, :, None] == doc_ids[:, None, :]) & causal  # (B, T, T)
report("mask", tuple(block_mask.shape), block_mask.sum().item(), block_mask.sum(-1)[0].tolist())
# targets that cross a document boundary (predicting the next doc's first byte after EOS) are ignored
targets[inputs == EOS] = -100
report("ignored", (targets == -100).sum().item())


class Block(nn.Module):
    def __init__(self, dim, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1))
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln2(x))


class ByteLM(nn.Module):
    def __init__(self, dim=24, n_head=3, n_layer=2, max_pos=32):
        super().__init__()
        self.tok = nn.Embedding(256, dim)
        self.pos = nn.Embedding(max_pos, dim)
        self.blocks = nn.ModuleList([Block(dim, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 256, bias=False)

    def forward(self, idx, position_ids=None, mask=None):
        if position_ids is None:
            position_ids = torch.arange(idx.shape[1]).expand_as(idx)
        x = self.tok(idx) + self.pos(position_ids)
        for blk in self.blocks:
            x = blk(x, mask)
        return self.head(self.ln_f(x))


torch.manual_seed(0)
model = ByteLM()
share_init(model)

# packed forward == each document run on its own
with torch.no_grad():
    packed = model(inputs, position_ids, block_mask)
    lengths, cu = infos[0][0], infos[0][1]
    alone = [model(inputs[0:1, cu[i]:cu[i + 1]]) for i in range(len(lengths))]
    report("packed == alone", torch.allclose(packed[0], torch.cat(alone, dim=1)[0], atol=1e-5),
           [a.shape[1] for a in alone])
    # split by the lengths list and compare per segment too
    segs = torch.split(packed[0], lengths.tolist(), dim=0)
    report("split", [tuple(s.shape) for s in segs], all(torch.allclose(s, a[0], atol=1e-5) for s, a in zip(segs, alone)))

opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
for step in range(6):
    logits = model(inputs, position_ids, block_mask)
    loss = F.cross_entropy(logits.view(-1, 256), targets.view(-1), ignore_index=-100)
    opt.zero_grad()
    loss.backward()
    opt.step()
    bpb = loss.item() / math.log(2)
    report(f"step {step}", loss.item(), bpb)


@torch.no_grad()
def complete(model, prompt, n):
    idx = torch.tensor([list(prompt.encode("utf-8"))])
    for _ in range(n):
        logits = model(idx[:, -32:])
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        if nxt.item() == EOS:
            break
        idx = torch.cat([idx, nxt], dim=1)
    return bytes(idx[0].tolist()).decode("utf-8", errors="replace")


report("complete", complete(model.eval(), "hel", 8))

# the same document masking through FlexAttention (torchtitan / attention-gym style): a mask_mod
# over a captured document-id tensor, and_masks with causal, create_block_mask, and an ALiBi
# score_mod; run under no_grad (PyTorch's FlexAttention has no CPU backward)
from torch.nn.attention.flex_attention import and_masks, create_block_mask, flex_attention

document_id = doc_ids[0]


def causal_mask(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def document_mask(b, h, q_idx, kv_idx):
    return document_id[q_idx] == document_id[kv_idx]


def alibi(score, b, h, q_idx, kv_idx):
    return score - (h + 1) * 0.25 * (q_idx - kv_idx)


share_init(model, "trained")  # both libraries continue from torch's trained weights
block_mask = create_block_mask(and_masks(causal_mask, document_mask), B=None, H=None, Q_LEN=seq_len,
                               KV_LEN=seq_len, device="cpu", BLOCK_SIZE=4)
report("block mask", block_mask.shape, block_mask.to_dense()[0, 0].tolist(), round(block_mask.sparsity(), 2))
with torch.no_grad():
    blk = model.blocks[0]
    x = model.tok(inputs[:1]) + model.pos(position_ids[:1])
    q, k, v = blk.qkv(blk.ln1(x)).chunk(3, dim=-1)
    q, k, v = (t.view(1, seq_len, blk.n_head, -1).transpose(1, 2) for t in (q, k, v))
    flex = flex_attention(q, k, v, block_mask=block_mask)
    dense = (doc_ids[:1, :, None] == doc_ids[:1, None, :]) & causal
    sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=dense.unsqueeze(1))
    report("flex == sdpa", torch.allclose(flex, sdpa, atol=1e-5), tuple(flex.shape))
    biased, lse = flex_attention(q, k, v, score_mod=alibi, block_mask=block_mask, return_lse=True)
    report("alibi", biased.sum().item(), lse[0, :, -1].tolist())
