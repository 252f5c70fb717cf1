"""A running broker's request counts and CPU, read before and after a measured window.

The broker counts every request it serves by type (the JMX metric
``kafka.network:type=RequestMetrics,name=RequestsPerSec,request=Produce`` and its siblings).
``jmx/BrokerRequests.java`` reads them through the JVM's local management agent (the attach
API: the same user, no network port), run from its source by ``java``. The probe uses it with
``--broker-requests`` to say how many produce, fetch and offset-commit requests the workers'
outputs cost the broker, and its CPU per output.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tickcast_bench.processes import BenchError, proc_stats

__all__ = ["READER", "BrokerSample", "per_thousand", "sample"]

READER: Final = Path(__file__).parent / "jmx" / "BrokerRequests.java"
SHOWN: Final = ("Produce", "Fetch", "OffsetCommit", "Heartbeat", "Metadata")
"""Request types the probe prints, in this order."""


@dataclass(frozen=True, slots=True)
class BrokerSample:
    requests: dict[str, int]
    """Requests served since the broker started, by type."""
    cpu_s: float
    """The broker process's CPU seconds since it started."""


def sample(pid: int, *, timeout: float = 60.0) -> BrokerSample:
    """The broker ``pid``'s request counts and CPU now."""
    java = shutil.which("java")
    if java is None:
        raise BenchError("--broker-requests needs java on PATH (the broker's own JDK)")
    try:
        done = subprocess.run([java, str(READER), str(pid)], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"reading the broker's request counts took over {timeout:.0f}s"
                         ) from None
    if done.returncode != 0:
        raise BenchError(f"could not read the broker's request counts (pid {pid}): "
                         f"{done.stderr.strip()[-500:]}")
    requests = {}
    for line in done.stdout.splitlines():
        name, _, count = line.partition("=")
        requests[name] = int(count)
    return BrokerSample(requests=requests, cpu_s=proc_stats(pid)[0])


def per_thousand(before: BrokerSample, after: BrokerSample, outputs: float) -> dict[str, float]:
    """Requests of each type per 1,000 outputs between two samples, and the broker's CPU per
    output in µs (``cpu_us``)."""
    if outputs <= 0:
        raise BenchError("no outputs between the two samples")
    rates = {name: (after.requests.get(name, 0) - before.requests.get(name, 0)) / outputs * 1000
             for name in after.requests}
    rates["cpu_us"] = (after.cpu_s - before.cpu_s) / outputs * 1e6
    return rates
