"""``torch.utils.checkpoint``: activation checkpointing — keep a block's inputs instead of its
activations, and run the block again in backward to get them.

``checkpoint(function, *args, use_reentrant=None, preserve_rng_state=True, **kwargs)`` returns
what ``function(*args, **kwargs)`` returns, computed without recording a graph; backward runs
``function`` again on the saved inputs with recording on (with the random state of the first
run, so dropout draws the same masks), backpropagates the incoming gradients through that,
accumulates the gradients of the parameters it used into their ``.grad``, and hands the inputs'
gradients on. Values and gradients are those of the plain call; memory holds only the inputs.

As with PyTorch's reentrant variant, gradients reach the block's parameters through ``.grad``
(``loss.backward()``), not through ``tinymm.autograd.grad(loss, params)``. The block is recorded
whenever grad mode is on, even if no input requires grad (PyTorch's ``use_reentrant=False``
behaviour), so a first block fed raw data still trains.
"""
from __future__ import annotations

from tinymm import autograd
from tinymm.autograd import Function, enable_grad
from tinymm.factories import ones
from tinymm.random import get_rng_state, set_rng_state
from tinymm.tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential"]


class CheckpointFunction(Function):
    on_tensors = True  # written on Tensors, like a user's Function

    @staticmethod
    def forward(ctx, anchor, run, preserve_rng_state, *args):
        ctx.run, ctx.args = run, args
        ctx.rng_state = get_rng_state() if preserve_rng_state else None
        ctx.save_for_backward(*[a for a in args if isinstance(a, Tensor)])
        return run(*args)

    @staticmethod
    def backward(ctx, *grads):
        ctx.saved_tensors  # refuses inputs changed in place since forward
        inputs = [a.detach().requires_grad_(a.requires_grad) if isinstance(a, Tensor) else a for a in ctx.args]
        now = get_rng_state() if ctx.rng_state is not None else None
        if ctx.rng_state is not None:
            set_rng_state(ctx.rng_state)
        try:
            with enable_grad():
                out = ctx.run(*inputs)
        finally:
            if now is not None:
                set_rng_state(now)
        outs = out if isinstance(out, tuple) else (out,)
        pairs = [(o, g) for o, g in zip(outs, grads) if isinstance(o, Tensor) and o.requires_grad and g is not None]
        if pairs:
            autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        grads_in = tuple(a.grad if isinstance(a, Tensor) and a.requires_grad else None for a in inputs)
        return (None, None, None) + grads_in


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default", debug=False,
               preserve_rng_state: bool = True, **kwargs):
    """``function(*args, **kwargs)``, with its activations recomputed in backward (see the
    module docstring)."""
    if context_fn is not None:
        raise NotImplementedError("checkpoint: context_fn is not supported by tinymm")
    if kwargs and use_reentrant is not False:
        # PyTorch's reentrant variant (the default when use_reentrant is not given) takes only
        # positional inputs: keywords are refused rather than silently passed on
        raise ValueError(f"Unexpected keyword arguments: {','.join(kwargs)} (checkpoint passes keyword arguments "
                         f"to the function only with use_reentrant=False)")
    run = (lambda *a: function(*a, **kwargs)) if kwargs else function
    if not autograd.is_grad_enabled():
        return run(*args)
    anchor = ones((), requires_grad=True)  # records the node even when no input requires grad
    return CheckpointFunction.apply(anchor, run, preserve_rng_state, *args)


def checkpoint_sequential(functions, segments: int, input, use_reentrant=None, **kwargs):
    """Run ``functions`` (a Sequential or a list of modules) in ``segments`` checkpointed chunks;
    the last chunk runs normally, as in PyTorch."""
    fns = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be >= 1, got {segments}")
    size = len(fns) // segments

    def chunk(start, end):
        def run(x):
            for f in fns[start:end + 1]:
                x = f(x)
            return x
        return run

    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(chunk(start, end), input, use_reentrant=use_reentrant, **kwargs)
    return chunk(end + 1, len(fns) - 1)(input)
