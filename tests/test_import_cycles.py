"""No import cycles between the modules of dlsp.

What counts as an edge A -> B (A and B modules of the package):
- an `import B` or `from B import name` that runs when A is imported: at module level, including inside
  module-level `if`/`try`/`with` blocks and class bodies. Imports inside functions run later, when the function
  is called, so they create no cycle, and neither do imports under `if TYPE_CHECKING:` (they never run).
- `from pkg import name` points at `pkg.name` when that is a submodule, else at `pkg` (its `__init__.py`);
  `import a.b.c` points at `a.b.c`. The parent packages that Python initialises on the way are not edges:
  a package's `__init__.py` importing its own submodules is normal, but a submodule that imports a name from
  its parent package (`from dlsp.denoise import X` in dlsp/denoise/y.py) closes a circle when that
  `__init__.py` imports the submodule, and is reported.
- relative imports are resolved against the importing module's package; `importlib.import_module` and
  `__import__` calls are not followed.

A cycle is a strongly connected component of more than one module, or a module importing itself.
`find_import_cycles(folder)` works on any package folder (the tests below give it small made-up packages).

Layers (ARCHITECTURE.md): the packages sit in the rows of `LAYERS`, top first, and a package imports only from its
own row or the rows below it, at module level or inside functions (`upward_imports`). benchmarks/import_graph.py
draws the same rows.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import dlsp

DLSP_ROOT = Path(dlsp.__file__).resolve().parent
# The bottom row, imported by every package.
CORE = ("config", "device", "errors", "fileio", "paths", "progress")
# Top row first: (band label, packages left to right); `core` below them all.
LAYERS = [
    ("commands", ["cli"]),
    ("experiments,\npublishing", ["experiments", "release"]),
    ("tasks", ["denoise", "speaker", "classify", "vision"]),
    ("engine and\nshared parts", ["data", "models", "train", "report"]),
    ("signals,\nfigures", ["audio", "metrics"]),
]


def package_of(module: str) -> str | None:
    """The layer package a dotted module name belongs to (`None` for the root package)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    if parts[1] == "__main__":
        return "cli"
    return "core" if parts[1] in CORE else parts[1]


def row_of(package: str) -> int:
    """A package's row, 0 at the top; `core` below every row; a package missing from LAYERS counts as a task."""
    if package == "core":
        return len(LAYERS)
    for row, (_, names) in enumerate(LAYERS):
        if package in names:
            return row
    return 2


def _module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted name -> file for every .py file under the package folder `root`."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The Import/ImportFrom nodes that run when a module (whose statements are `body`) is imported."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue  # runs when called, not when imported
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_time_imports(node.orelse)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None) or []
                for child in children:
                    if isinstance(child, ast.stmt):
                        yield from _import_time_imports([child])
                    else:  # an except handler or a match case: a holder of statements
                        yield from _import_time_imports(child.body)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of `known` that an import statement in `module` points at."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return {name for name in names if name in known}
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    targets = set()
    for alias in node.names:
        if f"{source}.{alias.name}" in known:
            targets.add(f"{source}.{alias.name}")
        elif source in known:
            targets.add(source)
    return targets


def import_graph(root: Path, package: str, everywhere: bool = False) -> dict[str, set[str]]:
    """Module -> the package modules it imports at import time (see the module docstring), or, `everywhere`,
    anywhere (inside functions too)."""
    modules = _module_names(root, package)
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[name] = set()
        nodes = (node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)) if everywhere \
            else _import_time_imports(tree.body)
        for node in nodes:
            graph[name] |= _targets(node, name, is_package, known)
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on deep chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def find_import_cycles(root: Path, package: str | None = None) -> list[str]:
    """One line per import cycle of the package in folder `root`: its modules and the edges that close it."""
    package = package or root.name
    graph = import_graph(root, package)
    lines = []
    for component in sorted(_strongly_connected(graph)):
        members = set(component)
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]
        lines.append(f"cycle of {len(component)}: " + "; ".join(edges))
    return lines


