"""Sequential and graph recommenders as their reference PyTorch code writes them: SASRec (item and
position embeddings with padding_idx=0, torch.LongTensor(np_array), a timeline mask from
torch.BoolTensor(log_seqs == 0) multiplied in (seqs *= ~mask.unsqueeze(-1)), nn.MultiheadAttention
with a boolean causal attn_mask from ~torch.tril(torch.ones(..., dtype=torch.bool)), point-wise
Conv1d feed-forward, positive/negative logits with BCEWithLogitsLoss on np.where indices, an L2
term from torch.norm of the item table, and a rank from argsort().argsort()); LightGCN with a
normalised sparse adjacency built from numpy through torch.sparse.FloatTensor-style
torch.sparse_coo_tensor, propagated by torch.sparse.mm, layer embeddings stacked and averaged,
the BPR loss through F.softplus and reg loss from .norm(2).pow(2); NeuMF (GMF and MLP towers);
and DeepFM's factorisation-machine term 0.5 * (sum^2 - sum of squares), with NDCG@k / HR@k from
torch.topk and torch.log2."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class PointWiseFeedForward(torch.nn.Module):
    def __init__(self, hidden_units, dropout_rate):
        super(PointWiseFeedForward, self).__init__()
        self.conv1 = torch.nn.Conv1d(hidden_units, hidden_units, kernel_size=1)
        self.dropout1 = torch.nn.Dropout(p=dropout_rate)
        self.relu = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv1d(hidden_units, hidden_units, kernel_size=1)
        self.dropout2 = torch.nn.Dropout(p=dropout_rate)

    def forward(self, inputs):
        outputs = self.dropout2(self.conv2(self.relu(self.dropout1(self.conv1(inputs.transpose(-1, -2))))))
        outputs = outputs.transpose(-1, -2)
        outputs += inputs
        return outputs


class SASRec(torch.nn.Module):
    def __init__(self, user_num, item_num, hidden_units=16, maxlen=10, num_blocks=2, num_heads=2, dropout_rate=0.0):
        super(SASRec, self).__init__()
        self.user_num = user_num
        self.item_num = item_num
        self.dev = "cpu"
        self.item_emb = torch.nn.Embedding(self.item_num + 1, hidden_units, padding_idx=0)
        self.pos_emb = torch.nn.Embedding(maxlen + 1, hidden_units, padding_idx=0)
        self.emb_dropout = torch.nn.Dropout(p=dropout_rate)
        self.attention_layernorms = torch.nn.ModuleList()
        self.attention_layers = torch.nn.ModuleList()
        self.forward_layernorms = torch.nn.ModuleList()
        self.forward_layers = torch.nn.ModuleList()
        self.last_layernorm = torch.nn.LayerNorm(hidden_units, eps=1e-8)
        for _ in range(num_blocks):
            self.attention_layernorms.append(torch.nn.LayerNorm(hidden_units, eps=1e-8))
            self.attention_layers.append(torch.nn.MultiheadAttention(hidden_units, num_heads, dropout_rate))
            self.forward_layernorms.append(torch.nn.LayerNorm(hidden_units, eps=1e-8))
            self.forward_layers.append(PointWiseFeedForward(hidden_units, dropout_rate))

    def log2feats(self, log_seqs):
        seqs = self.item_emb(torch.LongTensor(log_seqs).to(self.dev))
        seqs *= self.item_emb.embedding_dim ** 0.5
        poss = np.tile(np.arange(1, log_seqs.shape[1] + 1), [log_seqs.shape[0], 1])
        poss *= (log_seqs != 0)
        seqs += self.pos_emb(torch.LongTensor(poss).to(self.dev))
        seqs = self.emb_dropout(seqs)
        tl = seqs.shape[1]
        attention_mask = ~torch.tril(torch.ones((tl, tl), dtype=torch.bool, device=self.dev))
        for i in range(len(self.attention_layers)):
            seqs = torch.transpose(seqs, 0, 1)
            Q = self.attention_layernorms[i](seqs)
            mha_outputs, _ = self.attention_layers[i](Q, seqs, seqs, attn_mask=attention_mask)
            seqs = Q + mha_outputs
            seqs = torch.transpose(seqs, 0, 1)
            seqs = self.forward_layernorms[i](seqs)
            seqs = self.forward_layers[i](seqs)
        log_feats = self.last_layernorm(seqs)
        return log_feats

    def forward(self, user_ids, log_seqs, pos_seqs, neg_seqs):
        log_feats = self.log2feats(log_seqs)
        pos_embs = self.item_emb(torch.LongTensor(pos_seqs).to(self.dev))
        neg_embs = self.item_emb(torch.LongTensor(neg_seqs).to(self.dev))
        pos_logits = (log_feats * pos_embs).sum(dim=-1)
        neg_logits = (log_feats * neg_embs).sum(dim=-1)
        return pos_logits, neg_logits

    def predict(self, user_ids, log_seqs, item_indices):
        log_feats = self.log2feats(log_seqs)
        final_feat = log_feats[:, -1, :]
        item_embs = self.item_emb(torch.LongTensor(item_indices).to(self.dev))
        logits = item_embs.matmul(final_feat.unsqueeze(-1)).squeeze(-1)
        return logits


def sample_sequences(rng, n_users, item_num, maxlen):
    """Each user walks items in steps of 1..2 from a random start (a learnable next-item rule)."""
    seq, pos, neg = (np.zeros((n_users, maxlen), dtype=np.int64) for _ in range(3))
    for u in range(n_users):
        length = rng.integers(3, maxlen + 1)
        start = rng.integers(1, item_num + 1)
        items = (start - 1 + np.cumsum(rng.integers(1, 3, length + 1))) % item_num + 1
        seq[u, -length:] = items[:-1]
        pos[u, -length:] = items[1:]
        neg[u, -length:] = rng.integers(1, item_num + 1, length)
    return seq, pos, neg


rng = np.random.default_rng(8)
item_num, maxlen = 20, 10
torch.manual_seed(0)
model = SASRec(12, item_num, maxlen=maxlen)
for name, param in model.named_parameters():
    try:
        torch.nn.init.xavier_normal_(param.data)
    except Exception:
        pass  # just ignore those failed init layers
model.pos_emb.weight.data[0, :] = 0
model.item_emb.weight.data[0, :] = 0
share_init(model, "sasrec")
report("sasrec", sorted(k for k in model.state_dict() if k.startswith("attention_layers.0")))
bce_criterion = torch.nn.BCEWithLogitsLoss()
adam_optimizer = torch.optim.Adam(model.parameters(), lr=0.005, betas=(0.9, 0.98))
l2_emb = 1e-4
for epoch in range(4):
    model.train()
    u, seq, pos, neg = np.arange(12), *sample_sequences(rng, 12, item_num, maxlen)
    pos_logits, neg_logits = model(u, seq, pos, neg)
    pos_labels, neg_labels = torch.ones(pos_logits.shape), torch.zeros(neg_logits.shape)
    adam_optimizer.zero_grad()
    indices = np.where(pos != 0)
    loss = bce_criterion(pos_logits[indices], pos_labels[indices])
    loss += bce_criterion(neg_logits[indices], neg_labels[indices])
    for param in model.item_emb.parameters():
        loss += l2_emb * torch.norm(param)
    loss.backward()
    adam_optimizer.step()
    report("sasrec", epoch, loss.item(), model.item_emb.weight.grad[0].abs().sum().item(),
           model.pos_emb.weight.grad[0].abs().sum().item())

model.eval()
NDCG, HT = 0.0, 0.0
with torch.no_grad():
    seq, pos, _ = sample_sequences(rng, 6, item_num, maxlen)
    for u in range(6):
        target = pos[u, -1]
        item_idx = [target] + [i for i in rng.permutation(np.arange(1, item_num + 1)) if i != target][:9]
        predictions = -model.predict(*[np.array(l) for l in [[u], [seq[u]], item_idx]])
        predictions = predictions[0]
        rank = predictions.argsort().argsort()[0].item()
        if rank < 5:
            NDCG += 1 / np.log2(rank + 2)
            HT += 1
report("sasrec eval", NDCG / 6, HT / 6)


class LightGCN(nn.Module):
    def __init__(self, n_users, n_items, train_pairs, latent_dim=8, n_layers=2):
        super().__init__()
        self.num_users, self.num_items, self.n_layers = n_users, n_items, n_layers
        self.embedding_user = torch.nn.Embedding(num_embeddings=self.num_users, embedding_dim=latent_dim)
        self.embedding_item = torch.nn.Embedding(num_embeddings=self.num_items, embedding_dim=latent_dim)
        nn.init.normal_(self.embedding_user.weight, std=0.1)
        nn.init.normal_(self.embedding_item.weight, std=0.1)
        self.f = nn.Sigmoid()
        self.Graph = self.getSparseGraph(train_pairs)

    def getSparseGraph(self, pairs):
        n = self.num_users + self.num_items
        R = np.zeros((self.num_users, self.num_items), dtype=np.float32)
        R[pairs[:, 0], pairs[:, 1]] = 1.0
        adj = np.zeros((n, n), dtype=np.float32)
        adj[:self.num_users, self.num_users:] = R
        adj[self.num_users:, :self.num_users] = R.T
        rowsum = adj.sum(axis=1)
        d_inv = np.power(rowsum, -0.5, where=rowsum > 0, out=np.zeros_like(rowsum))
        norm_adj = d_inv[:, None] * adj * d_inv[None, :]
        rows, cols = np.nonzero(norm_adj)
        index = torch.stack([torch.LongTensor(rows), torch.LongTensor(cols)])
        data = torch.FloatTensor(norm_adj[rows, cols])
        return torch.sparse_coo_tensor(index, data, torch.Size([n, n])).coalesce()

    def computer(self):
        users_emb = self.embedding_user.weight
        items_emb = self.embedding_item.weight
        all_emb = torch.cat([users_emb, items_emb])
        embs = [all_emb]
        for layer in range(self.n_layers):
            all_emb = torch.sparse.mm(self.Graph, all_emb)
            embs.append(all_emb)
        embs = torch.stack(embs, dim=1)
        light_out = torch.mean(embs, dim=1)
        users, items = torch.split(light_out, [self.num_users, self.num_items])
        return users, items

    def getUsersRating(self, users):
        all_users, all_items = self.computer()
        users_emb = all_users[users.long()]
        rating = self.f(torch.matmul(users_emb, all_items.t()))
        return rating

    def bpr_loss(self, users, pos, neg):
        all_users, all_items = self.computer()
        users_emb, pos_emb, neg_emb = all_users[users], all_items[pos], all_items[neg]
        userEmb0, posEmb0, negEmb0 = self.embedding_user(users), self.embedding_item(pos), self.embedding_item(neg)
        reg_loss = (1 / 2) * (userEmb0.norm(2).pow(2) + posEmb0.norm(2).pow(2) + negEmb0.norm(2).pow(2)) / float(len(users))
        pos_scores = torch.mul(users_emb, pos_emb)
        pos_scores = torch.sum(pos_scores, dim=1)
        neg_scores = torch.mul(users_emb, neg_emb)
        neg_scores = torch.sum(neg_scores, dim=1)
        loss = torch.mean(torch.nn.functional.softplus(neg_scores - pos_scores))
        return loss, reg_loss


n_users, n_items = 8, 12
pairs = np.array([(u, (u * 3 + k) % n_items) for u in range(n_users) for k in range(3)])
torch.manual_seed(1)
gcn = LightGCN(n_users, n_items, pairs)
share_init(gcn, "lightgcn")
report("graph", gcn.Graph._nnz(), gcn.Graph.is_sparse, torch.sparse.sum(gcn.Graph).item(),
       gcn.Graph.to_dense().sum(1)[:4].tolist())
opt = torch.optim.Adam(gcn.parameters(), lr=0.01)
for step in range(4):
    idx = rng.integers(0, len(pairs), 16)
    users = torch.LongTensor(pairs[idx, 0])
    posi = torch.LongTensor(pairs[idx, 1])
    negi = torch.LongTensor(rng.integers(0, n_items, 16))
    loss, reg = gcn.bpr_loss(users, posi, negi)
    total = loss + 1e-4 * reg
    opt.zero_grad()
    total.backward()
    opt.step()
    report("lightgcn", step, loss.item(), reg.item(), gcn.embedding_item.weight.grad.abs().sum().item())
with torch.no_grad():
    rating = gcn.getUsersRating(torch.arange(n_users))
    exclude = torch.zeros_like(rating, dtype=torch.bool)
    exclude[pairs[:, 0], pairs[:, 1]] = True
    rating[exclude] = -(1 << 10)
    _, rating_K = torch.topk(rating, k=3)
report("lightgcn topk", rating_K.tolist())


class NeuMF(nn.Module):
    def __init__(self, user_num, item_num, factor_num=4, num_layers=2):
        super(NeuMF, self).__init__()
        self.embed_user_GMF = nn.Embedding(user_num, factor_num)
        self.embed_item_GMF = nn.Embedding(item_num, factor_num)
        self.embed_user_MLP = nn.Embedding(user_num, factor_num * (2 ** (num_layers - 1)))
        self.embed_item_MLP = nn.Embedding(item_num, factor_num * (2 ** (num_layers - 1)))
        MLP_modules = []
        for i in range(num_layers):
            input_size = factor_num * (2 ** (num_layers - i))
            MLP_modules.append(nn.Dropout(p=0.0))
            MLP_modules.append(nn.Linear(input_size, input_size // 2))
            MLP_modules.append(nn.ReLU())
        self.MLP_layers = nn.Sequential(*MLP_modules)
        self.predict_layer = nn.Linear(factor_num * 2, 1)
        nn.init.normal_(self.embed_user_GMF.weight, std=0.01)
        nn.init.kaiming_uniform_(self.predict_layer.weight, a=1, nonlinearity='sigmoid')

    def forward(self, user, item):
        output_GMF = self.embed_user_GMF(user) * self.embed_item_GMF(item)
        interaction = torch.cat((self.embed_user_MLP(user), self.embed_item_MLP(item)), -1)
        output_MLP = self.MLP_layers(interaction)
        concat = torch.cat((output_GMF, output_MLP), -1)
        prediction = self.predict_layer(concat)
        return prediction.view(-1)


torch.manual_seed(2)
ncf = NeuMF(n_users, n_items)
share_init(ncf, "neumf")
opt = torch.optim.SGD(ncf.parameters(), lr=0.1, momentum=0.9, nesterov=True)
loss_function = nn.BCEWithLogitsLoss()
for step in range(3):
    users = torch.LongTensor(np.concatenate([pairs[:, 0], pairs[:, 0]]))
    items = torch.LongTensor(np.concatenate([pairs[:, 1], rng.integers(0, n_items, len(pairs))]))
    labels = torch.cat([torch.ones(len(pairs)), torch.zeros(len(pairs))]).float()
    ncf.zero_grad()
    prediction = ncf(users, items)
    loss = loss_function(prediction, labels)
    loss.backward()
    opt.step()
    report("neumf", step, loss.item())


class FM(nn.Module):
    def __init__(self, field_dims, embed_dim):
        super().__init__()
        self.embedding = nn.Embedding(sum(field_dims), embed_dim)
        self.linear = nn.Embedding(sum(field_dims), 1)
        self.bias = nn.Parameter(torch.zeros((1,)))
        self.offsets = np.array((0, *np.cumsum(field_dims)[:-1]), dtype=np.int64)
        self.mlp = nn.Sequential(nn.Linear(len(field_dims) * embed_dim, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, x):
        x = x + x.new_tensor(self.offsets).unsqueeze(0)
        emb = self.embedding(x)
        square_of_sum = torch.sum(emb, dim=1) ** 2
        sum_of_square = torch.sum(emb ** 2, dim=1)
        ix = 0.5 * torch.sum(square_of_sum - sum_of_square, dim=1, keepdim=True)
        linear = torch.sum(self.linear(x), dim=1) + self.bias
        deep = self.mlp(emb.view(-1, emb.shape[1] * emb.shape[2]))
        return torch.sigmoid((linear + ix + deep).squeeze(1))


torch.manual_seed(3)
fm = FM([4, 6, 3], 5)
share_init(fm, "deepfm")
x = torch.from_numpy(np.stack([rng.integers(0, d, 32) for d in (4, 6, 3)], 1))
yb = ((x[:, 0] + x[:, 2]) % 2).float()
opt = torch.optim.Adam(params=fm.parameters(), lr=0.01, weight_decay=1e-6)
criterion = torch.nn.BCELoss()
for step in range(3):
    y = fm(x)
    loss = criterion(y, yb)
    fm.zero_grad()
    loss.backward()
    opt.step()
    report("deepfm", step, loss.item(), fm.bias.item())
report("offsets", fm.offsets.tolist(), x.new_tensor(fm.offsets).dtype == torch.int64)
