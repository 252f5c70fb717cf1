"""The examples in docstrings run, on the installed modules (``tickcast.streams...``): pytest's
own doctest collection would import the files a second time under their folder names."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("tickcast", "tickcast.streams", "tickcast.models", "tickcast.training")


def _modules_with_examples() -> list[str]:
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            if any(test.examples for test in doctest.DocTestFinder().find(module)):
                names.append(info.name)
    return sorted(set(names))


MODULES = _modules_with_examples()


def test_the_known_examples_are_found() -> None:
    assert {"tickcast.streams.evaluation.rolling_auc",
            "tickcast.streams.evaluation.agreement"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), report=True,
                             optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"
