"""Packaging and hygiene: every package ships, imports have no side effects."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAPPED = {"tickcast": "tickcast", "streams": "tickcast.streams", "models": "tickcast.models",
          "training": "tickcast.training"}


def test_every_python_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for top, dotted in MAPPED.items():
        for init in (REPO / top).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / top)
            found.add(".".join([dotted, *rel.parts]))
    assert found == listed
    bench = tomllib.loads((REPO / "bench" / "pyproject.toml").read_text())["tool"]
    assert bench["setuptools"]["packages"] == ["tickcast_bench"]
    assert [p.parent for p in (REPO / "bench").rglob("__init__.py")] == [REPO / "bench"]


def test_importing_every_module_has_no_side_effects(tmp_path: Path) -> None:
    """No files written, no TensorFlow, no Faust app, no threads started by an import."""
    code = """
import importlib, os, pkgutil, sys, threading
import tickcast
before = set(os.listdir('.'))
threads = threading.active_count()
names = ['tickcast', 'tickcast.streams', 'tickcast.models', 'tickcast.training',
         'tickcast_bench']
for pkg in list(names):
    mod = importlib.import_module(pkg)
    for info in pkgutil.walk_packages(mod.__path__, pkg + '.'):
        if info.name.endswith('__main__'):
            continue  # running it is its purpose
        importlib.import_module(info.name)
        names.append(info.name)
assert set(os.listdir('.')) == before, set(os.listdir('.')) - before
assert 'tensorflow' not in sys.modules
assert threading.active_count() == threads, threading.enumerate()
print(len(names))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 15


# -- one import path per module, no cycles, one configuration boundary --------------------------
PACKAGES = ("tickcast", "tickcast.streams", "tickcast.models", "tickcast.training",
            "tickcast_bench")  # the subpackages live in folders of their own
INSTALLED_AS = {"streams": "tickcast.streams", "models": "tickcast.models",
                "training": "tickcast.training", "bench": "tickcast_bench"}
"""Repository folders that are packages, and the one name each imports as."""


def _modules() -> dict[str, Path]:
    """Every module of the installed packages, by dotted name, with its source file."""
    import importlib
    import pkgutil

    found: dict[str, Path] = {}
    for package in PACKAGES:
        root = importlib.import_module(package)
        found[package] = Path(root.__file__ or "")
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            spec = importlib.util.find_spec(info.name)
            assert spec is not None, info.name
            assert spec.origin, info.name
            found[info.name] = Path(spec.origin)
    return found


