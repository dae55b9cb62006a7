"""No import cycles: every module of deployer (and of the installed provider and router
distributions) imports alone in a fresh interpreter, and the packages' import graph has
no cycle.

The static graph counts every import statement, wherever it sits: at module level, under
``if TYPE_CHECKING:`` and deferred inside functions. A deferred import hides a cycle from
a cold import but not from the reader: the two modules still depend on each other.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (
    "deployer",
    "deployer_router",
    "deployer_aws",
    "deployer_gcp",
    "deployer_azure",
    "deployer_kubernetes",
)
# Cycles another change removes; the lead empties this list once it is merged (a cycle
# listed here that no longer exists fails test_known_pending_cycles_still_exist).
KNOWN_PENDING: list[frozenset[str]] = []


def package_folders() -> dict[str, Path]:
    """The installed (or checked-out) folder of each package in PACKAGES."""
    folders = {"deployer": REPO / "deployer"}
    for name in PACKAGES[1:]:
        spec = importlib.util.find_spec(name)  # a top-level name: found, not imported
        if spec is not None and spec.submodule_search_locations:
            folders[name] = Path(next(iter(spec.submodule_search_locations)))
    return folders


def modules_of(folders: dict[str, Path]) -> dict[str, Path]:
    """Every module's dotted name and file (packages under their own name)."""
    modules = {}
    for package, folder in folders.items():
        for file in sorted(folder.rglob("*.py")):
            parts = [package, *file.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = file
    return modules


def imported_names(module: str, file: Path) -> set[str]:
    """Every name ``file`` imports, absolute (``from a import b`` gives ``a.b``, which is a
    module or an attribute of ``a``), from any statement."""
    names: set[str] = set()
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the modules of ``modules`` it imports (its own ancestors left out: a
    package is always initialised before its submodules)."""
    graph: dict[str, set[str]] = {}
    for module, file in modules.items():
        targets = set()
        for name in imported_names(module, file):
            while name and name not in modules:  # ``from pkg import attr``: the module
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) for each group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(path_through(graph, set(group)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def path_through(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A cycle inside ``group`` (a strongly connected set), from its first member back."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & group):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    raise AssertionError(f"{sorted(group)} is not a cycle")


@functools.cache
def our_graph() -> dict[str, set[str]]:
    return import_graph(modules_of(package_folders()))


def test_the_packages_import_graph_has_no_cycle() -> None:
    graph = our_graph()
    assert "deployer.api" in graph and "deployer.orchestrate" in graph["deployer.api"]
    new = [c for c in cycles(graph) if frozenset(c) not in KNOWN_PENDING]
    assert new == [], "import cycles: " + "; ".join(" -> ".join(c) for c in new)


def test_known_pending_cycles_still_exist() -> None:
    """Keeps KNOWN_PENDING honest: a cycle that is gone must leave the list."""
    found = {frozenset(c) for c in cycles(our_graph())}
    gone = [sorted(c) for c in KNOWN_PENDING if c not in found]
    assert gone == [], f"no longer cycles, remove them from KNOWN_PENDING: {gone}"


def test_the_cycle_finder_names_every_kind_of_import(tmp_path: Path) -> None:
    """A cycle through a deferred import, a TYPE_CHECKING import and a relative import."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg import a\n")  # child -> parent: fine
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..c import C\n"
    )
    (package / "c.py").write_text("from pkg import a\nfrom pkg.sub import b as _b\n")
    (package / "d.py").write_text("import pkg.c\n")  # imports into the cycle, not part of it
    graph = import_graph(modules_of({"pkg": package}))
    assert graph["pkg"] == {"pkg.a"}
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]


# Run in a fresh interpreter: loads the third-party libraries our modules import at module
# level (they cannot take part in our cycles, and loading them once keeps this fast), then
# forks one child per module, which imports that module with none of ours loaded.
COLD_IMPORTS = r"""
import importlib, json, os, sys, tempfile, traceback

modules, libraries = json.load(sys.stdin)
for library, names in libraries:
    try:
        loaded = importlib.import_module(library)
        for name in names:  # ``from library import name`` may load a submodule lazily
            getattr(loaded, name, None)
    except Exception:
        pass  # the child that needs it reports the failure
if "pydantic" in sys.modules:  # the first model class loads pydantic's schema machinery
    import pydantic

    class Warm(pydantic.BaseModel):
        value: int = 0
ours = {m.partition(".")[0] for m in modules}
assert not [m for m in sys.modules if m.partition(".")[0] in ours], "not a cold start"
failures, running, pending = {}, {}, list(modules)
folder = tempfile.mkdtemp(prefix="cold-imports-")
while pending or running:
    while pending and len(running) < max(2, os.cpu_count() or 1):
        module = pending.pop()
        log = os.path.join(folder, module)
        pid = os.fork()
        if pid == 0:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            try:
                importlib.import_module(module)
                code = 0
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        running[pid] = (module, log)
    pid, status = os.wait()
    module, log = running.pop(pid)
    with open(log) as file:
        output = file.read()
    os.unlink(log)
    if status != 0:
        failures[module] = output[-2000:] or f"exit status {status}"
os.rmdir(folder)
print(json.dumps({"imported": len(modules), "failures": failures}))
"""


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    modules = modules_of(package_folders())
    # __main__ modules run their command when imported; they are imported by ``-m`` only
    names = sorted(m for m in modules if not m.endswith(".__main__"))
    ours = {m.partition(".")[0] for m in modules}
    libraries: dict[str, set[str]] = {}  # module -> names taken from it
    for file in modules.values():
        for node in ast.parse(file.read_text(encoding="utf-8")).body:  # module level only
            if isinstance(node, ast.Import):
                for alias in node.names:
                    libraries.setdefault(alias.name, set())
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                libraries.setdefault(node.module, set()).update(a.name for a in node.names)
    preload = sorted(
        [name, sorted(names)]
        for name, names in libraries.items()
        if name.partition(".")[0] not in ours
    )
    path = os.environ.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, "-c", COLD_IMPORTS],
        input=json.dumps([names, preload]),
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), path]))},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["imported"] == len(names) and len(names) > 50
    assert report["failures"] == {}, "\n\n".join(
        f"{m}:\n{t}" for m, t in report["failures"].items()
    )
