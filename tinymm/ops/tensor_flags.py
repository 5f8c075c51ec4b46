"""Tensor flags PyTorch code reads that are always False here: tinymm's tensors are dense,
unquantized, hold real memory (no ``meta`` device), and are never nested, MKL-DNN or sparse CSR.

    if p.grad.is_sparse: ...          # optimizers and gradient clipping read this
"""
from __future__ import annotations

_ALWAYS_FALSE = ("is_sparse", "is_sparse_csr", "is_quantized", "is_meta", "is_mkldnn", "is_nested")

TENSOR_FLAG_PROPERTIES = {name: property(lambda self: False, doc=f"``Tensor.{name}``: always False in tinymm.")
                          for name in _ALWAYS_FALSE}