def _imports(name: str, path: Path) -> list[str]:
    """Every module ``name`` imports, anywhere in its source (lazy imports included)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            out += [f"{base}.{alias.name}" for alias in node.names] + [base]
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for target in _imports(name, path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def test_no_module_imports_the_product_folders_as_top_level_packages() -> None:
    import ast

    offenders = []
    for path in REPO.rglob("*.py"):
        if any(part.startswith(".") for part in path.relative_to(REPO).parts):
            continue  # .venv, .tickcast, ...
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom)
                     and not node.level else [])
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names
                          if n.split(".")[0] in INSTALLED_AS]
    assert not offenders, f"import tickcast.<package> instead: {offenders}"


@pytest.mark.parametrize("top", sorted(INSTALLED_AS))
def test_a_product_folder_cannot_load_a_second_time_under_its_top_level_name(top: str) -> None:
    """From the repository root (the folder on sys.path) ``import streams`` would find the
    same files as ``tickcast.streams``: two module objects for one file. It is refused."""
    installed = INSTALLED_AS[top]
    code = (f"import {installed}\n"
            "try:\n"
            f"    import {top}\n"
            "except ImportError as exc:\n"
            "    print(exc)\n"
            "else:\n"
            "    print('loaded twice')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == f"import {installed}, not {top}: one module object per file"


def test_the_test_suite_does_not_import_the_product_folders_by_path() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]
    assert "pythonpath" not in config["ini_options"]
    assert "--doctest-modules" not in config["ini_options"]["addopts"]  # it imports by path


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert len(graph) > 40
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("tickcast.models", ("tickcast.streams", "tickcast.training", "tickcast.cli",
                         "tickcast_bench")),
    ("tickcast.streams", ("tickcast.training", "tickcast.cli", "tickcast_bench")),
    ("tickcast.training", ("tickcast.cli", "tickcast_bench")),
])
def test_dependencies_point_one_way(layer: str, forbidden: tuple[str, ...]) -> None:
    wrong = [f"{name} -> {target}" for name, targets in _graph().items()
             if name.startswith(layer) for target in targets if target.startswith(forbidden)]
    assert not wrong


def test_the_runtime_package_loads_the_benchmarks_only_for_tickcast_bench() -> None:
    wrong = [f"{name} -> {target}" for name, targets in _graph().items()
             if name.startswith("tickcast.") or name == "tickcast"
             for target in targets if target.startswith("tickcast_bench")]
    assert sorted(wrong) == ["tickcast.cli.bench -> tickcast_bench.harness",
                     "tickcast.cli.bench -> tickcast_bench.scale"]


# The functions that may touch the process environment: the settings read it (and build child
# processes' environments from it), and TensorFlow's loader sets TensorFlow's own variables
# before it imports TensorFlow.
ENVIRONMENT_READERS = {
    "tickcast.streams.settings": {"EnvSettings.from_env", "child_environ"},
    "tickcast.models.backend": {"_quiet"},
}
OS_ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _environment_uses(source: str) -> set[str]:
    """Qualified names of the functions (``<module>`` at top level) that touch the process
    environment through ``os``, however it is imported or aliased."""
    import ast

    class Finder(ast.NodeVisitor):
        def __init__(self) -> None:
            self.scope: list[str] = []
            self.os_names: set[str] = set()
            self.direct: set[str] = set()
            self.found: set[str] = set()

        def _hit(self) -> None:
            self.found.add(".".join(self.scope) or "<module>")

        def _scoped(self, node: ast.AST, name: str) -> None:
            self.scope.append(name)
            self.generic_visit(node)
            self.scope.pop()

        def visit_ClassDef(self, node: ast.ClassDef) -> None:
            self._scoped(node, node.name)

        def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
            self._scoped(node, node.name)

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Import(self, node: ast.Import) -> None:
            self.os_names |= {a.asname or a.name for a in node.names if a.name == "os"}

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module == "os":
                names = {a.asname or a.name for a in node.names if a.name in OS_ENVIRONMENT}
                if names:
                    self.direct |= names
                    self._hit()

        def visit_Attribute(self, node: ast.Attribute) -> None:
            if (isinstance(node.value, ast.Name) and node.value.id in self.os_names
                    and node.attr in OS_ENVIRONMENT):
                self._hit()
            self.generic_visit(node)

        def visit_Name(self, node: ast.Name) -> None:
            if node.id in self.direct:
                self._hit()

        def visit_Call(self, node: ast.Call) -> None:  # getattr(os, "environ")
            if (isinstance(node.func, ast.Name) and node.func.id == "getattr" and node.args
                    and isinstance(node.args[0], ast.Name) and node.args[0].id in self.os_names):
                self._hit()
            self.generic_visit(node)

    finder = Finder()
    finder.visit(ast.parse(source))
    return finder.found


def test_the_environment_finder_sees_aliases() -> None:
    assert _environment_uses("import os as _o\ndef f():\n    return _o.environ['X']\n") == {"f"}
    assert _environment_uses("from os import getenv as g\nclass C:\n    def m(self):\n"
                             "        return g('X')\n") == {"<module>", "C.m"}
    assert _environment_uses("import os\nx = getattr(os, 'environ')\n") == {"<module>"}
    assert _environment_uses("import os\nos.path.join('a')\n") == set()


def test_only_the_settings_read_the_environment() -> None:
    readers = {name: uses for name, path in _modules().items()
               if (uses := _environment_uses(path.read_text(encoding="utf-8")))}
    assert readers == ENVIRONMENT_READERS
