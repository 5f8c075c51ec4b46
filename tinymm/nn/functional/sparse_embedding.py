"""``F.embedding(..., sparse=True)``: the weight's gradient as a sparse COO tensor, as PyTorch gives it.

Backward returns a hybrid ``SparseCOOTensor`` of the weight's shape: indices (1, n) the looked-up
row of each index (repeats kept: uncoalesced, as PyTorch's), values (n, dim) the incoming
gradient rows; indices equal to ``padding_idx`` are left out. The engine keeps it sparse only
where it lands in a leaf's ``.grad`` (``tinymm.autograd``); anywhere else it is used as its dense
equal. The optimizers that take it: SGD, Adagrad and SparseAdam (as in PyTorch; the others
refuse it by name). ``scale_grad_by_freq`` is refused with PyTorch's error. For
``create_graph=True`` the gradient is the dense one, recorded (``backward_graph``).
"""
from __future__ import annotations

from tinymm.autograd import Function
from tinymm.sparse.coo import SparseCOOTensor
from tinymm.tensor import Tensor

__all__ = ["SparseEmbeddingFn"]


class SparseEmbeddingFn(Function):
    @staticmethod
    def forward(ctx, weight, indices, padding_idx=None, scale_grad_by_freq=False):
        ctx.save_for_backward(indices)
        ctx.meta = (weight.shape, padding_idx, scale_grad_by_freq)
        return weight[indices]

    @staticmethod
    def backward(ctx, g):
        (indices,) = ctx.saved_arrays
        shape, padding_idx, scale_grad_by_freq = ctx.meta
        if scale_grad_by_freq:  # (PyTorch raises in its backward too)
            raise RuntimeError("embedding_backward: scale_grad_by_freq not supported with sparse gradients")
        flat, rows = indices.reshape(-1), g.reshape(-1, shape[1])
        if padding_idx is not None:
            keep = flat != padding_idx
            flat, rows = flat[keep], rows[keep]
        return SparseCOOTensor(flat.reshape(1, -1).astype("int64"), Tensor._wrap(rows.copy()), shape), None

    @staticmethod
    def backward_graph(ctx, g):
        (indices,) = ctx.saved_arrays
        shape, padding_idx, scale_grad_by_freq = ctx.meta
        if scale_grad_by_freq:
            raise RuntimeError("embedding_backward: scale_grad_by_freq not supported with sparse gradients")
        flat = Tensor._wrap(indices.reshape(-1))
        rows = g.reshape(-1, shape[1])
        if padding_idx is not None:
            rows = rows * Tensor._wrap((indices.reshape(-1) != padding_idx)[:, None].astype(g.dtype))
        return g.new_zeros(shape).index_add(0, flat, rows), None
