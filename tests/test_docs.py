"""The README stays a five-minute read; the docs hold the depth, link up, and carry no history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted((REPO / "docs").glob("*.md"))
REQUIRED = {"models", "lifecycle", "textgen", "streaming", "events", "metrics", "benchmarks",
            "security", "configuration", "operations", "development"}
HISTORY = [
    (re.compile(r"\bissue \d+", re.IGNORECASE), "an issue number of ours"),
    (re.compile(r"`[0-9a-f]{7,40}`"), "a commit hash"),
    (re.compile(r"tried and not kept", re.IGNORECASE), "a 'tried and not kept' list"),
    (re.compile(r"another engineer", re.IGNORECASE), "a story of who measured"),
]


def test_readme_is_short() -> None:
    assert (REPO / "README.md").stat().st_size <= 12_000


def test_the_doc_pages_are_there() -> None:
    assert {p.stem for p in PAGES} >= REQUIRED


@pytest.mark.parametrize("page", [REPO / "README.md", *PAGES], ids=lambda p: p.name)
def test_links_resolve_and_no_history(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
    for pattern, what in HISTORY:
        found = pattern.search(text)
        assert found is None, f"{page.name} holds {what}: {found.group(0)!r}"
