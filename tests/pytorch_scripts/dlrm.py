"""DLRM as Facebook's dlrm_s_pytorch.py writes it and a two-tower retrieval model as recommender
tutorials write them: a bottom MLP for dense features built from nn.ModuleList of Linear/ReLU with
the reference's normal init (np.random weights copied in with torch.tensor), nn.EmbeddingBag
tables in mode="sum" fed flat indices with offsets (sparse=True, and per_sample_weights for
weighted bags), the dot interaction through torch.bmm and the strict upper triangle picked
with torch.triu_indices (the reference's li/lj lists too), a sigmoid top MLP; BCELoss and
BCEWithLogitsLoss(pos_weight=...); sparse gradients (is_sparse, coalesce, to_dense) stepped by
SparseAdam for the tables and Adagrad (lr_decay, initial_accumulator_value) for the rest, as two
optimizers over named_parameters; sparse switched off per table (e.sparse = False) for plain Adam; then F.embedding_bag with
include_last_offset and mode="max"/"mean", EmbeddingBag.from_pretrained with padding_idx, and a
two-tower model with F.normalize, an in-batch softmax with temperature and a logQ correction,
and recall@k from torch.topk."""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class DLRM_Net(nn.Module):
    def create_mlp(self, ln, sigmoid_layer):
        layers = nn.ModuleList()
        for i in range(0, ln.size - 1):
            n = ln[i]
            m = ln[i + 1]
            LL = nn.Linear(int(n), int(m), bias=True)
            mean = 0.0
            std_dev = np.sqrt(2 / (m + n))
            W = np.random.normal(mean, std_dev, size=(m, n)).astype(np.float32)
            std_dev = np.sqrt(1 / m)
            bt = np.random.normal(mean, std_dev, size=m).astype(np.float32)
            LL.weight.data = torch.tensor(W, requires_grad=True)
            LL.bias.data = torch.tensor(bt, requires_grad=True)
            layers.append(LL)
            if i == sigmoid_layer:
                layers.append(nn.Sigmoid())
            else:
                layers.append(nn.ReLU())
        return torch.nn.Sequential(*layers)

    def create_emb(self, m, ln, weighted_pooling=None):
        emb_l = nn.ModuleList()
        v_W_l = []
        for i in range(0, ln.size):
            n = ln[i]
            EE = nn.EmbeddingBag(n, m, mode="sum", sparse=True)
            W = np.random.uniform(low=-np.sqrt(1 / n), high=np.sqrt(1 / n), size=(n, m)).astype(np.float32)
            EE.weight.data = torch.tensor(W, requires_grad=True)
            if weighted_pooling is None:
                v_W_l.append(None)
            else:
                v_W_l.append(torch.ones(n, dtype=torch.float32))
            emb_l.append(EE)
        return emb_l, v_W_l

    def __init__(self, m_spa, ln_emb, ln_bot, ln_top, arch_interaction_op="dot", arch_interaction_itself=False,
                 sigmoid_bot=-1, sigmoid_top=-1, weighted_pooling=None, loss_function="bce"):
        super(DLRM_Net, self).__init__()
        self.arch_interaction_op = arch_interaction_op
        self.arch_interaction_itself = arch_interaction_itself
        self.loss_function = loss_function
        if weighted_pooling is not None and weighted_pooling != "fixed":
            self.weighted_pooling = "learned"
        else:
            self.weighted_pooling = weighted_pooling
        self.emb_l, w_list = self.create_emb(m_spa, ln_emb, weighted_pooling)
        if self.weighted_pooling == "learned":
            self.v_W_l = nn.ParameterList()
            for w in w_list:
                self.v_W_l.append(nn.Parameter(w))
        else:
            self.v_W_l = w_list
        self.bot_l = self.create_mlp(ln_bot, sigmoid_bot)
        self.top_l = self.create_mlp(ln_top, sigmoid_top)
        if self.loss_function == "mse":
            self.loss_fn = torch.nn.MSELoss(reduction="mean")
        elif self.loss_function == "bce":
            self.loss_fn = torch.nn.BCELoss(reduction="mean")
        else:
            sys.exit("ERROR: --loss-function=" + self.loss_function + " is not supported")

    def apply_mlp(self, x, layers):
        return layers(x)

    def apply_emb(self, lS_o, lS_i, emb_l, v_W_l):
        ly = []
        for k, sparse_index_group_batch in enumerate(lS_i):
            sparse_offset_group_batch = lS_o[k]
            if v_W_l[k] is not None:
                per_sample_weights = v_W_l[k].gather(0, sparse_index_group_batch)
            else:
                per_sample_weights = None
            E = emb_l[k]
            V = E(sparse_index_group_batch, sparse_offset_group_batch, per_sample_weights=per_sample_weights)
            ly.append(V)
        return ly

    def interact_features(self, x, ly):
        if self.arch_interaction_op == "dot":
            (batch_size, d) = x.shape
            T = torch.cat([x] + ly, dim=1).view((batch_size, -1, d))
            Z = torch.bmm(T, torch.transpose(T, 1, 2))
            _, ni, nj = Z.shape
            offset = 1 if self.arch_interaction_itself else 0
            li = torch.tensor([i for i in range(ni) for j in range(i + offset)])
            lj = torch.tensor([j for i in range(nj) for j in range(i + offset)])
            Zflat = Z[:, li, lj]
            R = torch.cat([x] + [Zflat], dim=1)
        elif self.arch_interaction_op == "cat":
            R = torch.cat([x] + ly, dim=1)
        else:
            sys.exit("ERROR: --arch-interaction-op=" + self.arch_interaction_op + " is not supported")
        return R

    def forward(self, dense_x, lS_o, lS_i):
        x = self.apply_mlp(dense_x, self.bot_l)
        ly = self.apply_emb(lS_o, lS_i, self.emb_l, self.v_W_l)
        z = self.interact_features(x, ly)
        p = self.apply_mlp(z, self.top_l)
        return p


