"""A real Prometheus scrapes a real worker: every dashboard query and alert rule is valid
PromQL and returns data."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.deploy.test_monitoring_config import dashboard_queries, rule_queries
from tests.helpers import free_port, require_tool
from tests.integration.conftest import produce
from tests.integration.test_streaming_inference import gold_ticks, new_version
from tickcast.dashboards import render
from tickcast.localprom import LocalPrometheus
from tickcast.models.registry import ModelStore
from tickcast.training.data import sample_texts
from tickcast.training.publish import publish_update

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def prometheus_and_worker(start_worker, tmp_path: Path, store: ModelStore):
    binary = require_tool("prometheus", "apt-get install prometheus")
    worker = start_worker(TICKCAST_MODEL_DIR=str(store.root))
    prom = LocalPrometheus(binary=binary, targets=[worker.metrics_url.split("/")[2]],
                           port=free_port(), state_dir=tmp_path / "prometheus",
                           scrape_interval="1s")
    prom.start()
    try:
        yield prom, worker, store
    finally:
        prom.stop()


def test_every_dashboard_query_and_alert_rule_returns_data(prometheus_and_worker) -> None:
    prom, worker, store = prometheus_and_worker
    deadline = time.monotonic() + 30
    while not prom.query('up{job="tickcast"} == 1')["data"]["result"]:  # scraped once
        assert time.monotonic() < deadline, "prometheus never scraped the worker"
        time.sleep(0.5)
    texts = sample_texts().head(300)
    records = [(f"{worker.prefix}texts", r.id.encode(), json.dumps(
        {"id": r.id, "ts": 1, "text": r.text}).encode()) for r in texts.itertuples()]
    records += [(f"{worker.prefix}labels", r.id.encode(), json.dumps(
        {"id": r.id, "label": int(r.label)}).encode()) for r in texts.itertuples()]
    records += [(f"{worker.prefix}texts", b"bad", b"not json")]
    produce(worker.bootstrap, records + gold_ticks(worker.prefix, 3000, 200))
    publish_update(new_version(store, "v-refused"), bootstrap=[worker.bootstrap],
                   topic=f"{worker.prefix}model-updates")  # swap
    # keep traffic flowing over several scrapes so rates and quantiles have data
    for start in range(3200, 3300, 20):
        time.sleep(1.0)
        produce(worker.bootstrap, gold_ticks(worker.prefix, start, 20))
    time.sleep(3.0)

    failures = []
    # (expression, must it return data): an alert's full expression is empty unless firing.
    queries = [(q, True) for q in dashboard_queries()]
    queries += [(full, False) for full, _ in rule_queries()]
    queries += [(query, True) for _, query in rule_queries()]
    for expr, needs_data in queries:
        answer = prom.query(expr)
        if answer.get("status") != "success":
            failures.append(f"invalid: {expr!r}: {answer.get('error')}")
        elif needs_data and not answer["data"]["result"]:
            failures.append(f"no data: {expr!r}")
    assert not failures, "\n".join(failures)
    out = prom.state_dir / "dashboards.png"
    drawn = render(prom.url, out, minutes=2)
    assert drawn >= 15
    assert out.read_bytes().startswith(b"\x89PNG")
    rules = prom.api("rules")["data"]["groups"][0]["rules"]
    assert len(rules) == 8
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError"))
                                                     for r in rules]
