"""Floor 2: ``tinymm.layout``, ``tinymm.strided`` and ``tinymm.sparse_coo``, PyTorch's
memory-layout objects. Every dense tinymm tensor is strided (NumPy's and CuPy's layout):
``t.layout is tinymm.strided``; ``tinymm.sparse``'s COO tensors have ``sparse_coo``. Code that
passes ``layout=torch.strided`` along runs unchanged."""
from __future__ import annotations


class layout:  # noqa: N801  (torch.layout)
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"tinymm.{self.name}"

    def __reduce__(self):  # pickles as the one module-level object
        return self.name


strided = layout("strided")
sparse_coo = layout("sparse_coo")  # tinymm.sparse: SparseCOOTensor.layout


def check_layout(layout_arg, where: str) -> None:
    """Accepts None and the strided layout (tinymm's, or PyTorch's object named alike); refuses
    any other layout with a ValueError naming it."""
    if layout_arg is None or layout_arg is strided:
        return
    if str(layout_arg).rsplit(".", 1)[-1] != "strided":
        raise ValueError(f"{where}: only the strided layout is supported here (a sparse tensor is made by "
                         f"tinymm.sparse_coo_tensor or .to_sparse()), got {layout_arg}")
