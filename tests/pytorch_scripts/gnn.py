"""Graph neural networks as pygcn, pyGAT and PyG-style message passing write them, on a tiny
two-community graph (dense adjacencies here; pygcn_sparse.py has torch.sparse's): a GCN on the dense symmetric-
normalised adjacency D^-1/2 (A + I) D^-1/2 built with torch.diag / pow(-0.5) / isinf masking;
pyGAT's dense GraphAttentionLayer (Wh1 + Wh2.T, LeakyReLU, torch.where(adj > 0, e, -9e15),
softmax, dropout, ELU, multi-head concatenation); an index-based GCN over an edge_index
(index_select on source nodes, degree by scatter_add_ over the targets, messages summed with
index_add_), and a GAT on the edge list whose per-target softmax uses scatter_reduce("amax",
include_self=False) and a scatter_add'ed denominator; trained with Adam and weight decay on the
labelled nodes, masked accuracy reported, and the index-based GCN checked against the dense one."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_graph(rng, n=12, classes=2):
    labels = np.arange(n) % classes
    adj = np.zeros((n, n), np.float32)
    for i in range(n):
        for j in range(i + 1, n):
            p = 0.6 if labels[i] == labels[j] else 0.08
            if rng.random() < p:
                adj[i, j] = adj[j, i] = 1.0
    feats = rng.standard_normal((n, 5)).astype(np.float32) * 0.5
    feats[:, 0] += labels
    return torch.from_numpy(adj), torch.from_numpy(feats), torch.from_numpy(labels).long()


def normalize_adj(adj):
    adj = adj + torch.eye(adj.shape[0])
    rowsum = adj.sum(1)
    d_inv_sqrt = torch.pow(rowsum, -0.5).flatten()
    d_inv_sqrt[torch.isinf(d_inv_sqrt)] = 0.
    d_mat_inv_sqrt = torch.diag(d_inv_sqrt)
    return d_mat_inv_sqrt @ adj @ d_mat_inv_sqrt


class GraphConvolution(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super(GraphConvolution, self).__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.FloatTensor(in_features, out_features))
        if bias:
            self.bias = nn.Parameter(torch.FloatTensor(out_features))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1. / np.sqrt(self.weight.size(1))
        self.weight.data.uniform_(-stdv, stdv)
        if self.bias is not None:
            self.bias.data.uniform_(-stdv, stdv)

    def forward(self, input, adj):
        support = torch.mm(input, self.weight)
        output = torch.mm(adj, support)
        return output + self.bias if self.bias is not None else output

    def __repr__(self):
        return self.__class__.__name__ + ' (' + str(self.in_features) + ' -> ' + str(self.out_features) + ')'


class GCN(nn.Module):
    def __init__(self, nfeat, nhid, nclass, dropout):
        super(GCN, self).__init__()
        self.gc1 = GraphConvolution(nfeat, nhid)
        self.gc2 = GraphConvolution(nhid, nclass)
        self.dropout = dropout

    def forward(self, x, adj):
        x = F.relu(self.gc1(x, adj))
        x = F.dropout(x, self.dropout, training=self.training)
        x = self.gc2(x, adj)
        return F.log_softmax(x, dim=1)


class GraphAttentionLayer(nn.Module):
    def __init__(self, in_features, out_features, dropout, alpha, concat=True):
        super(GraphAttentionLayer, self).__init__()
        self.dropout = dropout
        self.in_features = in_features
        self.out_features = out_features
        self.alpha = alpha
        self.concat = concat
        self.W = nn.Parameter(torch.empty(size=(in_features, out_features)))
        nn.init.xavier_uniform_(self.W.data, gain=1.414)
        self.a = nn.Parameter(torch.empty(size=(2 * out_features, 1)))
        nn.init.xavier_uniform_(self.a.data, gain=1.414)
        self.leakyrelu = nn.LeakyReLU(self.alpha)

    def forward(self, h, adj):
        Wh = torch.mm(h, self.W)
        e = self._prepare_attentional_mechanism_input(Wh)
        zero_vec = -9e15 * torch.ones_like(e)
        attention = torch.where(adj > 0, e, zero_vec)
        attention = F.softmax(attention, dim=1)
        attention = F.dropout(attention, self.dropout, training=self.training)
        h_prime = torch.matmul(attention, Wh)
        return F.elu(h_prime) if self.concat else h_prime

    def _prepare_attentional_mechanism_input(self, Wh):
        Wh1 = torch.matmul(Wh, self.a[:self.out_features, :])
        Wh2 = torch.matmul(Wh, self.a[self.out_features:, :])
        e = Wh1 + Wh2.T
        return self.leakyrelu(e)


class GAT(nn.Module):
    def __init__(self, nfeat, nhid, nclass, dropout, alpha, nheads):
        super(GAT, self).__init__()
        self.dropout = dropout
        self.attentions = [GraphAttentionLayer(nfeat, nhid, dropout=dropout, alpha=alpha, concat=True) for _ in range(nheads)]
        for i, attention in enumerate(self.attentions):
            self.add_module('attention_{}'.format(i), attention)
        self.out_att = GraphAttentionLayer(nhid * nheads, nclass, dropout=dropout, alpha=alpha, concat=False)

    def forward(self, x, adj):
        x = F.dropout(x, self.dropout, training=self.training)
        x = torch.cat([att(x, adj) for att in self.attentions], dim=1)
        x = F.dropout(x, self.dropout, training=self.training)
        x = F.elu(self.out_att(x, adj))
        return F.log_softmax(x, dim=1)


class EdgeGCNConv(nn.Module):
    """PyG's GCNConv written out: add self loops, symmetric degree normalisation, gather, sum."""
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x, edge_index):
        n = x.size(0)
        loops = torch.arange(n, device=x.device).unsqueeze(0).repeat(2, 1)
        edge_index = torch.cat([edge_index, loops], dim=1)
        row, col = edge_index
        deg = torch.zeros(n, dtype=x.dtype).scatter_add_(0, col, torch.ones(col.size(0), dtype=x.dtype))
        deg_inv_sqrt = deg.pow(-0.5)
        deg_inv_sqrt.masked_fill_(deg_inv_sqrt == float("inf"), 0)
        norm = deg_inv_sqrt[row] * deg_inv_sqrt[col]
        x = self.lin(x)
        msg = x.index_select(0, row) * norm.view(-1, 1)
        out = torch.zeros_like(x).index_add_(0, col, msg)
        return out + self.bias


