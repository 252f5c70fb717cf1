"""A real single-node Apache Kafka (KRaft) broker for development, tests and the demo.

The broker jars come from Maven Central through ``deploy/kafka/pom.xml``; the data directory,
the rendered ``server.properties``, the pid file and the log live under the project's state
directory (git-ignored). ``up`` is idempotent and the data directory survives ``down``/``up``.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tickcast.errors import TickcastError, gist
from tickcast.settings import ToolSettings

__all__ = ["BrokerError", "BrokerStatus", "LocalKafka", "ScramListener", "new_cluster_id"]

KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
JVM_PERFORMANCE_OPTS = ("-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                        "-XX:InitiatingHeapOccupancyPercent=35",
                        "-XX:+ExplicitGCInvokesConcurrent")
"""The JVM options Kafka's own start scripts use (``KAFKA_JVM_PERFORMANCE_OPTS`` in
``kafka-run-class.sh``). Without the 20 ms pause goal, G1 aims at 200 ms and lets the young
generation grow: its collections, every few seconds under load, then pause every request for
tens of milliseconds, which shows up directly in the tail latency of the pipeline."""
REQUIRED_JAR_PREFIX = "kafka_2.13-"
# In a checkout (editable install) the pom sits at <repo>/deploy/kafka.
DEFAULT_KAFKA_HOME = Path(__file__).resolve().parent.parent / "deploy" / "kafka"


class BrokerError(TickcastError):
    """The local broker could not be resolved, formatted, started or stopped."""


def new_cluster_id() -> str:
    """A random KRaft cluster id, as Kafka's ``Uuid.randomUuid`` makes one: 16 random bytes in
    URL-safe base64 without padding, never starting with ``-`` (which a command line would
    read as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True, slots=True)
