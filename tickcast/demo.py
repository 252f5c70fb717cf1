"""``tickcast demo``: the whole pipeline on one machine, with a live summary.

Starts what is not already running — the local broker (when the bootstrap is the local one), a
worker process and a replay of labelled texts — prints where ``/metrics`` is and a summary every
few seconds, and stops everything it started on Ctrl-C (or after ``--duration``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from itertools import count
from pathlib import Path

from tickcast.errors import TickcastError
from tickcast.localkafka import LocalKafka
from tickcast.localprom import LocalPrometheus, find_prometheus
from tickcast.scrape import Samples, scrape, wait_for_metrics
from tickcast.settings import ToolSettings
from tickcast.streams.settings import Settings, child_environ, writable_dir

__all__ = ["ensure_models", "run_demo"]


def _summary(samples: Samples) -> str:
    def value(name: str, **labels: str) -> float:
        return samples.value(name, 0.0, **labels) or 0.0

    scored = value("tickcast_texts_scored_total", model="vader")
    dead = samples.total("tickcast_dead_letters_total")
    auc = value("tickcast_sentiment_auc", model="vader")
    pos = value("tickcast_sentiment_auc_window_labels", model="vader", label="1")
    neg = value("tickcast_sentiment_auc_window_labels", model="vader", label="0")
    matched = value("tickcast_labels_total", outcome="matched")
    def fmt(x: float) -> str:
        return "n/a" if x != x else f"{x:.3f}"  # NaN while undefined

    rnn = value("tickcast_sentiment_auc", model="rnn")
    forecasts = value("tickcast_ticks_total", outcome="forecast")
    skill = value("tickcast_forecast_skill_ratio")
    return (f"texts {int(scored):>6} (labelled {int(pos + neg)} in window) AUC VADER "
            f"{fmt(auc)} RNN {fmt(rnn)} | forecasts {int(forecasts):>6} skill vs naive "
            f"{fmt(skill)} | dead letters {int(dead)} | labels matched {int(matched)}")


def _replay_forever(settings: Settings, rate: float, stop: threading.Event) -> None:
    """Labelled texts (labels sent separately) and gold ticks, interleaved, endlessly."""
    import pandas as pd

    from tickcast.replay import Replay, price_events, text_events
    from tickcast.training.data import gold_closes, sample_texts
    from tickcast.training.prices import DAILY_FROM

    texts = sample_texts()
    gold = gold_closes()
    gold = gold[gold["date"] >= DAILY_FROM].reset_index(drop=True)
    span = gold["date"].iloc[-1] - gold["date"].iloc[0] + pd.Timedelta(days=1)
    replay = Replay(bootstrap=settings.bootstrap_servers, topic_prefix=settings.topic_prefix,
                    security=settings.kafka_security,
                    client_id="tickcast-demo-replay")

    def text_rounds():  # noqa: ANN202 - ids made unique per round so each is counted
        for round_no in count():
            shuffled = texts.sample(frac=1.0, random_state=round_no).copy()
            shuffled["id"] = shuffled["id"] + f"#{round_no}"
            yield from text_events(shuffled, label_mode="separate")

    def price_rounds():  # noqa: ANN202 - each round shifted later, so ticks stay in order
        for round_no in count():
            shifted = gold.assign(date=gold["date"] + span * round_no)
            yield from price_events(shifted, symbol="XAU")

    def records():  # noqa: ANN202
        for text, price in zip(text_rounds(), price_rounds(), strict=False):
            if stop.is_set():
                return
            yield text
            yield price

    try:
        replay.run(records(), rate=rate, progress=False)
    finally:
        replay.close()


def ensure_models(settings: Settings) -> None:
    """Train quick models (seconds, offline) for the forecaster and the sentiment model a
    worker serves (``TICKCAST_FORECASTER_MODEL``, ``TICKCAST_SENTIMENT_MODEL``) when the store
    has no LATEST of them."""
    from tickcast.models.registry import ModelStore
    from tickcast.training.jobs import TrainRequest, train

    store = ModelStore(writable_dir(settings.model_dir, "TICKCAST_MODEL_DIR"))
    served = (("prices", settings.forecaster_model), ("sentiment", settings.sentiment_model))
    for task, name in served:
        if store.latest(name) is None:
            print(f"no {name} model in {settings.model_dir}: training a quick one "
                  f"(`tickcast train {task}` trains the real one) ...", flush=True)
            outcome = train(TrainRequest(task=task, name=name, quick=True, progress=False),
                            model_dir=settings.model_dir,
                            datasets_dir=settings.state_dir / "datasets")
            print(f"{name} {outcome.manifest.version} written to {outcome.path}", flush=True)


def _start_prometheus(settings: Settings, tools: ToolSettings) -> LocalPrometheus | None:
    """A local Prometheus with the project's alert rules, when the binary is installed."""
    binary = find_prometheus()
    if binary is None:
        print("(no `prometheus` binary: `apt-get install prometheus` adds a local Prometheus "
              "with the alert rules to the demo)")
        return None
    port = tools.prometheus_port
    prometheus = LocalPrometheus(binary=binary, port=port,
                                 targets=[f"{settings.metrics_addr}:{settings.metrics_port}"],
                                 state_dir=Path(settings.state_dir) / "prometheus")
    try:
        prometheus.start()
    except (OSError, RuntimeError, TimeoutError) as exc:
        print(f"(local Prometheus did not start: {exc})")
        prometheus.stop()
        return None
    return prometheus


