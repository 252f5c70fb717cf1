"""The console script: every subcommand has --help; errors are one clear line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tickcast.cli import build_parser, main

SUBCOMMANDS = ["kafka", "topics", "worker", "produce", "demo", "config"]


def test_every_subcommand_is_listed_and_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    top = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in top
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert "usage: tickcast " + name in capsys.readouterr().out


def test_console_script_runs_as_module() -> None:
    result = subprocess.run([sys.executable, "-m", "tickcast", "--version"], capture_output=True,
                            text=True, check=True)
    assert result.stdout.startswith("tickcast ")


def test_config_lists_every_variable_as_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| `TICKCAST_AUC_WINDOW` | `500` |" in out
    assert "| `TICKCAST_TOPIC_PREFIX` | (empty) |" in out
    assert "TICKCAST_KAFKA_PORT" in out


def test_bad_setting_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TICKCAST_METRICS_PORT", "http")
    assert main(["topics"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("tickcast topics: error: TICKCAST_METRICS_PORT='http' is invalid: "
                   "expected an integer")


def test_unknown_subcommand_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["serve"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_readme_configuration_table_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    main(["config", "--markdown"])
    table = capsys.readouterr().out.strip()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert table in readme, "README's configuration table is stale: paste `tickcast config "
    "--markdown`"
