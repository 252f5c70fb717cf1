"""Settings: the one place tickcast reads its environment.

Everything is read once, at the edge (``Settings.from_env``), validated with an error that names
the variable, the value and what was expected, and passed down as typed arguments.
:class:`Settings` configures the service (workers and every Kafka client);
:class:`tickcast.settings.ToolSettings` the tools around it (local broker, demo, training mode).
Both are built on :class:`EnvSettings`; ``tickcast config`` lists every variable of both.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Self, cast

from tickcast.errors import TickcastError
from tickcast.streams.security import (
    MECHANISMS,
    NO_SECRET,
    PROTOCOLS,
    KafkaSecurity,
    Protocol,
    Secret,
    SecurityError,
)

__all__ = ["ENV_PREFIX", "EnvSettings", "Settings", "SettingsError", "child_environ",
           "writable_dir"]

ENV_PREFIX = "TICKCAST_"


class SettingsError(TickcastError):
    """A variable has a value tickcast cannot use."""


class EnvSettings:
    """Base of the settings dataclasses: field ``foo_bar`` is read from ``TICKCAST_FOO_BAR``
    (or the variable named by ``field(metadata={"env": ...})``), parsed by its type, and the
    field's docstring is its documentation (``tickcast config``)."""

    __slots__ = ()

    @classmethod
    def variable(cls, f: Field[Any]) -> str:
        return str(f.metadata.get("env", ENV_PREFIX + f.name.upper()))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Read, parse and check every field; ``overrides`` replace values read."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            var = cls.variable(f)
            if var in env:
                values[f.name] = _parser(f)(var, env[var])
        values.update(overrides)
        settings = cls(**cls._resolve(values))
        settings.check()
        return settings

    @classmethod
    def _resolve(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Values derived from others before construction (e.g. a secret read from a file)."""
        return values

    def check(self) -> None:
        """Raise :class:`SettingsError` naming the first variable with an unusable value."""

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """``(variable, default, meaning)`` for every setting, for ``tickcast config``."""
        docs = _field_docs(cls)
        rows = []
        for f in fields(cls):  # type: ignore[arg-type]
            shown = f.metadata.get("shown", "" if f.default is None else str(f.default))
            rows.append((cls.variable(f), shown, docs.get(f.name, "")))
        return rows


def writable_dir(path: Path, variable: str) -> Path:
    """``path`` (named by ``variable``), created if missing; a :class:`SettingsError` if it
    cannot be created or written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"{variable}={str(path)!r}: cannot create the directory: "
                            f"{exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SettingsError(f"{variable}={str(path)!r}: the directory is not writable")
    return path


def child_environ(overrides: Mapping[str, str] | None = None, *,
                  inherit_settings: bool = True) -> dict[str, str]:
    """The environment for a child process: this process's, without its ``TICKCAST_*``
    variables unless ``inherit_settings``, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items()
           if inherit_settings or not k.startswith(ENV_PREFIX)}
    env.update(overrides or {})
    return env


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings(EnvSettings):
    """Typed service configuration; field ``foo_bar`` is read from ``TICKCAST_FOO_BAR``."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    """Comma-separated ``host:port`` list of Kafka brokers."""
    kafka_security_protocol: str = field(default="PLAINTEXT", metadata={"parse": "upper"})
    """Kafka `security.protocol` of every client: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
    kafka_sasl_mechanism: str = field(default="SCRAM-SHA-256", metadata={"parse": "upper"})
    """SASL mechanism with SASL_*: SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN (PLAIN hands the
    password over as it is: only over SASL_SSL)."""
    kafka_sasl_username: str = ""
    """SASL user name; required with SASL_*."""
    kafka_sasl_password: Secret = NO_SECRET
    """SASL password; required with SASL_* unless `..._PASSWORD_FILE` is set. Never printed
    or logged."""
    kafka_sasl_password_file: Path | None = None
    """File holding the SASL password instead (a Docker or Kubernetes secret; a trailing
    newline is dropped)."""
    kafka_ssl_cafile: Path | None = None
    """PEM file of the CAs that signed the brokers' certificates, with SSL and SASL_SSL
    (default: the system's CAs). Host names are always verified."""
    kafka_ssl_certfile: Path | None = None
    """PEM client certificate for mutual TLS (may hold the key too)."""
    kafka_ssl_keyfile: Path | None = None
    """PEM private key of `..._SSL_CERTFILE`, when it is a separate file."""
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
    batch_size: int = 512
    """Maximum events per batch handed to the models (a batch takes what is queued, up to
    this: under a light load batches are small, under a backlog larger ones cost less per
    event)."""
    batch_within_ms: int = 10
    """How long an event that arrives at an idle agent waits for others to join its batch.
    Events that queued while the agent was busy are processed as soon as it is free."""
    producer_linger_ms: int = 5
    """How long the producer lets a batch of outputs fill before sending it (Kafka 4.0's
    default; 0 sends each output in its own small request)."""
    fetch_max_wait_ms: int = 100
    """How long the broker may hold the worker's fetch request while it has no new data.
    aiokafka keeps one fetch per broker in flight, so this bounds how long new records can
    wait behind a fetch of quiet partitions (Faust's own 1,500 ms shows as 1.5 s stalls)."""
    batches_in_flight: int = 2
    """Full batches' worth of events per agent (this times ``TICKCAST_BATCH_SIZE``) whose
    outputs may await the broker's acknowledgement while the next batch is processed, in at
    most 64 batches (1: wait for each full batch's delivery before the next)."""
    forecast_window: int = 500
    """Number of most recent scored forecasts in the rolling RMSE/MAE/MAPE, skill and AUC,
    and in the interval coverage, width and score."""
    interval_baseline_window: int = 250
    """Recent log returns of a symbol behind the baseline intervals (persistence with their
    empirical quantiles) that the forecaster's intervals are compared with; 20..768 (the
    history a symbol keeps)."""
    interval_tracking_rate: float = 0.05
    """Step of the online tracking that keeps each symbol's forecast intervals at their
    nominal coverage: after every outcome, a level's interval widens by this many window
    volatility units times (missed - (1 - level)). 0 serves the model's intervals as they
    are; larger adapts faster and jitters more; 0..1."""
    forecaster_model: str = "gold-lstm"
    """Model name (in the model store) of the forecaster this worker serves."""
    sentiment_model: str = "sentiment-rnn"
    """Model name of the RNN sentiment classifier this worker serves beside VADER."""
    inference_backend: str = "auto"
    """How the models run: ``auto`` (ONNX Runtime, else NumPy, built from the Keras weights;
    ``tf-function`` for a model neither supports) or ``tf-function`` (always TensorFlow)."""
    inference_threads: int = 1
    """ONNX Runtime threads per inference call. A worker's event loop keeps consuming while a
    batch infers, so more threads pay where inference is the bottleneck: a worker that mostly
    scores texts, or one with a core to itself beside the broker."""
    symbol_cap: int = 50
    """Distinct symbols with their own metric series; more fold into symbol="other"."""
    max_event_bytes: int = 65_536
    """Events larger than this go to ``dead-letters`` as ``oversized``."""
    pending_max: int = 100_000
    """Scored texts (and early labels) remembered while waiting for their ground truth."""
    pending_ttl_s: int = 86_400
    """Seconds a scored text (or an early label) waits for the other before it expires."""
    gate_min_events: int = 300
    """The champion/challenger gate decides nothing before the challenger and the champion
    both scored this many events (labelled texts, or forecasts met by the next tick)."""
    gate_max_events: int = 5_000
    """The gate's sample: the challenger's paired evidence holds at most this many events;
    a challenger not significantly better once it has them all is rejected."""
    gate_alpha: float = 0.05
    """Significance level of the gate's two-sided tests (DeLong for AUC, Diebold-Mariano for
    forecasts). Watching a test as evidence accrues raises the chance of a false decision:
    use a smaller level for long shadows."""
    state_store: str = "memory"
    """Where a worker keeps its per-symbol price state: ``memory`` (rebuilt from the
    changelog topic on every start) or ``rocksdb`` (files under ``TICKCAST_STATE_DIR``, kept
    across restarts; a start reads only the changelog written since). See docs/streaming.md
    (State)."""
    state_cache: int = 100_000
    """Symbols whose decoded history a worker keeps between batches (about 13 KiB each with
    a full history); beyond it the symbol loaded longest ago is dropped and read again from
    the store when it next ticks. With ``TICKCAST_STATE_STORE=rocksdb`` the state's memory is
    this cache plus up to about 48 MiB per partition held (RocksDB's buffers and cache)."""
    state_dir: Path = Path(".tickcast")
    """Local state: Faust's data directory, the local broker, the model store."""
    model_dir: Path = Path(".tickcast/models")
    """The model store: versioned artifacts per model and their LATEST pointers."""
    log_level: str = "info"
    """Log level of every command and worker: debug, info, warning or error."""

    @classmethod
    def _resolve(cls, values: dict[str, Any]) -> dict[str, Any]:
        if values.get("kafka_sasl_password_file") is not None:
            if values.get("kafka_sasl_password"):
                raise SettingsError("TICKCAST_KAFKA_SASL_PASSWORD and "
                                    "TICKCAST_KAFKA_SASL_PASSWORD_FILE are both set: set one")
            values["kafka_sasl_password"] = _read_secret("TICKCAST_KAFKA_SASL_PASSWORD_FILE",
                                                         values["kafka_sasl_password_file"])
        return values

    def check(self) -> None:
        _require(bool(self.kafka_bootstrap.strip()), "TICKCAST_KAFKA_BOOTSTRAP",
                 self.kafka_bootstrap, "a comma-separated host:port list")
        for server in self.bootstrap_servers:
            host, _, port = server.rpartition(":")
            _require(bool(host) and port.isdigit(), "TICKCAST_KAFKA_BOOTSTRAP", server, "host:port")
        self._check_security()
        _require(self.app_id.replace("-", "").replace("_", "").replace(".", "").isalnum(),
                 "TICKCAST_APP_ID", self.app_id, "letters, digits, '.', '_' or '-'")
        _require(1 <= self.topic_partitions <= 1024, "TICKCAST_TOPIC_PARTITIONS",
                 self.topic_partitions, "1..1024")
        _require(1 <= self.topic_replication <= 16, "TICKCAST_TOPIC_REPLICATION",
                 self.topic_replication, "1..16")
        _require(0 <= self.metrics_port <= 65535, "TICKCAST_METRICS_PORT", self.metrics_port,
                 "0..65535 (0 picks a free port)")
        _require(self.auc_window >= 2, "TICKCAST_AUC_WINDOW", self.auc_window, ">= 2")
        _require(self.gate_min_events >= 3, "TICKCAST_GATE_MIN_EVENTS", self.gate_min_events,
                 ">= 3")
        _require(self.gate_max_events >= self.gate_min_events, "TICKCAST_GATE_MAX_EVENTS",
                 self.gate_max_events, ">= TICKCAST_GATE_MIN_EVENTS")
        _require(0 < self.gate_alpha < 0.5, "TICKCAST_GATE_ALPHA", self.gate_alpha,
                 "between 0 and 0.5")
        _require(1 <= self.batch_size <= 100_000, "TICKCAST_BATCH_SIZE", self.batch_size,
                 "1..100000")
        _require(self.batch_within_ms >= 1, "TICKCAST_BATCH_WITHIN_MS", self.batch_within_ms,
                 ">= 1")
        _require(0 <= self.producer_linger_ms <= 1000, "TICKCAST_PRODUCER_LINGER_MS",
                 self.producer_linger_ms, "0..1000")
        _require(1 <= self.fetch_max_wait_ms <= 5000, "TICKCAST_FETCH_MAX_WAIT_MS",
                 self.fetch_max_wait_ms, "1..5000")
        _require(1 <= self.batches_in_flight <= 64, "TICKCAST_BATCHES_IN_FLIGHT",
                 self.batches_in_flight, "1..64")
        _require(self.max_event_bytes >= 256, "TICKCAST_MAX_EVENT_BYTES", self.max_event_bytes,
                 ">= 256")
        _require(self.pending_max >= 1, "TICKCAST_PENDING_MAX", self.pending_max, ">= 1")
        _require(self.pending_ttl_s >= 1, "TICKCAST_PENDING_TTL_S", self.pending_ttl_s, ">= 1")
        _require(self.forecast_window >= 2, "TICKCAST_FORECAST_WINDOW", self.forecast_window,
                 ">= 2")
        _require(self.symbol_cap >= 1, "TICKCAST_SYMBOL_CAP", self.symbol_cap, ">= 1")
        _require(20 <= self.interval_baseline_window <= 768, "TICKCAST_INTERVAL_BASELINE_WINDOW",
                 self.interval_baseline_window, "20..768")
        _require(0 <= self.interval_tracking_rate <= 1, "TICKCAST_INTERVAL_TRACKING_RATE",
                 self.interval_tracking_rate, "0..1")
        _require(self.state_cache >= 1, "TICKCAST_STATE_CACHE", self.state_cache, ">= 1")
        _require(self.state_store in {"memory", "rocksdb"}, "TICKCAST_STATE_STORE",
                 self.state_store, "memory or rocksdb")
        _require(1 <= self.inference_threads <= 64, "TICKCAST_INFERENCE_THREADS",
                 self.inference_threads, "1..64")
        _require(self.inference_backend in {"auto", "tf-function"},
                 "TICKCAST_INFERENCE_BACKEND", self.inference_backend, "auto or tf-function")
        _require(self.log_level.lower() in {"debug", "info", "warning", "error"},
                 "TICKCAST_LOG_LEVEL", self.log_level, "debug, info, warning or error")

    def _check_security(self) -> None:
        protocol, mechanism = self.kafka_security_protocol, self.kafka_sasl_mechanism
        _require(protocol in PROTOCOLS, "TICKCAST_KAFKA_SECURITY_PROTOCOL", protocol,
                 " or ".join(PROTOCOLS))
        _require(mechanism in MECHANISMS, "TICKCAST_KAFKA_SASL_MECHANISM", mechanism,
                 " or ".join(MECHANISMS))
        security = self.kafka_security
        if security.uses_sasl:
            _require(bool(self.kafka_sasl_username), "TICKCAST_KAFKA_SASL_USERNAME", "",
                     f"a user name with TICKCAST_KAFKA_SECURITY_PROTOCOL={protocol}")
            if not self.kafka_sasl_password:
                raise SettingsError(
                    f"TICKCAST_KAFKA_SECURITY_PROTOCOL={protocol} needs a password: set "
                    "TICKCAST_KAFKA_SASL_PASSWORD or TICKCAST_KAFKA_SASL_PASSWORD_FILE")
        elif self.kafka_sasl_username or self.kafka_sasl_password:
            # Credentials a PLAINTEXT/SSL client would silently ignore are a misconfiguration.
            raise SettingsError(
                f"TICKCAST_KAFKA_SASL_USERNAME/_PASSWORD are set but "
                f"TICKCAST_KAFKA_SECURITY_PROTOCOL={protocol!r} does not use them: expected "
                "SASL_PLAINTEXT or SASL_SSL")
        files = {"TICKCAST_KAFKA_SSL_CAFILE": self.kafka_ssl_cafile,
                 "TICKCAST_KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
                 "TICKCAST_KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile}
        for var, path in files.items():
            if path is None:
                continue
            _require(security.uses_ssl, var, str(path),
                     f"unset, or TICKCAST_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL (is {protocol})")
            _require(path.is_file(), var, str(path), "an existing file")
        _require(self.kafka_ssl_keyfile is None or self.kafka_ssl_certfile is not None,
                 "TICKCAST_KAFKA_SSL_KEYFILE", str(self.kafka_ssl_keyfile),
                 "unset without TICKCAST_KAFKA_SSL_CERTFILE")
        try:
            security.ssl_context()  # unreadable PEM files fail here, not in the first client
        except SecurityError as exc:
            raise SettingsError(str(exc)) from None

    @property
    def kafka_security(self) -> KafkaSecurity:
        """What every Kafka client needs to authenticate and encrypt (see ``security.py``)."""
        return KafkaSecurity(
            protocol=cast(Protocol, self.kafka_security_protocol),
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
        )

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap.split(",") if s.strip()]

    def topic(self, name: str) -> str:
        """The full name of a logical topic (``texts`` -> ``{prefix}texts``)."""
        return f"{self.topic_prefix}{name}"



def _require(ok: bool, var: str, value: object, expected: str) -> None:
    if not ok:
        raise SettingsError(f"{var}={value!r} is invalid: expected {expected}")


def _as_int(var: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise SettingsError(f"{var}={raw!r} is invalid: expected an integer") from None


def _as_float(var: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{var}={raw!r} is invalid: expected a number") from None
    if not math.isfinite(value):
        raise SettingsError(f"{var}={raw!r} is invalid: expected a finite number")
    return value


def _as_str(var: str, raw: str) -> str:
    return raw.strip()


def _as_path(var: str, raw: str) -> Path:
    if not raw.strip():
        raise SettingsError(f"{var} is empty: expected a directory path")
    return Path(raw.strip()).expanduser()


def _as_upper(var: str, raw: str) -> str:
    return raw.strip().upper()


def _as_file(var: str, raw: str) -> Path | None:
    """A file path; empty means unset (``VAR=`` in a compose file)."""
    return Path(raw.strip()).expanduser() if raw.strip() else None


def _as_secret(var: str, raw: str) -> Secret:
    return Secret(raw)  # as given: a password may begin or end with blanks


def _read_secret(var: str, path: Path) -> Secret:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        # The error names the file, never its content.
        raise SettingsError(f"{var}={str(path)!r} cannot be read: "
                            f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    return Secret(text.removesuffix("\n").removesuffix("\r"))


_BY_TYPE: dict[str, Callable[[str, str], Any]] = {
    "int": _as_int, "float": _as_float, "Path": _as_path, "Path | None": _as_file,
    "Secret": _as_secret, "str": _as_str}
_BY_NAME: dict[str, Callable[[str, str], Any]] = {"upper": _as_upper}


def _parser(f: Field[Any]) -> Callable[[str, str], Any]:
    named = f.metadata.get("parse")
    return _BY_NAME[named] if named else _BY_TYPE[str(f.type)]


def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a settings class (read from its source, only when asked for)."""
    import ast
    import inspect
    import itertools
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs
