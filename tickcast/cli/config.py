"""``tickcast config``: every variable tickcast reads, its default and meaning."""

from __future__ import annotations

import argparse
from typing import Any

from tickcast.cli.common import Context

__all__ = ["register", "rows"]


def register(sub: Any) -> None:
    config = sub.add_parser("config", help="list every TICKCAST_* variable, default, meaning")
    config.add_argument("--markdown", action="store_true", help="as a Markdown table")
    # Lists the variables even while one of them holds a value tickcast would refuse.
    config.set_defaults(run=run, needs_settings=False)


def rows() -> list[tuple[str, str, str]]:
    from tickcast.settings import ToolSettings
    from tickcast.streams.settings import Settings

    return [*Settings.describe(), *ToolSettings.describe()]


def run(args: argparse.Namespace, context: Context) -> int:
    table = rows()
    if args.markdown:
        print("| variable | default | meaning |\n|---|---|---|")
        for var, default, meaning in table:
            shown = f"`{default}`" if default else "(empty)"
            print(f"| `{var}` | {shown} | {meaning} |")
    else:
        width = max(len(r[0]) for r in table)
        for var, default, meaning in table:
            print(f"{var:<{width}}  {default:<18} {meaning}")
    return 0
