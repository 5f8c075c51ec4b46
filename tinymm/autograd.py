"""Floor 3: the reverse-mode autograd engine.

An op is one ``Function`` subclass with two static methods::

    forward(ctx, *arrays, **options) -> array (or a tuple of arrays)
    backward(ctx, *grads)            -> one gradient array (or None) per positional input

``forward`` sees plain NumPy/CuPy arrays, never Tensors, and keeps what backward needs with
``ctx.save_for_backward(...)`` (arrays) or as attributes on ``ctx`` (shapes, axes, flags).
``Function.apply(*args)`` runs forward and, when gradients are wanted, records a node: the
``ctx`` holding the Function class and its input Tensors. Output Tensors point at their node.

``backward(root)`` walks the graph once: an iterative depth-first search orders the nodes
(so a 10,000-op chain does not hit Python's recursion limit), then each node's backward runs
newest first, every node exactly once, with the gradients of all its consumers already summed.
Leaf tensors accumulate into ``.grad``; saved arrays are freed as soon as a node is done, and a
second backward through a freed node raises unless the first used ``retain_graph=True``.
A tensor's hooks (``Tensor.register_hook``) run once on its whole gradient, all contributions
summed: a non-leaf's when its producing node is reached, a leaf's at the end of the walk,
before ``.grad`` is written (``retain_grad`` stores the hooked gradient, as PyTorch 2 does).

Saved data cannot change behind autograd's back: when an op is recorded, the version of each
array it saved (``tinymm.tensor.storage_version``) is kept, and ``ctx.saved_arrays`` raises,
naming the op, if an in-place op has since written into that storage, as PyTorch does. This
holds for every Function without code of its own, including index and target arrays handed to
``apply`` as plain arrays, since versions belong to the storage, not to a Tensor object.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import sys
import warnings

import numpy as np

from tinymm import autograd_graph
from tinymm.float_errors import restore, silence
from tinymm.grad_fn import backward_name
from tinymm.tensor import Tensor, set_inference_creation, storage_version

_FREED_MSG = (
    "Trying to backward through the graph a second time (or through a part of it that an "
    "earlier backward already freed). Saved arrays are freed by backward(); pass "
    "retain_graph=True to the first backward() if you need to call it twice."
)

# ----------------------------------------------------------------------------- grad mode

_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


def _wrap_generator(make_context, func):
    """A generator function whose body runs, step by step, inside a fresh grad-mode context (as
    PyTorch's decorators do): ``@torch.no_grad()`` on a generator that yields tokens."""
    @functools.wraps(func)
    def generator_context(*args, **kwargs):
        gen = func(*args, **kwargs)
        try:
            with make_context():
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with make_context():
                        gen.close()
                    raise
                except BaseException:
                    with make_context():
                        response = gen.throw(*sys.exc_info())
                else:
                    with make_context():
                        response = gen.send(request)
        except StopIteration as e:
            return e.value
    return generator_context


class _GradModeContext:
    """A grad-mode context manager that is also a decorator, as PyTorch's: each call of the
    decorated function enters a fresh copy (so recursion and nesting restore the right mode),
    and a generator function keeps the mode at every step it runs, not only while it is made.
    probe3: replaces contextlib.ContextDecorator, which shared one instance between calls."""

    def _clone(self):
        return copy.copy(self)

    def __call__(self, func):
        if inspect.isgeneratorfunction(func):
            return _wrap_generator(self._clone, func)

        @functools.wraps(func)
        def decorate_context(*args, **kwargs):
            with self._clone():
                return func(*args, **kwargs)
        return decorate_context


class set_grad_enabled(_GradModeContext):
    """``torch.set_grad_enabled(mode)``: as PyTorch, the call itself switches graph recording
    (``torch.set_grad_enabled(False)`` on its own line turns it off); as a context manager the
    previous mode comes back on exit; as a decorator the switch applies to each call only."""

    def __init__(self, mode: bool):
        global _grad_enabled
        self.prev = _grad_enabled
        self.mode = bool(mode)
        _grad_enabled = self.mode

    def __call__(self, func):
        global _grad_enabled
        _grad_enabled = self.prev  # used as a decorator: undo the switch made by the call
        return super().__call__(func)

    def _clone(self):
        return type(self)(self.mode)

    def __enter__(self):
        global _grad_enabled
        _grad_enabled = self.mode
        # (``with ... as x`` gives None, as PyTorch's grad-mode contexts)

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
        return False


class _FixedGradMode(_GradModeContext):
    """``no_grad`` / ``enable_grad``: a fixed mode inside; the mode found on entry back on exit."""

    inside = None

    def __init__(self):
        self.prev = None

    def __enter__(self):
        global _grad_enabled
        self.prev = _grad_enabled
        _grad_enabled = self.inside
        # (``with no_grad() as x`` gives None, as PyTorch's)

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
        return False


class no_grad(_FixedGradMode):
    """``with no_grad():`` or ``@no_grad()``: ops inside record no graph."""

    inside = False


class enable_grad(_FixedGradMode):
    inside = True


class inference_mode(_GradModeContext):
    """``with inference_mode():``, ``@inference_mode()`` or bare ``@inference_mode``: as
    ``no_grad``, and the tensors made inside are inference tensors (``x.is_inference()``);
    ``inference_mode(False)`` leaves grad mode as it is."""

    def __new__(cls, mode=True):
        if callable(mode):  # used as a bare decorator: mode is the decorated function
            return cls(True)(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)  # True: recording off inside
        self.prev = self.prev_inference = None

    def __enter__(self):
        global _grad_enabled, _inference_mode
        self.prev, self.prev_inference = _grad_enabled, _inference_mode
        _grad_enabled = _grad_enabled and not self.mode
        _inference_mode = self.mode
        set_inference_creation(self.mode)  # modapi: tensors made inside are inference tensors
        # (``with inference_mode() as x`` gives None, as PyTorch's)

    def __exit__(self, *exc):
        global _grad_enabled, _inference_mode
        _grad_enabled, _inference_mode = self.prev, self.prev_inference
        set_inference_creation(self.prev_inference)
        return False


# probe3: torch.is_inference_mode_enabled (True inside inference_mode(), False inside inference_mode(False))
_inference_mode = False


def is_inference_mode_enabled() -> bool:
    return _inference_mode


# ----------------------------------------------------------------------------- Function


# Set by tinymm.ops.inplace (which knows how to re-derive a view from its base; this floor
# cannot import it): refresh_view(view) gives a stale indexing view its current node.
refresh_view = None


def _view_node(view):
    """An indexing view's node, re-derived from its base when the storage was written since the
    node was made (``v = y[0]; y.mul_(2)``: v is now 2·y[0], as PyTorch regenerates its grad_fn)."""
    if storage_version(view._data) != view._view_src[2]:
        refresh_view(view)
    return view._node


# ----------------------------------------------------------------------------- saved-tensor hooks

saved_hooks: list = []  # (pack, unpack) pairs of the open saved_tensors_hooks, innermost last (autograd_saved_hooks)


class _Packed:
    """One saved tensor as a ``saved_tensors_hooks`` pack hook returned it, with its unpack hook."""

    __slots__ = ("value", "unpack")

    def __init__(self, value, unpack):
        self.value, self.unpack = value, unpack


def _pack(a, wrap: bool = True):
    """``a`` (an array; a Tensor with ``wrap=False``) packed by the innermost pack hook; None,
    Python scalars and other non-arrays are kept as they are."""
    if wrap:
        if not hasattr(a, "shape") or isinstance(a, np.generic):
            return a
        a = Tensor._wrap(a)
    pack, unpack = saved_hooks[-1]
    return _Packed(pack(a), unpack)


def _unpack(a, unwrap: bool = True):
    """What the unpack hook gives back for a packed entry (its array with ``unwrap``)."""
    if type(a) is not _Packed:
        return a
    t = a.unpack(a.value)
    if not isinstance(t, Tensor):
        raise TypeError(f"Output of saved tensor unpack_hook expected to be a Tensor but got result of type "
                        f"{type(t).__name__}")
    return t._data if unwrap else t


class Context:
    """What one recorded op keeps: its Function, its inputs, and what forward saved.

    The defaults are class attributes, so making a Context costs no assignments; a Function
    sets what it needs as attributes of its own (``ctx.shapes``, ``ctx.meta``, ...).
    """

    saved = ()
    saved_versions = None
    needs_input_grad = ()
    non_differentiable = ()
    fn = None
    inputs = ()
    input_nodes = ()  # each input's node when the op ran (None for leaves and inputs without grad)
    n_outputs = 1
    out_meta = None  # (shape, dtype) per output, to fill missing output grads with zeros
    freed = False
    packed = False  # saved through saved_tensors_hooks: saved_arrays unpacks

    def save_for_backward(self, *arrays) -> None:
        """Keep arrays (or None, or Python scalars) for backward; their versions are recorded.
        Inside ``saved_tensors_hooks`` each array is packed by the innermost pack hook."""
        if saved_hooks and _grad_enabled and any(self.needs_input_grad):  # only what the graph keeps
            arrays = tuple(_pack(a) for a in arrays)
            self.packed = True
        self.saved = arrays

    @property
    def saved_arrays(self):
        if self.freed:
            raise RuntimeError(_FREED_MSG)
        versions = self.saved_versions
        if versions is not None:
            for i, (arr, v) in enumerate(zip(self.saved, versions)):
                if v is not None and storage_version(arr) != v:
                    raise RuntimeError(
                        "one of the variables needed for gradient computation has been modified by an "
                        f"inplace operation: [{arr.dtype} tensor of shape {tuple(arr.shape)}], saved item {i} "
                        f"of {self.fn.__name__}Backward, is at version {storage_version(arr)}; expected "
                        f"version {v} instead. Make the change on a clone(), or after backward()."
                    )
        if self.packed:
            return tuple(_unpack(a) for a in self.saved)
        return self.saved

    def mark_non_differentiable(self, *output_indices: int) -> None:
        """Outputs (by position) that carry no gradient, e.g. the indices of ``max``."""
        self.non_differentiable = output_indices


class Function:
    """Base class of every differentiable op (see the module docstring).

    ``backward`` returns, per input, None, its incoming gradient (or a view of it) unchanged,
    or a fresh array it keeps no reference to: autograd may make a fresh array a leaf's
    ``.grad`` without copying it (it copies anything it cannot prove fresh).

    Two kinds of subclass share the name, as ``torch.autograd.Function`` users expect: the ops
    inside the ``tinymm`` package work on raw arrays, as above; a subclass written anywhere else
    is user code brought from PyTorch, and works on Tensors (``forward(ctx, *args)`` gets the
    Tensors and returns Tensors, ``ctx.save_for_backward(*tensors)``, ``ctx.saved_tensors``,
    ``ctx.needs_input_grad``, ``ctx.mark_non_differentiable``, ``backward(ctx, *grads)``
    returns a Tensor or None per forward argument; ``setup_context`` also works). Its
    ``apply`` runs it through one array-level node, :class:`_TensorFunctionNode`. A class body
    that sets ``on_tensors = False`` is array-level wherever it is written.
    """

    on_tensors = False  # True for subclasses written outside tinymm (PyTorch-style, on Tensors)
    # cplx: True on the ops whose backward follows PyTorch's convention for complex tensors
    # (conjugate Wirtinger: for a real loss L of z = x + iy, z.grad = dL/dx + i dL/dy); recording
    # any other op on a complex tensor raises rather than give a wrong gradient
    complex_grad = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "on_tensors" in cls.__dict__:  # said explicitly (an array-level op outside tinymm, e.g. a test's)
            return
        module = cls.__module__ or ""
        cls.on_tensors = not (module == "tinymm" or module.startswith(("tinymm.", "kernels.")))

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError

    @staticmethod
    def setup_context(ctx, inputs, output):
        """Tensor-level Functions may override this (PyTorch's new style: ``forward`` then
        takes no ctx, and this fills it from the inputs and the output)."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        if cls.on_tensors:
            return _apply_on_tensors(cls, args, kwargs)
        ctx = Context()
        arrays = []
        needs = []
        track = complex_in = False
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a._data)
                if a.requires_grad:
                    track = True
                    needs.append(True)
                    if a._data.dtype.kind == "c":
                        complex_in = True
                    continue
            else:
                arrays.append(a)
            needs.append(False)
        track = track and _grad_enabled
        ctx.needs_input_grad = needs
        token = silence()  # NumPy's overflow/invalid warnings: PyTorch's ops are silent
        try:
            out = cls.forward(ctx, *arrays, **kwargs)
        finally:
            restore(token)
        if not track:
            if type(out) is tuple:
                return tuple(Tensor._wrap(o) for o in out)
            return Tensor._wrap(out)
        if not cls.complex_grad and (complex_in or (_any_complex(out) if type(out) is tuple else out.dtype.kind == "c")):
            _refuse_complex_grad(cls)
        ctx.fn = cls
        ctx.inputs = [a if n else None for a, n in zip(args, needs)]
        # each input's node now: an in-place op on an input later gives that Tensor a new node,
        # which must not become this op's parent (z = x * 2; x.mul_(3): z still depends on old x)
        ctx.input_nodes = [(a._node if a._view_src is None else _view_node(a)) if n else None
                           for a, n in zip(args, needs)]
        if ctx.saved:
            ctx.saved_versions = [storage_version(a) for a in ctx.saved]
        if type(out) is tuple:
            ctx.n_outputs = len(out)
            ctx.out_meta = [(o.shape, o.dtype) for o in out]
            results = []
            for i, o in enumerate(out):
                t = Tensor._wrap(o)
                if i not in ctx.non_differentiable and o.dtype.kind in "fc":
                    t.requires_grad = True
                    t._node = (ctx, i)
                results.append(t)
            return tuple(results)
        t = Tensor._wrap(out)
        t.requires_grad = True
        t._node = (ctx, 0)
        return t


def _any_complex(outs) -> bool:
    return any(getattr(o, "dtype", None) is not None and o.dtype.kind == "c" for o in outs)


def _refuse_complex_grad(cls) -> None:
    """cplx: an op without a complex backward (``complex_grad``) recorded on a complex input or
    output raises, rather than give a wrong gradient."""
    raise NotImplementedError(f"tinymm: the gradient of {cls.__name__} is not implemented for complex tensors "
                              "(run it under no_grad(), or on the real and imaginary parts)")


# ----------------------------------------------------------------------------- Functions on Tensors


class FunctionCtx:
    """The ``ctx`` of a Function written on Tensors (PyTorch's ``torch.autograd.function.FunctionCtx``)."""

    def __init__(self, cls, needs_input_grad):
        self._cls = cls
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._saved = ()
        self._versions = ()
        self._non_differentiable = ()
        self._dirty = ()
        self._saved_outputs = {}  # set by _apply_on_tensors: saved position -> output index
        self._recorded = _grad_enabled and any(needs_input_grad)  # (forward itself runs without grad)

    def save_for_backward(self, *tensors) -> None:
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {i} is of type "
                                f"{type(t).__name__}")
        if saved_hooks and self._recorded:  # packed: no version check (the hook may have moved the data)
            self._saved = tuple(None if t is None else _pack(t, wrap=False) for t in tensors)
            self._versions = (None,) * len(tensors)
            return
        self._saved = tensors
        self._versions = tuple(None if t is None else storage_version(t._data) for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        if any(type(t) is _Packed for t in self._saved):
            return tuple(_unpack(t, unwrap=False) for t in self._saved)
        for i, (t, v) in enumerate(zip(self._saved, self._versions)):
            if t is not None and storage_version(t._data) != v:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: [{t.dtype} tensor of shape {tuple(t.shape)}], saved tensor {i} of "
                    f"{self._cls.__name__}Backward, is at version {storage_version(t._data)}; expected version "
                    f"{v} instead. Make the change on a clone(), or after backward().")
        return self._saved

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable = tensors

    def mark_dirty(self, *tensors) -> None:
        self._dirty = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)


