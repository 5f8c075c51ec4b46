"""``torch.func``'s differentiation transforms, built on ``autograd.grad`` (reverse mode):

    grad(f)(x)             df/dx for a scalar f              one backward pass
    grad_and_value(f)(x)   (df/dx, f(x))
    vjp(f, x)              (f(x), u -> u^T J)                one backward pass per call of the pullback
    jacrev(f)(x)           J, shaped f(x).shape + x.shape    one backward pass per output element
    jacfwd(f)(x)           the same J (computed by reverse mode here, not by forward mode)
    hessian(f)(x)          jacfwd(jacrev(f))(x)

How a transform runs: each differentiated argument (a Tensor, or every Tensor leaf of a
dict/tuple/list) is replaced by a fresh leaf that requires grad (a detached copy), or, when
the caller's own autograd already tracks it and grad mode is on, by a view of it that stays in
the caller's graph; ``f`` runs with grad mode on; ``autograd.grad`` differentiates its output
with respect to those stand-ins. The gradients are built with ``create_graph=True`` exactly
when the output's graph reaches a tensor tracked outside this transform (an outer transform's
input, a captured parameter, the caller's input that requires grad), so transforms nest
(``grad(grad(f))``, ``jacrev(jacrev(f))``, ``vmap(grad(f))``) and compose with ordinary
``backward()`` as PyTorch's do (differentiating a gradient again needs ops whose backward is
differentiable: see ``tinymm.autograd_graph``; one without raises, naming it). Every returned tensor that reaches no such outside tensor is
returned detached: the stand-ins never leak to the caller. Under an outer ``no_grad`` the
transform still differentiates ``f`` but returns results outside any graph, as PyTorch's do.

Errors follow PyTorch's: ``grad`` of a non-scalar or non-Tensor output raises RuntimeError, a
non-Tensor differentiated argument ValueError, an integer one RuntimeError, ``argnums`` out of
range or empty RuntimeError. An output that does not depend on an argument gives zeros.
"""
from __future__ import annotations

import weakref

from tinymm import autograd
from tinymm.factories import zeros, zeros_like
from tinymm.func.pytree import tree_flatten, tree_unflatten
from tinymm.func.vmap import RANDOM_IN_ERROR_MODE, drew, rng_state
from tinymm.ops.shape import stack
from tinymm.tensor import Tensor


# id -> weak reference of the stand-ins of transforms that have returned: private to their
# transform, they never count as tracked outside another one (an entry leaves with its tensor,
# so a reused id is never mistaken for it).
_RETIRED: dict = {}


def _retire(tensors) -> None:
    for t in tensors:
        key = id(t)
        _RETIRED[key] = weakref.ref(t, lambda _, key=key: _RETIRED.pop(key, None))


def _retired(t) -> bool:
    ref = _RETIRED.get(id(t))
    return ref is not None and ref() is t


def reaches_outside(tensors, inside_ids) -> bool:
    """Whether the graph of any of ``tensors`` reaches a leaf that requires grad and is
    tracked outside this transform: not one of its own stand-ins (ids in ``inside_ids``) nor a
    stand-in of a transform that has already returned. An enclosing transform's stand-ins do
    count: that is how transforms nest."""
    seen = set()
    stack_ = [t for t in tensors if isinstance(t, Tensor) and t.requires_grad]
    while stack_:
        t = stack_.pop()
        node = t._node
        if node is None:
            if id(t) not in inside_ids and not _retired(t):
                return True
            continue
        ctx = node[0]
        if id(ctx) in seen:
            continue
        seen.add(id(ctx))
        stack_.extend(i for i in ctx.inputs if i is not None and i.requires_grad)
    return False


