"""SASL/SCRAM against a real broker: a KRaft broker of this module's own with a SASL_PLAINTEXT
(SCRAM-SHA-256) listener. Worker, replay producer and publisher work through it with
``TICKCAST_KAFKA_*`` settings; a wrong password or a plaintext client fails within bounds
with a clear error; the password appears in no output or log, even at DEBUG."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import free_port, require_tool, wait_for
from tests.integration.conftest import RunningWorker, worker_env
from tickcast.demo import wait_for_metrics
from tickcast.localkafka import LocalKafka, ScramListener
from tickcast.models.registry import ModelStore
from tickcast.streams.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
USER = "tickcast"
PASSWORD = "Scram-pw-7f3a9c-kept-secret"
WRONG = "Wrong-pw-51d0e2-also-secret"
WINDOW = 10  # the tiny forecaster's
TEXTS, TICKS = 40, 60
FAIL_WITHIN_S = 45.0  # clients give up bootstrapping after 30 s


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """PLAINTEXT for the controller (and nothing else here), SASL_PLAINTEXT for clients."""
    kafka = LocalKafka(kafka_home=REPO / "deploy" / "kafka",
                       state_dir=tmp_path_factory.mktemp("sasl-broker"),
                       port=free_port(), controller_port=free_port(), heap="256m",
                       scram=ScramListener(port=free_port(), users={USER: PASSWORD}))
    try:
        kafka.up(wait=120)
        yield kafka
    finally:
        kafka.down()


def security_env(password: str | None = PASSWORD, **extra: str) -> dict[str, str]:
    env = {"TICKCAST_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
           "TICKCAST_KAFKA_SASL_USERNAME": USER, **extra}
    if password is not None:
        env["TICKCAST_KAFKA_SASL_PASSWORD"] = password
    return env


def cli_env(broker: LocalKafka, prefix: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    assert broker.scram_bootstrap is not None
    return worker_env(bootstrap=broker.scram_bootstrap, prefix=prefix,
                      state_dir=tmp_path / "state", port=free_port(), **extra)


def tickcast(*args: str, env: dict[str, str], timeout: float = 120
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tickcast", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


def client_kwargs(password: str = PASSWORD) -> dict:
    return Settings.from_env(security_env(password)).kafka_security.client_kwargs()


def consume(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=1000,
                             **client_kwargs())
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expected and time.monotonic() < deadline:
            values.extend(message.value for message in consumer)
    finally:
        consumer.close()
    return values


def start_worker(env: dict[str, str], log_path: Path) -> RunningWorker:
    port = int(env["TICKCAST_METRICS_PORT"])
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tickcast", "worker"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    worker = RunningWorker(proc, f"http://127.0.0.1:{port}/metrics",
                           env["TICKCAST_TOPIC_PREFIX"], env["TICKCAST_KAFKA_BOOTSTRAP"],
                           log_path)
    try:
        wait_for_metrics(worker.metrics_url, timeout=90, proc=proc)
        wait_for(lambda: bool(worker.value("tickcast_assigned_partitions", topic="texts")),
                 "partitions assigned to the SASL worker", timeout=90)
    except BaseException:
        stop(worker)
        print(worker.log())
        raise
    return worker


def stop(worker: RunningWorker) -> None:
    if worker.proc.poll() is None:
        worker.proc.send_signal(signal.SIGTERM)
        try:
            worker.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait()


def newer_version(store: ModelStore, version: str) -> None:
    """A copy of LATEST as a newer version (what a training run would write)."""
    target = store.path("gold-lstm", version)
    shutil.copytree(store.path("gold-lstm", store.latest("gold-lstm")), target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest.update(version=version, created_at=manifest["created_at"] + 60_000)
    (target / "manifest.json").write_text(json.dumps(manifest))


def test_worker_producer_and_publisher_work_through_sasl_scram(
        broker: LocalKafka, store: ModelStore, topic_prefix: str, tmp_path: Path) -> None:
    started = time.monotonic()
    secret_file = tmp_path / "kafka_password"  # the worker gets it the Docker-secret way
    secret_file.write_text(PASSWORD + "\n")
    worker_vars = security_env(None, TICKCAST_KAFKA_SASL_PASSWORD_FILE=str(secret_file),
                               TICKCAST_LOG_LEVEL="debug", TICKCAST_MODEL_DIR=str(store.root))
    worker = start_worker(cli_env(broker, topic_prefix, tmp_path, **worker_vars),
                          tmp_path / "worker.log")
    outputs: list[str] = []
    try:
        client = cli_env(broker, topic_prefix, tmp_path, TICKCAST_MODEL_DIR=str(store.root),
                         **security_env())
        for kind, limit in (("texts", TEXTS), ("prices", TICKS)):
            result = tickcast("produce", kind, "--limit", str(limit), "--no-progress", env=client)
            outputs += [result.stdout, result.stderr]
            assert result.returncode == 0, result.stderr
            assert "; 0 failed" in result.stdout

        bootstrap = broker.scram_bootstrap
        assert bootstrap is not None
        sentiment = consume(bootstrap, f"{topic_prefix}sentiment", TEXTS)
        forecasts = consume(bootstrap, f"{topic_prefix}forecasts", TICKS - WINDOW + 1)
        assert len({json.loads(v)["id"] for v in sentiment}) == TEXTS
        assert len(forecasts) == TICKS - WINDOW + 1

        # training's publisher -> model-updates -> the worker's own (aiokafka) consumer
        newer_version(store, "v-sasl")
        result = tickcast("models", "promote", "gold-lstm", "v-sasl", "--publish", env=client)
        outputs += [result.stdout, result.stderr]
        assert result.returncode == 0, result.stderr
        assert f"published gold-lstm/v-sasl to {topic_prefix}model-updates" in result.stdout
        wait_for(lambda: worker.value("tickcast_model_swaps_total", model="lstm",
                                      outcome="swapped") == 1, "the hot swap over SASL")

        kcat = require_tool("kcat", "apt-get install kcat")  # a librdkafka client agrees
        read = subprocess.run(
            [kcat, "-C", "-b", bootstrap, "-t", f"{topic_prefix}sentiment", "-o", "beginning",
             "-e", "-q", "-X", "security.protocol=SASL_PLAINTEXT",
             "-X", "sasl.mechanisms=SCRAM-SHA-256", "-X", f"sasl.username={USER}",
             "-X", f"sasl.password={PASSWORD}"],
            capture_output=True, text=True, timeout=60, check=False)
        assert read.returncode == 0, read.stderr
        assert len(read.stdout.splitlines()) == TEXTS
    finally:
        stop(worker)
    log = worker.log_path.read_text(encoding="utf-8", errors="replace")
    assert "Kafka " + bootstrap + " (SASL_PLAINTEXT, SCRAM-SHA-256 as 'tickcast')" in log
    assert "[DEBUG]" in log, "the worker did not log at DEBUG"
    assert PASSWORD not in log
    assert not [text for text in outputs if PASSWORD in text]
    print(f"\nSASL end to end: {TEXTS} texts scored, {len(forecasts)} forecasts, 1 hot swap, "
          f"kcat read {TEXTS}; {len(log):,} bytes of DEBUG worker log without the password; "
          f"{time.monotonic() - started:.1f}s")


def test_wrong_password_and_plaintext_clients_fail_within_bounds(
        broker: LocalKafka, store: ModelStore, topic_prefix: str, tmp_path: Path) -> None:
    """Each fails by itself within FAIL_WITHIN_S with a clear error, run side by side."""
    wrong = security_env(WRONG, TICKCAST_MODEL_DIR=str(store.root))
    runs = {
        "worker, wrong password": (["worker"], wrong),
        "producer, wrong password": (["produce", "texts", "--limit", "5", "--no-progress"],
                                     wrong),
        "publisher, wrong password": (["models", "promote", "gold-lstm",
                                       store.latest("gold-lstm"), "--publish"], wrong),
        "producer, plaintext": (["produce", "texts", "--limit", "5", "--no-progress"],
                                {"TICKCAST_MODEL_DIR": str(store.root)}),
    }

    def attempt(args: list[str], extra: dict[str, str]
                ) -> tuple[subprocess.CompletedProcess[str], float]:
        began = time.monotonic()
        result = tickcast(*args, env=cli_env(broker, topic_prefix, tmp_path, **extra),
                          timeout=FAIL_WITHIN_S + 30)
        return result, time.monotonic() - began

    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {name: pool.submit(attempt, *run) for name, run in runs.items()}
        results = {name: future.result() for name, future in futures.items()}

    for name, (result, seconds) in results.items():
        print(f"\n{name}: exit {result.returncode} after {seconds:.1f}s: "
              f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ''}")
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert seconds < FAIL_WITHIN_S, name
        assert f"error: cannot reach Kafka at {broker.scram_bootstrap}" in result.stderr, name
        assert WRONG not in result.stdout + result.stderr
        if "wrong password" in name:
            assert "connecting with SASL_PLAINTEXT, SCRAM-SHA-256 as 'tickcast': a wrong user " \
                   "name, password or mechanism" in result.stderr
    # The broker says why: the failures were refusals, not an unreachable port.
    broker_log = broker.log_path.read_text(encoding="utf-8", errors="replace")
    assert "due to invalid credentials with SASL mechanism SCRAM-SHA-256" in broker_log
    assert "during SASL handshake" in broker_log  # the plaintext client's metadata request
    assert consume(broker.scram_bootstrap or "", f"{topic_prefix}texts", 1, timeout=3) == []


def test_aiokafka_reports_a_refused_login_at_once(broker: LocalKafka,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The worker's aiokafka clients (Faust's and the model-updates consumer) see the reason."""
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaConnectionError

    async def start() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.scram_bootstrap,
                                    **client_kwargs(WRONG))
        try:
            await consumer.start()
        finally:
            await consumer.stop()

    began = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(KafkaConnectionError):
        asyncio.run(start())
    assert time.monotonic() - began < 10
    assert "SaslAuthenticationFailed" in caplog.text
    assert WRONG not in caplog.text


def test_clients_log_nothing_secret_at_debug(broker: LocalKafka, store: ModelStore,
                                             topic_prefix: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """kafka-python (topics, publisher) in-process, every logger at DEBUG."""
    from tickcast.streams.topics import ensure_topics, topic_specs
    from tickcast.training.publish import publish_update

    assert broker.scram_bootstrap is not None
    settings = Settings.from_env({**security_env(), "TICKCAST_TOPIC_PREFIX": topic_prefix,
                                  "TICKCAST_KAFKA_BOOTSTRAP": broker.scram_bootstrap})
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="kafka"):
        created = ensure_topics(settings.bootstrap_servers, topic_specs(settings),
                                security=settings.kafka_security)
        publish_update(store.verify("gold-lstm", store.latest("gold-lstm")),
                       bootstrap=settings.bootstrap_servers, security=settings.kafka_security,
                       topic=settings.topic("model-updates"))
    assert f"{topic_prefix}model-updates" in created
    assert "'sasl_plain_password': '********'" in caplog.text
    assert PASSWORD not in caplog.text
