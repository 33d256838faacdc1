"""The shape of the package (docs/architecture.md), checked from the source alone.

* imports inside ``ldm_keras`` form no cycle (module-level and function-level imports);
* no module imports a ``_``-prefixed name from another module (package-private modules
  such as ``ldm_keras._validation`` are fine to import; their names are not private);
* no module is longer than 450 lines unless its docstring says why ("Long module:");
* every backend implementation of ``ldm_keras.backend`` defines the whole interface;
* backend-specific imports (jax, tensorflow, torch) appear only in the per-backend files.

No Keras needed: the files are parsed with ``ast``.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "ldm_keras"
MAX_LINES = 450
#: Known exceptions being removed by other work (allowed, not required): the Kalman filter
#: module is split, and its eigen-angle read-out imported from ldm_keras._math, by the
#: Kalman-at-scale issue (which owns predictors/).
PENDING_LONG = set()
PENDING_CYCLES = set()
PENDING_UPWARD = set()
BACKEND_PACKAGES = ("jax", "tensorflow", "torch")
#: The per-backend files, and the marked exceptions of docs/architecture.md (the k-NN
#: entropy on PyTorch, the Kalman filter's inner loops).
BACKEND_FILES = {"backend/jax.py", "backend/tensorflow.py", "backend/torch.py",
                 "models/trainers/jax.py", "models/trainers/tensorflow.py",
                 "models/trainers/torch.py", "entropy/knn.py",
                 "predictors/_linalg.py", "predictors/_recursion.py"}


def _modules():
    """``{dotted module name: path}`` of every module of the package (symlinks skipped)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent)
        if any(part.startswith("_zoo_data") for part in rel.parts):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _package(name):
    """The package a module belongs to (itself for a package's ``__init__``)."""
    path = MODULES[name]
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _resolve(module, node):
    """The absolute module an ``ImportFrom`` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    base = _package(module).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module):
    """``[(target module, imported name or None, line)]`` of every import in ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub, None, node.lineno) if sub in MODULES
                           else (target, a.name, node.lineno))
    return out


def _graph():
    graph = {m: set() for m in MODULES}
    for m in MODULES:
        for target, _, _ in _imports(m):
            if target in MODULES and target != m:
                graph[m].add(target)
    return graph


def find_cycles(graph):
    """Every elementary cycle found by depth-first search (one per back edge)."""
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_the_package_is_found():
    assert {"ldm_keras", "ldm_keras.models.base", "ldm_keras.backend"} <= set(MODULES)


def test_no_import_cycle():
    cycles = [tuple(c) for c in find_cycles(_graph())]
    new = [c for c in cycles if c not in PENDING_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(" -> ".join(c) for c in new)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


#: The floors of docs/architecture.md, bottom first: a module imports only from its own
#: floor or lower ones.
FLOORS = [
    {"_math", "_validation", "_serialization", "_registry", "_deprecation", "_choose_backend",
     "outputs"},
    {"backend", "distributed"},
    {"priors", "entropy", "predictors"},
    {"objectives", "augment"},
    {"data"},
    {"evaluation"},
    {"models"},
    {"callbacks", "optimizers", "plots"},
    {"recipes"},
    {"jobs", "run_health"},
    {"zoo"},
    {"cli", "training", ""},
]


def _floor(module):
    top = module.split(".")[1] if "." in module else ""
    return next(i for i, names in enumerate(FLOORS) if top in names)


def test_every_module_has_a_floor():
    homeless = sorted({m.split(".")[1] for m in MODULES if "." in m}
                      - set().union(*FLOORS))
    assert not homeless, f"modules on no floor of docs/architecture.md: {homeless}"


def test_imports_run_down_the_floors():
    up = [f"{m} (floor {_floor(m)}) imports {t} (floor {_floor(t)})"
          for m, targets in _graph().items() for t in targets
          if _floor(t) > _floor(m) and (m, t) not in PENDING_UPWARD]
    assert not up, "\n".join(up)


def test_no_private_name_imported_from_another_module():
    # stricter than "another package": a _name is private to its module
    bad = [f"{m}:{line} imports {name} from {target}"
           for m in MODULES for target, name, line in _imports(m)
           if name is not None and target.startswith("ldm_keras") and target != m
           and name.startswith("_") and not name.startswith("__")]
    assert not bad, "\n".join(bad)


def test_long_modules_say_why():
    long = []
    for path in MODULES.values():
        lines = path.read_text().count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and "Long module:" not in doc:
            long.append(str(path.relative_to(ROOT)))
    new = sorted(set(long) - PENDING_LONG)
    assert not new, "modules over 450 lines without a reason at the top:\n" + "\n".join(new)


def test_every_backend_implements_the_interface():
    init = ast.parse((ROOT / "backend" / "__init__.py").read_text())
    interface = next(ast.literal_eval(n.value) for n in init.body if isinstance(n, ast.Assign)
                     and any(getattr(t, "id", None) == "INTERFACE" for t in n.targets))
    assert "all_gather" in interface and "gradients" in interface
    for impl in ("jax", "tensorflow", "torch", "unsupported"):
        tree = ast.parse((ROOT / "backend" / f"{impl}.py").read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert set(interface) <= defined, f"backend/{impl}.py lacks {set(interface) - defined}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_backend_specific_imports_only_in_the_backend_files(module):
    rel = str(MODULES[module].relative_to(ROOT))
    if rel in BACKEND_FILES:
        return
    for target, _, line in _imports(module):
        assert target.split(".")[0] not in BACKEND_PACKAGES, \
            f"{rel}:{line} imports {target}; backend code belongs in backend/ or trainers/"
