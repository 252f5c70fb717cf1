"""The console script: every subcommand has --help; errors are one clear line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tickcast.cli import build_parser, main

SUBCOMMANDS = ["kafka", "topics", "worker", "produce", "demo", "train", "models",
               "bench", "dashboards", "config"]


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


def test_models_commands_list_show_promote_rollback(
        tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import shutil

    from tickcast.training.data import gold_closes
    from tickcast.training.prices import PriceConfig, train_prices

    store = tmp_path / "models"
    monkeypatch.setenv("TICKCAST_MODEL_DIR", str(store))
    assert main(["models", "list"]) == 0
    assert "no models" in capsys.readouterr().out
    versions = [train_prices(gold_closes().tail(300).reset_index(drop=True), store_dir=store,
                             progress=False,
                             config=PriceConfig(window=5, units=(4,), epochs=1, seed=s)
                             ).manifest.version for s in (1, 2)]
    for version in versions:
        assert main(["models", "promote", "gold-lstm", version]) == 0
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line[0] for line in lines] == [" ", "*"]
    assert main(["models", "rollback", "gold-lstm"]) == 0
    assert f"LATEST is now {versions[0]}" in capsys.readouterr().out
    assert main(["models", "show", "gold-lstm"]) == 0
    shown = capsys.readouterr().out
    assert json.loads(shown[: shown.rindex("}") + 1])["version"] == versions[0]
    shutil.rmtree(store / "gold-lstm" / versions[1])
    assert main(["models", "promote", "gold-lstm", versions[1]]) == 2
    assert "is not an artifact directory" in capsys.readouterr().err


def test_train_csv_errors_are_explained(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "prices.csv"
    bad.write_text("day,value\n2024-01-01,1\n")
    assert main(["train", "prices", "--csv", str(bad), "--quick"]) == 2
    assert "no column date, close" in capsys.readouterr().err
    texts = tmp_path / "texts.csv"
    texts.write_text("text,label\nhello,2\n")
    assert main(["train", "sentiment", "--csv", str(texts), "--quick"]) == 2
    assert "label must be 0 or 1" in capsys.readouterr().err
