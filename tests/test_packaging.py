"""Packaging and hygiene: every package ships, imports have no side effects."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

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


def test_importing_every_module_has_no_side_effects(tmp_path: Path) -> None:
    """No files written, no TensorFlow, no Faust app, no threads started by an import."""
    code = """
import importlib, os, pkgutil, sys, threading
import tickcast
before = set(os.listdir('.'))
threads = threading.active_count()
names = ['tickcast', 'tickcast.streams', 'tickcast.models', 'tickcast.training']
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
