"""The local KRaft broker: configuration, clear errors, and (integration) its lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import free_port
from tickcast.localkafka import BrokerError, LocalKafka, ScramListener, new_cluster_id
from tickcast.settings import ToolSettings
from tickcast.streams.settings import SettingsError

REPO = Path(__file__).resolve().parents[2]


def broker(tmp_path: Path, **kwargs: object) -> LocalKafka:
    return LocalKafka(kafka_home=REPO / "deploy" / "kafka", state_dir=tmp_path / "kafka",
                      **kwargs)  # type: ignore[arg-type]


def test_config_is_single_node_kraft_on_loopback(tmp_path: Path) -> None:
    text = broker(tmp_path, port=19092, controller_port=19093).render_config()
    assert "process.roles=broker,controller" in text
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in text
    assert f"log.dirs={tmp_path / 'kafka' / 'data'}" in text
    assert "auto.create.topics.enable=false" in text


def test_missing_java_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match="Java is not on PATH"):
        broker(tmp_path)._java()


def test_missing_maven_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "pom.xml").write_text("<project/>")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match="Maven"):
        LocalKafka(kafka_home=home, state_dir=tmp_path / "s").resolve()


@pytest.mark.parametrize(("env", "words"), [
    ({"TICKCAST_KAFKA_PORT": "ninety"}, "TICKCAST_KAFKA_PORT='ninety' is invalid"),
    ({"TICKCAST_KAFKA_PORT": "70000"}, "TICKCAST_KAFKA_PORT=70000 is invalid"),
    ({"TICKCAST_KAFKA_HEAP": "lots"}, "TICKCAST_KAFKA_HEAP='lots' is invalid"),
])
def test_bad_local_settings(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        ToolSettings.from_env(env)


def test_a_missing_pom_names_the_folder(tmp_path: Path) -> None:
    tools = ToolSettings.from_env({"TICKCAST_KAFKA_HOME": "/nonexistent"})
    with pytest.raises(BrokerError, match=r"no pom\.xml in /nonexistent"):
        LocalKafka.from_settings(tools, state_dir=tmp_path)


def test_new_cluster_ids_never_start_with_a_dash() -> None:
    ids = [new_cluster_id() for _ in range(2000)]  # ~1 in 64 would start with "-" unguarded
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


@pytest.mark.slow
def test_a_cluster_id_starting_with_a_dash_formats(tmp_path: Path) -> None:
    """Kafka's own ids may start with "-"; the storage tool must not read one as an option."""
    kafka = broker(tmp_path, port=free_port(), controller_port=free_port())
    if not kafka.jars_present():
        pytest.fail("the Kafka jars are missing: run `make setup`")
    kafka.format(cluster_id="-Zk3yVtQSyG1ox7m2Y6R7w")
    meta = (kafka.data_dir / "meta.properties").read_text()
    assert "cluster.id=-Zk3yVtQSyG1ox7m2Y6R7w" in meta


@pytest.mark.integration
@pytest.mark.slow
def test_up_is_idempotent_and_data_survives_down_up(tmp_path: Path) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    kafka = broker(tmp_path, port=free_port(), controller_port=free_port(), heap="256m")
    try:
        assert kafka.up() is True
        pid = kafka.status().pid
        assert kafka.up() is False  # already running: no second broker
        assert kafka.status().pid == pid
        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        admin.create_topics({"durable": {"num_partitions": 1, "replication_factor": 1}},
                            wait_for_metadata=True)
        admin.close()
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        producer.send("durable", b"kept").get(timeout=30)
        producer.close()

        assert kafka.down() is True
        assert not kafka.status().running
        assert kafka.down() is False
        assert kafka.up() is True
        consumer = KafkaConsumer("durable", bootstrap_servers=kafka.bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=20000)
        assert next(iter(consumer)).value == b"kept"
        consumer.close()
    finally:
        kafka.down()


@pytest.mark.integration
def test_a_taken_port_is_reported_not_fought_over(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        kafka = broker(tmp_path, port=sock.getsockname()[1], controller_port=free_port())
        with pytest.raises(BrokerError, match="taken by another process"):
            kafka.up()
    assert not (tmp_path / "kafka" / "kafka.pid").exists()


def test_scram_listener_is_added_beside_plaintext(tmp_path: Path) -> None:
    scram = ScramListener(port=19094, users={"tickcast": "pw-1"})
    kafka = broker(tmp_path, port=19092, controller_port=19093, scram=scram)
    text = kafka.render_config()
    assert ("listeners=PLAINTEXT://127.0.0.1:19092,SASL_PLAINTEXT://127.0.0.1:19094,"
            "CONTROLLER://127.0.0.1:19093") in text
    assert "inter.broker.listener.name=PLAINTEXT" in text
    assert "SASL_PLAINTEXT:SASL_PLAINTEXT" in text
    assert "sasl.enabled.mechanisms=SCRAM-SHA-256" in text
    assert "pw-1" not in text  # users live in the metadata log, written at format time
    assert scram.scram_arguments() == ["--add-scram", "SCRAM-SHA-256=[name=tickcast,password=pw-1]"]
    assert kafka.scram_bootstrap == "127.0.0.1:19094"
    assert "pw-1" not in repr(scram)


def test_scram_users_the_storage_tool_could_misread_are_refused() -> None:
    with pytest.raises(BrokerError, match="limited to letters"):
        ScramListener(port=1, users={"tickcast": "a,b]"})
    with pytest.raises(BrokerError, match="at least one user"):
        ScramListener(port=1, users={})


def test_scram_listener_with_a_keystore_is_sasl_ssl(tmp_path: Path) -> None:
    keystore = tmp_path / "broker.pem"
    scram = ScramListener(port=19094, users={"tickcast": "pw-1"}, keystore=keystore)
    text = broker(tmp_path, port=19092, controller_port=19093, scram=scram).render_config()
    assert "SASL_SSL://127.0.0.1:19094" in text
    assert "SASL_SSL:SASL_SSL" in text
    assert "listener.name.sasl_ssl.ssl.keystore.type=PEM" in text
    assert f"listener.name.sasl_ssl.ssl.keystore.location={keystore}" in text
    assert "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=" in text


def test_a_tool_failure_is_summed_up_in_one_line() -> None:
    from tickcast.errors import gist

    output = ("log4j:WARN No appenders could be found\nusage: kafka-storage format [-h]\n"
              "kafka-storage: error: argument --cluster-id/-t: expected one argument\n")
    assert gist(output) == "kafka-storage: error: argument --cluster-id/-t: expected one argument"
    assert gist("") == "(no output)"
    assert gist("x" * 400).endswith("...")


def test_the_broker_runs_with_kafkas_gc_options_and_logs_its_pauses(tmp_path: Path) -> None:
    """G1 with Kafka's 20 ms pause goal (without it, young collections paused every request
    for tens of milliseconds every few seconds), and a GC log the latency timeline reads."""
    kafka = broker(tmp_path)
    cmd = kafka.command()
    assert "-XX:MaxGCPauseMillis=20" in cmd
    assert "-XX:+UseG1GC" in cmd
    assert f"-Xlog:gc:file={kafka.gc_log_path}:time,uptime:filecount=2,filesize=20M" in cmd
    assert cmd.index("-XX:+UseG1GC") < cmd.index("kafka.Kafka")
