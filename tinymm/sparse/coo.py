"""Floor 3: sparse COO tensors (``torch.sparse_coo_tensor``), enough for graph networks.

A ``SparseCOOTensor`` holds ``indices`` (int64, (sparse_dim, nnz)), ``values`` (a Tensor,
(nnz,) scalar values, or (nnz, *dense dims) for a hybrid tensor such as an Embedding's sparse
weight gradient, whose rows are the values) and a ``size``. The values are an ordinary Tensor, so
a product's gradient reaches them (and any tensor they were computed from) through the usual
engine. What it does, as PyTorch:

* ``S @ D``, ``D @ S``, ``torch.mm``/``matmul``/``spmm``/``torch.sparse.mm`` with a dense
  2-D (or 1-D) operand: a dense result, differentiable in the dense operand and the values
  (dD = Sᵀ g, dvalues_k = Σ_j g[row_k, j]·D[col_k, j]); SciPy's (CuPy's) CSR product;
* ``to_dense()`` (differentiable), ``Tensor.to_sparse()``, ``coalesce()`` (duplicates summed,
  indices sorted; differentiable in the values), ``indices()``/``values()`` (coalesced only),
  ``_indices()``/``_values()``/``_nnz()``, ``t()``, ``* number``, ``S + S``, ``sum``,
  ``torch.sparse.sum``, dtype and device moves, ``requires_grad_``, ``.grad``.

A dense op given a sparse tensor refuses it by name (``as_tensor``). Unlike PyTorch, a sparse
tensor is not an instance of ``tinymm.Tensor`` (a dense op cannot take it by mistake); its
``.grad`` is the values' gradient on the same indices.
"""
from __future__ import annotations

import numpy as np

from tinymm import backend
from tinymm.autograd import Function
from tinymm.dtype_objects import as_dtype
from tinymm.layout_objects import sparse_coo
from tinymm.ops._util import ShapeError, xp_of
from tinymm.ops.index import add_at
from tinymm.tensor import Size, Tensor


def _csr(values, rows, cols, shape):
    """A CSR matrix (SciPy's or CuPy's) of the given entries; duplicates are summed."""
    if xp_of(values) is np:
        import scipy.sparse as sp
    else:
        import cupyx.scipy.sparse as sp
    return sp.csr_matrix((values, (rows, cols)), shape=shape)


class SparseDenseMM(Function):
    """S @ D with S given by (values, rows, cols, n_rows) and D dense 2-D."""

    @staticmethod
    def forward(ctx, values, dense, rows, cols, n_rows):
        ctx.meta = (rows, cols, n_rows, dense.shape[0])
        ctx.save_for_backward(values if ctx.needs_input_grad[1] else None,
                              dense if ctx.needs_input_grad[0] else None)
        out = _csr(values, rows, cols, (n_rows, dense.shape[0])) @ dense
        return xp_of(dense).asarray(out, dtype=dense.dtype)

    @staticmethod
    def backward(ctx, g):
        values, dense = ctx.saved_arrays
        rows, cols, n_rows, n_inner = ctx.meta
        nv, nd = ctx.needs_input_grad[:2]
        gv = (g[rows] * dense[cols]).sum(axis=1) if nv else None
        gd = xp_of(g).asarray(_csr(values, cols, rows, (n_inner, n_rows)) @ g, dtype=g.dtype) if nd else None
        return gv, gd


class ToDense(Function):
    """Scatter-add the values into zeros of ``shape``; the gradient is g at the indices."""

    @staticmethod
    def forward(ctx, values, index, shape):
        ctx.index = index
        out = xp_of(values).zeros(shape, values.dtype)
        add_at(out, index, values)  # a repeated index adds (uncoalesced entries)
        return out

    @staticmethod
    def backward(ctx, g):
        return g[ctx.index]


