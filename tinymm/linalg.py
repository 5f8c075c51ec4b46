"""``tinymm.linalg``: PyTorch's ``torch.linalg`` namespace (real float32/float64 matrices).

The functions live in ``tinymm.ops`` (``decompositions``, ``matrix_solve``, ``matrix_norms``,
``products``) beside their Functions and backward formulas; this module gives them the names
``torch.linalg`` uses. Left out: ``eig`` and ``eigvals`` (complex results; the decompositions
here are real-valued) and ``ldl_factor``/``ldl_factor_ex``/``ldl_solve``. ``driver=`` arguments of
``svd``/``svdvals`` are accepted and ignored; ``lstsq``'s driver chooses which fields are
filled, as in PyTorch (the solution is always the SVD's minimum-norm one). The ``info`` of the
``*_ex`` functions is LAPACK's, computed on the host after a failure.
"""
from tinymm.ops.decompositions import (  # noqa: F401
    LinAlgError,
    cholesky,
    cholesky_ex,
    eigh,
    eigvalsh,
    householder_product,
    lu,
    lu_factor,
    lu_factor_ex,
    qr,
    svd,
    svdvals,
)
from tinymm.ops.linalg import matmul  # noqa: F401
from tinymm.ops.eig_general import eig, eigvals  # noqa: F401  (lead)
from tinymm.ops.matrix_norms import cond, matrix_norm, norm, vector_norm  # noqa: F401
from tinymm.ops.matrix_solve import (  # noqa: F401
    det,
    inv,
    inv_ex,
    lstsq,
    lu_solve,
    matrix_exp,
    matrix_power,
    matrix_rank,
    pinv,
    slogdet,
    solve,
    solve_ex,
    solve_triangular,
    tensorinv,
    tensorsolve,
)
from tinymm.ops.products import linalg_cross as cross  # noqa: F401
from tinymm.ops.products import linalg_diagonal as diagonal  # noqa: F401
from tinymm.ops.products import linalg_vander as vander  # noqa: F401
from tinymm.ops.products import multi_dot, vecdot  # noqa: F401

__all__ = [
    "LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal", "eig", "eigh", "eigvals", "eigvalsh",
    "householder_product", "inv", "inv_ex", "lstsq", "lu", "lu_factor", "lu_factor_ex", "lu_solve", "matmul",
    "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet",
    "solve", "solve_ex", "solve_triangular", "svd", "svdvals", "tensorinv", "tensorsolve", "vander", "vecdot",
    "vector_norm",
]