def normalize_argnums(argnums, n_args: int):
    """(tuple of non-negative positions, whether argnums was a single int)."""
    single = isinstance(argnums, int)  # (True counts as 1, as in PyTorch)
    items = (argnums,) if single else argnums
    if not single and not (isinstance(argnums, tuple) and all(isinstance(a, int) for a in argnums)):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    if not items:
        raise RuntimeError("argnums must be non-empty")
    out = []
    for a in items:
        if not -n_args <= a < n_args:
            raise RuntimeError(f"Got argnum={a}, but only {n_args} positional inputs")
        out.append(a % n_args)
    if len(set(out)) != len(out):
        raise RuntimeError(f"argnums must be unique, got {argnums}")
    return tuple(out), single


class Traced:
    """``func(*args, **kwargs)`` run once on stand-ins for the arguments at ``argnums``, ready
    for reverse products with respect to those stand-ins (``pullback``)."""

    def __init__(self, func, args, kwargs, argnums, single: bool):
        self.outer_grad = autograd.is_grad_enabled()
        self.single = single
        self.argnums = argnums
        self.inside_ids: set = set()
        self.private: list = []  # the fresh leaves this transform made (ids in inside_ids)
        self.inputs: list = []  # the stand-ins, argument by argument, leaf by leaf
        self.arg_specs = []
        args = list(args)
        for n in argnums:
            leaves, spec = tree_flatten(args[n])
            stand_ins = [self._stand_in(x) for x in leaves]
            self.inputs += stand_ins
            self.arg_specs.append((len(stand_ins), spec))
            args[n] = tree_unflatten(stand_ins, spec)
        with autograd.enable_grad():
            self.output = func(*args, **kwargs)

    def _stand_in(self, x):
        if not isinstance(x, Tensor):
            raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")
        if x.dtype.kind not in "fc":
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        if self.outer_grad and x.requires_grad:
            return x.view_as(x)  # stays in the caller's graph
        return self.fresh_leaf(x.detach())

    def fresh_leaf(self, x):
        """``x`` made a leaf that requires grad and is private to this transform."""
        leaf = x.requires_grad_(True)
        self.private.append(leaf)
        self.inside_ids.add(id(leaf))
        return leaf

    def finish(self, t):
        """``t`` as the caller gets it: detached unless it reaches a tensor tracked outside."""
        if isinstance(t, Tensor) and t.requires_grad and not (self.outer_grad and reaches_outside([t], self.inside_ids)):
            return t.detach()
        return t

    def needs_graph(self, outputs, cotangents) -> bool:
        return self.outer_grad and (reaches_outside(outputs, self.inside_ids)
                                    or any(c.requires_grad for c in cotangents))

    def pullback(self, outputs, cotangents, create_graph: bool) -> list:
        """sum_k cotangents[k] . d outputs[k] / d stand-ins, one gradient per stand-in (zeros
        where no output depends on it)."""
        pairs = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
        grads = [None] * len(self.inputs)
        if pairs:
            grads = autograd.grad([o for o, _ in pairs], self.inputs, [c for _, c in pairs], retain_graph=True,
                                  create_graph=create_graph, allow_unused=True)
        return [zeros_like(x.detach()) if g is None else g for x, g in zip(self.inputs, grads)]

    def retire(self) -> None:
        """Called when the transform returns: its stand-ins are no longer anyone's inputs."""
        _retire(self.private)

    def per_argument(self, flat: list):
        """Flat per-stand-in values regrouped as the differentiated arguments: one tree, or a
        tuple of trees when argnums was a tuple."""
        out, i = [], 0
        for n, spec in self.arg_specs:
            out.append(tree_unflatten(flat[i:i + n], spec))
            i += n
        return out[0] if self.single else tuple(out)


def split_aux(output, has_aux: bool, api: str):
    if not has_aux:
        return output, None
    if not (isinstance(output, tuple) and len(output) == 2):
        raise RuntimeError(f"{api}: output of function f should be a tuple: (output, aux) if has_aux is True")
    return output