class _TensorFunctionNode(Function):
    """The graph node of one call of a Tensor-level Function: forward hands on the outputs the
    user's forward already made; backward calls the user's backward on Tensors and checks what
    it returns the way PyTorch does (count, None for non-Tensor inputs, shapes)."""

    complex_grad = True  # cplx: the user's backward decides

    @staticmethod
    def forward(ctx, *arrays, user=None, outputs=None):
        ctx.user_cls, ctx.user_ctx, ctx.user_inputs = user
        ctx.save_for_backward(*[t._data for t in ctx.user_ctx._saved if isinstance(t, Tensor)])
        nondiff = [i for i, o in enumerate(outputs) if any(o is t._data for t in ctx.user_ctx._non_differentiable)]
        ctx.mark_non_differentiable(*nondiff)
        return tuple(outputs) if len(outputs) > 1 else outputs[0]

    @staticmethod
    def _user_backward(ctx, grads):
        """The user's backward called on ``grads`` (Tensors or None), its results checked as
        PyTorch checks them: (name, [(position, result, input) for each result not None])."""
        cls, uctx, inputs = ctx.user_cls, ctx.user_ctx, ctx.user_inputs
        name = f"{cls.__name__}Backward"
        res = cls.backward(uctx, *grads)
        if not isinstance(res, tuple):
            res = (res,)
        n = len(inputs)
        if len(res) < n or any(r is not None for r in res[n:]):
            raise RuntimeError(f"function {name} returned an incorrect number of gradients (expected {n}, "
                               f"got {len(res)})")
        given = []
        for i, (r, inp) in enumerate(zip(res, inputs)):
            if r is None:
                continue
            if not isinstance(inp, Tensor):
                raise RuntimeError(f"function {name} returned a gradient different than None at position {i + 1}, "
                                   f"but the corresponding forward input was not a Variable")
            given.append((i, r, inp))
        return name, given

    @staticmethod
    def backward(ctx, *grads):
        name, given = _TensorFunctionNode._user_backward(ctx, [None if g is None else Tensor._wrap(g) for g in grads])
        out = [None] * len(ctx.user_inputs)
        for i, r, inp in given:
            g = r._data if isinstance(r, Tensor) else np.asarray(r)
            if tuple(g.shape) != tuple(inp.shape):
                lead = g.ndim - inp.ndim
                fits = lead >= 0 and all(d == 1 or d == e for d, e in zip(inp.shape, g.shape[lead:]))
                if not fits:
                    raise RuntimeError(f"Function {name} returned an invalid gradient at index {i} - got "
                                       f"{list(g.shape)} but expected shape compatible with {list(inp.shape)}")
                axes = tuple(range(lead)) + tuple(lead + k for k, d in enumerate(inp.shape) if d == 1 and g.shape[lead + k] != 1)
                g = g.sum(axis=axes).reshape(inp.shape)
            # a copy: the user's code may keep the array it returned (a saved tensor, a buffer)
            out[i] = g.astype(inp._data.dtype, copy=True)
        return tuple(out)

    @staticmethod
    def backward_graph(ctx, *grads):
        """For ``create_graph=True``: the user's backward runs on Tensors with recording on,
        so whatever Tensor ops it uses are differentiated again (as PyTorch does without
        ``once_differentiable``)."""
        cls = ctx.user_cls
        once = getattr(cls.backward, "_tinymm_once_differentiable", False)
        if once and any(isinstance(g, Tensor) and g.requires_grad for g in grads):
            raise RuntimeError(f"trying to differentiate twice a function that was marked with "
                               f"@once_differentiable ({cls.__name__}Backward); tinymm raises at create_graph=True")
        # (a once_differentiable backward whose incoming gradients carry no graph runs unrecorded,
        # as PyTorch's: its results are plain tensors, and taking them is no error)
        # A saved output is given back as this node's output (PyTorch: the output with its
        # grad_fn), so a backward that uses it (exp' = y) is differentiated through it; the
        # stand-ins are dropped again after the call (kept, they would make a reference cycle).
        uctx = ctx.user_ctx
        originals = uctx._saved
        if uctx._saved_outputs:
            uctx._saved = tuple(autograd_graph.node_output(ctx, t._data, uctx._saved_outputs[k])
                                if k in uctx._saved_outputs else t for k, t in enumerate(originals))
        try:
            if once:
                with no_grad():
                    _, given = _TensorFunctionNode._user_backward(ctx, grads)
            else:
                _, given = _TensorFunctionNode._user_backward(ctx, grads)
        finally:
            uctx._saved = originals
        out = [None] * len(ctx.user_inputs)
        for i, r, inp in given:
            if not inp.requires_grad:
                continue
            r = r if isinstance(r, Tensor) else Tensor._wrap(np.asarray(r))
            if tuple(r.shape) != tuple(inp.shape):
                r = autograd_graph.sum_to(r, inp.shape)
            out[i] = r if r.dtype == inp.dtype else r.to(inp.dtype)
        return tuple(out)