class SparseCOOTensor:
    """A sparse COO tensor; see the module docstring."""

    __slots__ = ("_indices_arr", "_values_t", "_size", "_coalesced")
    is_sparse = True
    is_sparse_csr = False
    layout = sparse_coo

    def __init__(self, indices, values: Tensor, size, coalesced: bool = False):
        self._indices_arr = indices
        self._values_t = values
        self._size = Size(tuple(int(s) for s in size))
        self._coalesced = coalesced

    # ---- description
    @property
    def shape(self) -> Size:
        return self._size

    def size(self, dim=None):
        return self._size if dim is None else self._size[dim]

    def dim(self) -> int:
        return len(self._size)

    ndim = property(dim)

    def sparse_dim(self) -> int:
        return self._indices_arr.shape[0]

    def dense_dim(self) -> int:
        return self._values_t.ndim - 1  # probe8: hybrid values (nnz, *dense) (an Embedding's sparse gradient)

    def _nnz(self) -> int:
        return int(self._indices_arr.shape[1])

    @property
    def dtype(self):
        return self._values_t.dtype

    @property
    def device(self):
        return self._values_t.device

    @property
    def is_cuda(self) -> bool:
        return self._values_t.is_cuda

    @property
    def requires_grad(self) -> bool:
        return self._values_t.requires_grad

    def requires_grad_(self, requires_grad: bool = True):
        self._values_t.requires_grad_(requires_grad)
        return self

    @property
    def grad(self):
        g = self._values_t.grad
        return None if g is None else SparseCOOTensor(self._indices_arr, g, self._size, self._coalesced)

    def numel(self) -> int:
        return int(np.prod(self._size))

    def is_coalesced(self) -> bool:
        return self._coalesced

    def __repr__(self) -> str:
        pad = " " * 7
        ind = repr(Tensor._wrap(self._indices_arr)).replace("\n", "\n" + pad + " " * 8)
        val = repr(self._values_t.detach()).replace("\n", "\n" + pad + " " * 7)
        grad = ", requires_grad=True" if self.requires_grad else ""
        return (f"tensor(indices={ind},\n{pad}values={val},\n{pad}size={tuple(self._size)}, nnz={self._nnz()}, "
                f"layout={self.layout}{grad})")

    # ---- parts
    def _indices(self) -> Tensor:
        return Tensor._wrap(self._indices_arr)

    def _values(self) -> Tensor:
        return self._values_t

    def indices(self) -> Tensor:
        if not self._coalesced:
            raise RuntimeError("Cannot get indices on an uncoalesced tensor, please call .coalesce() first")
        return self._indices()

    def values(self) -> Tensor:
        if not self._coalesced:
            raise RuntimeError("Cannot get values on an uncoalesced tensor, please call .coalesce() first")
        return self._values_t

    def coalesce(self) -> SparseCOOTensor:
        """Indices sorted (row-major order) and unique; duplicates' values summed."""
        if self._coalesced:
            return self
        xp = xp_of(self._indices_arr)
        sparse_size = tuple(self._size)[:self.sparse_dim()]
        linear = xp.ravel_multi_index(tuple(self._indices_arr), sparse_size) if self._nnz() else \
            xp.zeros(0, np.int64)
        keys, inverse = xp.unique(linear, return_inverse=True)
        values = self._values_t.new_zeros((len(keys),) + tuple(self._values_t.shape[1:])).index_add(
            0, Tensor._wrap(inverse.reshape(-1)), self._values_t)
        indices = xp.stack(xp.unravel_index(keys, sparse_size)).astype(np.int64) if len(keys) else \
            xp.zeros((self.sparse_dim(), 0), np.int64)
        return SparseCOOTensor(indices, values, self._size, coalesced=True)

    def to_dense(self, dtype=None) -> Tensor:
        if self.sparse_dim() == 0:  # a 0-dim sparse tensor: its (at most one) value
            out = self._values_t.sum()
            return out if dtype is None else out.to(dtype)
        out = ToDense.apply(self._values_t, tuple(self._indices_arr), tuple(self._size))
        return out if dtype is None else out.to(dtype)

    def to_sparse(self) -> SparseCOOTensor:
        return self

    def zero_(self) -> SparseCOOTensor:
        """No entries left (nnz 0), in place, as PyTorch's sparse ``zero_``."""
        xp = xp_of(self._indices_arr)
        self._indices_arr = xp.zeros((self.sparse_dim(), 0), np.int64)
        self._values_t = self._values_t.new_zeros((0,) + tuple(self._values_t.shape[1:]))
        self._coalesced = True
        return self

    def _only_sparse_dims(self, what: str) -> None:
        if self.dense_dim():
            raise NotImplementedError(f"{what}: a sparse tensor with dense dims (values of shape "
                                      f"{tuple(self._values_t.shape)}) is not supported by tinymm here")

    def t(self) -> SparseCOOTensor:
        self._only_sparse_dims("t()")
        if self.dim() != 2:
            raise ShapeError(f"t() expects a tensor with <= 2 sparse dims, got {self.dim()}")
        return SparseCOOTensor(self._indices_arr[::-1].copy(), self._values_t, self._size[::-1])

    def transpose(self, dim0: int, dim1: int) -> SparseCOOTensor:
        self._only_sparse_dims("transpose()")
        order = list(range(self.dim()))
        order[dim0], order[dim1] = order[dim1], order[dim0]
        return SparseCOOTensor(self._indices_arr[order].copy(), self._values_t, tuple(self._size[i] for i in order))

    def detach(self) -> SparseCOOTensor:
        return SparseCOOTensor(self._indices_arr, self._values_t.detach(), self._size, self._coalesced)

    def clone(self) -> SparseCOOTensor:
        return SparseCOOTensor(self._indices_arr.copy(), self._values_t.clone(), self._size, self._coalesced)

    # ---- moves
    def to(self, *args, **kwargs) -> SparseCOOTensor:
        values = self._values_t.to(*args, **kwargs)
        xp = backend.array_module(values.device.type)
        indices = self._indices_arr if xp_of(self._indices_arr) is xp else backend.to_device(
            self._indices_arr, values.device.type)
        return SparseCOOTensor(indices, values, self._size, self._coalesced)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda")

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def type(self, dtype=None):
        return self.to(dtype)

    # ---- arithmetic
    def __mul__(self, other):
        if isinstance(other, (int, float)) or (isinstance(other, Tensor) and other.ndim == 0):
            return SparseCOOTensor(self._indices_arr, self._values_t * other, self._size, self._coalesced)
        if isinstance(other, Tensor) and tuple(other.shape) == tuple(self._size) and not self.dense_dim():
            # sparse * dense of the same shape: sparse, the dense entries at the stored indices
            picked = other[tuple(Tensor._wrap(i) for i in self._indices_arr)]
            return SparseCOOTensor(self._indices_arr, self._values_t * picked, self._size, self._coalesced)
        raise NotImplementedError(f"sparse * {type(other).__name__}: tinymm multiplies a sparse tensor by a number, a "
                                  f"0-dim tensor or a dense tensor of its own shape {tuple(self._size)}")

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self * (1.0 / other)

    def __neg__(self):
        return self * -1

    def __add__(self, other):
        if not isinstance(other, SparseCOOTensor):
            raise NotImplementedError("sparse + dense: add a sparse tensor, or use .to_dense()")
        if tuple(other.shape) != tuple(self.shape):
            raise ShapeError(f"add: sparse tensors of sizes {tuple(self.shape)} and {tuple(other.shape)}")
        xp = xp_of(self._indices_arr)
        from tinymm.ops.shape import cat

        both = SparseCOOTensor(xp.concatenate([self._indices_arr, other._indices_arr], axis=1),
                               cat([self._values_t, other._values_t]), self._size)
        return both.coalesce()

    def __sub__(self, other):
        return self + (-other)

    def sum(self, dim=None, keepdim=False, dtype=None):
        if dim is None:
            total = self._values_t.sum()
            return total if dtype is None else total.to(dtype)
        return sparse_sum(self, dim)

    def __matmul__(self, other):
        return mm(self, other)

    def __rmatmul__(self, other):
        return mm(other, self)

    def matmul(self, other):
        return mm(self, other)

    def mm(self, other):
        return mm(self, other)


