"""``torch.func``: function transforms (``grad``, ``grad_and_value``, ``vjp``, ``jacrev``,
``jacfwd``, ``hessian``, ``vmap``) and the functional use of modules (``functional_call``,
``stack_module_state``), with PyTorch's names, signatures, result layouts and errors.

The differentiation transforms run on tinymm's reverse-mode autograd (``transforms``);
``vmap`` maps by looping over the batch (``vmap``: tinymm has no batching rules); ``jacfwd``
gives forward mode's values through reverse mode. ``torch.vmap`` is this ``vmap``.
"""
from tinymm.func.module_state import functional_call, stack_module_state
from tinymm.func.transforms import grad, grad_and_value, hessian, jacfwd, jacrev, vjp
from tinymm.func.vmap import vmap

__all__ = ["functional_call", "grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "stack_module_state", "vjp", "vmap"]
