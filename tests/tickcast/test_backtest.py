"""``tickcast backtest``: the worker's processors over recorded events, versions compared."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from tickcast.backtest import ModelRef, in_event_time, with_labels
from tickcast.cli import main
from tickcast.errors import UsageError
from tickcast.streams.messages import InMessage
from tickcast.training.data import gold_closes
from tickcast.training.prices import PriceConfig, train_prices


@pytest.fixture
def env(store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TICKCAST_MODEL_DIR", str(store.root))
    monkeypatch.setenv("TICKCAST_STATE_DIR", str(tmp_path / "state"))
    return store


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["backtest", "--no-progress", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _prices_jsonl(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _gold_rows(n: int, symbol: str = "XAU") -> list[dict]:
    gold = gold_closes().tail(n).reset_index(drop=True)
    return [{"symbol": symbol, "ts": int(d.timestamp() * 1000), "price": float(p)}
            for d, p in zip(gold["date"], gold["close"], strict=True)]


def test_twice_on_the_shipped_data_gives_identical_files(
        env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        code, printed, _ = _run(["--out", str(out)], capsys)
        assert code == 0, printed
    names = sorted(p.name for p in outs[0].iterdir())
    assert {"summary.json", "series.csv", "series.png", "dead-letters.jsonl"} <= set(names)
    assert names == sorted(p.name for p in outs[1].iterdir())
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    summary = json.loads((outs[0] / "summary.json").read_text())
    assert summary["inputs"]["prices"] == len(gold_closes())
    assert summary["forecasts"]["models"][0]["scored"] > 1000
    assert summary["sentiment"]["models"][0]["labelled"] == summary["inputs"]["texts"]
    assert "forecasts (whole run" in printed
    assert "dead letters: none" in printed


def test_live_metrics_in_the_series_are_the_processors(
        env, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The series holds the rolling gauges the worker would export, sampled every N events
    (at the end of the batch that crosses each multiple: batches of 128 here)."""
    monkeypatch.setenv("TICKCAST_BATCH_SIZE", "128")
    prices = _prices_jsonl(tmp_path / "p.jsonl", _gold_rows(700))
    code, _, _ = _run(["--prices", str(prices), "--every", "256", "--out",
                       str(tmp_path / "o")], capsys)
    assert code == 0
    rows = (tmp_path / "o" / "series.csv").read_text().splitlines()
    assert rows[0] == "kind,model,step,ts,metric,value"
    steps = sorted({int(r.split(",")[2]) for r in rows[1:]})
    assert steps == [256, 512, 700]  # at each multiple crossed, and at the end
    metrics = {r.split(",")[4] for r in rows[1:]}
    assert {"model_rmse", "naive_rmse", "skill", "model_mase", "dm_stat"} <= metrics