# ----------------------------------------------------------------------------- functions


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None, pin_memory=False, requires_grad=False,
                      check_invariants=None, is_coalesced=None) -> SparseCOOTensor:
    """``torch.sparse_coo_tensor``: indices (sparse_dim, nnz) int, values (nnz,); size inferred
    (1 + the largest index per dim) when None. Indices are checked against size."""
    from tinymm.factories import tensor as make_tensor

    idx = indices._data if isinstance(indices, Tensor) else np.asarray(indices)
    if idx.dtype.kind not in "iuf":
        raise RuntimeError(f"indices must be an int64 tensor, got {idx.dtype}")
    idx = idx.astype(np.int64)  # (float indices are cast, as PyTorch casts them)
    if idx.ndim != 2:
        raise ShapeError(f"indices must be sparse_dim x nnz, but got: {list(idx.shape)}")
    vals = values if isinstance(values, Tensor) else make_tensor(values, dtype=dtype)
    if dtype is not None:
        vals = vals.to(as_dtype(dtype))
    if device is not None:
        vals = vals.to(device)
        idx = backend.to_device(idx, vals.device.type)
    if vals.ndim < 1:
        raise ShapeError("sparse_coo_tensor: values must have at least one dim (nnz, *dense dims)")
    if vals.shape[0] != idx.shape[1]:
        raise ShapeError(f"indices and values must have same nnz, but got nnz from indices: {idx.shape[1]}, "
                         f"nnz from values: {vals.shape[0]}")
    dense_shape = tuple(int(d) for d in vals.shape[1:])
    if size is None:
        size = (tuple(int(m) + 1 for m in idx.max(axis=1)) if idx.shape[1] else (0,) * idx.shape[0]) + dense_shape
    size = tuple(int(s) for s in size)
    if len(size) != idx.shape[0] + len(dense_shape) or size[idx.shape[0]:] != dense_shape:
        raise ShapeError(f"sparse_coo_tensor: size {size} does not fit {idx.shape[0]} sparse dims and values of "
                         f"shape {tuple(vals.shape)} (dense dims {dense_shape})")
    if idx.shape[1]:
        if int(idx.min()) < 0:
            raise RuntimeError(f"found negative index {int(idx.min())} for sparse_coo_tensor")
        too_big = [d for d in range(idx.shape[0]) if int(idx[d].max()) >= size[d]]
        if too_big:
            d = too_big[0]
            raise RuntimeError(f"size is inconsistent with indices: for dim {d}, size is {size[d]} but found index "
                               f"{int(idx[d].max())}")
    if requires_grad:  # a leaf of its own, as PyTorch's (the values passed in are left alone)
        vals = vals.detach().requires_grad_(True)
    return SparseCOOTensor(idx, vals, size, coalesced=bool(is_coalesced))


