"""Writes the provisioned Grafana dashboards (deploy/grafana/dashboards/*.json).

Run `python deploy/grafana/build_dashboards.py` after editing; tests check the JSON files are
what this script writes, that they are structurally valid, and (against a real Prometheus and
a real worker) that every panel's query is valid PromQL that returns data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


def panel(title: str, targets: list[tuple[str, str]], *, unit: str = "short", kind: str =
          "timeseries", width: int = 12, description: str = "", minmax: tuple | None = None
          ) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if minmax is not None:
        defaults["min"], defaults["max"] = minmax
    return {
        "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
        "gridPos": {"w": width, "h": 8},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend,
                     "datasource": DATASOURCE} for i, (expr, legend) in enumerate(targets)],
    }


def dashboard(uid: str, title: str, description: str, panels: list[dict[str, Any]]
              ) -> dict[str, Any]:
    x = y = 0
    for i, p in enumerate(panels, start=1):
        p["id"] = i
        w = p["gridPos"]["w"]
        if x + w > 24:
            x, y = 0, y + 8
        p["gridPos"].update(x=x, y=y)
        x += w
    return {
        "uid": uid, "title": title, "description": description, "tags": ["tickcast"],
        "schemaVersion": 39, "version": 1, "editable": False, "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"}, "timezone": "utc",
        "panels": panels, "templating": {"list": []}, "annotations": {"list": []},
    }


def challenger_row(model: str, panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The champion-vs-challenger panels of one model kind, and the gate's verdict."""
    return [*panels, panel(
        "Gate verdict on the challenger",
        [(f"max by (decision) (tickcast_challenger_verdict{{model=\"{model}\"}})",
          "{{decision}}")], unit="none", width=8, minmax=(0, 1),
        description="1 for the decision the gate takes on this worker's evidence "
        "(tickcast models verdict pools every worker's): promote, reject_worse, "
        "reject_no_gain or watch; all 0 while no challenger is in shadow.")]


def sentiment() -> dict[str, Any]:
    return dashboard("tickcast-sentiment", "Sentiment: which model is better now",
                     "RNN vs VADER on the same labelled texts, over the rolling window.", [
        panel("Rolling ROC AUC", [("avg by (model) (tickcast_sentiment_auc)", "{{model}}")],
              unit="none", minmax=(0.5, 1), description="Exact AUC over the last "
              "TICKCAST_AUC_WINDOW labelled texts (averaged over workers)."),
        panel("AUC difference RNN − VADER (95% DeLong interval)",
              [("avg by (bound) (tickcast_sentiment_auc_diff)", "{{bound}}")], unit="none",
              description="Above 0 with the low bound above 0: the RNN is better, and we are "
              "fairly sure."),
        panel("Agreement and Cohen's kappa",
              [("avg(tickcast_sentiment_agreement_ratio)", "agreement"),
               ("avg(tickcast_sentiment_kappa)", "kappa")], unit="percentunit"),
        panel("Labelled volume", [
            ("sum(rate(tickcast_labels_total{outcome=\"matched\"}[1m]))", "labels matched/s"),
            ("sum by (label) (tickcast_sentiment_auc_window_labels{model=\"vader\"})",
             "in window, label {{label}}")], unit="short"),
        panel("Label join", [("sum by (outcome) (rate(tickcast_labels_total[1m]))",
                              "{{outcome}}"),
                             ("sum by (kind) (tickcast_sentiment_pending)", "waiting {{kind}}")],
              width=24),
        *challenger_row("rnn", [
            panel("Champion vs challenger: rolling ROC AUC",
                  [("avg(tickcast_sentiment_auc{model=\"rnn\"})", "champion (RNN)"),
                   ("avg(tickcast_sentiment_auc{model=\"challenger\"})", "challenger")],
                  unit="none", minmax=(0.5, 1), width=8,
                  description="The challenger in shadow (tickcast models shadow) scores the "
                  "same texts as the champion; empty while there is none."),
            panel("AUC difference challenger − champion (95% DeLong interval)",
                  [("avg by (bound) (tickcast_challenger_auc_diff)", "{{bound}}")],
                  unit="none", width=8, description="Over the texts both labelled since the "
                  "shadow began (up to TICKCAST_GATE_MAX_EVENTS)."),
        ]),
    ])