def check_tensors(tree, message: str):
    leaves, spec = tree_flatten(tree)
    for x in leaves:
        if not isinstance(x, Tensor):
            raise RuntimeError(f"{message}, got unsupported type {type(x)}")
    return leaves, spec


# ----------------------------------------------------------------------------- grad


def grad_and_value(func, argnums=0, has_aux: bool = False):
    """``torch.func.grad_and_value``: a function returning (the gradient of ``func``'s scalar
    output with respect to the arguments at ``argnums``, that output); with ``has_aux``,
    ``func`` returns (output, aux) and the result is (gradient, (output, aux))."""
    api = "grad_and_value(f)(*args)"

    def wrapper(*args, **kwargs):
        nums, single = normalize_argnums(argnums, len(args))
        tr = Traced(func, args, kwargs, nums, single)
        out, aux = split_aux(tr.output, has_aux, api)
        if not isinstance(out, Tensor):
            raise RuntimeError(f"{api}: Expected f(*args) to return a Tensor, got {type(out)}")
        if out.ndim != 0:
            raise RuntimeError(f"{api}: Expected f(*args) to return a scalar Tensor, got tensor with {out.ndim} dims. "
                               "Maybe you wanted to use the vjp or jacrev APIs instead?")
        if has_aux:
            aux_leaves, aux_spec = check_tensors(aux, "Expected tensors")
        seed = zeros_like(out.detach()) + 1
        grads = tr.pullback([out], [seed], tr.needs_graph([out], []))
        grads = tr.per_argument([tr.finish(g) for g in grads])
        value = tr.finish(out)
        if has_aux:
            value = (value, tree_unflatten([tr.finish(a) for a in aux_leaves], aux_spec))
        tr.retire()
        return grads, value

    wrapper.__name__ = f"grad_and_value({getattr(func, '__name__', 'f')})"
    return wrapper


def grad(func, argnums=0, has_aux: bool = False):
    """``torch.func.grad``: a function returning the gradient of ``func``'s scalar output with
    respect to the arguments at ``argnums`` (an int: that argument's gradient, shaped as it,
    a dict for a dict of Tensors...; a tuple: a tuple of them); with ``has_aux``, ``func``
    returns (output, aux) and the result is (gradient, aux)."""
    inner = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        grads, value = inner(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    wrapper.__name__ = f"grad({getattr(func, '__name__', 'f')})"
    return wrapper


# ----------------------------------------------------------------------------- vjp


def vjp(func, *primals, has_aux: bool = False):
    """``torch.func.vjp``: (func(*primals), vjp_fn[, aux]). ``vjp_fn(cotangents)``, with
    ``cotangents`` shaped as the output, returns a tuple with one gradient per primal (each
    shaped as that primal); it may be called several times."""
    api = "vjp(f, *primals)"
    tr = Traced(func, primals, {}, tuple(range(len(primals))), single=False)
    out, aux = split_aux(tr.output, has_aux, api)
    out_leaves, out_spec = check_tensors(out, f"{api}: expected f(*primals) to return only tensors")
    if has_aux:
        aux_leaves, aux_spec = check_tensors(aux, f"{api}: expected f(*primals) to return only tensors")

    def vjp_fn(cotangents, retain_graph: bool = True, create_graph=None):
        cts, ct_spec = tree_flatten(cotangents)
        if ct_spec != out_spec:
            raise RuntimeError("Expected pytree structure of cotangents to be the same as pytree structure of outputs "
                               f"to the function. cotangents: {ct_spec}, primal output: {out_spec}")
        for i, (c, o) in enumerate(zip(cts, out_leaves)):
            if not isinstance(c, Tensor):
                raise TypeError(f"gradients can be either Tensors or None, but got {type(c).__name__}")
            if tuple(c.shape) != tuple(o.shape):
                raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(c.shape)} and "
                                   f"output[{i}] has a shape of {tuple(o.shape)}.")
        cg = tr.needs_graph(out_leaves, cts) if create_graph is None else bool(create_graph)
        grads = tr.pullback(out_leaves, cts, cg)
        return tr.per_argument([tr.finish(g) for g in grads])

    value = tree_unflatten([tr.finish(o) for o in out_leaves], out_spec)
    if has_aux:
        aux = tree_unflatten([tr.finish(a) for a in aux_leaves], aux_spec)
    tr.retire()  # vjp_fn still differentiates with respect to them: they are its inside_ids
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


