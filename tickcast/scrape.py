"""Reading a Prometheus text endpoint (a worker's ``/metrics``) from Python.

Used by the demo's live summary, the benchmark harness and the integration tests.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Mapping

__all__ = ["Samples", "scrape", "wait_for_metrics"]

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


class Samples(dict[SampleKey, float]):
    """One scrape: ``{(name, sorted label pairs): value}``."""

    def value(self, name: str, default: float | None = None, **labels: str) -> float | None:
        """The sample ``name{labels}`` (all its labels given), or ``default``."""
        return self.get((name, tuple(sorted(labels.items()))), default)

    def total(self, name: str, **labels: str) -> float:
        """The sum of every sample of ``name`` whose labels include ``labels``."""
        return sum(v for (n, pairs), v in self.items()
                   if n == name and _matches(dict(pairs), labels))


def _matches(pairs: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(pairs.get(k) == v for k, v in wanted.items())


def scrape(url: str, timeout: float = 2.0) -> Samples:
    """Every sample of a Prometheus text endpoint; ``OSError`` if it does not answer."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local URL
        text = response.read().decode("utf-8")
    return Samples({
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    })


def wait_for_metrics(url: str, *, timeout: float, proc: subprocess.Popen | None = None
                     ) -> None:
    """Until ``url`` answers; ``RuntimeError`` if ``proc`` exits first, ``TimeoutError``
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with status "
                               f"{proc.returncode}")
        try:
            scrape(url, timeout=1.0)
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")
