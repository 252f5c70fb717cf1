"""Service settings: the one place the Faust service reads the environment.

Everything is read once, at the edge (``Settings.from_env``), validated with an error that names
the variable, the value and what was expected, and passed down as typed arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["ENV_PREFIX", "Settings", "SettingsError"]

ENV_PREFIX = "TICKCAST_"
T = TypeVar("T")


class SettingsError(ValueError):
    """A ``TICKCAST_*`` variable has a value the service cannot use."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Typed service configuration; field ``foo_bar`` is read from ``TICKCAST_FOO_BAR``."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    """Comma-separated ``host:port`` list of Kafka brokers."""
    app_id: str = "tickcast"
    """Faust application id: the consumer group and the prefix of Faust's internal topics."""
    topic_prefix: str = ""
    """Prepended to every topic name (isolates tests and tenants on one cluster)."""
    topic_partitions: int = 8
    """Partitions of the input topics when tickcast creates them."""
    topic_replication: int = 1
    """Replication factor of the topics tickcast creates (3 on a production cluster)."""
    metrics_addr: str = "127.0.0.1"
    """Bind address of the Prometheus ``/metrics`` endpoint (``0.0.0.0`` in containers)."""
    metrics_port: int = 9464
    """Port of the Prometheus ``/metrics`` endpoint, one per worker."""
    auc_window: int = 500
    """Number of most recent labelled texts in the rolling ROC AUC."""
    batch_size: int = 256
    """Maximum events per batch handed to the models."""
    batch_within_ms: int = 10
    """Longest wait for a batch to fill before it is processed anyway."""
    forecast_window: int = 500
    """Number of most recent scored forecasts in the rolling RMSE/MAE/MAPE, skill and AUC."""
    forecaster_model: str = "gold-lstm"
    """Model name (in the model store) of the forecaster this worker serves."""
    sentiment_model: str = "sentiment-rnn"
    """Model name of the RNN sentiment classifier this worker serves beside VADER."""
    symbol_cap: int = 50
    """Distinct symbols with their own metric series; more fold into symbol="other"."""
    max_event_bytes: int = 65_536
    """Events larger than this go to ``dead-letters`` as ``oversized``."""
    pending_max: int = 100_000
    """Scored texts (and early labels) remembered while waiting for their ground truth."""
    pending_ttl_s: int = 86_400
    """Seconds a scored text (or an early label) waits for the other before it expires."""
    state_dir: Path = Path(".tickcast")
    """Local state: Faust's data directory, the local broker, the model store."""
    model_dir: Path = Path(".tickcast/models")
    """The model store: versioned artifacts per model and their LATEST pointers."""
    log_level: str = "info"
    """Worker log level: debug, info, warning or error."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = ENV_PREFIX + f.name.upper()
            if var in env:
                values[f.name] = _PARSERS[f.name](var, env[var])
        values.update(overrides)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        _require(bool(self.kafka_bootstrap.strip()), "TICKCAST_KAFKA_BOOTSTRAP",
                 self.kafka_bootstrap, "a comma-separated host:port list")
        for server in self.bootstrap_servers:
            host, _, port = server.rpartition(":")
            _require(bool(host) and port.isdigit(), "TICKCAST_KAFKA_BOOTSTRAP", server, "host:port")
        _require(self.app_id.replace("-", "").replace("_", "").replace(".", "").isalnum(),
                 "TICKCAST_APP_ID", self.app_id, "letters, digits, '.', '_' or '-'")
        _require(1 <= self.topic_partitions <= 1024, "TICKCAST_TOPIC_PARTITIONS",
                 self.topic_partitions, "1..1024")
        _require(1 <= self.topic_replication <= 16, "TICKCAST_TOPIC_REPLICATION",
                 self.topic_replication, "1..16")
        _require(0 <= self.metrics_port <= 65535, "TICKCAST_METRICS_PORT", self.metrics_port,
                 "0..65535 (0 picks a free port)")
        _require(self.auc_window >= 2, "TICKCAST_AUC_WINDOW", self.auc_window, ">= 2")
        _require(1 <= self.batch_size <= 100_000, "TICKCAST_BATCH_SIZE", self.batch_size,
                 "1..100000")
        _require(self.batch_within_ms >= 1, "TICKCAST_BATCH_WITHIN_MS", self.batch_within_ms,
                 ">= 1")
        _require(self.max_event_bytes >= 256, "TICKCAST_MAX_EVENT_BYTES", self.max_event_bytes,
                 ">= 256")
        _require(self.pending_max >= 1, "TICKCAST_PENDING_MAX", self.pending_max, ">= 1")
        _require(self.pending_ttl_s >= 1, "TICKCAST_PENDING_TTL_S", self.pending_ttl_s, ">= 1")
        _require(self.forecast_window >= 2, "TICKCAST_FORECAST_WINDOW", self.forecast_window,
                 ">= 2")
        _require(self.symbol_cap >= 1, "TICKCAST_SYMBOL_CAP", self.symbol_cap, ">= 1")
        _require(self.log_level.lower() in {"debug", "info", "warning", "error"},
                 "TICKCAST_LOG_LEVEL", self.log_level, "debug, info, warning or error")

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap.split(",") if s.strip()]

    def topic(self, name: str) -> str:
        """The full name of a logical topic (``texts`` -> ``{prefix}texts``)."""
        return f"{self.topic_prefix}{name}"

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """``(variable, default, meaning)`` for every setting, for ``--help`` and the README."""
        docs = _field_docs()
        return [(ENV_PREFIX + f.name.upper(), str(f.default), docs.get(f.name, ""))
                for f in fields(cls)]


def _require(ok: bool, var: str, value: object, expected: str) -> None:
    if not ok:
        raise SettingsError(f"{var}={value!r} is invalid: expected {expected}")


def _as_int(var: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise SettingsError(f"{var}={raw!r} is invalid: expected an integer") from None


def _as_str(var: str, raw: str) -> str:
    return raw.strip()


def _as_path(var: str, raw: str) -> Path:
    if not raw.strip():
        raise SettingsError(f"{var} is empty: expected a directory path")
    return Path(raw.strip()).expanduser()


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    f.name: {"int": _as_int, "Path": _as_path}.get(str(f.type), _as_str) for f in fields(Settings)
}


def _field_docs() -> dict[str, str]:
    """Attribute docstrings of ``Settings`` (read from its source, only when asked for)."""
    import ast
    import inspect
    import itertools

    tree = ast.parse(inspect.getsource(Settings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)):
            docs[node.target.id] = str(nxt.value.value)
    return docs
