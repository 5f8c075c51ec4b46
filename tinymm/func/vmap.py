"""``torch.func.vmap`` (``torch.vmap``), done honestly by looping.

PyTorch runs ``func`` once on batched tensors through per-op batching rules. tinymm has no
batching rules, so ``vmap`` maps: for each index b along the batch it takes
``x.select(in_dim, b)`` of every mapped input (unmapped ones, ``in_dim=None``, and keyword
arguments pass unchanged), calls ``func`` on those samples, and stacks each output leaf along
its ``out_dim``. The values are those of PyTorch's vmap (``func`` sees exactly what a batched
call's per-sample view would); the cost is B calls of ``func`` instead of one. ``select`` and
``stack`` are differentiable, so gradients flow through the result to the inputs. Nesting
(``vmap(vmap(f))``) and composing with the transforms (``vmap(grad(f), in_dims=(None, 0, 0))``
for per-sample gradients) work because each layer is an ordinary call.

What differs from PyTorch, because of the loop:
- ``chunk_size`` is checked, then changes nothing (each call is already one sample).
- ``out_dims=None`` asks for an output that is the same for every sample: PyTorch refuses one
  that depends on a mapped input; here one whose values differ between samples is refused
  (ValueError, PyTorch's message), and otherwise the first sample's is returned.
- A batch of size 0 runs ``func`` once on zeros shaped as one sample, to learn the output
  shapes, and returns empty outputs.
- Things PyTorch's vmap refuses inside ``func`` (``.item()``, data-dependent control flow,
  in-place writes of a batched value into an unbatched tensor) simply work per sample.

``randomness``: "different" (each sample draws its own numbers: the loop's natural behaviour),
"same" (the default generator is rewound before each sample, so every sample draws the same
numbers; afterwards it stands where one sample's draws left it) and "error" (the default: the
state of the default CPU generator is compared before and after each call, and a call that
drew from it raises RuntimeError, PyTorch's message). Draws from an explicit ``Generator``
passed to a random op are not watched.
"""
from __future__ import annotations

from tinymm import backend
from tinymm.factories import zeros
from tinymm.func.pytree import StructureMismatch, broadcast_prefix, tree_flatten, tree_unflatten
from tinymm.ops.shape import stack
from tinymm.tensor import Tensor

RANDOMNESS = ("error", "different", "same")


def _name(func) -> str:
    return getattr(func, "__name__", repr(func))


def _is_dim(d) -> bool:
    return isinstance(d, int) and not isinstance(d, bool)


RANDOM_IN_ERROR_MODE = ("vmap: called random operation while in randomness error mode. Please either use the "
                        "'same' or 'different' randomness flags on vmap or perform the randomness operation out of vmap")


def rng_state():
    """(the default CPU generator, its state): compare two to learn whether anything drew."""
    gen = backend.rng("cpu")
    return gen, gen.bit_generator.state


def drew(before) -> bool:
    gen, state = rng_state()
    return gen is not before[0] or state != before[1]


