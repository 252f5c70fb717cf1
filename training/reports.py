"""Evaluation reports next to the artifact: ``report.json``, ``report.md`` and PNG figures."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["figure", "markdown_table", "write_report"]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "n/a" if not math.isfinite(value) else f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_report(folder: Path, *, title: str, summary: Mapping[str, Any], sections: Sequence[
        tuple[str, str]], images: Sequence[str] = ()) -> None:
    """``report.json`` holds ``summary`` (NaN as null); ``report.md`` the sections and images."""
    (folder / "report.json").write_text(json.dumps(_clean(summary), indent=2) + "\n",
                                        encoding="utf-8")
    parts = [f"# {title}", ""]
    for heading, body in sections:
        parts += [f"## {heading}", "", body, ""]
    parts += [f"![{name}]({name})" for name in images]
    (folder / "report.md").write_text("\n".join(parts).rstrip() + "\n", encoding="utf-8")


def figure(ncols: int = 1, nrows: int = 1, *, size: tuple[float, float] = (9, 5)) -> Any:
    """A Matplotlib figure on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=size, squeeze=False)