def make_batch(rng, batch, tables, dense=4, max_bag=3):
    X = torch.tensor(np.log1p(rng.exponential(3.0, (batch, dense))), dtype=torch.float32)
    lS_o, lS_i = [], []
    for n in tables:
        lengths = rng.integers(1, max_bag + 1, batch)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        idx = rng.integers(0, n, lengths.sum())
        lS_o.append(torch.tensor(offsets, dtype=torch.long))
        lS_i.append(torch.tensor(idx, dtype=torch.long))
    hot = sum((i[o] % 3 == 0).float() for o, i in zip(lS_o, lS_i))
    T = ((X[:, 0] - 1.2 + 0.7 * hot) > 0).float().view(-1, 1)
    return X, lS_o, lS_i, T


np.random.seed(123)
rng = np.random.default_rng(5)
ln_emb = np.array([10, 7, 12])
m_spa = 4
ln_bot = np.array([4, 8, m_spa])
num_fea = ln_emb.size + 1
num_int = (num_fea * (num_fea - 1)) // 2 + m_spa
ln_top = np.array([num_int, 8, 1])
dlrm = DLRM_Net(m_spa, ln_emb, ln_bot, ln_top, arch_interaction_op="dot", sigmoid_top=ln_top.size - 2,
                weighted_pooling="learned")
share_init(dlrm, "dlrm")
report("dlrm", num_int, [type(m).__name__ for m in dlrm.top_l], sorted(dlrm.state_dict().keys()))

emb_params = [p for n, p in dlrm.named_parameters() if n.startswith("emb_l")]
dense_params = [p for n, p in dlrm.named_parameters() if not n.startswith("emb_l")]
opt_sparse = torch.optim.SparseAdam(emb_params, lr=0.05)
opt_dense = torch.optim.Adagrad(dense_params, lr=0.05, initial_accumulator_value=0.1, lr_decay=0.01)
for step in range(4):
    X, lS_o, lS_i, T = make_batch(rng, 8, ln_emb)
    Z = dlrm(X, lS_o, lS_i)
    E = dlrm.loss_fn(Z, T)
    opt_sparse.zero_grad()
    opt_dense.zero_grad()
    E.backward()
    g = dlrm.emb_l[0].weight.grad
    gc = g.coalesce()
    report("dlrm step", step, E.item(), g.is_sparse, g._nnz(), gc.indices().tolist(), gc.values().sum().item(),
           g.to_dense().abs().sum().item(), dlrm.v_W_l[1].grad.abs().sum().item())
    opt_sparse.step()
    opt_dense.step()
report("dlrm weights", dlrm.emb_l[2].weight.detach().sum(1).tolist(), dlrm.top_l[0].weight.detach().abs().sum().item())

# the triu_indices form of the same interaction, as TorchRec-style code writes it
with torch.no_grad():
    X, lS_o, lS_i, T = make_batch(rng, 5, ln_emb)
    x = dlrm.bot_l(X)
    ly = dlrm.apply_emb(lS_o, lS_i, dlrm.emb_l, dlrm.v_W_l)
    combined = torch.cat([x.unsqueeze(1)] + [e.unsqueeze(1) for e in ly], dim=1)
    inter = torch.bmm(combined, combined.transpose(1, 2))
    tri = torch.triu_indices(num_fea, num_fea, offset=1)
    flat = inter[:, tri[0], tri[1]]
    ref = dlrm.interact_features(x, ly)[:, m_spa:]
    report("triu", tri.tolist(), torch.sort(flat, dim=1).values.sub(torch.sort(ref, dim=1).values).abs().max().item(),
           torch.tril_indices(3, 3, -1).tolist())

# an unweighted DLRM trained with BCEWithLogitsLoss(pos_weight) and plain Adam on dense grads
np.random.seed(7)
net = DLRM_Net(m_spa, ln_emb, ln_bot, np.array([num_int, 6, 1]), sigmoid_top=-1)
for e in net.emb_l:
    e.sparse = False
