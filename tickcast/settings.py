"""Settings of the tools around the worker: the local broker, the demo and training.

Read once, at the edge, like the service's :class:`~tickcast.streams.settings.Settings` (whose
machinery this reuses); ``tickcast config`` lists both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tickcast.streams.settings import EnvSettings, SettingsError

__all__ = ["ToolSettings"]

TRAIN_MODES = ("full", "quick")


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSettings(EnvSettings):
    """Typed configuration of ``tickcast kafka``, ``demo``, ``bench`` and ``train``."""

    kafka_home: Path | None = field(default=None, metadata={"shown": "<repo>/deploy/kafka"})
    """Folder with the pom.xml resolving the broker jars (copied into its lib/)."""
    kafka_host: str = "127.0.0.1"
    """Listener address of the local broker."""
    kafka_port: int = 9092
    """Client port of the local broker."""
    kafka_controller_port: int = 9093
    """KRaft controller port of the local broker."""
    kafka_heap: str = "512m"
    """JVM heap of the local broker."""
    java_home: Path | None = field(default=None, metadata={"env": "JAVA_HOME"})
    """Java installation running the local broker (default: `java` on PATH)."""
    prometheus_port: int = 9090
    """Port of the demo's local Prometheus (when the `prometheus` binary is installed)."""
    train_mode: str = "full"
    """`quick` makes every `tickcast train` run a --quick one (the Docker trainer's default)."""

    def check(self) -> None:
        for var, port in (("TICKCAST_KAFKA_PORT", self.kafka_port),
                          ("TICKCAST_KAFKA_CONTROLLER_PORT", self.kafka_controller_port),
                          ("TICKCAST_PROMETHEUS_PORT", self.prometheus_port)):
            if not 0 < port < 65536:
                raise SettingsError(f"{var}={port!r} is invalid: expected a port 1..65535")
        if not self.kafka_heap[:-1].isdigit() or self.kafka_heap[-1].lower() not in "kmg":
            raise SettingsError(f"TICKCAST_KAFKA_HEAP={self.kafka_heap!r} is invalid: expected "
                                "a JVM size such as 512m or 2g")
        if self.train_mode not in TRAIN_MODES:
            raise SettingsError(f"TICKCAST_TRAIN_MODE={self.train_mode!r} is invalid: expected "
                                "quick or full")
