"""Request counts per 1,000 outputs between two samples of the broker."""

from __future__ import annotations

import pytest
from tickcast_bench.brokerstats import BrokerSample, per_thousand
from tickcast_bench.processes import BenchError


def test_rates_per_thousand_outputs_and_cpu_per_output() -> None:
    before = BrokerSample(requests={"Produce": 100, "Fetch": 10}, cpu_s=2.0)
    after = BrokerSample(requests={"Produce": 140, "Fetch": 30, "OffsetCommit": 4}, cpu_s=2.5)
    rates = per_thousand(before, after, outputs=10_000)
    assert rates == {"Produce": 4.0, "Fetch": 2.0, "OffsetCommit": 0.4, "cpu_us": 50.0}


def test_no_outputs_between_the_samples_is_an_error() -> None:
    sample = BrokerSample(requests={"Produce": 1}, cpu_s=1.0)
    with pytest.raises(BenchError, match="no outputs"):
        per_thousand(sample, sample, outputs=0)
