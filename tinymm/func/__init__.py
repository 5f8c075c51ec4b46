"""``torch.func``: function transforms (``grad``, ``grad_and_value``, ``vjp``, ``jvp``,
``linearize``, ``jacrev``, ``jacfwd``, ``hessian``, ``vmap``, ``functionalize``) and the
functional use of modules (``functional_call``, ``stack_module_state``,
``replace_all_batch_norm_modules_``), with PyTorch's names, signatures, result layouts and
errors.

The differentiation transforms run on tinymm's reverse-mode autograd (``transforms``;
``jvp``, ``linearize`` and ``jacfwd`` give forward mode's values through reverse mode);
``vmap`` maps by looping over the batch (tinymm has no batching rules). ``torch.vmap`` is
this ``vmap``. Floor 5: the module helpers take ``tinymm.nn`` Modules.
"""
from tinymm.func.batch_norm import replace_all_batch_norm_modules_
from tinymm.func.forward_products import jvp, linearize
from tinymm.func.module_state import functional_call, stack_module_state
from tinymm.func.transforms import grad, grad_and_value, hessian, jacfwd, jacrev, vjp
from tinymm.func.vmap import vmap

__all__ = ["functional_call", "functionalize", "grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "jvp",
           "linearize", "replace_all_batch_norm_modules_", "stack_module_state", "vjp", "vmap"]


def functionalize(func, *, remove: str = "mutations"):
    """``torch.func.functionalize``: in PyTorch, a function computing the same as ``func``
    with its in-place ops replaced by out-of-place ones (for graph capture); its inputs still
    see ``func``'s mutations at the end. tinymm runs eagerly and captures no graphs, so the
    function it returns is ``func`` itself, which computes exactly that."""
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError(f"functionalize(f, remove='mutations'): received invalid argument for remove={remove}. "
                           "Valid options are:\n     remove='mutations': all inplace and out= operators will be removed "
                           "from the program, and replaced with their out-of-place equivalents.\n     "
                           "remove='mutations_and_views': In addition to the above, all aliasing operators {view} will be "
                           "replaced with their non-aliasing counterparts, {view}_copy.\n")
    return func
