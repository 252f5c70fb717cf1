"""Prometheus config and rules pass promtool; dashboards are current and well formed."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import yaml

from tests.helpers import require_tool

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy/prometheus/rules/tickcast.yml"
DASHBOARDS = REPO / "deploy/grafana/dashboards"
THRESHOLD = re.compile(r"^(?P<query>.+?)\s*(?P<op>[<>]=?|==|!=)\s*(?P<value>-?[0-9.]+)$",
                       re.DOTALL)


def promtool() -> str:
    return require_tool("promtool", "apt-get install prometheus")


def test_promtool_accepts_the_config_and_rules() -> None:
    config = str(REPO / "deploy/prometheus/prometheus.yml")
    for args in (["check", "config", "--syntax-only", config], ["check", "rules", str(RULES)]):
        result = subprocess.run([promtool(), *args], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def alert_rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_the_alerts_users_need_exist_and_have_one_threshold_each() -> None:
    names = {r["alert"] for r in alert_rules()}
    assert names == {"TickcastSentimentAUCLow", "TickcastLSTMWorseThanNaive",
                     "TickcastConsumerLagGrowing", "TickcastDeadLetterSpike",
                     "TickcastModelSwapFailed", "TickcastChallengerWorse",
                     "TickcastChallengerRefused", "TickcastIntervalsUndercover"}
    for rule in alert_rules():
        assert THRESHOLD.match(rule["expr"].strip()), rule["expr"]
        assert rule["annotations"]["summary"]


def load_builder():
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", REPO / "deploy/grafana/build_dashboards.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_dashboard_json_is_what_the_builder_writes() -> None:
    for name, board in load_builder().build().items():
        on_disk = json.loads((DASHBOARDS / name).read_text())
        assert on_disk == board, f"{name} is stale: run python deploy/grafana/build_dashboards.py"


def test_dashboards_are_well_formed() -> None:
    uids = set()
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        assert board["uid"] not in uids
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            assert panel["title"]
            assert panel["datasource"]["uid"] == "prometheus"
            pos = panel["gridPos"]
            assert pos["x"] >= 0
            assert pos["x"] + pos["w"] <= 24
            assert panel["targets"]
            for target in panel["targets"]:
                assert target["expr"].strip()
                assert target["refId"]
    assert uids == {"tickcast-sentiment", "tickcast-forecaster", "tickcast-operations"}


def dashboard_queries() -> list[str]:
    return [t["expr"] for path in sorted(DASHBOARDS.glob("*.json"))
            for p in json.loads(path.read_text())["panels"] for t in p["targets"]]


def rule_queries() -> list[tuple[str, str]]:
    """(full expression, the query before its threshold) per alert."""
    out = []
    for rule in alert_rules():
        match = THRESHOLD.match(rule["expr"].strip())
        assert match
        out.append((rule["expr"].strip(), match["query"]))
    return out
