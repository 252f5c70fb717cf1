"""Processes the bench starts and measures: workers, pipelines, their CPU and memory.

Linux only: CPU time and peak RSS come from ``/proc``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from tickcast.errors import TickcastError
from tickcast.scrape import scrape
from tickcast.streams.settings import child_environ

__all__ = ["BenchError", "Child", "Target", "Workers", "cores_busy", "free_port", "machine_ticks",
           "proc_stats", "stop"]


class BenchError(TickcastError):
    """A pipeline or worker of the bench did not start, stalled, or exited early."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS MiB) of a live process, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0.0
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cpu, peak


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, all cores, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def cores_busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Cores the whole machine kept busy between two :func:`machine_ticks` readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total * (os.cpu_count() or 1) if total > 0 else 0.0


def stop(proc: subprocess.Popen[bytes], *, timeout: float = 30.0) -> int:
    """SIGTERM, then SIGKILL if ``proc`` has not exited after ``timeout`` seconds; its status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


class Child:
    """A child process whose output goes to ``log``; the log is closed when it stops."""

    def __init__(self, argv: Sequence[str], *, log: Path, env: Mapping[str, str]) -> None:
        self.log_path = log
        self._log: IO[bytes] = open(log, "wb")  # noqa: SIM115 - closed in stop()
        try:
            self.proc = subprocess.Popen(list(argv), env=dict(env), stdout=self._log,
                                         stderr=subprocess.STDOUT)
        except BaseException:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log_closed(self) -> bool:
        return self._log.closed

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def terminate(self) -> None:
        """SIGTERM, without waiting (see :meth:`stop`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, *, timeout: float = 30.0) -> int:
        try:
            return stop(self.proc, timeout=timeout)
        finally:
            self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@dataclass(frozen=True, slots=True)
class Target:
    """Where a run happens and which models it serves."""

    bootstrap: str
    model_dir: Path
    forecaster: str = "gold-lstm"
    sentiment: str = "sentiment-rnn"
    inference_threads: int = 1
    """ONNX Runtime threads per call, for the workers and for every peer that runs the same
    predictors (``TICKCAST_INFERENCE_THREADS`` of the bench's own settings)."""
    settings: tuple[tuple[str, str], ...] = ()
    """Extra ``TICKCAST_*`` settings of the workers (an experiment's), applied last."""

    def worker_environ(self, *, prefix: str, app_id: str, partitions: int, port: int,
                       state: Path) -> dict[str, str]:
        """A bench worker's environment: this process's without its ``TICKCAST_*`` settings,
        and the run's own."""
        return child_environ({
            "TICKCAST_KAFKA_BOOTSTRAP": self.bootstrap, "TICKCAST_TOPIC_PREFIX": prefix,
            "TICKCAST_APP_ID": app_id, "TICKCAST_METRICS_PORT": str(port),
            "TICKCAST_STATE_DIR": str(state), "TICKCAST_MODEL_DIR": str(self.model_dir),
            "TICKCAST_TOPIC_PARTITIONS": str(partitions), "TICKCAST_LOG_LEVEL": "warning",
            "TICKCAST_FORECASTER_MODEL": self.forecaster,
            "TICKCAST_SENTIMENT_MODEL": self.sentiment,
            "TICKCAST_INFERENCE_THREADS": str(self.inference_threads), **dict(self.settings),
        }, inherit_settings=False)


class Workers:
    """``tickcast worker`` processes of one consumer group, each with its ``/metrics``."""

    def __init__(self, count: int, target: Target, *, log_dir: Path, name: str, prefix: str,
                 app_id: str, partitions: int) -> None:
        self.children: list[Child] = []
        self.urls: list[str] = []
        try:
            for i in range(count):
                port = free_port()
                env = target.worker_environ(prefix=prefix, app_id=app_id,
                                            partitions=partitions, port=port,
                                            state=log_dir / f"{name}-w{i}")
                self.children.append(Child([sys.executable, "-m", "tickcast", "worker"],
                                           log=log_dir / f"{name}-{i}.log", env=env))
                self.urls.append(f"http://127.0.0.1:{port}/metrics")
        except BaseException:
            self.stop()
            raise

    @property
    def logs(self) -> str:
        return ", ".join(str(c.log_path) for c in self.children)

    def wait_ready(self, *, timeout: float = 120.0) -> None:
        """Until every worker says it is ready (``tickcast_ready``: partitions assigned and
        tables recovered) and the group owns partitions."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline or any(c.exited() for c in self.children):
                raise BenchError(f"tickcast worker did not become ready; see {self.logs}")
            time.sleep(0.05)

    def wait_producing(self, *, timeout: float = 120.0) -> None:
        """Until every worker has produced outputs (its start-up is over)."""
        deadline = time.monotonic() + timeout
        while min(self.outputs_by_worker()) <= 0:
            if time.monotonic() > deadline or any(c.exited() for c in self.children):
                raise BenchError(f"a worker exited or produced nothing in {timeout:.0f}s; see "
                                 f"{self.logs}")
            time.sleep(0.2)

    def ready(self) -> bool:
        assigned = 0.0
        for url in self.urls:
            try:
                samples = scrape(url)
            except OSError:
                return False
            if samples.total("tickcast_ready") < 1:
                return False
            assigned += samples.total("tickcast_assigned_partitions")
        return assigned > 0

    def outputs(self) -> float:
        """Forecasts and sentiment records produced so far, all workers."""
        return sum(self.outputs_by_worker())

    def outputs_by_worker(self) -> list[float]:
        """Forecasts and sentiment records produced so far by each worker, in start order."""
        counts = []
        for url in self.urls:
            samples = scrape(url)  # once per worker and poll
            counts.append(sum(samples.total("tickcast_events_out_total", topic=topic)
                              for topic in ("forecasts", "sentiment")))
        return counts

    def cpu_seconds(self) -> float:
        return sum(proc_stats(c.pid)[0] for c in self.children)

    def stats(self) -> list[tuple[float, float]]:
        return [proc_stats(c.pid) for c in self.children]

    def stop(self) -> None:
        for child in self.children:  # all at once, then wait for each
            child.terminate()
        for child in self.children:
            child.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
