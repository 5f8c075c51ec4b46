"""``nn.AdaptiveLogSoftmaxWithLoss`` (Grave et al., 2017, "Efficient softmax approximation for
GPUs"), with PyTorch's parameters, checks and results.

The classes are split by ``cutoffs`` into a head (the ``cutoffs[0]`` most frequent classes) and
clusters [cutoffs[i], cutoffs[i+1]). The head is a Linear to ``cutoffs[0] + n_clusters`` logits:
one per frequent class, and one per cluster. Cluster i is a two-layer projection
``in_features -> in_features // div_value**(i+1) -> cluster size`` (no biases), so rare classes
cost less. The log-probability of a class is

    head class c:       log_softmax(head(x))[c]
    class c in cluster: log_softmax(head(x))[shortlist + i] + log_softmax(tail_i(x))[c - cutoffs[i]]

``forward(input, target)`` returns ``(output, loss)``: each row's target log-probability and the
mean of its negation; it runs each cluster's projection only on the rows whose target is in it.
``log_prob`` gives every class's log-probability, ``predict`` the most probable class.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from tinymm import ops as O
from tinymm.backend import to_device
from tinymm.nn import functional as F
from tinymm.nn.containers import ModuleList, Sequential
from tinymm.nn.layers import Linear
from tinymm.nn.module import Module
from tinymm.tensor import Tensor

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    def __init__(self, in_features: int, n_classes: int, cutoffs, div_value: float = 4.0, head_bias: bool = False,
                 device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted in an increasing "
                             "order, where each value is between 1 and n_classes-1")
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        factory = dict(device=device, dtype=dtype)
        self.head = Linear(in_features, self.head_size, bias=head_bias, **factory)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hidden = int(in_features // (div_value ** (i + 1)))
            size = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hidden, bias=False, **factory),
                                        Linear(hidden, size, bias=False, **factory)))

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for projection in self.tail:
            for layer in projection:
                layer.reset_parameters()

    def forward(self, input_, target_) -> _ASMoutput:
        x, t = O.as_tensor(input_, "AdaptiveLogSoftmaxWithLoss"), O.as_tensor(target_, "AdaptiveLogSoftmaxWithLoss")
        if t.ndim == 1:
            if x.shape[0] != t.shape[0]:
                raise RuntimeError("Input and target should have the same size in the batch dimension.")
            if x.ndim != 2:
                raise RuntimeError(f"1D target tensor expects 2D input tensors, but found inputs with size {tuple(x.shape)}")
        elif t.ndim == 0:
            if x.ndim != 1:
                raise RuntimeError(f"0D target tensor expects 1D input tensors, but found inputs with size {tuple(x.shape)}")
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        batched = t.ndim > 0
        if not batched:
            x, t = x.unsqueeze(0), t.unsqueeze(0)
        labels = to_device(t._data, "cpu").astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                               f"[{labels.min()}, {labels.max()}] were found. ")
        # the head column each row reads: its class in the shortlist, else its cluster's column
        cluster = np.searchsorted(np.asarray(self.cutoffs), labels, side="right")  # 0: shortlist
        column = np.where(cluster == 0, labels, self.shortlist_size + cluster - 1)
        head_logprob = F.log_softmax(self.head(x), dim=1)
        output = head_logprob.gather(1, _index(column[:, None], x)).squeeze(1)
        for i in range(self.n_clusters):
            rows = np.nonzero(cluster == i + 1)[0]
            if rows.size == 0:
                continue
            row_index = _index(rows, x)
            cluster_logprob = F.log_softmax(self.tail[i](x.index_select(0, row_index)), dim=1)
            local = cluster_logprob.gather(1, _index((labels[rows] - self.cutoffs[i])[:, None], x)).squeeze(1)
            output = output.index_add(0, row_index, local)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _full_log_prob(self, x, head_output):
        head_logprob = F.log_softmax(head_output, dim=1)
        parts = [head_logprob[:, : self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster_logprob = F.log_softmax(self.tail[i](x), dim=1)
            parts.append(cluster_logprob + head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        return O.cat(parts, dim=1)

    def log_prob(self, input):
        """(N, n_classes) log-probabilities of every class for (N, in_features) input (or 1-D)."""
        x = O.as_tensor(input, "AdaptiveLogSoftmaxWithLoss.log_prob")
        batched = x.ndim > 1
        x = x if batched else x.unsqueeze(0)
        out = self._full_log_prob(x, self.head(x))
        return out if batched else out.squeeze(0)

    def predict(self, input):
        """The most probable class of each row (a cluster's classes are scored only for rows
        whose head prefers a cluster to every shortlist class, as PyTorch)."""
        x = O.as_tensor(input, "AdaptiveLogSoftmaxWithLoss.predict")
        batched = x.ndim > 1
        x = x if batched else x.unsqueeze(0)
        head_output = self.head(x)
        output = head_output.argmax(dim=1)
        outside = np.asarray((output >= self.shortlist_size)._data)
        if outside.any():
            rows = _index(np.nonzero(outside)[0], x)
            best = self._full_log_prob(x.index_select(0, rows), head_output.index_select(0, rows)).argmax(dim=1)
            output = output.index_put((rows,), best)
        return output if batched else output.squeeze(0)


def _index(arr, like: Tensor) -> Tensor:
    """An int64 index Tensor on ``like``'s device."""
    return O.as_tensor(np.ascontiguousarray(arr, dtype=np.int64)).to(like.device)
