"""The nested containers ``tinymm.func`` accepts and returns (PyTorch's "pytrees").

A pytree is a tuple, list, dict or namedtuple whose entries are pytrees, or a leaf (anything
else: a Tensor, a number, None). ``tree_flatten`` lists the leaves in a fixed order (a dict's
in its key order) with a :class:`TreeSpec` describing the containers, and ``tree_unflatten``
rebuilds the same containers around new leaves. ``broadcast_prefix`` spreads a tree that
stops early (``in_dims=(0, None)`` against ``(tensor, {"w": tensor, "b": tensor})``) over the
leaves of a full tree, as ``vmap``'s ``in_dims``/``out_dims`` and the transforms need.
"""
from __future__ import annotations


class TreeSpec:
    """The shape of a pytree without its leaves: ``kind`` is "leaf", "tuple", "list", "dict"
    or "namedtuple"; ``context`` the dict keys or the namedtuple class; ``children`` one
    TreeSpec per entry."""

    __slots__ = ("kind", "context", "children")

    def __init__(self, kind: str, context=None, children=()):
        self.kind, self.context, self.children = kind, context, tuple(children)

    @property
    def num_leaves(self) -> int:
        return 1 if self.kind == "leaf" else sum(c.num_leaves for c in self.children)

    def __eq__(self, other) -> bool:
        return (isinstance(other, TreeSpec) and self.kind == other.kind and self.context == other.context
                and self.children == other.children)

    def __hash__(self):
        return hash((self.kind, self.children))

    def __repr__(self) -> str:
        if self.kind == "leaf":
            return "*"
        if self.kind == "dict":
            inner = ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.context, self.children))
            return "{" + inner + "}"
        inner = ", ".join(repr(c) for c in self.children)
        if self.kind == "list":
            return f"[{inner}]"
        name = self.context.__name__ if self.kind == "namedtuple" else ""
        return f"{name}({inner}{',' if len(self.children) == 1 else ''})"


LEAF = TreeSpec("leaf")


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def kind_of(x) -> str:
    """The container kind of ``x`` ("leaf" for anything that is not a container)."""
    if _is_namedtuple(x):
        return "namedtuple"
    if isinstance(x, tuple):
        return "tuple"
    if isinstance(x, list):
        return "list"
    if isinstance(x, dict):
        return "dict"
    return "leaf"


def _entries(x, kind):
    return list(x.values()) if kind == "dict" else list(x)


def tree_flatten(tree):
    """(leaves in order, TreeSpec)."""
    leaves = []

    def walk(x):
        kind = kind_of(x)
        if kind == "leaf":
            leaves.append(x)
            return LEAF
        context = list(x.keys()) if kind == "dict" else (type(x) if kind == "namedtuple" else None)
        return TreeSpec(kind, context, [walk(c) for c in _entries(x, kind)])

    spec = walk(tree)
    return leaves, spec


def tree_unflatten(leaves, spec: TreeSpec):
    """The tree shaped as ``spec`` holding ``leaves`` (in ``tree_flatten``'s order)."""
    it = iter(leaves)

    def build(s):
        if s.kind == "leaf":
            return next(it)
        children = [build(c) for c in s.children]
        if s.kind == "dict":
            return dict(zip(s.context, children))
        if s.kind == "list":
            return children
        if s.kind == "namedtuple":
            return s.context(*children)
        return tuple(children)

    return build(spec)


def tree_leaves(tree) -> list:
    return tree_flatten(tree)[0]


def tree_map(fn, tree):
    leaves, spec = tree_flatten(tree)
    return tree_unflatten([fn(x) for x in leaves], spec)


class StructureMismatch(ValueError):
    """A prefix tree whose containers do not match the tree it is spread over."""


def broadcast_prefix(prefix, tree) -> list:
    """One entry of ``prefix`` per leaf of ``tree``: where ``prefix`` has a leaf, it stands
    for the whole subtree of ``tree`` at that place. Raises :class:`StructureMismatch` where
    ``prefix`` has a container that ``tree`` lacks or shapes differently."""
    out = []

    def spread(p, t):
        pk = kind_of(p)
        if pk == "leaf":
            out.extend([p] * len(tree_leaves(t)))
            return
        tk = kind_of(t)
        if pk != tk or (pk == "namedtuple" and type(p) is not type(t)):
            raise StructureMismatch(f"expected a {tk} here, got a {pk}")
        if pk == "dict":
            if set(p) != set(t):
                raise StructureMismatch(f"expected the keys {sorted(map(str, t))}, got {sorted(map(str, p))}")
            for k in t:
                spread(p[k], t[k])
            return
        if len(p) != len(t):
            raise StructureMismatch(f"expected a {tk} of {len(t)} entries, got {len(p)}")
        for a, b in zip(p, t):
            spread(a, b)

    spread(prefix, tree)
    return out