class EdgeGATConv(nn.Module):
    def __init__(self, in_channels, out_channels, heads=2, negative_slope=0.2):
        super().__init__()
        self.heads, self.out_channels = heads, out_channels
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)
        self.negative_slope = negative_slope

    def forward(self, x, edge_index):
        n, H, C = x.size(0), self.heads, self.out_channels
        x = self.lin(x).view(-1, H, C)
        src, dst = edge_index
        alpha_src = (x * self.att_src).sum(dim=-1)                    # (N, H)
        alpha_dst = (x * self.att_dst).sum(dim=-1)
        alpha = F.leaky_relu(alpha_src[src] + alpha_dst[dst], self.negative_slope)  # (E, H)
        amax = torch.full((n, H), float("-inf")).scatter_reduce(
            0, dst.unsqueeze(-1).expand_as(alpha), alpha, reduce="amax", include_self=False)
        alpha = (alpha - amax[dst]).exp()
        denom = torch.zeros(n, H).scatter_add(0, dst.unsqueeze(-1).expand_as(alpha), alpha)
        alpha = alpha / (denom[dst] + 1e-16)
        out = torch.zeros(n, H, C).index_add(0, dst, x[src] * alpha.unsqueeze(-1))
        return out.mean(dim=1), alpha


def accuracy(output, labels):
    preds = output.max(1)[1].type_as(labels)
    correct = preds.eq(labels).double()
    return correct.sum() / len(labels)


rng = np.random.default_rng(3)
adj, features, labels = make_graph(rng)
idx_train = torch.LongTensor(range(0, 8))
idx_val = torch.LongTensor(range(8, 12))
adj_norm = normalize_adj(adj)
report("graph", int(adj.sum().item()), adj_norm.sum().item(), torch.allclose(adj_norm, adj_norm.T))

for name, make in (("gcn", lambda: GCN(5, 8, 2, 0.0)), ("gat", lambda: GAT(5, 4, 2, 0.0, 0.2, 2))):
    torch.manual_seed(0)
    model = make()
    share_init(model, name)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for epoch in range(4):
        model.train()
        optimizer.zero_grad()
        output = model(features, adj_norm if name == "gcn" else adj + torch.eye(12))
        loss_train = F.nll_loss(output[idx_train], labels[idx_train])
        acc_train = accuracy(output[idx_train], labels[idx_train])
        loss_train.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            output = model(features, adj_norm if name == "gcn" else adj + torch.eye(12))
        loss_val = F.nll_loss(output[idx_val], labels[idx_val])
        report(name, epoch, loss_train.item(), acc_train.item(), loss_val.item(), accuracy(output[idx_val], labels[idx_val]).item())
report("repr", repr(model.attention_0.leakyrelu), str(GraphConvolution(3, 4)), len(list(model.parameters())))

edge_index = adj.nonzero().t().contiguous()                              # (2, E)
report("edges", list(edge_index.shape), edge_index.dtype == torch.int64)
torch.manual_seed(0)
conv = EdgeGCNConv(5, 3)
share_init(conv, "edge_gcn")
dense = adj_norm @ conv.lin(features) + conv.bias
sparse = conv(features, edge_index)
report("edge gcn = dense gcn", (sparse - dense).abs().max().item() < 1e-5)

torch.manual_seed(0)
gat = EdgeGATConv(5, 3)
share_init(gat, "edge_gat")
opt = torch.optim.Adam(list(gat.parameters()) + list(conv.parameters()), lr=0.01)
head = nn.Linear(3, 2)
share_init(head, "edge_head")
opt.add_param_group({"params": head.parameters(), "lr": 0.05})
for step in range(3):
    h, alpha = gat(features, edge_index)
    logits = head(F.elu(h + conv(features, edge_index)))
    loss = F.cross_entropy(logits[idx_train], labels[idx_train])
    opt.zero_grad()
    loss.backward()
    opt.step()
    per_target = torch.zeros(12, 2).index_add_(0, edge_index[1], alpha)
    report("edge gat", step, loss.item(), per_target.sub(1).abs().max().item() < 1e-5, gat.att_src.grad.flatten().tolist())
