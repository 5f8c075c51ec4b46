"""What ``Tensor.grad_fn`` returns: a read-only view of one node of the autograd graph.

PyTorch code walks and prints the graph through ``grad_fn``: ``y.grad_fn.name()``,
``y.grad_fn.next_functions`` (the nodes that feed it, as ``(node, output_index)`` pairs, with
``AccumulateGrad`` for a leaf that requires grad and ``(None, 0)`` for an input that does not;
tinymm's record does not tell a Tensor without grad from another argument, such as an axis, so
those get ``(None, 0)`` too),
``y.grad_fn.metadata`` (a dict kept with the node). These classes give that view over tinymm's
own graph record, ``tensor._node = (ctx, output_index)``, without changing it: the engine in
``autograd.py`` never looks at them.

Names follow PyTorch's pattern: a built-in op ``Mul`` is ``MulBackward0`` (tinymm's op names
are its own, so not every name is PyTorch's: ``Linear`` where PyTorch has ``AddmmBackward0``),
and a user's ``autograd.Function`` subclass ``MyFn`` is ``MyFnBackward``.
"""
from __future__ import annotations

import weakref


def backward_name(ctx) -> str:
    """The PyTorch-style name of the node that recorded ``ctx``."""
    user = getattr(ctx, "user_cls", None)  # a user's Function, run through _TensorFunctionNode
    if user is not None:
        return f"{user.__name__}Backward"
    return f"{ctx.fn.__name__}Backward0"


class Node:
    """One recorded op, as PyTorch's ``grad_fn`` objects present it. While a Node is held,
    every output of its op and every call of ``grad_fn`` gives that same object, and it keeps
    the op's record (so ``(x * 2).grad_fn.next_functions`` works on a temporary). The record
    never refers to its Node (a cycle would hold each step's saved arrays until the cyclic
    garbage collector ran); ``metadata`` is kept on the record, so it outlives the Node."""

    __slots__ = ("_ctx", "__weakref__")
    _views = weakref.WeakValueDictionary()  # id(record) -> its Node, while the Node is held

    def __init__(self, ctx):
        self._ctx = ctx

    @classmethod
    def of(cls, ctx) -> "Node":
        node = cls._views.get(id(ctx))
        if node is None:  # (a held Node keeps its record alive, so the id cannot be reused)
            node = cls._views[id(ctx)] = cls(ctx)
        return node

    def name(self) -> str:
        return backward_name(self._ctx)

    @property
    def metadata(self) -> dict:
        meta = self._ctx.__dict__.get("_grad_fn_metadata")
        if meta is None:
            meta = self._ctx._grad_fn_metadata = {}
        return meta

    @property
    def next_functions(self) -> tuple:
        out = []
        for t, node in zip(self._ctx.inputs, self._ctx.input_nodes):  # None: no grad, or not a Tensor
            if t is None or not t.requires_grad:
                out.append((None, 0))
            elif node is None:
                out.append((AccumulateGrad.of(t), 0))
            else:
                parent, index = node
                out.append((Node.of(parent), index))
        return tuple(out)

    def register_hook(self, hook):
        raise NotImplementedError("grad_fn.register_hook: hooks on graph nodes are not supported in tinymm; "
                                  "register the hook on the tensor (Tensor.register_hook) instead")

    register_prehook = register_hook

    def __call__(self, *grads):
        raise NotImplementedError(f"{self.name()}: calling a graph node directly is not supported in tinymm; "
                                  "use Tensor.backward or tinymm.autograd.grad")

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"


class AccumulateGrad:
    """The node that stores a leaf's gradient in ``.grad``; ``variable`` is the leaf. One object
    per leaf while the leaf lives, as in PyTorch, so graph walks can tell nodes apart by identity."""

    __slots__ = ("_variable", "metadata")
    _of_leaf: dict = {}  # id(leaf) -> its AccumulateGrad; the entry goes when the leaf does

    def __init__(self, variable):
        self._variable = weakref.ref(variable)
        self.metadata = {}

    @classmethod
    def of(cls, leaf) -> "AccumulateGrad":
        node = cls._of_leaf.get(id(leaf))
        if node is None or node._variable() is not leaf:
            node = cls._of_leaf[id(leaf)] = cls(leaf)
            weakref.finalize(leaf, cls._of_leaf.pop, id(leaf), None)
        return node

    @property
    def variable(self):
        return self._variable()

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    @property
    def next_functions(self) -> tuple:
        return ()

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"