share_init(net, "dlrm_plain")
crit = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0]))
opt = torch.optim.Adam(net.parameters(), lr=0.01)
for step in range(3):
    X, lS_o, lS_i, T = make_batch(rng, 8, ln_emb)
    logits = net(X, lS_o, lS_i)
    loss = crit(logits, T)
    opt.zero_grad()
    loss.backward()
    opt.step()
    report("plain", step, loss.item(), net.emb_l[1].weight.grad.is_sparse, net.emb_l[1].weight.grad.abs().sum().item())

# the functional form and the other bag modes
w = torch.tensor(rng.standard_normal((6, 3)), dtype=torch.float32, requires_grad=True)
inp = torch.tensor([1, 2, 4, 5, 4, 3, 2, 0])
offs = torch.tensor([0, 2, 2, 5, 8])  # an empty bag, and the last offset closing the final bag
for mode in ["sum", "mean", "max"]:
    out = F.embedding_bag(inp, w, offs, mode=mode, include_last_offset=True)
    (out * torch.arange(1.0, 4.0)).sum().backward()
    report("bag", mode, out.tolist(), w.grad.tolist())
    w.grad = None
psw = torch.tensor([0.5, 2.0, 1.0, -1.0, 1.0, 3.0, 0.0, 1.0])
out = F.embedding_bag(inp, w, offs[:-1], mode="sum", per_sample_weights=psw)
report("bag weighted", out.tolist())
bag2d = nn.EmbeddingBag.from_pretrained(w.detach(), mode="mean", freeze=False, padding_idx=0)
report("bag 2d", bag2d(torch.tensor([[1, 0, 3], [0, 0, 2]])).tolist(), bag2d.weight.requires_grad, bag2d.padding_idx)
try:
    F.embedding_bag(inp, w, offs[:-1], mode="mean", per_sample_weights=psw)
    report("psw mean", "accepted")
except (ValueError, NotImplementedError, RuntimeError) as e:
    report("psw mean", "error")


class Tower(nn.Module):
    def __init__(self, n_ids, n_feats, dim):
        super().__init__()
        self.id_emb = nn.Embedding(n_ids, dim)
        self.feat_emb = nn.EmbeddingBag(n_feats, dim, mode="mean")
        self.mlp = nn.Sequential(nn.Linear(2 * dim, 16), nn.ReLU(), nn.Linear(16, dim))

    def forward(self, ids, feats, offsets):
        h = torch.cat([self.id_emb(ids), self.feat_emb(feats, offsets)], dim=-1)
        return F.normalize(self.mlp(h), p=2, dim=-1)


class TwoTower(nn.Module):
    def __init__(self):
        super().__init__()
        self.user = Tower(20, 9, 8)
        self.item = Tower(30, 11, 8)
        self.log_temperature = nn.Parameter(torch.tensor(np.log(1 / 0.1), dtype=torch.float32))

    def forward(self, u, i, item_logq):
        ue = self.user(*u)
        ie = self.item(*i)
        logits = ue @ ie.t() * self.log_temperature.exp()
        logits = logits - item_logq.unsqueeze(0)  # sampling-bias (logQ) correction
        labels = torch.arange(logits.size(0), device=logits.device)
        return F.cross_entropy(logits, labels), ue, ie


def bags(rng, batch, n):
    lengths = rng.integers(1, 4, batch)
    return torch.tensor(rng.integers(0, n, lengths.sum())), torch.tensor(np.concatenate([[0], np.cumsum(lengths)[:-1]]))


torch.manual_seed(0)
tt = TwoTower()
share_init(tt, "two_tower")
opt = torch.optim.Adagrad(tt.parameters(), lr=0.1)
item_freq = torch.tensor(rng.integers(1, 50, 30), dtype=torch.float32)
item_logq = torch.log(item_freq / item_freq.sum())
for step in range(4):
    uid = torch.tensor(rng.permutation(20)[:6])
    iid = (uid * 7 + 3) % 30
    uf, uo = bags(rng, 6, 9)
    itf, ito = bags(rng, 6, 11)
    loss, ue, ie = tt((uid, uf, uo), (iid, itf, ito), item_logq[iid])
    opt.zero_grad()
    loss.backward()
    opt.step()
    report("two tower", step, loss.item(), ue.norm(dim=1).tolist()[:2], tt.log_temperature.grad.item())
with torch.no_grad():
    all_items = tt.item(torch.arange(30), torch.arange(30) % 11, torch.arange(30))
    users = tt.user(torch.arange(5), torch.arange(5) % 9, torch.arange(5))
    scores = users @ all_items.T
    top = torch.topk(scores, k=5, dim=1)
    truth = (torch.arange(5) * 7 + 3) % 30
    hits = (top.indices == truth[:, None]).any(dim=1).float()
report("retrieval", top.indices.tolist(), top.values.tolist(), hits.mean().item())
