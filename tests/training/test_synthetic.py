"""Intervals on instruments the forecaster never trained on: regime-switching random walks
whose volatility (30x apart) and true quantiles are known, served by the price processor."""

from __future__ import annotations

import numpy as np
import pytest

from tickcast.models.predictors import load_predictor
from tickcast.training.prices import PriceResult
from tickcast.training.synthetic import REGIMES, coverage_by_regime, regime_walk


def test_regime_walk_has_the_volatility_it_claims() -> None:
    closes, vol = regime_walk(days=4000, seed=5)
    returns = np.diff(np.log(closes))
    for v in REGIMES:
        assert np.std(returns[vol[1:] == v]) == pytest.approx(v, rel=0.05)
    with pytest.raises(ValueError, match="innovations"):
        regime_walk(innovations="cauchy")


@pytest.mark.parametrize("innovations", ["normal", "t5"])
def test_served_intervals_cover_their_level_in_every_regime(tiny_forecaster: PriceResult,
                                                            innovations: str) -> None:
    forecaster = load_predictor(tiny_forecaster.path)
    closes, vol = regime_walk(innovations=innovations, days=2500, seed=11)
    rows = coverage_by_regime(forecaster, closes, vol, innovations=innovations)
    assert {(r.vol, r.level) for r in rows} == {(v, lv) for v in REGIMES for lv in (0.8, 0.95)}
    for r in rows:
        assert r.n > 2400
        assert r.coverage == pytest.approx(r.level, abs=0.03), r
        # Covered by adapting to each regime's volatility, not by being wide everywhere: the
        # width is near the true interval's in the calmest and in the wildest regime alike.
        assert 0.8 < r.width_ratio < 1.3, r