def forecaster() -> dict[str, Any]:
    return dashboard("tickcast-forecaster", "Forecaster: is the LSTM beating naive",
                     "Next-tick forecasts scored against the price that followed, beside "
                     "naive persistence on the same ticks.", [
        panel("Forecast vs actual, per symbol", [
            ("max by (symbol) (tickcast_last_price)", "{{symbol}} actual"),
            ("max by (symbol) (tickcast_last_forecast)", "{{symbol}} forecast")],
              unit="currencyUSD", width=24),
        panel("Rolling RMSE", [("avg by (model) (tickcast_forecast_rmse)", "{{model}}")]),
        panel("Rolling MAE", [("avg by (model) (tickcast_forecast_mae)", "{{model}}")]),
        panel("Skill vs naive (1 − RMSE ratio)",
              [("avg(tickcast_forecast_skill_ratio)", "skill")], unit="percentunit",
              description="Above 0: the LSTM beats persistence."),
        panel("Direction ROC AUC", [("avg(tickcast_forecast_direction_auc)", "direction AUC")],
              unit="none", minmax=(0, 1)),
        panel("Rolling MAPE", [("avg by (model) (tickcast_forecast_mape_ratio)", "{{model}}")],
              unit="percentunit"),
        panel("Rolling MASE", [("avg by (model) (tickcast_forecast_mase)", "{{model}}")],
              unit="none", description="Errors scaled by persistence's in-sample error: below "
              "1 beats what persistence did within the window."),
        panel("Diebold-Mariano, LSTM vs naive",
              [("max(tickcast_forecast_dm{value=\"stat\"})", "DM statistic"),
               ("max(tickcast_forecast_dm{value=\"p_value\"})", "p-value")], unit="none",
              description="Statistic < 0 with p < 0.05: the LSTM's squared errors are "
              "significantly smaller than persistence's over the window."),
        panel("Ticks by outcome", [("sum by (outcome) (rate(tickcast_ticks_total[1m]))",
                                    "{{outcome}}")], unit="short"),
        panel("Are the intervals honest: coverage",
              [("avg by (model, level) (tickcast_forecast_interval_coverage_ratio)",
                "{{model}} {{level}} %"), ("vector(0.8)", "nominal 80 %"),
               ("vector(0.95)", "nominal 95 %")], unit="percentunit", width=8,
              description="Share of next prices inside each central interval over the "
              "window, for the LSTM and the baseline (persistence with the empirical quantiles "
              "of recent returns). Honest intervals sit on their nominal line."),
        panel("Interval score (lower is better)",
              [("avg by (model, level) (tickcast_forecast_interval_score_ratio)",
                "{{model}} {{level}} %")], unit="percentunit", width=8,
              description="Winkler score relative to the price: the width plus 2/(1 - level) "
              "times any miss. The LSTM's intervals earn their place if they score below the "
              "baseline's at the same level."),
        panel("Interval width",
              [("avg by (model, level) (tickcast_forecast_interval_width_ratio)",
                "{{model}} {{level}} %")], unit="percentunit", width=8,
              description="Mean width of the central interval, relative to the price."),
        *challenger_row("lstm", [
            panel("Champion vs challenger: rolling MASE",
                  [("avg(tickcast_forecast_mase{model=\"lstm\"})", "champion"),
                   ("avg(tickcast_forecast_mase{model=\"challenger\"})", "challenger"),
                   ("avg(tickcast_forecast_mase{model=\"naive\"})", "naive")],
                  unit="none", width=8, description="Lower is better; the challenger in "
                  "shadow forecasts the same ticks as the champion."),
            panel("Diebold-Mariano, challenger vs champion",
                  [("max(tickcast_challenger_forecast_dm{value=\"stat\"})", "DM statistic"),
                   ("max(tickcast_challenger_forecast_dm{value=\"p_value\"})", "p-value")],
                  unit="none", width=8, description="Statistic < 0 with p < "
                  "TICKCAST_GATE_ALPHA: the challenger's errors are significantly smaller."),
        ]),
    ])


def operations() -> dict[str, Any]:
    def quantiles(metric: str, by: str) -> list[tuple[str, str]]:
        return [(f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket[1m])))",
                 f"p{int(q * 100)} {{{{{by}}}}}") for q in (0.5, 0.95, 0.99)]

    return dashboard("tickcast-operations", "Operations",
                     "Throughput, latency, batching, lag, dead letters and model versions.", [
        panel("Events in / out per second", [
            ("sum by (topic) (rate(tickcast_events_in_total[1m]))", "in {{topic}}"),
            ("sum by (topic) (rate(tickcast_events_out_total[1m]))", "out {{topic}}")],
              unit="ops"),
        panel("End-to-end latency (Kafka timestamp → output)",
              quantiles("tickcast_event_latency_seconds", "topic"), unit="s"),
        panel("Batch size", quantiles("tickcast_batch_size", "agent")[:2]),
        panel("Queue wait vs compute (p95)", [
            ("histogram_quantile(0.95, sum by (le, agent) "
             "(rate(tickcast_batch_queue_wait_seconds_bucket[1m])))", "wait {{agent}}"),
            ("histogram_quantile(0.95, sum by (le, agent) "
             "(rate(tickcast_batch_duration_seconds_bucket[1m])))", "compute {{agent}}"),
            ("histogram_quantile(0.95, sum by (le, model) "
             "(rate(tickcast_inference_duration_seconds_bucket[1m])))", "inference {{model}}")],
              unit="s"),
        panel("Consumer lag", [("sum by (topic) (tickcast_consumer_lag)", "{{topic}}")]),
        panel("Dead letters by reason", [
            ("sum by (topic, reason) (rate(tickcast_dead_letters_total[5m])) > 0",
             "{{topic}} {{reason}}"),
            ("sum(rate(tickcast_dead_letters_total[5m]))", "all")], unit="ops"),
        panel("Model versions serving", [("max by (model, version) (tickcast_model_info)",
                                          "{{model}} {{version}}")], kind="state-timeline"),
        panel("Model swaps", [("sum by (model, outcome) (increase("
                               "tickcast_model_swaps_total[5m]))", "{{model}} {{outcome}}")]),
        panel("Workers", [("sum(up{job=\"tickcast\"})", "up"),
                          ("sum by (topic) (tickcast_assigned_partitions)",
                           "partitions {{topic}}")], width=24),
    ])


def build() -> dict[str, dict[str, Any]]:
    return {"sentiment.json": sentiment(), "forecaster.json": forecaster(),
            "operations.json": operations()}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, board in build().items():
        (OUT / name).write_text(json.dumps(board, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
