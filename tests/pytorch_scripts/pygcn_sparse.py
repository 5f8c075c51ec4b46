"""Kipf & Welling's pygcn (github.com/tkipf/pygcn) as its authors wrote it, with the sparse
adjacency: the graph built and row-normalised with scipy.sparse (normalize, D^-1 (A + I)),
converted by sparse_mx_to_torch_sparse_tensor into torch.sparse.FloatTensor, GraphConvolution
with Parameter(torch.FloatTensor(...)) + uniform_ reset and torch.spmm(adj, support), the
two-layer GCN with log_softmax, Adam with weight decay, nll_loss on the training nodes and the
accuracy function; plus the same adjacency via torch.sparse_coo_tensor, coalesce, to_dense and
torch.sparse.mm checked against the dense product. Dropout is 0 (the libraries' random streams
differ)."""
import math

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.nn.modules.module import Module
from torch.nn.parameter import Parameter


def encode_onehot(labels):
    classes = set(labels)
    classes_dict = {c: np.identity(len(classes))[i, :] for i, c in enumerate(sorted(classes))}
    return np.array(list(map(classes_dict.get, labels)), dtype=np.int32)


def normalize(mx):
    """Row-normalize sparse matrix"""
    rowsum = np.array(mx.sum(1))
    r_inv = np.power(rowsum, -1).flatten()
    r_inv[np.isinf(r_inv)] = 0.
    r_mat_inv = sp.diags(r_inv)
    mx = r_mat_inv.dot(mx)
    return mx


def accuracy(output, labels):
    preds = output.max(1)[1].type_as(labels)
    correct = preds.eq(labels).double()
    correct = correct.sum()
    return correct / len(labels)


def sparse_mx_to_torch_sparse_tensor(sparse_mx):
    """Convert a scipy sparse matrix to a torch sparse tensor."""
    sparse_mx = sparse_mx.tocoo().astype(np.float32)
    indices = torch.from_numpy(np.vstack((sparse_mx.row, sparse_mx.col)).astype(np.int64))
    values = torch.from_numpy(sparse_mx.data)
    shape = torch.Size(sparse_mx.shape)
    return torch.sparse.FloatTensor(indices, values, shape)


def load_data(rng, n=40, n_feat=12, n_class=3):
    labels_raw = [f"class_{i % n_class}" for i in range(n)]
    labels = encode_onehot(labels_raw)
    features = sp.csr_matrix((rng.random((n, n_feat)) < 0.3).astype(np.float32) + np.eye(n, n_feat, dtype=np.float32))
    cls = np.where(labels)[1]
    edges = np.array([(i, j) for i in range(n) for j in range(n)
                      if i < j and rng.random() < (0.3 if cls[i] == cls[j] else 0.03)], dtype=np.int32)
    adj = sp.coo_matrix((np.ones(edges.shape[0]), (edges[:, 0], edges[:, 1])), shape=(n, n), dtype=np.float32)
    # build symmetric adjacency matrix
    adj = adj + adj.T.multiply(adj.T > adj) - adj.multiply(adj.T > adj)
    features = normalize(features)
    adj = normalize(adj + sp.eye(adj.shape[0]))
    idx_train, idx_val, idx_test = range(15), range(15, 25), range(25, 40)
    features = torch.FloatTensor(np.array(features.todense()))
    labels = torch.LongTensor(np.where(labels)[1])
    adj = sparse_mx_to_torch_sparse_tensor(adj)
    idx_train, idx_val, idx_test = torch.LongTensor(idx_train), torch.LongTensor(idx_val), torch.LongTensor(idx_test)
    return adj, features, labels, idx_train, idx_val, idx_test


class GraphConvolution(Module):
    """Simple GCN layer, similar to https://arxiv.org/abs/1609.02907"""

    def __init__(self, in_features, out_features, bias=True):
        super(GraphConvolution, self).__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(torch.FloatTensor(in_features, out_features))
        if bias:
            self.bias = Parameter(torch.FloatTensor(out_features))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1. / math.sqrt(self.weight.size(1))
        self.weight.data.uniform_(-stdv, stdv)
        if self.bias is not None:
            self.bias.data.uniform_(-stdv, stdv)

    def forward(self, input, adj):
        support = torch.mm(input, self.weight)
        output = torch.spmm(adj, support)
        if self.bias is not None:
            return output + self.bias
        else:
            return output

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


rng = np.random.default_rng(0)
adj, features, labels, idx_train, idx_val, idx_test = load_data(rng)
report("adj", adj.is_sparse, str(adj.layout).split(".")[-1], adj._nnz(), list(adj.shape), adj.to_dense().sum().item())

model = GCN(nfeat=features.shape[1], nhid=16, nclass=labels.max().item() + 1, dropout=0.0)
share_init(model)
report("model", repr(model.gc1), len(list(model.parameters())))
optimizer = optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
for epoch in range(8):
    model.train()
    optimizer.zero_grad()
    output = model(features, adj)
    loss_train = F.nll_loss(output[idx_train], labels[idx_train])
    acc_train = accuracy(output[idx_train], labels[idx_train])
    loss_train.backward()
    optimizer.step()
    model.eval()
    output = model(features, adj)
    loss_val = F.nll_loss(output[idx_val], labels[idx_val])
    report("epoch", epoch, loss_train.item(), acc_train.item(), loss_val.item(), accuracy(output[idx_val], labels[idx_val]).item())
model.eval()
output = model(features, adj)
report("test", F.nll_loss(output[idx_test], labels[idx_test]).item(), accuracy(output[idx_test], labels[idx_test]).item())

# the same adjacency through torch.sparse_coo_tensor, uncoalesced (every edge twice, halved)
coo = adj.coalesce()
idx, val = coo.indices(), coo.values()
twice = torch.sparse_coo_tensor(torch.cat([idx, idx], 1), torch.cat([val, val]) * 0.5, adj.shape)
report("coalesce", twice.is_coalesced(), twice._nnz(), twice.coalesce()._nnz(), twice.coalesce().is_coalesced())
x = features[:, :3]
report("spmm = dense", (torch.sparse.mm(twice, x) - twice.to_dense() @ x).abs().max().item() < 1e-5,
       (x.t() @ twice - x.t() @ twice.to_dense()).abs().max().item() < 1e-5,
       torch.sparse.sum(twice).item(), torch.sparse.sum(twice, 1).to_dense().tolist()[:4])
w = torch.ones(3, requires_grad=True)
(torch.spmm(adj, x * w).sum()).backward()
report("grad through spmm", w.grad.tolist())