def _apply_on_tensors(cls, args, kwargs):
    needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
    uctx = FunctionCtx(cls, needs)
    with no_grad():
        if cls.setup_context is not Function.setup_context:  # the new style: forward without ctx
            out = cls.forward(*args, **kwargs)
            cls.setup_context(uctx, args, out)
        else:
            out = cls.forward(uctx, *args, **kwargs)
    single = not isinstance(out, tuple)
    outs = (out,) if single else out
    tensor_pos = [i for i, o in enumerate(outs) if isinstance(o, Tensor)]
    if not (_grad_enabled and any(needs)) or not tensor_pos:
        return out
    # saved tensors that are outputs: position in _saved -> the node's output index, so that a
    # create_graph backward sees them as outputs of this node (see backward_graph)
    uctx._saved_outputs = {k: m for k, t in enumerate(uctx._saved) for m, i in enumerate(tensor_pos)
                           if t is not None and t is outs[i]}
    made = _TensorFunctionNode.apply(*args, user=(cls, uctx, args), outputs=[outs[i]._data for i in tensor_pos])
    made = made if isinstance(made, tuple) else (made,)
    result = list(outs)
    for i, t in zip(tensor_pos, made):
        result[i] = t
    return result[0] if single else tuple(result)


def once_differentiable(fn):
    """PyTorch's decorator for a backward that is not itself differentiable: the array path
    never records a backward, so it changes nothing there. With ``create_graph=True`` it runs
    unrecorded when the gradients it is given carry no graph (its results are then constants,
    as PyTorch's); when they do, it raises (PyTorch raises when the result is differentiated
    again; tinymm, which cannot record a gradient that must not be differentiated, raises as
    it is taken)."""
    fn._tinymm_once_differentiable = True
    return fn