def run_demo(settings: Settings, tools: ToolSettings, *, rate: float, duration: float) -> int:
    """Run the demo until Ctrl-C or ``duration`` seconds; 0 on a clean stop, 1 if the worker
    exited."""
    writable_dir(settings.state_dir, "TICKCAST_STATE_DIR")
    ensure_models(settings)
    broker = LocalKafka.from_settings(tools, state_dir=settings.state_dir)
    started_broker = broker.up_for(settings.kafka_bootstrap)
    if started_broker:
        print(f"started the local Kafka broker on {broker.bootstrap}", flush=True)
    worker = None
    prometheus = None
    stop = threading.Event()
    try:
        if settings.metrics_port == 0:
            settings = replace(settings, metrics_port=9464)
        log_path = Path(settings.state_dir) / "demo-worker.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = child_environ({"TICKCAST_METRICS_PORT": str(settings.metrics_port)})
        with open(log_path, "ab") as log:
            worker = subprocess.Popen([sys.executable, "-m", "tickcast", "worker"], env=env,
                                      stdout=log, stderr=subprocess.STDOUT)
        url = f"http://{settings.metrics_addr}:{settings.metrics_port}/metrics"
        try:
            wait_for_metrics(url, timeout=90, proc=worker)
        except (RuntimeError, TimeoutError) as exc:
            raise TickcastError(f"the worker did not start ({exc}); see {log_path}") from None
        feeder = threading.Thread(target=_replay_forever, args=(settings, rate, stop),
                                  daemon=True, name="demo-replay")
        feeder.start()
        prometheus = _start_prometheus(settings, tools)
        if prometheus is not None:
            print(f"\nprometheus:     {prometheus.url} (alerts: {prometheus.url}/alerts)")
        print(f"\nworker metrics: {url}\nworker log:     {log_path}\n"
              f"sentiment out:  kcat -C -b {settings.kafka_bootstrap} -t "
              f"{settings.topic('sentiment')} -o end\nreplaying labelled texts and gold ticks "
              f"at {rate:g} records/s; Ctrl-C stops everything this demo started\n", flush=True)
        deadline = time.monotonic() + duration if duration > 0 else float("inf")
        while time.monotonic() < deadline:
            time.sleep(min(3.0, max(0.0, deadline - time.monotonic())))
            if worker.poll() is not None:
                print(f"the worker exited ({worker.returncode}); see {log_path}")
                return 1
            try:
                print(_summary(scrape(url)), flush=True)
            except OSError as exc:
                print(f"(metrics unavailable: {exc})", flush=True)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop.set()
        if prometheus is not None:
            prometheus.stop()
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if started_broker:
            broker.down()
        print("demo stopped" + (" (and the broker it started)" if started_broker else ""))
