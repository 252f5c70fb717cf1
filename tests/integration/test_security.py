"""SASL/SCRAM and TLS against real brokers: KRaft brokers of this module's own with a
SASL_PLAINTEXT or a SASL_SSL (self-signed CA) SCRAM-SHA-256 listener. Worker, replay producer
and publisher work through them with ``TICKCAST_KAFKA_*`` settings; a wrong password, a
plaintext client or an unverifiable certificate fails within bounds with a clear error; the
password appears in no output or log, even at DEBUG."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import free_port, make_pki, require_tool, wait_for
from tests.integration.conftest import RunningWorker, worker_env
from tickcast.localkafka import LocalKafka, ScramListener
from tickcast.models.registry import ModelStore
from tickcast.scrape import wait_for_metrics
from tickcast.streams.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
USER = "tickcast"
PASSWORD = "Scram-pw-7f3a9c-kept-secret"
WRONG = "Wrong-pw-51d0e2-also-secret"
WINDOW = 10  # the tiny forecaster's
TEXTS, TICKS = 40, 60
FAIL_WITHIN_S = 45.0  # clients give up bootstrapping after 30 s


def run_broker(state_dir: Path, keystore: Path | None = None) -> Iterator[LocalKafka]:
    """PLAINTEXT for the controller (and nothing else here), SCRAM for clients."""
    kafka = LocalKafka(kafka_home=REPO / "deploy" / "kafka", state_dir=state_dir,
                       port=free_port(), controller_port=free_port(), heap="256m",
                       scram=ScramListener(port=free_port(), users={USER: PASSWORD},
                                           keystore=keystore))
    try:
        kafka.up(wait=120)
        yield kafka
    finally:
        kafka.down()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """SASL_PLAINTEXT."""
    yield from run_broker(tmp_path_factory.mktemp("sasl-broker"))


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """SASL_SSL, its certificate (for 127.0.0.1) signed by a CA made for this module."""
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    yield from run_broker(tmp_path_factory.mktemp("sasl-ssl-broker"), pki["keystore"])


def ca_of(broker: LocalKafka) -> Path | None:
    keystore = broker.scram.keystore if broker.scram else None
    return keystore.parent / "ca.pem" if keystore else None  # make_pki's layout


def security_env(broker: LocalKafka, password: str | None = PASSWORD,
                 **extra: str) -> dict[str, str]:
    assert broker.scram is not None
    env = {"TICKCAST_KAFKA_SECURITY_PROTOCOL": broker.scram.protocol,
           "TICKCAST_KAFKA_SASL_USERNAME": USER, **extra}
    if password is not None:
        env["TICKCAST_KAFKA_SASL_PASSWORD"] = password
    ca = ca_of(broker)
    if ca is not None:
        env.setdefault("TICKCAST_KAFKA_SSL_CAFILE", str(ca))
    return env


def cli_env(broker: LocalKafka, prefix: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    assert broker.scram_bootstrap is not None
    return worker_env(bootstrap=broker.scram_bootstrap, prefix=prefix,
                      state_dir=tmp_path / "state", port=free_port(), **extra)


def tickcast(*args: str, env: dict[str, str], timeout: float = 120
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tickcast", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


def client_kwargs(broker: LocalKafka, password: str = PASSWORD) -> dict:
    return Settings.from_env(security_env(broker, password)).kafka_security.client_kwargs()


def consume(broker: LocalKafka, topic: str, expected: int, timeout: float = 60.0
            ) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=broker.scram_bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=1000, **client_kwargs(broker))
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
        worker.stop()
        print(worker.log())
        raise
    return worker


def aiokafka_refused(bootstrap: str | None, kwargs: dict,
                     caplog: pytest.LogCaptureFixture) -> float:
    """Start an aiokafka consumer that must fail to connect (logging at DEBUG into
    ``caplog``); returns the seconds it took to fail."""
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaConnectionError

    async def start() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **kwargs)
        try:
            await consumer.start()
        finally:
            await consumer.stop()

    began = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(KafkaConnectionError):
        asyncio.run(start())
    return time.monotonic() - began


def newer_version(store: ModelStore, version: str) -> None:
    """A copy of LATEST as a newer version (what a training run would write)."""
    target = store.path("gold-lstm", version)
    shutil.copytree(store.path("gold-lstm", store.latest("gold-lstm")), target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest.update(version=version, created_at=manifest["created_at"] + 60_000)
    (target / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("listener", ["broker", "tls_broker"])
def test_worker_producer_and_publisher_work_through_sasl_scram(
        listener: str, request: pytest.FixtureRequest, store: ModelStore, topic_prefix: str,
        tmp_path: Path) -> None:
    broker: LocalKafka = request.getfixturevalue(listener)
    assert broker.scram is not None
    bootstrap, protocol = broker.scram_bootstrap, broker.scram.protocol
    assert bootstrap is not None
    started = time.monotonic()
    secret_file = tmp_path / "kafka_password"  # the worker gets it the Docker-secret way
    secret_file.write_text(PASSWORD + "\n")
    worker_vars = security_env(broker, None, TICKCAST_LOG_LEVEL="debug",
                               TICKCAST_KAFKA_SASL_PASSWORD_FILE=str(secret_file),
                               TICKCAST_MODEL_DIR=str(store.root))
    worker = start_worker(cli_env(broker, topic_prefix, tmp_path, **worker_vars),
                          tmp_path / "worker.log")
    outputs: list[str] = []
    try:
        client = cli_env(broker, topic_prefix, tmp_path, TICKCAST_MODEL_DIR=str(store.root),
                         **security_env(broker))
        for kind, limit in (("texts", TEXTS), ("prices", TICKS)):
            result = tickcast("produce", kind, "--limit", str(limit), "--no-progress", env=client)
            outputs += [result.stdout, result.stderr]
            assert result.returncode == 0, result.stderr
            assert "; 0 failed" in result.stdout

        sentiment = consume(broker, f"{topic_prefix}sentiment", TEXTS)
        forecasts = consume(broker, f"{topic_prefix}forecasts", TICKS - WINDOW + 1)
        assert len({json.loads(v)["id"] for v in sentiment}) == TEXTS
        assert len(forecasts) == TICKS - WINDOW + 1

        # training's publisher -> model-updates -> the worker's own (aiokafka) consumer
        newer_version(store, "v-sasl")
        result = tickcast("models", "promote", "gold-lstm", "v-sasl", "--publish", env=client)
        outputs += [result.stdout, result.stderr]
        assert result.returncode == 0, result.stderr
        assert f"published gold-lstm/v-sasl to {topic_prefix}model-updates" in result.stdout
        wait_for(lambda: worker.value("tickcast_model_swaps_total", model="lstm",
                                      outcome="swapped") == 1, f"the hot swap over {protocol}")

        kcat = require_tool("kcat", "apt-get install kcat")  # a librdkafka client agrees
        ca = ca_of(broker)
        read = subprocess.run(
            [kcat, "-C", "-b", bootstrap, "-t", f"{topic_prefix}sentiment", "-o", "beginning",
             "-e", "-q", "-X", f"security.protocol={protocol}",
             "-X", "sasl.mechanisms=SCRAM-SHA-256", "-X", f"sasl.username={USER}",
             "-X", f"sasl.password={PASSWORD}",
             *(["-X", f"ssl.ca.location={ca}"] if ca else [])],
            capture_output=True, text=True, timeout=60, check=False)
        assert read.returncode == 0, read.stderr
        assert len(read.stdout.splitlines()) == TEXTS
    finally:
        worker.stop()
    log = worker.log_path.read_text(encoding="utf-8", errors="replace")
    assert f"Kafka {bootstrap} ({protocol}, SCRAM-SHA-256 as 'tickcast')" in log
    assert "[DEBUG]" in log, "the worker did not log at DEBUG"
    assert PASSWORD not in log
    assert not [text for text in outputs if PASSWORD in text]
    print(f"\n{protocol} end to end: {TEXTS} texts scored, {len(forecasts)} forecasts, 1 hot "
          f"swap, kcat read {TEXTS}; {len(log):,} bytes of DEBUG worker log without the "
          f"password; {time.monotonic() - started:.1f}s")


def test_wrong_password_and_plaintext_clients_fail_within_bounds(
        broker: LocalKafka, store: ModelStore, topic_prefix: str, tmp_path: Path) -> None:
    """Each fails by itself within FAIL_WITHIN_S with a clear error, run side by side."""
    wrong = security_env(broker, WRONG, TICKCAST_MODEL_DIR=str(store.root))
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
    assert consume(broker, f"{topic_prefix}texts", 1, timeout=3) == []


def test_aiokafka_reports_a_refused_login_at_once(broker: LocalKafka,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The worker's aiokafka clients (Faust's and the model-updates consumer) see the reason."""
    assert aiokafka_refused(broker.scram_bootstrap, client_kwargs(broker, WRONG), caplog) < 10
    assert "SaslAuthenticationFailed" in caplog.text
    assert WRONG not in caplog.text


def test_clients_log_nothing_secret_at_debug(broker: LocalKafka, store: ModelStore,
                                             topic_prefix: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """kafka-python (topics, publisher) in-process, every logger at DEBUG."""
    from tickcast.streams.topics import ensure_topics, topic_specs
    from tickcast.training.publish import publish_update

    assert broker.scram_bootstrap is not None
    settings = Settings.from_env({**security_env(broker), "TICKCAST_TOPIC_PREFIX": topic_prefix,
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


def test_tls_refuses_a_broker_it_cannot_verify(tls_broker: LocalKafka,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """Without TICKCAST_KAFKA_SSL_CAFILE the system CAs do not know the test CA: no connection,
    so no password is sent to a broker that could not prove who it is."""
    env = {**security_env(tls_broker), "TICKCAST_KAFKA_SSL_CAFILE": ""}
    kwargs = Settings.from_env(env).kafka_security.client_kwargs()
    assert aiokafka_refused(tls_broker.scram_bootstrap, kwargs, caplog) < 10
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
