"""``Buffer`` (PyTorch 2.5's ``nn.Buffer``) and ``UninitializedParameter`` (the lazy layers'
placeholder).

``Buffer(data, persistent=True)`` is a Tensor that a Module registers as a buffer when it is
assigned as an attribute (``self.stats = nn.Buffer(torch.zeros(3))``), persistent or not.
``UninitializedParameter`` is the empty Parameter a lazy layer holds until its first call; it
then becomes a plain ``Parameter`` (the same object, so an optimizer built before keeps it).
"""
from __future__ import annotations

from tinymm.nn.parameter import Parameter
from tinymm.tensor import Tensor


class Buffer(Tensor):
    """A Tensor that becomes a buffer when assigned to a Module attribute."""

    __slots__ = ("persistent",)

    def __init__(self, data=None, *, persistent: bool = True):
        if data is None:
            data = []
        super().__init__(data._data if isinstance(data, Tensor) else data)
        self.persistent = bool(persistent)


class UninitializedParameter(Parameter):
    """A lazy layer's parameter before its shape is known (data of shape (0,))."""

    __slots__ = ()
    cls_to_become = Parameter

    def __repr__(self) -> str:
        return "<UninitializedParameter>"
