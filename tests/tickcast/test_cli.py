"""The console script: every subcommand has --help; errors are one clear line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tickcast.cli import build_parser, main

SUBCOMMANDS = ["kafka", "topics", "worker", "produce", "demo", "train", "models", "generate",
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


def test_configuration_page_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    main(["config", "--markdown"])
    table = capsys.readouterr().out.strip()
    page = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(
        encoding="utf-8")
    assert table in page, ("docs/configuration.md is stale: paste `tickcast config "
                           "--markdown` into it")


def test_a_bad_log_level_is_a_one_line_error_naming_the_allowed_values(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TICKCAST_LOG_LEVEL", "loud")
    assert main(["topics"]) == 2  # refused before any broker is contacted
    assert capsys.readouterr().err.strip() == (
        "tickcast topics: error: TICKCAST_LOG_LEVEL='loud' is invalid: expected debug, info, "
        "warning or error")
    assert main(["config"]) == 0  # the list of variables still shows, to help fix it


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a TickcastError is a user's error; anything else propagates, traceback and all."""
    from tickcast.cli import config

    def broken(args: object, context: object) -> int:
        raise ValueError("a bug")

    monkeypatch.setattr(config, "run", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["config"])


def test_argument_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["produce", "prices", "--csv", "/nonexistent.csv"])
    assert capsys.readouterr().err.splitlines() == [
        "tickcast produce: error: argument --csv: no such file: /nonexistent.csv "
        "(`tickcast produce --help` lists the arguments)"]


def test_a_worker_does_not_read_the_local_broker_settings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tickcast.cli.common import Context

    monkeypatch.setenv("TICKCAST_PROMETHEUS_PORT", "many")
    context = Context()
    assert context.settings.kafka_bootstrap  # the service settings read fine
    from tickcast.streams.settings import SettingsError

    with pytest.raises(SettingsError, match="TICKCAST_PROMETHEUS_PORT"):
        _ = context.tools


def test_user_errors_share_one_root() -> None:
    from tickcast_bench.processes import BenchError

    from tickcast.errors import TickcastError
    from tickcast.localkafka import BrokerError
    from tickcast.models.artifacts import ArtifactError
    from tickcast.models.registry import StoreError
    from tickcast.streams.events import EventError
    from tickcast.streams.settings import SettingsError
    from tickcast.streams.topics import TopicError
    from tickcast.training.data import DataError
    from tickcast.training.publish import PublishError

    for error in (BrokerError, ArtifactError, StoreError, EventError, SettingsError,
                  TopicError, DataError, PublishError, BenchError):
        assert issubclass(error, TickcastError), error


@pytest.mark.parametrize(("argv", "message"), [
    (["produce", "prices", "--csv", "/nonexistent.csv"], "no such file: /nonexistent.csv"),
    (["train", "prices", "--csv", "/nonexistent.csv"], "no such file: /nonexistent.csv"),
    (["produce", "prices", "--rate", "-1"], "must be >= 0"),
    (["generate", "--n", "0"], "must be >= 1, got 0"),
    (["generate", "--seed", "-1"], "must be >= 0"),
    (["train", "prices", "--epochs", "x"], "expected an integer"),
])
def test_bad_arguments_are_usage_errors(argv: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_an_unreadable_csv_is_a_one_line_error(tmp_path, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    bad = tmp_path / "prices.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage\x00")
    assert main(["train", "prices", "--csv", str(bad), "--quick"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tickcast train: error: {bad}")
    assert len(err.strip().splitlines()) == 1


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
    assert main(["models", "shadow", "gold-lstm", versions[1]]) == 0
    assert f"{versions[1]} is the challenger of {versions[0]}" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    assert [line[0] for line in capsys.readouterr().out.splitlines()] == ["*", "~"]
    assert main(["models", "shadow", "gold-lstm", versions[0]]) == 2
    assert "LATEST already" in capsys.readouterr().err
    assert main(["models", "shadow", "gold-lstm"]) == 2
    assert "or --clear" in capsys.readouterr().err
    assert main(["models", "shadow", "gold-lstm", "--clear"]) == 0
    assert "no longer in shadow" in capsys.readouterr().out
    assert main(["models", "shadow", "gold-lstm", "--clear"]) == 0
    assert "has no challenger" in capsys.readouterr().out
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
    texts.write_text("text,label\n" + "good,1\n" * 30 + "bad,0\n" * 3)
    assert main(["train", "sentiment", "--csv", str(texts), "--quick"]) == 2
    assert "3 rows of label 0 and 30 of label 1; need at least 10" in capsys.readouterr().err
    few = tmp_path / "few.csv"
    few.write_text("date,close\n" + "".join(f"2024-01-{d:02d},{100 + d}\n"
                                             for d in range(1, 20)))
    assert main(["train", "prices", "--csv", str(few), "--quick"]) == 2
    assert "too few" in capsys.readouterr().err


def test_generate_without_a_model_says_how_to_train_one(
        tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TICKCAST_MODEL_DIR", str(tmp_path / "models"))
    assert main(["generate", "--prompt", "Gold prices"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tickcast generate: error: no textgen-lstm model in ")
    assert "tickcast train textgen --quick" in err


def test_generate_prints_n_reproducible_samples(
        tiny_textgen, tmp_path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from tickcast.models.registry import ModelStore

    store = ModelStore(tmp_path / "models")
    manifest = tiny_textgen.manifest
    shutil.copytree(tiny_textgen.path, store.path(manifest.name, manifest.version))
    store.promote(manifest.name, manifest.version)
    monkeypatch.setenv("TICKCAST_MODEL_DIR", str(store.root))
    argv = ["generate", "--prompt", "Gold prices", "--n", "4", "--temperature", "0.8",
            "--length", "40", "--seed", "7"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert all(line.startswith("Gold prices") and len(line) == 51 for line in lines)
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == lines
    assert main([*argv[:-1], "8"]) == 0
    assert capsys.readouterr().out.splitlines() != lines
    with pytest.raises(SystemExit):
        main(["generate", "--temperature", "0"])
    assert "argument --temperature: must be > 0" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["produce", "texts", "--generated", "--labels", "inline"], "never labelled"),
    (["produce", "prices", "--generated"], "--generated produces texts"),
    (["produce", "texts", "--generated", "--csv", __file__], "exclude each other"),
    (["produce", "texts", "--prompt", "Gold"], "--prompt applies to --generated"),
])
def test_produce_generated_refuses_what_it_cannot_honour(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2  # refused before any broker is contacted
    assert message in capsys.readouterr().err


def test_train_textgen_csv_needs_only_a_text_column(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = tmp_path / "texts.csv"
    texts.write_text("body\nhello\n")
    assert main(["train", "textgen", "--csv", str(texts), "--quick"]) == 2
    assert "no column text; need text" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "expected"), [([], True), (["--no-word-vectors"], False)])
def test_no_word_vectors_reaches_the_training_request(
        monkeypatch: pytest.MonkeyPatch, tmp_path: object, flags: list[str],
        expected: bool) -> None:
    from tickcast.training import jobs

    seen: list[jobs.TrainRequest] = []

    class Stop(Exception):
        pass

    def train(request: jobs.TrainRequest, **kwargs: object) -> None:
        seen.append(request)
        raise Stop

    monkeypatch.setattr(jobs, "train", train)
    monkeypatch.setenv("TICKCAST_MODEL_DIR", str(tmp_path))
    with pytest.raises(Stop):
        main(["train", "sentiment", "--quiet", *flags])
    assert [r.word_vectors for r in seen] == [expected]