def upward_imports(root: Path, package: str | None = None) -> list[str]:
    """`importer -> imported` for every import that goes up a row of LAYERS."""
    package = package or root.name
    return [f"{module} -> {target}" for module, targets in sorted(import_graph(root, package, everywhere=True).items())
            for target in sorted(targets)
            if package_of(module) and package_of(target)
            and row_of(package_of(target)) < row_of(package_of(module))]


def test_no_package_imports_from_a_row_above_it():
    upward = upward_imports(DLSP_ROOT, "dlsp")
    assert not upward, "imports against the layering (ARCHITECTURE.md):\n" + "\n".join(upward)


def test_an_import_up_a_row_is_found_even_inside_a_function(tmp_path):
    _write(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "models/__init__.py": "",
            "models/compress.py": "def f():\n    from pkg.vision import train\n",
            "vision/__init__.py": "",
            "vision/train.py": "from pkg.models import compress\nfrom pkg.errors import E\n",
            "errors.py": "class E(Exception): ...\n",
        },
    )
    assert upward_imports(tmp_path / "pkg") == ["pkg.models.compress -> pkg.vision.train"]


def test_dlsp_has_no_import_cycles():
    cycles = find_import_cycles(DLSP_ROOT, "dlsp")
    assert not cycles, "import cycles in dlsp:\n" + "\n".join(cycles)


def test_the_graph_sees_the_imports_dlsp_has():
    graph = import_graph(DLSP_ROOT, "dlsp")
    assert "dlsp.denoise.enhance" in graph["dlsp.denoise"]  # an __init__ importing its submodule
    assert "dlsp.errors" in graph["dlsp.cli"]
    assert "dlsp.models.conv_denoisers" in graph["dlsp.models.denoisers"]  # the registry imports the models
    assert sum(len(targets) for targets in graph.values()) > 200


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_finds_a_module_level_cycle(tmp_path):
    _write(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "a.py": "from pkg.b import f\n",
            "b.py": "import os\ntry:\n    from . import c\nexcept ImportError:\n    pass\n",
            "c.py": "class C:\n    from ..pkg import a\n",  # resolves to pkg.a: class bodies run on import
            "d.py": "import pkg.d\n",
        },
    )
    assert find_import_cycles(tmp_path / "pkg") == [
        "cycle of 3: pkg.a -> pkg.b; pkg.b -> pkg.c; pkg.c -> pkg.a",
        "cycle of 1: pkg.d -> pkg.d",
    ]


def test_a_submodule_importing_from_its_parent_package_is_a_cycle(tmp_path):
    _write(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "sub/__init__.py": "from pkg.sub.x import X\nfrom pkg.sub.y import Y\n",
            "sub/x.py": "class X: ...\n",
            "sub/y.py": "from pkg.sub import X\nfrom pkg.sub import x\nY = X\n",
        },
    )
    assert find_import_cycles(tmp_path / "pkg") == ["cycle of 2: pkg.sub -> pkg.sub.y; pkg.sub.y -> pkg.sub"]


@pytest.mark.parametrize(
    "deferred",
    [
        "def f():\n    from pkg import a\n",
        "async def f():\n    import pkg.a\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n",
        "import typing\nif typing.TYPE_CHECKING:\n    from . import a\n",
    ],
)
def test_imports_in_functions_and_type_checking_blocks_are_no_cycle(tmp_path, deferred):
    _write(tmp_path / "pkg", {"__init__.py": "", "a.py": "from pkg import b\n", "b.py": deferred})
    assert find_import_cycles(tmp_path / "pkg") == []
    _write(tmp_path / "pkg", {"b.py": deferred.replace("if TYPE_CHECKING", "if True") + "from pkg import a\n"})
    assert find_import_cycles(tmp_path / "pkg") == ["cycle of 2: pkg.a -> pkg.b; pkg.b -> pkg.a"]