# ----------------------------------------------------------------------------- graph walk


def _topological_order(root_ctx, check_freed: bool = True):
    """Nodes reachable from ``root_ctx``, each once, inputs before the ops that consume them.

    Raises if one was freed by an earlier backward (unless ``check_freed`` is False), before
    any gradient is computed."""
    order = []
    seen = {id(root_ctx)}
    stack = [(root_ctx, 0)]
    while stack:
        ctx, i = stack.pop()
        if ctx.freed and check_freed:
            raise RuntimeError(_FREED_MSG)
        nodes = ctx.input_nodes
        while i < len(nodes):
            node = nodes[i]
            i += 1
            if node is not None:
                parent = node[0]
                if id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append((ctx, i))
                    stack.append((parent, 0))
                    break
        else:
            order.append(ctx)
    return order


def _walk_plan(root_ctx, capture):
    """The nodes a walk from ``root_ctx`` visits (``_topological_order``) and, for ``grad``
    (``capture`` given), the ids of those whose backward must run to reach a captured tensor:
    those with a captured input or an input made by such a node (None for ``backward``: all).
    As in PyTorch's engine, the others neither run nor are freed, so the graph below a non-leaf
    input of ``grad`` stays usable (MAML's fast weights), and only a needed freed node raises."""
    if capture is None:
        return _topological_order(root_ctx), None
    order = _topological_order(root_ctx, check_freed=False)
    needed = set()
    for ctx in order:
        for t, node in zip(ctx.inputs, ctx.input_nodes):
            if t is not None and (id(t) in capture or (node is not None and id(node[0]) in needed)):
                needed.add(id(ctx))
                break
    if any(ctx.freed for ctx in order if id(ctx) in needed):
        raise RuntimeError(_FREED_MSG)
    return order, needed


def _owned(g) -> np.ndarray:
    """A copy of ``g`` that nothing else refers to (``np.array``: NumPy scalars too)."""
    return g.copy() if hasattr(g, "__cuda_array_interface__") else np.array(g)


def _accumulate_leaf(t, g, fresh: bool) -> None:
    """Add ``g`` into ``t.grad``. A first gradient is adopted without a copy only when
    ``fresh``: made by the backward that returned it, returned once, kept nowhere else."""
    if t._grad is None:  # (the engine's own gradients: no setter checks)
        if getattr(g, "ndim", 0) > 1 and not g.flags.c_contiguous and t._data.flags.c_contiguous:
            # PyTorch's layout contract: a contiguous leaf gets a contiguous .grad (a backward
            # through a moved axis hands back a transposed array; x.grad.view(...) must work)
            t._grad = Tensor._wrap(g.copy(order="C"))
        else:
            t._grad = Tensor._wrap(g if fresh else _owned(g))
    elif getattr(t._grad, "is_sparse", False):  # probe8: a sparse .grad plus a dense one is dense
        t._grad = Tensor._wrap(t._grad.to_dense()._data + g)
    else:
        t._grad._data += g
    _post_accumulate(t)


def _post_accumulate(t) -> None:
    if _post_accumulate_hooks and id(t) in _post_accumulate_hooks:  # opse
        for hook in list(_post_accumulate_hooks[id(t)][1]):
            hook(t)


def _accumulate_sparse_leaf(t, g) -> None:
    """probe8: a sparse gradient (``Embedding(sparse=True)``'s SparseCOOTensor) into ``t.grad``:
    kept sparse (sparse + sparse is sparse), added densely into a dense one."""
    if t._grad is None:
        t._grad = g
    elif getattr(t._grad, "is_sparse", False):
        t._grad = t._grad + g
    else:
        t._grad._data += g.to_dense()._data
    _post_accumulate(t)