class ScramListener:
    """An extra listener authenticating clients with SCRAM: ``SASL_PLAINTEXT``, or
    ``SASL_SSL`` when ``keystore`` is given.

    In KRaft, SCRAM credentials live in the metadata log: ``users`` (name -> password) are
    written into it when the data directory is *formatted* (``kafka-storage format
    --add-scram``), so they must be given the first time a data directory is used. Controller
    and inter-broker traffic stay on the PLAINTEXT listeners. ``keystore`` is a PEM file with
    the broker's unencrypted PKCS#8 private key followed by its certificate chain.
    """

    port: int
    users: dict[str, str] = field(repr=False)
    mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-256"
    keystore: Path | None = None

    @property
    def protocol(self) -> Literal["SASL_PLAINTEXT", "SASL_SSL"]:
        return "SASL_SSL" if self.keystore else "SASL_PLAINTEXT"

    def config(self) -> list[str]:
        """``server.properties`` lines of the listener named after its protocol."""
        prefix = f"listener.name.{self.protocol.lower()}"
        lines = [
            f"sasl.enabled.mechanisms={self.mechanism}",
            # The server side of SCRAM needs a login module but no credentials of its own.
            f"{prefix}.{self.mechanism.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        ]
        if self.keystore:
            lines += [f"{prefix}.ssl.keystore.type=PEM",
                      f"{prefix}.ssl.keystore.location={self.keystore.resolve()}"]
        return lines

    def __post_init__(self) -> None:
        if not self.users:
            raise BrokerError("a SCRAM listener needs at least one user")
        # kafka-storage parses `name=...,password=...` itself; keep to characters it cannot
        # misread rather than quoting.
        safe = re.compile(r"[A-Za-z0-9._~+/-]+")
        for name, password in self.users.items():
            if not (safe.fullmatch(name) and safe.fullmatch(password)):
                raise BrokerError(f"SCRAM user {name!r}: names and passwords of the local broker "
                                 "are limited to letters, digits and . _ ~ + / -")

    def scram_arguments(self) -> list[str]:
        """``--add-scram`` arguments of ``kafka-storage format``."""
        return [arg for name, password in sorted(self.users.items())
                for arg in ("--add-scram", f"{self.mechanism}=[name={name},password={password}]")]


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    answering: bool
    data_dir: Path

    def describe(self) -> str:
        if self.running and self.answering:
            return f"running (pid {self.pid}) on {self.bootstrap}, data in {self.data_dir}"
        if self.running:
            return f"started (pid {self.pid}) but not answering on {self.bootstrap} yet"
        return f"stopped; data in {self.data_dir}"


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


class LocalKafka:
    """Resolve, format, start, probe and stop one local KRaft broker.

    Args:
        kafka_home: folder holding ``pom.xml``; jars are copied into ``kafka_home/lib``.
        state_dir: folder this broker owns (data, config, pid file, log).
        host, port, controller_port: listeners, loopback only by default.
        heap: JVM heap, e.g. ``"512m"``.
        scram: an extra SASL_PLAINTEXT listener with SCRAM users (see :class:`ScramListener`).
    """

    def __init__(
        self,
        *,
        kafka_home: Path,
        state_dir: Path,
        host: str = "127.0.0.1",
        port: int = 9092,
        controller_port: int = 9093,
        heap: str = "512m",
        scram: ScramListener | None = None,
        java_home: Path | None = None,
    ) -> None:
        self.kafka_home = kafka_home.resolve()
        self.state_dir = state_dir.resolve()
        self.host = host
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.scram = scram
        self.java_home = java_home

    @classmethod
    def from_settings(cls, tools: ToolSettings, *, state_dir: Path) -> LocalKafka:
        """The local broker as configured by ``TICKCAST_KAFKA_*`` (see ``tickcast config``);
        its files live in ``state_dir/kafka``."""
        kafka_home = tools.kafka_home or DEFAULT_KAFKA_HOME
        if not (kafka_home / "pom.xml").is_file():
            raise BrokerError(f"no pom.xml in {kafka_home}: run from a tickcast checkout or set "
                              "TICKCAST_KAFKA_HOME to its deploy/kafka folder")
        return cls(kafka_home=kafka_home, state_dir=state_dir / "kafka", host=tools.kafka_host,
                   port=tools.kafka_port, controller_port=tools.kafka_controller_port,
                   heap=tools.kafka_heap, java_home=tools.java_home)

    # -- paths ---------------------------------------------------------------------------
    @property
    def lib_dir(self) -> Path:
        return self.kafka_home / "lib"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def pid_path(self) -> Path:
        return self.state_dir / "kafka.pid"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "kafka.log"

    @property
    def gc_log_path(self) -> Path:
        """The broker's garbage-collection log (pauses with wall-clock times)."""
        return self.state_dir / "gc.log"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def scram_bootstrap(self) -> str | None:
        """Address of the SCRAM listener, if there is one."""
        return f"{self.host}:{self.scram.port}" if self.scram else None

    # -- resolve -------------------------------------------------------------------------
    def jars_present(self) -> bool:
        return self.lib_dir.is_dir() and any(
            p.name.startswith(REQUIRED_JAR_PREFIX) for p in self.lib_dir.glob("*.jar")
        )

    def resolve(self, *, quiet: bool = True) -> None:
        """Copy the broker jars from Maven Central into ``lib/`` (cached after the first run)."""
        if self.jars_present():
            return
        pom = self.kafka_home / "pom.xml"
        if not pom.is_file():
            raise BrokerError(f"no pom.xml in {self.kafka_home}; set TICKCAST_KAFKA_HOME")
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                "Maven ('mvn') is not on PATH; it resolves the Kafka jars from Maven Central. "
                "Install it (Debian: apt-get install maven) and retry."
            )
        cmd = [mvn, "-B", "-f", str(pom), "dependency:copy-dependencies"]
        if quiet:
            cmd.insert(1, "-q")
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not self.jars_present():
            output = result.stdout + result.stderr
            log = self._save_output("maven.log", output)
            raise BrokerError(f"Maven could not resolve the Kafka jars: {gist(output)}; its "
                              f"output is in {log}")

    # -- format --------------------------------------------------------------------------
    def _java(self) -> str:
        if self.java_home and (self.java_home / "bin" / "java").is_file():
            return str(self.java_home / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise BrokerError(
                "Java is not on PATH (Kafka 3.9 needs Java 11+, 17 recommended). "
                "Install it (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME."
            )
        return java

    def _classpath(self) -> str:
        return str(self.lib_dir / "*")

    def render_config(self) -> str:
        listeners = [f"PLAINTEXT://{self.host}:{self.port}"]
        protocols = ["CONTROLLER:PLAINTEXT", "PLAINTEXT:PLAINTEXT"]
        sasl: list[str] = []
        if self.scram is not None:
            protocol = self.scram.protocol
            listeners.append(f"{protocol}://{self.host}:{self.scram.port}")
            protocols.append(f"{protocol}:{protocol}")
            sasl = self.scram.config()
        return "\n".join(
            [
                "# Written by `tickcast kafka up`; edits are overwritten on the next start.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{self.host}:{self.controller_port}",
                f"listeners={','.join(listeners)},"
                f"CONTROLLER://{self.host}:{self.controller_port}",
                f"advertised.listeners={','.join(listeners)}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                f"listener.security.protocol.map={','.join(protocols)}",
                *sasl,
                f"log.dirs={self.data_dir}",
                "num.partitions=1",
                # Topics are declared by tickcast (and Faust for its internal ones), never
                # created by accident from a typo in a producer.
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=8",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "log.retention.hours=168",
                "",
            ]
        )

    def _is_formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()

    def format(self, *, cluster_id: str | None = None) -> None:
        """Format the KRaft data directory once (with ``cluster_id``, default a new one); an
        existing one is kept as it is."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.render_config(), encoding="utf-8")
        if self._is_formatted():
            return
        cmd = [
            self._java(), "-cp", self._classpath(), STORAGE_TOOL,
            # "--cluster-id=ID", not "-t ID": an id may start with "-" (ids from elsewhere do)
            "format", f"--cluster-id={cluster_id or new_cluster_id()}",
            "-c", str(self.config_path),
            *(self.scram.scram_arguments() if self.scram else []),
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = result.stdout + result.stderr
            for password in (self.scram.users.values() if self.scram else ()):
                output = output.replace(password, "********")
            log = self._save_output("format.log", output)
            raise BrokerError(f"formatting {self.data_dir} failed: {gist(output)}; the storage "
                              f"tool's output is in {log}")

    # -- lifecycle -----------------------------------------------------------------------
    def _read_pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def answering(self, timeout: float = 5.0) -> bool:
        """True when the broker serves metadata (not just an open port)."""
        if not _port_open(self.host, self.port):
            return False
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError as ClientError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                request_timeout_ms=int(timeout * 1000),
                client_id="tickcast-probe",
            )
        except (ClientError, OSError, ValueError):
            return False
        try:
            admin.list_topics()
            return True
        except (ClientError, OSError):
            return False
        finally:
            admin.close()

    def status(self) -> BrokerStatus:
        pid = self._read_pid()
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            bootstrap=self.bootstrap,
            answering=pid is not None and self.answering(),
            data_dir=self.data_dir,
        )

    def up(self, *, wait: float = 60.0) -> bool:
        """Start the broker unless it already runs; returns True when this call started it."""
        pid = self._read_pid()
        if pid is not None:
            self._wait_answering(pid, wait)
            return False
        ports = [self.port, self.controller_port, *([self.scram.port] if self.scram else [])]
        taken = [port for port in ports if _port_open(self.host, port)]
        if taken:
            raise BrokerError(
                f"port {taken[0]} on {self.host} is taken by another process; stop it or choose "
                "TICKCAST_KAFKA_PORT / TICKCAST_KAFKA_CONTROLLER_PORT"
            )
        self.resolve()
        self.format()
        cmd = self.command()
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.state_dir,
            )  # fmt: skip
        self.pid_path.write_text(str(proc.pid), encoding="ascii")
        self._wait_answering(proc.pid, wait)
        return True

    def command(self) -> list[str]:
        """The broker's command line: Kafka's own JVM options, a GC log with wall-clock
        times (:attr:`gc_log_path`), this broker's configuration."""
        log_cfg = self.kafka_home / "log4j.properties"
        return [
            self._java(), f"-Xms{self.heap}", f"-Xmx{self.heap}",
            *JVM_PERFORMANCE_OPTS, "-Djava.awt.headless=true",
            f"-Xlog:gc:file={self.gc_log_path}:time,uptime:filecount=2,filesize=20M",
            f"-Dlog4j.configuration=file:{log_cfg}",
            f"-Dkafka.logs.dir={self.state_dir}",
            "-cp", self._classpath(), KAFKA_MAIN, str(self.config_path),
        ]  # fmt: skip

    def up_for(self, bootstrap: str, *, wait: float = 60.0) -> bool:
        """Start this broker only if ``bootstrap`` is its address and nothing answers there;
        returns True when it was started (so the caller knows to stop it)."""
        if bootstrap != self.bootstrap or self.answering():
            return False
        return self.up(wait=wait)

    def _wait_answering(self, pid: int, wait: float) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                raise BrokerError(f"the broker exited during start: {gist(self._log())}; see "
                                  f"{self.log_path}")
            if self.answering():
                return
            time.sleep(0.5)
        raise BrokerError(f"the broker did not answer on {self.bootstrap} within {wait:.0f}s; "
                         f"see {self.log_path}")

    def _log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"

    def _save_output(self, name: str, output: str) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / name
        path.write_text(output, encoding="utf-8")
        return path

    def down(self, *, wait: float = 30.0) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after ``wait``); keeps the data."""
        pid = self._read_pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.2)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.1)
        self.pid_path.unlink(missing_ok=True)
        return True
