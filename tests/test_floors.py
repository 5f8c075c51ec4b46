"""The floors hold: no module imports from a floor above its own, and no import cycle exists.

Every module under ``tinymm/`` and ``kernels/`` (installed as ``tinymm.kernels``) is parsed
with ``ast``; every ``import`` counts, including the lazy ones inside functions. An edge goes
to the most specific module named (``from tinymm.nn import functional`` → ``tinymm.nn.functional``);
the implicit import of parent packages is Python's mechanics, not a dependency, and is ignored.

Floors (DESIGN.md): 1 kernels; 2 backend, _atomic, dtype_objects; 3 tensor, autograd, ops, factories,
serialization and the ``tinymm`` package itself; 4 nn.functional; 5 nn (+ nn.utils); 6 optim,
metrics, data, utils (torch.utils.data); 7 models; 8 train; 9 cli. Inside a floor, imports are free as long as they form
no cycle. Extra rules: metrics works on plain arrays (never imports Tensor or anything of floor
3–5); data never imports nn; nothing imports torch (it is only a test oracle); and a private
name (``_helper``) is used only inside its own module: ``from m import _helper`` and
``m._helper`` from another module both count (a helper others need gets a public name).
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Longest matching prefix wins.
FLOORS = {
    "tinymm.kernels": 1,
    "tinymm.backend": 2,
    "tinymm._atomic": 2,
    "tinymm.dtype_objects": 2,  # dtype: tinymm.dtype (backend's default dtype is one)
    "tinymm.float_errors": 2,  # NumPy warnings silenced inside ops (autograd, convert)
    "tinymm": 3,
    "tinymm.tensor": 3,
    "tinymm.autograd": 3,
    "tinymm.ops": 3,
    "tinymm.factories": 3,
    "tinymm.serialization": 3,
    "tinymm.nn.functional": 4,
    "tinymm.distributions": 4,  # opsd: uses ops and nn.functional (softplus, one_hot), holds no parameters
    "tinymm.nn": 5,
    "tinymm._dynamo": 5,  # probe13: torch._dynamo's names, OptimizedModule among them (an nn Module)
    "tinymm.func": 5,  # func: torch.func; functional_call and the batch-norm helper take nn Modules
    "tinymm.optim": 6,
    "tinymm.metrics": 6,
    "tinymm.data": 6,
    "tinymm.utils": 6,
    "tinymm.models": 7,
    "tinymm.train": 8,
    "tinymm.cli": 9,
}

# Private names still used across modules, each with the change that removes it. Keep empty.
TRANSITIONAL_PRIVATE_USES: set = set()

# (importer prefix, forbidden target prefixes, why)
FORBIDDEN = (
    ("tinymm.metrics", ("tinymm.tensor", "tinymm.autograd", "tinymm.ops", "tinymm.factories", "tinymm.nn"),
     "metrics works on plain arrays and never imports Tensor"),
    ("tinymm.data", ("tinymm.nn",), "data never imports nn"),
    ("tinymm", ("torch",), "torch is a test oracle only"),
)


def collect_modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Module name → (file, is_package) for ``root/tinymm`` and ``root/kernels``."""
    found = {}
    for top, prefix in (("tinymm", "tinymm"), ("kernels", "tinymm.kernels")):
        base = root / top
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base)
            if top == "tinymm" and rel.parts[0] == "kernels":
                continue  # the gitignored symlink to ../kernels: parsed from kernels/ itself
            parts = list(rel.with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            found[".".join([prefix] + parts)] = (path, is_package)
    return found


def imports_of(name: str, path: Path, is_package: bool, modules) -> list[tuple[str, int]]:
    """(target, line) for every import in the file, lazy ones included."""
    return _parse(name, path, is_package, modules)[0]


def private_uses(name: str, path: Path, is_package: bool, modules) -> list[tuple[str, int]]:
    """(module._name, line) for each private name of another internal module this one uses."""
    return _parse(name, path, is_package, modules)[1]


def _is_private(attr: str) -> bool:
    return attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__"))


def _parse(name, path, is_package, modules):
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if is_package else name.rpartition(".")[0]
    imports, private, module_aliases = [], [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imports.append((_resolve(alias.name, modules), node.lineno))
                if alias.asname and alias.name in modules:
                    module_aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if full in modules:
                    imports.append((full, node.lineno))
                    module_aliases[alias.asname or alias.name] = full
                else:
                    imports.append((_resolve(source, modules), node.lineno))
                    if source in modules and source != name and _is_private(alias.name):
                        private.append((full, node.lineno))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases and _is_private(node.attr)
                and module_aliases[node.value.id] != name):
            private.append((f"{module_aliases[node.value.id]}.{node.attr}", node.lineno))
    return imports, private


def _resolve(target: str, modules) -> str:
    """The most specific known module a dotted name starts with (or the name: external)."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in modules:
            return cand
    return target


def floor_of(name: str) -> int | None:
    best = None
    for prefix, floor in FLOORS.items():
        if name == prefix or name.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, floor)
    return None if best is None else best[1]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def find_problems(root: Path) -> list[str]:
    """Every upward import, forbidden import and import cycle under ``root``, as sentences."""
    modules = collect_modules(root)
    problems = []
    graph = {}
    seen_private = set()
    for name, (path, is_package) in modules.items():
        mine = floor_of(name)
        if mine is None:
            problems.append(f"{name}: not on any floor (add it to FLOORS in {Path(__file__).name})")
        graph[name] = set()
        imports, privates = _parse(name, path, is_package, modules)
        for target, line in imports:
            for who, banned, why in FORBIDDEN:
                if _under(name, who) and any(_under(target, b) for b in banned):
                    problems.append(f"{name} (line {line}) imports {target}: {why}")
            if target not in modules or target == name:
                continue
            graph[name].add(target)
            theirs = floor_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                problems.append(f"{name} (floor {mine}, line {line}) imports {target} from floor {theirs} above it")
        for used, line in privates:
            seen_private.add((name, used))
            if (name, used) not in TRANSITIONAL_PRIVATE_USES:
                problems.append(f"{name} (line {line}) uses {used}, a private name of another module")
    problems += [f"{who} no longer uses {used}: remove it from TRANSITIONAL_PRIVATE_USES"
                 for who, used in sorted(TRANSITIONAL_PRIVATE_USES - seen_private) if who in modules]
    problems += [f"import cycle: {' -> '.join(c + [c[0]])}" for c in find_cycles(graph)]
    return problems


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        comps.append(_one_cycle(sorted(comp), graph))
    return comps


def _one_cycle(comp: list[str], graph) -> list[str]:
    """A concrete cycle through the component's first module (breadth-first back to it)."""
    members, start = set(comp), comp[0]
    parent, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return path[::-1]
                if child not in parent:
                    parent[child] = node
                    nxt.append(child)
        frontier = nxt
    return comp


# ----------------------------------------------------------------------------- tests


def test_the_tree_has_no_upward_import_and_no_cycle():
    problems = find_problems(ROOT)
    assert not problems, "\n".join(problems)


def _only_python(folder, names):
    return [n for n in names if not n.endswith(".py") and not (Path(folder) / n).is_dir() or n == "__pycache__"]


def _copy_tree(tmp_path: Path) -> Path:
    for top in ("tinymm", "kernels"):
        shutil.copytree(ROOT / top, tmp_path / top, symlinks=True, ignore=_only_python)
    return tmp_path


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


def test_the_checker_fails_on_an_added_lazy_upward_import(tmp_path):
    root = _copy_tree(tmp_path)
    _append(root / "tinymm/ops/shape.py", "def _sneaky():\n    from tinymm.train import Trainer  # floor 8 from floor 3\n")
    problems = find_problems(root)
    assert any("tinymm.ops.shape (floor 3" in p and "tinymm.train" in p for p in problems), problems


def test_the_checker_fails_on_an_added_cycle(tmp_path):
    root = _copy_tree(tmp_path)
    _append(root / "tinymm/tensor.py", "from tinymm import ops  # ops imports tensor: a cycle on one floor")
    problems = find_problems(root)
    cycles = [p for p in problems if p.startswith("import cycle")]
    assert cycles and all("tinymm.tensor" in c for c in cycles), problems
    assert not [p for p in problems if "above it" in p]  # same floor: only the cycle is wrong


def test_the_checker_fails_on_metrics_importing_tensor_and_on_a_kernel_importing_upward(tmp_path):
    root = _copy_tree(tmp_path)
    _append(root / "tinymm/metrics/ranking.py", "from tinymm.tensor import Tensor")
    _append(root / "kernels/_common.py", "import tinymm.autograd")
    problems = find_problems(root)
    assert any("tinymm.metrics.ranking" in p and "never imports Tensor" in p for p in problems), problems
    assert any("tinymm.kernels._common (floor 1" in p and "tinymm.autograd" in p for p in problems), problems


def test_the_checker_fails_on_a_private_helper_used_across_modules(tmp_path):
    root = _copy_tree(tmp_path)
    _append(root / "tinymm/nn/layers.py", "from tinymm.ops.reduce import _expand_back")
    _append(root / "tinymm/nn/init.py", "from tinymm.ops import shape as S\nS._shape_arg((2, 3))")
    problems = find_problems(root)
    assert any("tinymm.nn.layers" in p and "tinymm.ops.reduce._expand_back" in p for p in problems), problems
    assert any("tinymm.nn.init" in p and "tinymm.ops.shape._shape_arg" in p for p in problems), problems


def test_cycle_finder_on_a_synthetic_graph():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
