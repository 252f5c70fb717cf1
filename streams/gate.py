"""The champion/challenger gate: promote, reject or keep watching, from paired evidence.

Evidence is one paired comparison of the challenger with the champion on the same events:

* sentiment: challenger AUC − champion AUC on the same labelled texts, with its 95 % DeLong
  interval (:class:`AUCEvidence`);
* forecasts: the Diebold–Mariano test of the challenger's scaled squared errors against the
  champion's on the same ticks (:class:`DMEvidence`; a negative statistic favours the
  challenger).

The rule (:func:`decide`), with the policy's ``min_events``, ``max_events`` and ``alpha``:

1. fewer than ``min_events`` paired events: **watch**;
2. the challenger is significantly better at level ``alpha`` (two-sided): **promote**;
3. significantly worse: **reject**;
4. ``max_events`` or more and no significant difference: **reject** (it is not worth a swap);
5. otherwise: **watch**.

Several workers each hold the evidence of their own partitions; :func:`combine` pools them
as independent samples: AUC differences by inverse-variance weighting (a fixed-effect
estimate and interval), DM statistics by Stouffer's method weighted by ``sqrt(n)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

__all__ = ["VERDICTS", "AUCEvidence", "DMEvidence", "Policy", "Verdict", "combine", "decide",
           "verdict_label"]

Decision = Literal["promote", "reject", "watch"]
VERDICTS: Final = ("promote", "reject_worse", "reject_no_gain", "watch")
"""A decision with why, as the ``decision`` label of ``tickcast_challenger_verdict``."""
Z_95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Policy:
    min_events: int = 300
    max_events: int = 5_000
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if not 3 <= self.min_events <= self.max_events:
            raise ValueError("need 3 <= min_events <= max_events")
        if not 0 < self.alpha < 0.5:
            raise ValueError("alpha must be in (0, 0.5)")


@dataclass(frozen=True, slots=True)
class AUCEvidence:
    """Challenger AUC − champion AUC with its 95 % interval, over ``n`` labelled texts."""

    n: int
    diff: float
    low: float
    high: float
    kind: str = "auc"

    @property
    def se(self) -> float:
        return (self.high - self.low) / (2 * Z_95)

    def p_value(self) -> float:
        if self.se <= 0:
            return 0.0 if self.diff != 0 else 1.0
        return _two_sided_normal(self.diff / self.se)

    def favours_challenger(self) -> bool:
        return self.diff > 0


@dataclass(frozen=True, slots=True)
class DMEvidence:
    """Diebold–Mariano of challenger against champion over ``n`` scored forecasts."""

    n: int
    stat: float
    p: float
    kind: str = "dm"

    def p_value(self) -> float:
        return self.p

    def favours_challenger(self) -> bool:
        return self.stat < 0


Evidence = AUCEvidence | DMEvidence


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    rule: str
    """The rule that decided, in words."""
    evidence: Evidence | None
    policy: Policy
    worse: bool = False
    """Rejected because the challenger is significantly worse (an alert)."""

    def to_dict(self) -> dict[str, Any]:
        evidence = None
        if self.evidence is not None:
            evidence = {**asdict(self.evidence), "p_value": self.evidence.p_value()}
        return {"decision": self.decision, "rule": self.rule, "evidence": evidence,
                "policy": asdict(self.policy), "worse": self.worse}


def decide(evidence: Evidence | None, policy: Policy) -> Verdict:
    if evidence is None or evidence.n < policy.min_events:
        n = 0 if evidence is None else evidence.n
        return Verdict("watch", f"{n} paired events < {policy.min_events} needed", evidence,
                       policy)
    p = evidence.p_value()
    if p < policy.alpha:
        if evidence.favours_challenger():
            return Verdict("promote", f"challenger significantly better (p={p:.3g} < "
                           f"{policy.alpha})", evidence, policy)
        return Verdict("reject", f"challenger significantly worse (p={p:.3g} < "
                       f"{policy.alpha})", evidence, policy, worse=True)
    if evidence.n >= policy.max_events:
        return Verdict("reject", f"no significant gain after {evidence.n} paired events "
                       f"(p={p:.3g}, limit {policy.max_events})", evidence, policy)
    return Verdict("watch", f"no significant difference yet (p={p:.3g} >= {policy.alpha})",
                   evidence, policy)


def verdict_label(verdict: Verdict) -> str:
    if verdict.decision == "reject":
        return "reject_worse" if verdict.worse else "reject_no_gain"
    return verdict.decision


def combine(parts: Sequence[Evidence]) -> Evidence | None:
    """Pool the evidence of several workers (independent samples); ``None`` if none."""
    parts = [p for p in parts if p.n > 0]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, AUCEvidence) for p in parts):
        auc = [p for p in parts if isinstance(p, AUCEvidence) and p.se > 0]
        if not auc:
            return None
        weights = [1 / p.se**2 for p in auc]
        diff = sum(w * p.diff for w, p in zip(weights, auc, strict=True)) / sum(weights)
        se = 1 / math.sqrt(sum(weights))
        return AUCEvidence(n=sum(p.n for p in auc), diff=diff, low=diff - Z_95 * se,
                           high=diff + Z_95 * se)
    if all(isinstance(p, DMEvidence) for p in parts):
        dm = [p for p in parts if isinstance(p, DMEvidence)]
        z = sum(math.sqrt(p.n) * _signed_z(p) for p in dm) / math.sqrt(sum(p.n for p in dm))
        return DMEvidence(n=sum(p.n for p in dm), stat=z, p=_two_sided_normal(z))
    raise ValueError("cannot pool AUC evidence with forecast evidence")


def _signed_z(evidence: DMEvidence) -> float:
    """The normal quantile with the same two-sided p-value and sign as the DM statistic."""
    from scipy.stats import norm

    z = float(norm.isf(min(max(evidence.p, 1e-300), 1.0) / 2))
    return -z if evidence.stat < 0 else z


def _two_sided_normal(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))