def _run_hooks(t, g):
    """``t``'s gradient ``g`` after its hooks (each may return a replacement Tensor)."""
    for hook in list(t._hooks):
        r = hook(Tensor._wrap(g))
        if r is not None:
            if not isinstance(r, Tensor) and not hasattr(r, "__array_priority__"):  # (a Tensor, or an array)
                raise TypeError(f"expected Variable, but hook returned '{type(r).__name__}' (a tensor hook returns "
                                f"None or the replacement gradient Tensor)")
            r = r._data if isinstance(r, Tensor) else r
            if tuple(r.shape) != tuple(g.shape):
                raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} returned a gradient of shape "
                                   f"{tuple(r.shape)}, expected {tuple(g.shape)}")
            g = r.astype(g.dtype, copy=False)
    return g


def _is_fresh(g, ctx, out_grads, in_grads, t) -> bool:
    """Whether ``g``, returned by ``ctx``'s backward for input ``t``, may become ``t.grad``."""
    if getattr(g, "base", 0) is not None or ctx.packed:
        return False  # a view (of an incoming gradient, a saved array, ...), not an array, or
        # saved through pack hooks (whether g is a saved array cannot be told then)
    if g is t._data or any(g is o for o in out_grads) or any(g is s for s in ctx.saved):
        return False
    n = 0
    for other in in_grads:
        if other is g:
            n += 1
    return n == 1


class GradShapeError(RuntimeError, ValueError):
    """A gradient whose shape does not match its tensor (PyTorch raises RuntimeError)."""


def run_backward(root, grad=None, retain_graph: bool = False, *, capture=None) -> None:
    """Backpropagate from ``root`` (a Tensor); see the module docstring.

    ``capture`` (for ``grad``): a dict ``id(tensor) -> [tensor, None]``; the gradients of those
    tensors are stored there (after their hooks) instead of in ``.grad``, and no ``.grad``
    anywhere is written."""
    global _grad_enabled
    if not root.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad and has no graph behind it")
    data = root._data
    if grad is None:
        if data.dtype.kind == "c":  # cplx: PyTorch's rule
            raise RuntimeError("grad can be implicitly created only for real scalar outputs")
        if data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for a single-element output, "
                f"this one has shape {tuple(root.shape)}; pass grad= of that shape"
            )
        if type(data) is np.ndarray:
            g = np.array(1, data.dtype).reshape(data.shape)
        else:
            g = np.ones_like(data)  # dispatches to CuPy for CuPy arrays
        seed_fresh = True
    else:
        g = grad._data if isinstance(grad, Tensor) else grad
        if tuple(g.shape) != tuple(data.shape):
            raise GradShapeError(f"backward: Mismatch in shape: grad has shape {tuple(g.shape)}, the output {tuple(data.shape)}")
        if type(g) is not type(data):
            raise ValueError("backward: grad is on a different device than the tensor")
        g = g.astype(data.dtype, copy=False)
        seed_fresh = False  # the caller's array: never adopted, never written

    if root._node is None:  # a leaf: its gradient is just the seed
        if root._hooks:
            g = _run_hooks(root, g)
            seed_fresh = False
        if capture is None:
            _accumulate_leaf(root, g, seed_fresh)
        elif id(root) in capture:
            capture[id(root)][1] = g
        return

    root_ctx, root_idx = root._node
    order, needed = _walk_plan(root_ctx, capture)
    pending = {id(root_ctx): [None] * root_ctx.n_outputs}
    pending[id(root_ctx)][root_idx] = g
    # Non-leaf tensors with hooks or retain_grad, by their node: their gradient is complete
    # (every consumer has run) when that node is reached. Leaves with hooks collect their
    # contributions in hooked_leaves and get them, summed and hooked, at the end.
    watched = {}
    hooked_leaves = {}
    if root._hooks or root._retain_grad or (capture is not None and id(root) in capture):
        watched[id(root_ctx)] = {root_idx: root}
    prev_mode, _grad_enabled = _grad_enabled, False
    # NumPy's floating-point warnings stay silent for the whole walk, as in forward (hooks
    # included: they run inside it)
    fp_token = silence()
    try:
        for ctx in reversed(order):
            out_grads = pending.pop(id(ctx), None)
            if out_grads is None:  # no gradient reached this node
                continue
            for i, t in watched.pop(id(ctx), {}).items():
                if out_grads[i] is None:
                    continue
                if t._hooks:
                    out_grads[i] = _run_hooks(t, out_grads[i])
                if capture is not None:
                    if id(t) in capture:
                        capture[id(t)][1] = out_grads[i]
                elif t._retain_grad:
                    _accumulate_leaf(t, out_grads[i], False)
            if needed is not None and id(ctx) not in needed:
                continue  # grad: below every captured tensor; neither run nor freed
            if ctx.n_outputs > 1:
                for i, og in enumerate(out_grads):
                    if og is None:
                        shape, dtype = ctx.out_meta[i]
                        like = next(x for x in out_grads if x is not None)
                        out_grads[i] = _zeros_like_module(like, shape, dtype)
            in_grads = ctx.fn.backward(ctx, *out_grads)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            if _anomaly_check_nan:  # opse
                check_nan_grads(backward_name(ctx), in_grads)
            for t, node, ig in zip(ctx.inputs, ctx.input_nodes, in_grads):
                if t is None or ig is None:
                    continue
                if getattr(ig, "is_sparse", False) is True:  # probe8: Embedding(sparse=True)'s weight gradient
                    if node is None and not t._hooks and capture is None:
                        _accumulate_sparse_leaf(t, ig)
                        continue
                    ig = ig.to_dense()._data  # sparse only into a leaf's .grad; elsewhere its dense equal
                if ig.shape != t._data.shape or ig.dtype != t._data.dtype:
                    if ig.dtype.kind == "c" and t._data.dtype.kind == "f" and ig.shape == t._data.shape:
                        # cplx: a real input of an op with a complex output gets the real part (PyTorch)
                        ig = ig.real.astype(t._data.dtype)
                    else:
                        raise RuntimeError(
                            f"internal error: {ctx.fn.__name__}.backward returned a {ig.dtype} gradient of "
                            f"shape {tuple(ig.shape)} for a {t._data.dtype} input of shape {tuple(t._data.shape)}"
                        )
                if node is None:
                    if capture is not None and id(t) not in capture:
                        continue  # autograd.grad: other leaves are left alone
                    if t._hooks or capture is not None:
                        prev = hooked_leaves.get(id(t))
                        hooked_leaves[id(t)] = (t, ig if prev is None else prev[1] + ig)
                        continue
                    _accumulate_leaf(t, ig, t.grad is None and _is_fresh(ig, ctx, out_grads, in_grads, t))
                    continue
                parent, i = node
                if t._hooks or t._retain_grad or (capture is not None and id(t) in capture):
                    watched.setdefault(id(parent), {})[i] = t
                slot = pending.get(id(parent))
                if slot is None:
                    slot = pending[id(parent)] = [None] * parent.n_outputs
                slot[i] = ig if slot[i] is None else slot[i] + ig
            if not retain_graph:
                ctx.saved = ()
                ctx.freed = True
        for t, g in hooked_leaves.values():
            g = _run_hooks(t, g) if t._hooks else g
            if capture is None:
                _accumulate_leaf(t, g, False)
            else:
                capture[id(t)][1] = g
    finally:
        restore(fp_token)
        _grad_enabled = prev_mode


