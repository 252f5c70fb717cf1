"""docker-compose.yml: valid for Compose, and every service agrees with the code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import require_tool
from tickcast.cli import build_parser
from tickcast.settings import ToolSettings
from tickcast.streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
TICKCAST = {name: svc for name, svc in SERVICES.items() if svc.get("image") == "tickcast:latest"}
KNOWN_ENV = {var for var, _, _ in [*Settings.describe(), *ToolSettings.describe()]}


def test_compose_file_is_valid_for_docker_compose() -> None:
    """Debian's docker-compose (1.29) validates the file offline against its schema."""
    tool = require_tool("docker-compose", "apt-get install docker-compose")
    result = subprocess.run([tool, "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_whole_product_is_there() -> None:
    assert set(SERVICES) == {"kafka", "topics", "trainer", "worker", "replay-prices",
                             "replay-texts", "prometheus", "grafana"}
    assert SERVICES["topics"]["build"] == "."


@pytest.mark.parametrize("name", sorted(TICKCAST))
def test_every_command_parses_with_the_cli(name: str) -> None:
    command = [part.replace("${TICKCAST_REPLAY_RATE:-20}", "20")
               for part in TICKCAST[name]["command"]]
    build_parser().parse_args(command)  # exits (fails the test) on an unknown argument


@pytest.mark.parametrize("name", sorted(TICKCAST))
def test_environment_uses_only_known_variables(name: str) -> None:
    env = TICKCAST[name]["environment"]
    assert set(env) <= KNOWN_ENV, set(env) - KNOWN_ENV
    assert env["TICKCAST_KAFKA_BOOTSTRAP"] == "kafka:9092"
    # ${VAR:-default} as compose substitutes it when VAR is unset
    values = {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}
    Settings.from_env(values)  # every value is one the settings accept
    ToolSettings.from_env(values)


def test_trainer_and_workers_share_the_model_store() -> None:
    for name in ("trainer", "worker"):
        svc = SERVICES[name]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        assert mounts[svc["environment"]["TICKCAST_MODEL_DIR"]] == "models"
    assert "--publish" in SERVICES["trainer"]["command"]
    assert "--if-missing" in SERVICES["trainer"]["command"]


def test_workers_scale_and_prometheus_finds_them() -> None:
    worker = SERVICES["worker"]
    port = worker["environment"]["TICKCAST_METRICS_PORT"]
    assert "ports" not in worker  # no fixed host port: `--scale worker=3` works
    assert worker["expose"] == [port]
    assert worker["environment"]["TICKCAST_METRICS_ADDR"] == "0.0.0.0"
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "tickcast"
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"]
    assert str(sd["port"]) == port


@pytest.mark.parametrize("service", ["prometheus", "grafana"])
def test_mounted_config_exists(service: str) -> None:
    for volume in SERVICES[service]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (REPO / source).exists(), source


def test_kafka_is_kraft_with_a_volume_and_a_healthcheck() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:3.9")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "kafka-data:/var/lib/kafka/data" in kafka["volumes"]
    assert kafka["healthcheck"]["test"]


def test_grafana_is_provisioned_without_login() -> None:
    env = SERVICES["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    datasource = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_image_runs_as_non_root_without_data() -> None:
    # The non-root USER and the folders it owns: tests/deploy/test_dockerfile.py.
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".tickcast", "tests"} <= set(ignored)