def to_sparse(x: Tensor, sparse_dim=None) -> SparseCOOTensor:
    """``Tensor.to_sparse()``: the non-zero entries of x, coalesced; differentiable in x."""
    if sparse_dim is not None and sparse_dim != x.ndim:
        raise NotImplementedError("to_sparse(sparse_dim): dense dims are not supported by tinymm")
    xp = xp_of(x._data)
    if x.ndim == 0:  # a scalar: no sparse dims, one value (or none when it is 0)
        keep = bool(x._data != 0)
        return SparseCOOTensor(xp.zeros((0, int(keep)), np.int64), x.reshape(1)[: int(keep)], (), coalesced=True)
    nz = xp.nonzero(x._data)
    return SparseCOOTensor(xp.stack(nz).astype(np.int64), x[tuple(Tensor._wrap(i) for i in nz)], x.shape, coalesced=True)


def mm(a, b) -> Tensor:
    """Sparse @ dense or dense @ sparse (2-D, or a 1-D dense vector): a dense result."""
    if isinstance(a, SparseCOOTensor) and isinstance(b, SparseCOOTensor):
        return mm(a, b.to_dense())
    if isinstance(b, SparseCOOTensor):  # D S = (Sᵀ Dᵀ)ᵀ
        if not isinstance(a, Tensor):
            raise TypeError(f"mm: expected a Tensor, got {type(a).__name__}")
        return mm(b.t(), a.t() if a.ndim == 2 else a).t() if a.ndim == 2 else mm(b.t(), a)
    if not isinstance(b, Tensor):
        raise TypeError(f"mm: expected a Tensor, got {type(b).__name__}")
    a._only_sparse_dims("mm")
    if a.dim() != 2:
        raise NotImplementedError(f"mm: a {a.dim()}-dim sparse operand (tinymm multiplies 2-D sparse matrices)")
    vector = b.ndim == 1
    d = b.reshape(-1, 1) if vector else b
    if d.ndim != 2 or d.shape[0] != a.shape[1]:
        raise ShapeError(f"mm: mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
                         f"{'x'.join(str(s) for s in b.shape)})")
    if d.dtype != a.dtype:
        raise RuntimeError(f"mm: expected mat1 and mat2 to have the same dtype, but got: {a.dtype} != {d.dtype}")
    if d.device.type != a.device.type:
        raise RuntimeError(f"mm: sparse tensor on {a.device.type}, dense on {d.device.type}")
    rows, cols = a._indices_arr[0], a._indices_arr[1]
    out = SparseDenseMM.apply(a._values_t, d, rows, cols, a.shape[0])
    return out.reshape(-1) if vector else out


def sparse_sum(s: SparseCOOTensor, dim=None):
    """``torch.sparse.sum``: all values (a dense 0-dim tensor), or over ``dim`` (an int or a
    tuple): a sparse tensor of the remaining dims, coalesced (a dense one when none remain)."""
    if dim is None:
        return s._values_t.sum()
    s._only_sparse_dims("sparse.sum(dim)")
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    dims = tuple(d % s.dim() for d in dims)
    keep = [d for d in range(s.dim()) if d not in dims]
    if not keep:
        return s._values_t.sum()
    return SparseCOOTensor(s._indices_arr[keep].copy(), s._values_t, tuple(s._size[d] for d in keep)).coalesce()