def _run_backward_graph(root, grad=None, retain_graph: bool = True, *, capture=None) -> None:
    """``run_backward`` for ``create_graph=True``: the walk of ``tinymm.autograd_graph``, with
    grad mode on so each backward is recorded."""
    if root._node is not None and any(t is not None and t._data.dtype.kind == "c"
                                      for ctx in _topological_order(root._node[0], False) for t in ctx.inputs):
        # cplx: the differentiable backward formulas (backward_graph) are written for real tensors
        raise NotImplementedError("tinymm: create_graph=True through complex tensors is not implemented")
    with set_grad_enabled(True):
        autograd_graph.run_backward_graph(
            root, grad, retain_graph, capture, plan_of=_walk_plan, post_hooks=_post_accumulate_hooks,
            nan_check=check_nan_grads if _anomaly_check_nan else None, first_order_only=_first_order_only)


class _NoDoubleBackward(Function):
    """Hands on the gradients an op without a differentiable backward computed (``values``),
    recorded as depending on that op's incoming gradients and inputs; differentiating them
    again raises, naming the op (PyTorch's DelayedError)."""

    complex_grad = True  # cplx

    @staticmethod
    def forward(ctx, *arrays, values=None, name=None):
        ctx.name = name
        return tuple(values) if len(values) > 1 else values[0]

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError(f"create_graph=True: {ctx.name} has no differentiable backward in tinymm "
                                  "(its gradient was taken with create_graph=True and is now differentiated again)")

    backward_graph = backward


def _first_order_only(ctx, out_grads):
    """The gradients of ``ctx``'s op, which has no ``backward_graph``, from its array backward."""
    with set_grad_enabled(False):
        in_grads = ctx.fn.backward(ctx, *[g._data for g in out_grads])
    if type(in_grads) is not tuple:
        in_grads = (in_grads,)
    keep = [i for i, (t, ig) in enumerate(zip(ctx.inputs, in_grads)) if t is not None and ig is not None]
    result = [None] * len(in_grads)
    if not keep:
        return tuple(result)
    sources = list(out_grads) + [t for t in ctx.inputs if t is not None]
    made = _NoDoubleBackward.apply(*sources, values=[_owned(in_grads[i]) for i in keep], name=backward_name(ctx))
    for i, t in zip(keep, made if isinstance(made, tuple) else (made,)):
        result[i] = t
    return tuple(result)


def _zeros_like_module(like, shape, dtype):
    # ``like`` may be a NumPy scalar: the gradient of a 0-d output often is one
    if type(like) is np.ndarray or isinstance(like, np.generic):
        return np.zeros(shape, dtype)
    import cupy

    return cupy.zeros(shape, dtype)


def _paired(name, outputs, grads):
    """``outputs`` (a Tensor or a sequence) as a list, and one gradient (or None) for each."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if grads is None or isinstance(grads, Tensor):
        grads = [grads] * len(outputs) if grads is None else [grads]
    grads = list(grads)
    if len(grads) != len(outputs):
        raise RuntimeError(f"{name}: got {len(grads)} gradients for {len(outputs)} outputs")
    return outputs, grads


class _StackRows(Function):
    """``stack(rows)`` along a new first dim, for ``grad(..., is_grads_batched=True)`` (this
    floor cannot import ``ops``); differentiable again through Tensor indexing."""

    @staticmethod
    def forward(ctx, *rows):
        ctx.n = len(rows)
        if type(rows[0]) is np.ndarray:
            return np.stack(rows)
        import cupy

        return cupy.stack(rows)

    @staticmethod
    def backward(ctx, g):
        return tuple(g[b] for b in range(ctx.n))

    backward_graph = backward


def _grad_batched(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads):
    """``grad`` with ``is_grads_batched=True``: the first dim of each of ``grad_outputs`` is a
    batch, and each input's gradient gets that dim; computed one batch row at a time (PyTorch
    vmaps the backward; the values are the same)."""
    outputs, grad_outputs = _paired("grad", outputs, grad_outputs)
    sizes = set()
    for out, go in zip(outputs, grad_outputs):
        if go is None:
            if out.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            raise RuntimeError("grad: is_grads_batched=True needs grad_outputs with a batch dimension")
        if go.ndim != out.ndim + 1 or tuple(go.shape[1:]) != tuple(out.shape):
            raise RuntimeError(f"If `is_grads_batched=True`, we interpret the first dimension of each grad_output as "
                               f"the batch dimension. The sizes of the remaining dimensions are expected to match the "
                               f"shape of corresponding output, but a grad_output of shape {tuple(go.shape)} came for "
                               f"an output of shape {tuple(out.shape)}")
        sizes.add(go.shape[0])
    if len(sizes) != 1:
        raise RuntimeError(f"grad: is_grads_batched=True needs one batch size in grad_outputs, got {sorted(sizes)}")
    n = sizes.pop()
    keep = bool(retain_graph) if retain_graph is not None else bool(create_graph)
    rows = [grad(outputs, inputs, [go[b] for go in grad_outputs], retain_graph=keep or b < n - 1,
                 create_graph=create_graph, allow_unused=allow_unused, materialize_grads=materialize_grads)
            for b in range(n)]
    # (first-order rows do not require grad, so no node is recorded for them)
    return tuple(None if col[0] is None else _StackRows.apply(*col) for col in zip(*rows))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         only_inputs: bool = True, allow_unused=None, is_grads_batched: bool = False,
         materialize_grads: bool = False):
    """``torch.autograd.grad``: the gradients of ``outputs`` (weighted by ``grad_outputs``)
    with respect to ``inputs``, returned as a tuple instead of written into ``.grad`` (no
    ``.grad`` changes). An input the outputs do not depend on raises unless ``allow_unused``
    (then None, or zeros with ``materialize_grads``). ``create_graph=True`` returns gradients
    that are differentiable again (``tinymm.autograd_graph``; ``retain_graph`` then defaults to
    True, as in PyTorch). ``only_inputs`` is PyTorch's deprecated, ignored flag (still passed by
    WGAN-GP gradient penalties), with its FutureWarning when False. ``is_grads_batched``: the
    first dim of each of ``grad_outputs`` is a batch of them, and of each result too."""
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)  # (a generator is read once)
    if not inputs:  # PyTorch's error: e.g. every parameter frozen by a requires_grad toggle
        raise RuntimeError("grad: `inputs` argument to `grad()` cannot be empty.")
    if is_grads_batched:  # probe7
        return _grad_batched(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused,
                             materialize_grads)
    if not only_inputs:  # probe3
        warnings.warn("only_inputs argument is deprecated and is ignored now (defaults to True). To accumulate "
                      "gradient for other parts of the graph, please use torch.autograd.backward.", FutureWarning,
                      stacklevel=2)
    walk = run_backward
    if create_graph:
        walk = _run_backward_graph
    outputs, grad_outputs = _paired("grad", outputs, grad_outputs)
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    capture = {id(t): [t, None] for t in inputs}
    keep = bool(retain_graph) if retain_graph is not None else bool(create_graph)
    for k, (out, go) in enumerate(zip(outputs, grad_outputs)):
        # Each output is walked on its own; the graph is kept until the last walk.
        part = {i: [t, None] for i, (t, _) in capture.items()}
        walk(out, go, retain_graph=keep or k < len(outputs) - 1, capture=part)
        for i, (_, g) in part.items():
            if g is not None:
                capture[i][1] = g if capture[i][1] is None else capture[i][1] + g
    result = []
    for i, t in enumerate(inputs):
        g = capture[id(t)][1]
        if g is None:
            if not allow_unused and not materialize_grads:
                raise RuntimeError(f"grad: one of the differentiated tensors (input {i}) appears to not have been "
                                   "used in the graph. Set allow_unused=True if this is the desired behavior.")
            result.append(Tensor._wrap(_zeros_like_module(t._data, t.shape, t.dtype)) if materialize_grads else None)
        elif create_graph:
            result.append(g)  # a Tensor with its graph
        else:
            result.append(Tensor._wrap(_owned(g)))
    return tuple(result)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
    """``torch.autograd.backward``: backpropagate from each of ``tensors`` (weighted by
    ``grad_tensors``), accumulating into ``.grad``; with ``inputs``, only into theirs (leaf or
    not), as PyTorch. ``create_graph=True`` records the backward, so the gradients written
    into ``.grad`` carry a graph and can be differentiated again (``retain_graph`` then
    defaults to True)."""
    tensors, grad_tensors = _paired("backward", tensors, grad_tensors)
    keep = bool(retain_graph) if retain_graph is not None else bool(create_graph)
    if inputs is None:
        walk = run_backward
        if create_graph:
            walk = _run_backward_graph
        for k, (t, g) in enumerate(zip(tensors, grad_tensors)):
            walk(t, g, retain_graph=keep or k < len(tensors) - 1)
        return
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if not inputs:
        raise RuntimeError("backward: 'inputs' argument to backward() cannot be empty")
    for t, g in zip(inputs, grad(tensors, inputs, grad_tensors, retain_graph=keep, create_graph=create_graph,
                                 allow_unused=True)):
        if g is None:
            continue
        if create_graph:
            autograd_graph.accumulate_leaf(t, g, _post_accumulate_hooks)
        else:
            _accumulate_leaf(t, g._data, fresh=True)


def tensor_backward(self, gradient=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
    """``Tensor.backward`` with PyTorch's signature: ``autograd.backward(self, gradient, ...)``."""
    backward(self, gradient, retain_graph, create_graph, inputs)


