"""The champion/challenger gate's rule, and pooling the evidence of several workers."""

from __future__ import annotations

import numpy as np
import pytest

from tickcast.streams.evaluation import delong
from tickcast.streams.evaluation.forecast_tests import diebold_mariano
from tickcast.streams.gate import (
    AUCEvidence,
    DMEvidence,
    Policy,
    combine,
    decide,
    verdict_label,
)

POLICY = Policy(min_events=100, max_events=1000, alpha=0.05)


@pytest.mark.parametrize(("evidence", "decision", "label"), [
    (None, "watch", "watch"),
    (AUCEvidence(n=99, diff=0.3, low=0.2, high=0.4), "watch", "watch"),  # too few
    (AUCEvidence(n=100, diff=0.05, low=0.01, high=0.09), "promote", "promote"),
    (AUCEvidence(n=100, diff=-0.05, low=-0.09, high=-0.01), "reject", "reject_worse"),
    (AUCEvidence(n=500, diff=0.01, low=-0.02, high=0.04), "watch", "watch"),
    (AUCEvidence(n=1000, diff=0.01, low=-0.02, high=0.04), "reject", "reject_no_gain"),
    (DMEvidence(n=200, stat=-3.0, p=0.003), "promote", "promote"),
    (DMEvidence(n=200, stat=3.0, p=0.003), "reject", "reject_worse"),
    (DMEvidence(n=200, stat=-1.0, p=0.32), "watch", "watch"),
    (DMEvidence(n=1000, stat=-1.0, p=0.32), "reject", "reject_no_gain"),
])
def test_the_rule(evidence, decision: str, label: str) -> None:
    verdict = decide(evidence, POLICY)
    assert verdict.decision == decision
    assert verdict_label(verdict) == label
    assert verdict.to_dict()["decision"] == decision
    assert verdict.rule  # says which rule applied


def test_auc_evidence_p_value_matches_its_interval() -> None:
    # An interval that just touches 0 is p = 0.05.
    evidence = AUCEvidence(n=300, diff=0.1, low=0.0, high=0.2)
    assert evidence.p_value() == pytest.approx(0.05)


def test_pooled_auc_evidence_is_the_inverse_variance_estimate() -> None:
    rng = np.random.default_rng(2)
    parts = []
    for _ in range(3):
        y = rng.integers(0, 2, 400)
        a = y + rng.normal(scale=1.0, size=400)
        b = y + rng.normal(scale=1.3, size=400)
        c = delong(a, b, y)
        parts.append(AUCEvidence(n=c.n, diff=c.diff, low=c.low, high=c.high))
    pooled = combine(parts)
    assert isinstance(pooled, AUCEvidence)
    assert pooled.n == 1200
    w = np.array([1 / p.se**2 for p in parts])
    assert pooled.diff == pytest.approx(float(np.sum(w * [p.diff for p in parts]) / w.sum()))
    assert pooled.se == pytest.approx(1 / np.sqrt(w.sum()))
    assert pooled.se < min(p.se for p in parts)


def test_pooled_dm_evidence_keeps_direction_and_gains_power() -> None:
    rng = np.random.default_rng(5)
    parts = []
    for _ in range(4):
        good, bad = rng.normal(scale=0.9, size=(1, 300)) ** 2, rng.normal(size=(1, 300)) ** 2
        result = diebold_mariano(good[0], bad[0])
        assert result is not None
        parts.append(DMEvidence(n=result.n, stat=result.stat, p=result.p_value))
    pooled = combine(parts)
    assert isinstance(pooled, DMEvidence)
    assert pooled.stat < 0
    assert pooled.p < min(p.p for p in parts)
    assert combine([parts[0]]) is parts[0]
    assert combine([]) is None
    with pytest.raises(ValueError, match="cannot pool"):
        combine([parts[0], AUCEvidence(n=10, diff=0.1, low=0.0, high=0.2)])


def test_policy_is_checked() -> None:
    with pytest.raises(ValueError):
        Policy(min_events=10, max_events=5)
    with pytest.raises(ValueError):
        Policy(alpha=0.7)
