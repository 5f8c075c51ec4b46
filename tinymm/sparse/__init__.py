"""``torch.sparse``: sparse COO tensors and their products (see ``tinymm.sparse.coo``)."""
from tinymm.sparse.coo import SparseCOOTensor, mm, sparse_coo_tensor, to_sparse
from tinymm.sparse.coo import sparse_sum as sum  # noqa: A001  (torch.sparse.sum)

__all__ = ["SparseCOOTensor", "mm", "sum", "sparse_coo_tensor", "to_sparse", "FloatTensor", "DoubleTensor",
           "addmm"]


def _legacy(dtype_name):
    def make(indices, values, size=None, *, device=None):
        """The deprecated ``torch.sparse.FloatTensor(indices, values, size)`` spelling."""
        import warnings

        import numpy as np

        warnings.warn("torch.sparse.SparseTensor(indices, values, shape, *, device=) is deprecated.  Please use "
                      "torch.sparse_coo_tensor(indices, values, shape, dtype=, device=).", UserWarning, stacklevel=2)
        return sparse_coo_tensor(indices, values, size, dtype=np.dtype(dtype_name), device=device)

    make.__name__ = make.__qualname__ = dtype_name.capitalize() + "Tensor"
    return make


FloatTensor = _legacy("float32")
FloatTensor.__name__ = FloatTensor.__qualname__ = "FloatTensor"
DoubleTensor = _legacy("float64")
DoubleTensor.__name__ = DoubleTensor.__qualname__ = "DoubleTensor"


def addmm(mat, mat1, mat2, *, beta=1, alpha=1):
    """``torch.sparse.addmm``: beta·mat + alpha·(mat1 @ mat2), mat1 sparse."""
    return beta * mat + alpha * mm(mat1, mat2)