def _mapped_inputs(func, in_dims, args):
    """(flat arg leaves, spec, per-leaf in_dim normalized to >= 0 or None, batch size)."""
    where = f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>)"
    if not args:
        raise ValueError(f"vmap({_name(func)})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are "
                         "trying to vmap over a function with no inputs. The latter is unsupported.")
    if not (_is_dim(in_dims) or isinstance(in_dims, tuple)):
        raise ValueError(f"{where}: expected `in_dims` to be int or a (potentially nested) tuple matching the structure "
                         f"of inputs, got: {type(in_dims)}.")
    leaves, spec = tree_flatten(tuple(args))
    try:
        dims = broadcast_prefix(in_dims, tuple(args))
    except StructureMismatch as e:
        _, dims_spec = tree_flatten(in_dims)
        raise ValueError(f"{where}: in_dims is not compatible with the structure of `inputs`. in_dims has structure "
                         f"{dims_spec} but inputs has structure {spec} ({e}).") from None
    norm, sizes = [], []
    for x, d in zip(leaves, dims):
        if d is None:
            norm.append(None)
            continue
        if not _is_dim(d):
            raise ValueError(f"{where}: Got in_dim={d} of type {type(d)} for an input but in_dim must be either an "
                             "integer dimension or None.")
        if not isinstance(x, Tensor):
            raise ValueError(f"{where}: Got in_dim={d} for an input but the input is of type {type(x)}. We cannot vmap "
                             "over non-Tensor arguments, please use None as the respective in_dim")
        if not -x.ndim <= d < x.ndim:
            raise ValueError(f"{where}: Got in_dim={d} for some input, but that input is a Tensor of dimensionality "
                             f"{x.ndim} so expected in_dim to satisfy -{x.ndim} <= in_dim < {x.ndim}.")
        d %= x.ndim
        norm.append(d)
        sizes.append(x.shape[d])
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if len(set(sizes)) > 1:
        raise ValueError("vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                         f"{sizes} for the mapped dimension")
    return leaves, spec, norm, sizes[0]


def _sample(leaves, spec, dims, b):
    """The arguments of sample ``b`` (``None`` for b: zeros shaped as one sample)."""
    out = []
    for x, d in zip(leaves, dims):
        if d is None:
            out.append(x)
        elif b is None:
            shape = tuple(x.shape[:d]) + tuple(x.shape[d + 1:])
            out.append(zeros(shape, dtype=x.dtype, device=x.device))
        else:
            out.append(x.select(d, b))
    return tree_unflatten(out, spec)


def _flat_out_dims(func, out_dims, output, out_spec, n_leaves):
    """One out_dim per output leaf: ``out_dims`` spread over the outputs as a prefix (a lone
    Tensor output also takes a 1-tuple, as in PyTorch)."""
    def incompatible():
        _, dims_spec = tree_flatten(out_dims)
        return ValueError(f"vmap({_name(func)}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with "
                          f"the structure of `outputs`. out_dims has structure {dims_spec} but outputs has structure "
                          f"{out_spec}.")

    if isinstance(output, Tensor):
        if _is_dim(out_dims) or out_dims is None:
            return [out_dims]
        if isinstance(out_dims, tuple) and len(out_dims) == 1:
            return list(out_dims)
        raise incompatible()
    try:
        return broadcast_prefix(out_dims, output)
    except StructureMismatch:
        raise incompatible() from None


def _same_values(samples) -> bool:
    first = samples[0]
    for s in samples[1:]:
        if s is first:
            continue
        if isinstance(first, Tensor) != isinstance(s, Tensor):
            return False
        if isinstance(first, Tensor):
            if tuple(s.shape) != tuple(first.shape) or not bool((s.detach() == first.detach()).all()):
                return False
        elif not (s == first):
            return False
    return True


def _combine(func, per_sample, out_dims, empty: bool):
    """The per-sample outputs stacked leaf by leaf along their out_dims."""
    name = _name(func)
    flat, specs = zip(*[tree_flatten(o) for o in per_sample])
    if any(s != specs[0] for s in specs[1:]):
        raise ValueError(f"vmap({name}, ...): `{name}` returned outputs of different structures for different samples")
    dims = _flat_out_dims(func, out_dims, per_sample[0], specs[0], len(flat[0]))
    result = []
    for k, d in enumerate(dims):
        samples = [f[k] for f in flat]
        if d is None:
            if not _same_values(samples):
                raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None")
            result.append(samples[0])
            continue
        if not _is_dim(d):
            raise ValueError(f"vmap({name}, ...): out_dims must be an int or None for each output, got {d!r}")
        if not isinstance(samples[0], Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(samples[0])}. "
                             "Did you mean to set out_dims= to None for output?")
        nd = samples[0].ndim + 1
        if not -nd <= d < nd:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {d})")
        stacked = stack(samples, dim=d % nd)
        if empty:
            shape = list(stacked.shape)
            shape[d % nd] = 0
            stacked = zeros(tuple(shape), dtype=stacked.dtype, device=stacked.device)
        result.append(stacked)
    return tree_unflatten(result, specs[0])


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """``torch.func.vmap``: ``func`` mapped over a batch dimension of its inputs (see the module
    docstring: here by calling ``func`` once per sample and stacking the results).

    ``in_dims``: an int for every positional argument, or a tuple with one entry per argument,
    each an int, None (not mapped) or a nested tuple/list/dict matching that argument.
    ``out_dims``: where each output's batch dimension goes: an int, None, or a tuple matching
    the outputs. Keyword arguments are never mapped."""
    if randomness not in RANDOMNESS:
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")
    if chunk_size is not None and not (_is_dim(chunk_size) and chunk_size > 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    def wrapped(*args, **kwargs):
        leaves, spec, dims, size = _mapped_inputs(func, in_dims, args)
        indices = list(range(size)) if size else [None]
        start = rng_state()[1] if randomness == "same" else None
        per_sample = []
        for b in indices:
            sample = _sample(leaves, spec, dims, b)
            if randomness == "same":
                backend.rng("cpu").bit_generator.state = start
            before = rng_state() if randomness == "error" else None
            per_sample.append(func(*sample, **kwargs))
            if before is not None and drew(before):
                raise RuntimeError(RANDOM_IN_ERROR_MODE)
        return _combine(func, per_sample, out_dims, empty=not size)

    wrapped.__name__ = f"vmap({_name(func)})"
    wrapped.__doc__ = getattr(func, "__doc__", None)
    return wrapped