# ----------------------------------------------------------------------------- Jacobians


def _jacobian(func, argnums, has_aux: bool, api: str, refuse_draws: bool = False):
    def wrapper(*args, **kwargs):
        nums, single = normalize_argnums(argnums, len(args))
        before = rng_state() if refuse_draws else None
        tr = Traced(func, args, kwargs, nums, single)
        if before is not None and drew(before):
            raise RuntimeError(RANDOM_IN_ERROR_MODE)
        out, aux = split_aux(tr.output, has_aux, f"{api}(f, ...)(*args)")
        out_leaves, out_spec = check_tensors(out, "vjp(f, *primals): expected f(*primals) to return only tensors")
        if has_aux:
            aux_leaves, aux_spec = check_tensors(aux, "vjp(f, *primals): expected f(*primals) to return only tensors")
        cg = tr.needs_graph(out_leaves, [])
        per_output = []
        for o in out_leaves:
            n = o.numel()
            rows = [[] for _ in tr.inputs]
            for j in range(n):
                onehot = zeros(n, dtype=o.dtype, device=o.device)
                onehot[j] = 1
                for k, g in enumerate(tr.pullback([o], [onehot.reshape(o.shape)], cg)):
                    rows[k].append(g)
            blocks = []
            for k, x in enumerate(tr.inputs):
                shape = tuple(o.shape) + tuple(x.shape)
                block = stack(rows[k]).reshape(shape) if n else zeros(shape, dtype=x.dtype, device=x.device)
                blocks.append(tr.finish(block))
            per_output.append(tr.per_argument(blocks))
        jac = tree_unflatten(per_output, out_spec)
        if has_aux:
            jac = (jac, tree_unflatten([tr.finish(a) for a in aux_leaves], aux_spec))
        tr.retire()
        return jac

    wrapper.__name__ = f"{api}({getattr(func, '__name__', 'f')})"
    return wrapper


def jacrev(func, argnums=0, *, has_aux: bool = False, chunk_size=None, _preallocate_and_copy: bool = False):
    """``torch.func.jacrev``: a function returning the Jacobian of ``func`` with respect to the
    arguments at ``argnums``, one reverse pass per output element. For an output leaf of shape
    So and an argument leaf of shape Si the block is shaped So + Si; the result nests as the
    output, then (for a tuple argnums) a tuple over the arguments, then each argument's own
    tree. ``chunk_size`` is accepted and changes nothing (the rows are always one at a time)."""
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")
    return _jacobian(func, argnums, has_aux, "jacrev")


def jacfwd(func, argnums=0, has_aux: bool = False, *, randomness: str = "error"):
    """``torch.func.jacfwd``: the same Jacobian as :func:`jacrev`, laid out the same way.
    tinymm has no forward-mode autograd, so it is computed by reverse mode (one backward
    pass per output element), which gives the same values. ``randomness``: PyTorch's jacfwd
    runs ``func`` under vmap, so with "error" (the default) a ``func`` that draws from the
    default generator raises RuntimeError, as there; "same" and "different" let it draw
    (``func`` runs once here, so they do not differ)."""
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")
    return _jacobian(func, argnums, has_aux, "jacfwd", refuse_draws=randomness == "error")


def hessian(func, argnums=0):
    """``torch.func.hessian``: ``jacfwd(jacrev(func, argnums), argnums)``, the Jacobian of
    the gradient (blocks shaped output.shape + x.shape + x.shape)."""
    return jacfwd(jacrev(func, argnums), argnums)