def test_interval_coverage_in_the_summary_is_that_of_the_records(
        env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole-run coverage and score equal NumPy on the bounds the forecast records
    carried and the prices that followed (the baseline's are reported beside them)."""
    from tickcast.streams.evaluation.intervals import interval_score

    rows = _gold_rows(500)
    prices = _prices_jsonl(tmp_path / "p.jsonl", rows)
    code, printed, _ = _run(["--prices", str(prices), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, printed
    assert "forecast intervals (whole run" in printed
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    got = summary["forecasts"]["models"][0]["intervals"]
    records = _lines(next((tmp_path / "o").glob("forecasts-*.jsonl")))
    by_ts = {r["ts"]: r["price"] for r in rows}
    ts = sorted(by_ts)
    after = {a: by_ts[b] for a, b in pairwise(ts)}
    scored = [r for r in records if r["ts"] in after]
    actual = np.array([after[r["ts"]] for r in scored])
    last = np.array([r["last_price"] for r in scored])
    for level in ("80", "95"):
        lo = np.array([r[f"lower_{level}"] for r in scored])
        hi = np.array([r[f"upper_{level}"] for r in scored])
        assert got["lstm"][level]["n"] == len(scored)
        assert got["lstm"][level]["coverage"] == pytest.approx(
            np.mean((lo <= actual) & (actual <= hi)))
        assert got["lstm"][level]["score_ratio"] == pytest.approx(
            np.mean(interval_score(lo, hi, actual, int(level) / 100) / last))
        assert 0 < got["baseline"][level]["n"] <= len(scored)


def test_a_challenger_is_tested_against_the_champion_on_the_same_ticks(
        env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import dieboldmariano

    champion = env.latest("gold-lstm")
    challenger = train_prices(
        gold_closes().tail(800).reset_index(drop=True), store_dir=env.root, progress=False,
        config=PriceConfig(window=10, units=(4,), epochs=1, seed=5)).manifest.version
    rows = _gold_rows(600) + _gold_rows(600, symbol="XAG")
    prices = _prices_jsonl(tmp_path / "p.jsonl", rows)
    out = tmp_path / "o"
    code, printed, _ = _run(["--prices", str(prices), "--forecaster", "gold-lstm",
                             "--forecaster", f"gold-lstm@{challenger}", "--out", str(out)],
                            capsys)
    assert code == 0, printed
    summary = json.loads((out / "summary.json").read_text())["forecasts"]
    assert summary["champion"] == f"gold-lstm@{champion}"
    reported = summary["models"][1]["dm_vs_champion"]

    # Recompute from the output files and the inputs alone: each forecast meets the next
    # price of its symbol; the scale is the naive error within the champion's window.
    window = 10
    by_symbol: dict[str, list[dict]] = {}
    for row in rows:
        by_symbol.setdefault(row["symbol"], []).append(row)
    forecasts = {v: {(f["symbol"], f["ts"]): f["forecast"]
                     for f in _lines(out / f"forecasts-{v}.jsonl")}
                 for v in (champion, challenger)}
    actual, f_champion, f_challenger = [], [], []
    for symbol, ticks in by_symbol.items():
        for i in range(window - 1, len(ticks) - 1):
            key = (symbol, ticks[i]["ts"])
            closes = np.array([t["price"] for t in ticks[i - window + 1:i + 1]])
            scale = np.abs(np.diff(closes)).mean()
            actual.append(ticks[i + 1]["price"] / scale)
            f_champion.append(forecasts[champion][key] / scale)
            f_challenger.append(forecasts[challenger][key] / scale)
    # Scored in event-time order; both symbols' ticks share timestamps, so order by the pair.
    stat, p = dieboldmariano.dm_test(actual, f_challenger, f_champion)
    assert reported["n"] == len(actual) == 2 * (600 - window)
    assert reported["stat"] == pytest.approx(stat, rel=1e-6)
    assert reported["p_value"] == pytest.approx(p, rel=1e-5)
    assert f"gold-lstm@{challenger}" in printed


def test_sentiment_auc_equals_sklearn_on_the_outputs(
        env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.metrics import roc_auc_score

    out = tmp_path / "o"
    code, _, _ = _run(["--out", str(out)], capsys)
    assert code == 0
    version = env.latest("sentiment-rnn")
    scored = _lines(out / f"sentiment-{version}.jsonl")
    labels = [s["label"] for s in scored]
    model = json.loads((out / "summary.json").read_text())["sentiment"]["models"][0]
    assert model["auc"] == pytest.approx(roc_auc_score(labels, [s["rnn_score"] for s in scored]))
    assert model["auc_vader"] == pytest.approx(
        roc_auc_score(labels, [s["vader_score"] for s in scored]))
    assert model["vs_vader"]["diff"] == pytest.approx(model["auc"] - model["auc_vader"])


def test_bad_rows_become_dead_letters_with_the_workers_reasons(
        env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _gold_rows(40)
    rows: list[dict | str] = [
        *good[:20],
        "not json",
        {"symbol": "XAU", "ts": good[5]["ts"], "price": 1.0},  # older than the newest: dead
        {"symbol": "XAU", "price": 1.0},  # no ts
        {"symbol": "XAU", "ts": "yesterday", "price": 1.0},
        *good[20:],
    ]
    texts = tmp_path / "t.jsonl"
    texts.write_text("\n".join([
        json.dumps({"id": "a", "ts": 1, "text": "what a lovely day"}),
        json.dumps({"id": "b", "ts": 2, "text": ""}),
        json.dumps({"id": "c", "ts": 3, "text": "awful", "colour": "red"}),
        json.dumps({"id": "d", "ts": 4, "text": "awful service"}),
    ]) + "\n")
    labels = tmp_path / "l.csv"
    labels.write_text("id,label\na,1\nd,0\nzz,1\na,maybe\n")
    out = tmp_path / "o"
    code, printed, _ = _run(["--prices", str(_prices_jsonl(tmp_path / "p.jsonl", rows)),
                             "--texts", str(texts), "--labels", str(labels), "--out", str(out)],
                            capsys)
    assert code == 0, printed
    dead = _lines(out / "dead-letters.jsonl")
    by_reason = sorted((d["source_topic"], d["reason"]) for d in dead)
    assert by_reason == sorted([
        ("prices", "not_json"), ("prices", "out_of_order"), ("prices", "missing_field"),
        ("prices", "wrong_type"), ("texts", "empty_text"), ("texts", "unknown_field"),
        ("labels", "wrong_type")])
    summary = json.loads((out / "summary.json").read_text())
    assert sum(summary["dead_letters"].values()) == len(dead)
    # Every good tick past the warm-up got exactly one forecast.
    version = env.latest("gold-lstm")
    keys = [(f["symbol"], f["ts"]) for f in _lines(out / f"forecasts-{version}.jsonl")]
    assert sorted(keys) == sorted(("XAU", g["ts"]) for g in good[9:])
    # Both labelled texts met their label; the label for an unknown text only waits.
    assert summary["sentiment"]["models"][0]["labelled"] == 2


def test_refusals_are_one_line_errors(env, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["--forecaster", "gold-lstm@nope"], capsys)
    assert code == 2
    assert "cannot backtest gold-lstm@nope" in err
    code, _, err = _run(["--sentiment", "gold-lstm"], capsys)
    assert code == 2
    assert "not a sentiment" in err
    code, _, err = _run(["--forecaster", "no-such-model"], capsys)
    assert code == 2
    assert "no LATEST version" in err
    texts = tmp_path / "t.jsonl"
    texts.write_text("")
    code, _, err = _run(["--labels", str(texts)], capsys)
    assert code == 2
    assert "--labels needs --texts" in err
    with pytest.raises(SystemExit) as exit_:
        _run(["--prices", str(tmp_path / "missing.jsonl")], capsys)
    assert exit_.value.code == 2
    assert "no such file" in capsys.readouterr().err
    odd = tmp_path / "p.txt"
    odd.write_text("x")
    code, _, err = _run(["--prices", str(odd)], capsys)
    assert code == 2
    assert "expected .csv or JSON lines" in err


def test_model_refs_and_feed_order() -> None:
    assert ModelRef.parse("gold-lstm") == ModelRef("gold-lstm", "LATEST")
    assert str(ModelRef.parse("gold-lstm@v2")) == "gold-lstm@v2"
    with pytest.raises(UsageError):
        ModelRef.parse("gold-lstm@")

    def msg(n: int, value: bytes, topic: str = "prices") -> InMessage:
        return InMessage(topic, 0, n, None, value)

    ordered = in_event_time([msg(1, b'{"ts": 5}'), msg(2, b"junk"), msg(3, b'{"ts": 1}'),
                             msg(4, b'{"ts": 5}')])
    assert [m.offset for m in ordered] == [3, 1, 2, 4]  # junk stays after its predecessor
    fed = with_labels([msg(1, b'{"id": "a"}', "texts"), msg(2, b'{"id": "b"}', "texts")],
                      [msg(1, b'{"id": "b", "label": 1}', "labels"),
                       msg(2, b'{"id": "x", "label": 0}', "labels"),
                       msg(3, b'{"id": "a", "label": 0}', "labels")])
    assert [(m.topic, m.offset) for m in fed] == [
        ("texts", 1), ("labels", 3), ("texts", 2), ("labels", 1), ("labels", 2)]


def test_the_gate_on_backtest_evidence_rejects_worse_and_promotes_better(
        env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A forecaster made worse by a fixed bias loses to the champion; as the champion, it
    loses to the unbiased one. The decision acts on the store (no broker: no --publish)."""
    from tests.helpers import biased_forecaster

    monkeypatch.setenv("TICKCAST_GATE_MIN_EVENTS", "100")
    good = env.latest("gold-lstm")
    bad = biased_forecaster(env.root, env.path("gold-lstm", good), bias=2.0).version
    prices = _prices_jsonl(tmp_path / "p.jsonl", _gold_rows(800))

    def backtest(champion: str, challenger: str) -> Path:
        out = tmp_path / f"{champion}-{challenger}"
        code, printed, _ = _run(["--prices", str(prices), "--forecaster",
                                 f"gold-lstm@{champion}", "--forecaster",
                                 f"gold-lstm@{challenger}", "--out", str(out)], capsys)
        assert code == 0, printed
        return out

    assert main(["models", "shadow", "gold-lstm", bad]) == 0
    out = backtest(good, bad)
    capsys.readouterr()
    assert main(["models", "verdict", "gold-lstm", "--backtest", str(out), "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert (verdict["decision"], verdict["worse"]) == ("reject", True)
    assert verdict["evidence"]["kind"] == "dm"
    assert verdict["evidence"]["stat"] > 0
    assert main(["models", "verdict", "gold-lstm", "--backtest", str(out), "--apply"]) == 0
    assert "REJECT" in capsys.readouterr().out
    assert env.challenger("gold-lstm") is None
    assert env.latest("gold-lstm") == good

    # The other way round: the biased one serves, the good one challenges and wins.
    env.promote("gold-lstm", bad)
    assert main(["models", "shadow", "gold-lstm", good]) == 0
    out = backtest(bad, good)
    capsys.readouterr()
    assert main(["models", "verdict", "gold-lstm", "--backtest", str(out), "--apply"]) == 0
    printed = capsys.readouterr().out
    assert "PROMOTE" in printed
    assert f"LATEST is now {good}" in printed
    assert env.latest("gold-lstm") == good
    assert env.challenger("gold-lstm") is None
    # A backtest whose champion is no longer LATEST is no evidence.
    env.promote("gold-lstm", bad)
    assert main(["models", "shadow", "gold-lstm", good]) == 0
    env.promote("gold-lstm", good)  # promoting clears the shadow
    assert main(["models", "verdict", "gold-lstm", "--backtest", str(out)]) == 2
    assert "has no challenger" in capsys.readouterr().err