# ----------------------------------------------------------------------------- gradcheck


class GradcheckError(AssertionError):
    pass


_UNSUPPORTED_CHECKS = ("check_batched_grad", "check_batched_forward_grad", "check_forward_ad")


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              check_grad_dtypes: bool = False, check_batched_grad: bool = False,
              check_batched_forward_grad: bool = False, check_forward_ad: bool = False,
              check_backward_ad: bool = True, fast_mode: bool = False, masked=None, seed: int = 0) -> bool:
    """``torch.autograd.gradcheck``: compare autograd's gradients of ``func(*inputs)`` with
    central finite differences (step ``eps``), element by element of every input that requires
    grad; pass when ``|analytic - numeric| <= atol + rtol * |numeric|`` everywhere.

    ``inputs`` is a Tensor or a sequence of them (other values are passed through). Inputs
    should be float64 (float32 differences are too coarse: PyTorch warns, and so does tinymm).
    A non-scalar output is reduced with a fixed random projection ``sum(out * r)`` (PyTorch's
    ``fast_mode`` idea, used always), so every output element is exercised. Gradients are
    taken with ``autograd.grad``: the inputs' ``.grad`` are left alone. On a mismatch it raises
    ``GradcheckError`` (an AssertionError; PyTorch's is a RuntimeError) naming the input, the
    worst element and both values, or returns False with ``raise_exception=False``.
    ``check_backward_ad=False`` checks nothing. The forward-mode and batched (vmap) checks are
    not available (NotImplementedError); ``nondet_tol`` is accepted (tinymm's backward is
    deterministic), as are ``check_undefined_grad`` and ``check_grad_dtypes`` (a gradient
    always has its input's dtype). ``seed`` picks the projection (tinymm's)."""
    for name in _UNSUPPORTED_CHECKS:
        if locals()[name]:
            raise NotImplementedError(f"gradcheck: {name}=True is not available in tinymm (no forward-mode AD or vmap)")
    if masked:
        raise NotImplementedError("gradcheck: masked=True is not available in tinymm (no sparse or masked tensors)")
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of the them have "
                         "requires_grad=True.")
    for i in checked:
        if inputs[i].dtype != np.float64:
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating point. This check "
                          "will likely fail if all the inputs are not of double precision floating point. ",
                          UserWarning, stacklevel=2)
    if not check_backward_ad:
        return True
    try:
        _gradcheck_inputs(func, inputs, checked, eps, atol, rtol, seed)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _gradcheck_inputs(fn, inputs, checked, eps, atol, rtol, seed) -> None:
    def as_outputs(out):
        return out if isinstance(out, (tuple, list)) else (out,)

    outs = [o for o in as_outputs(fn(*inputs)) if isinstance(o, Tensor) and o.dtype.kind in "fc"]
    r = np.random.default_rng(seed)
    projections = [r.standard_normal(o.shape) for o in outs]

    def scalar(out_list) -> float:
        fouts = [o for o in as_outputs(out_list) if isinstance(o, Tensor) and o.dtype.kind in "fc"]
        return float(sum(float(np.real(np.asarray(o.numpy(force=True)) * p).sum()) for o, p in zip(fouts, projections)))

    loss = None
    for o, p in zip(outs, projections):
        if not o.requires_grad:
            continue
        term = (o * Tensor._wrap(_as_module_of(o._data, p))).sum()
        term = term.real if term.dtype.kind == "c" else term
        loss = term if loss is None else loss + term
    if loss is None:
        raise GradcheckError("gradcheck: the output does not depend on any checked input")
    grads = grad(loss, [inputs[i] for i in checked], allow_unused=True)

    # (grad mode stays on: gradgradcheck's function takes gradients itself)
    for i, g in zip(checked, grads):
        t = inputs[i]
        analytic = np.zeros(t.shape) if g is None else np.asarray(g.numpy(force=True), dtype=np.float64)
        numeric = np.zeros(t.shape)
        data = t._data  # perturbed in place, element by element (strided inputs too)
        for j in np.ndindex(*t.shape):
            orig = data[j].item()
            data[j] = orig + eps
            plus = scalar(fn(*inputs))
            data[j] = orig - eps
            minus = scalar(fn(*inputs))
            data[j] = orig
            numeric[j] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric)
        bad = err > atol + rtol * np.abs(numeric)
        if bad.any():
            k = tuple(int(n) for n in np.unravel_index(int(np.argmax(err - rtol * np.abs(numeric))), t.shape))
            raise GradcheckError(
                f"gradcheck: input {i} (shape {tuple(t.shape)}): at index {k} autograd gives "
                f"{analytic[k]:.8g}, finite differences give {numeric[k]:.8g} "
                f"({int(bad.sum())} of {bad.size} elements outside atol={atol}, rtol={rtol})"
            )


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True, nondet_tol: float = 0.0,
                  check_undefined_grad: bool = True, check_grad_dtypes: bool = False, check_batched_grad: bool = False,
                  check_fwd_over_rev: bool = False, check_rev_over_rev: bool = True, fast_mode: bool = False,
                  masked: bool = False, seed: int = 0) -> bool:
    """``torch.autograd.gradgradcheck``: the second derivatives of ``func`` against finite
    differences of its first derivatives. The function checked is
    ``(inputs, grad_outputs) -> autograd.grad(func(*inputs), inputs, grad_outputs, create_graph=True)``,
    by :func:`gradcheck`; ``grad_outputs`` default to random float64 tensors shaped like the
    outputs (fixed by ``seed``). ``check_fwd_over_rev`` needs forward-mode AD
    (NotImplementedError); the other flags are :func:`gradcheck`'s."""
    if check_fwd_over_rev:
        raise NotImplementedError("gradgradcheck: check_fwd_over_rev=True is not available in tinymm (no forward-mode AD)")
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    outs = func(*inputs)
    outs = tuple(outs) if isinstance(outs, (tuple, list)) else (outs,)
    outs = [o for o in outs if isinstance(o, Tensor) and o.requires_grad]
    if grad_outputs is None:
        r = np.random.default_rng(seed + 1)
        grad_outputs = [Tensor._wrap(_as_module_of(o._data, r.standard_normal(o.shape).astype(o._data.dtype)))
                        .requires_grad_(True) for o in outs]
    else:
        grad_outputs = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs)
    n_inputs = len(inputs)

    def first_derivatives(*args):
        xs, gos = args[:n_inputs], args[n_inputs:]
        ys = func(*xs)
        ys = tuple(ys) if isinstance(ys, (tuple, list)) else (ys,)
        ys = [y for y in ys if isinstance(y, Tensor) and y.requires_grad]
        gs = grad(ys, [xs[i] for i in diff], gos, create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    if not check_rev_over_rev:
        return True
    return gradcheck(first_derivatives, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol, check_undefined_grad=check_undefined_grad,
                     check_grad_dtypes=check_grad_dtypes, check_batched_grad=check_batched_grad, fast_mode=fast_mode,
                     seed=seed)


def _as_module_of(like, a):
    if type(like) is np.ndarray:
        return a
    import cupy

    return cupy.asarray(a)


# ----------------------------------------------------------------------------- opse: anomaly mode, post-accumulate hooks, Variable

_anomaly_enabled = False
_anomaly_check_nan = False


def check_nan_grads(name: str, grads) -> None:
    """Anomaly mode: RuntimeError naming the Function whose backward produced a NaN."""
    for i, g in enumerate(grads):
        if g is not None and g.dtype.kind == "f" and bool(np.isnan(g).any()):
            raise RuntimeError(f"Function '{name}' returned nan values in its {i}th output.")


def is_anomaly_enabled() -> bool:
    return _anomaly_enabled


def is_anomaly_check_nan_enabled() -> bool:
    return _anomaly_check_nan


def _set_anomaly(mode: bool, check_nan: bool) -> None:
    global _anomaly_enabled, _anomaly_check_nan
    _anomaly_enabled, _anomaly_check_nan = bool(mode), bool(mode) and bool(check_nan)


class set_detect_anomaly(contextlib.ContextDecorator):
    """Anomaly detection on or off: from the call (as a function) or inside a ``with`` block
    (restored on exit). With it on, a backward that produces a NaN gradient raises a
    RuntimeError naming the Function (``check_nan=False`` turns that check off). PyTorch also
    prints the forward traceback of the failing op; tinymm does not record tracebacks."""

    def __init__(self, mode: bool, check_nan: bool = True):
        self.prev = (_anomaly_enabled, _anomaly_check_nan)
        _set_anomaly(mode, check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_anomaly(*self.prev)
        return False


class detect_anomaly(contextlib.ContextDecorator):
    """Anomaly detection inside a ``with`` block or a decorated function (see set_detect_anomaly)."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self.prev = (_anomaly_enabled, _anomaly_check_nan)
        _set_anomaly(True, self.check_nan)
        return self

    def __exit__(self, *exc):
        _set_anomaly(*self.prev)
        return False


# id(leaf) -> (weak reference, hooks): called with the leaf after its .grad is accumulated.
_post_accumulate_hooks: dict = {}


def register_post_accumulate_hook(t, hook):
    """Register ``hook(t)`` to run after ``t.grad`` is accumulated; returns a removable handle."""
    import weakref

    from tinymm.tensor import RemovableHandle

    if not callable(hook):
        raise TypeError(f"register_post_accumulate_grad_hook: hook must be callable, got {type(hook).__name__}")
    entry = _post_accumulate_hooks.get(id(t))
    if entry is None or entry[0]() is not t:
        key = id(t)
        entry = _post_accumulate_hooks[key] = (weakref.ref(t), [])
        weakref.finalize(t, _post_accumulate_hooks.pop, key, None)
    entry[1].append(hook)
    return RemovableHandle(entry[1], hook)


class _VariableMeta(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor)


class Variable(metaclass=_VariableMeta):
    """Legacy ``torch.autograd.Variable``: ``Variable(t, requires_grad=False)`` is a tensor
    sharing t's data (cut from t's graph); every Tensor is an instance, as in PyTorch."""

    def __new__(cls, data, requires_grad: bool = False, volatile: bool = False):
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        out = data.detach()
        if requires_grad:
            out.requires_grad_(True)
        return out
