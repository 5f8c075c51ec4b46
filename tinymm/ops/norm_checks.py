"""Checks shared by ``torch.norm`` (ops/maths.py) and ``linalg.vector_norm`` (ops/matrix_norms.py),
in a module of their own so neither imports the other."""
import math

from tinymm.ops._util import ShapeError


def refuse_empty_without_identity(x, axes, ord) -> None:
    """Max/min-like norms (inf, and negative orders) have no identity: PyTorch refuses them when
    a reduced dimension is empty (probe16: ord=inf over an empty tensor returned 0). ``axes``
    None means every dim."""
    reduced_empty = x.numel() == 0 if axes is None else any(x.shape[a] == 0 for a in axes)
    if reduced_empty and (float(ord) < 0 or math.isinf(float(ord))):
        raise ShapeError(f"linalg.vector_norm cannot compute the {ord} norm on an empty tensor because the "
                         "operation does not have an identity")
