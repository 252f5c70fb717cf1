"""The forecaster's interval head: its preprocessing state, the loader's checks, and the
intervals it serves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tickcast.models.artifacts import ArtifactError, write_artifact
from tickcast.models.predictors import Forecaster, load_predictor
from tickcast.models.preprocessing import SERVED_LEVELS, IntervalSpec, PriceScaler
from tickcast.training.data import gold_closes
from tickcast.training.prices import INTERVAL_LEVELS, PriceResult


def test_a_point_only_state_of_older_artifacts_still_loads_as_it_was() -> None:
    scaler = PriceScaler.from_dict({"window": 30, "scale": 0.01})
    assert (scaler.normalize, scaler.intervals, scaler.outputs) == ("fixed", None, 1)
    assert scaler.to_dict() == {"window": 30, "scale": 0.01}  # byte-compatible
    windows = np.array([[100.0, 101.0, 102.0]])
    fixed = PriceScaler(window=3, scale=0.01)
    assert fixed.inputs(windows)[0, :, 0] == pytest.approx(np.log(windows[0] / 102.0) / 0.01)


def test_interval_spec_round_trips_and_names_its_quantile_columns() -> None:
    spec = IntervalSpec(levels=INTERVAL_LEVELS, offsets=tuple(range(len(INTERVAL_LEVELS))))
    scaler = PriceScaler(window=30, scale=0.01, normalize="window", intervals=spec)
    assert PriceScaler.from_dict(json.loads(json.dumps(scaler.to_dict()))) == scaler
    assert len(spec.quantiles) == 2 * len(INTERVAL_LEVELS)
    assert scaler.outputs == 21
    lo, hi = spec.columns(0.8)
    assert (spec.quantiles[lo], spec.quantiles[hi]) == (0.1, 0.9)
    for bad, match in (({"levels": (0.9, 0.8)}, "ascending"), ({"levels": (0.8, 1.0)}, "lie in"),
                       ({"offsets": (0.0,)}, "offsets for")):
        with pytest.raises(ValueError, match=match):
            IntervalSpec(**{"levels": (0.8, 0.95), "offsets": (0.0, 0.0), **bad})
    with pytest.raises(ValueError, match="normalize='window'"):
        PriceScaler(window=30, scale=0.01, intervals=spec)


def test_window_units_make_inputs_independent_of_the_instruments_volatility() -> None:
    """A calm and a wild instrument with the same shape of moves look the same to the model,
    and its outputs scale back with each one's volatility."""
    scaler = PriceScaler(window=20, scale=0.01, normalize="window")
    steps = np.random.default_rng(0).standard_normal(19)
    calm = 100 * np.exp(np.cumsum(np.r_[0, 0.001 * steps]))[None, :]
    wild = 100 * np.exp(np.cumsum(np.r_[0, 0.05 * steps]))[None, :]
    assert scaler.inputs(calm) == pytest.approx(scaler.inputs(wild), abs=1e-5)
    assert scaler.units(wild)[0] == pytest.approx(50 * scaler.units(calm)[0])
    flat = np.full((1, 20), 7.0)
    assert np.all(scaler.inputs(flat) == 0)  # no division by a zero volatility


def test_served_intervals_nest_around_the_forecast(tiny_forecaster: PriceResult) -> None:
    predictor = load_predictor(tiny_forecaster.path)
    assert isinstance(predictor, Forecaster)
    assert predictor.intervals
    closes = gold_closes()["close"].to_numpy(dtype=np.float64)[-500:]
    windows = np.lib.stride_tricks.sliding_window_view(closes, predictor.window)
    p = predictor.predict(windows)
    assert p.bounds is not None
    assert p.units is not None
    assert p.bounds.shape == (len(windows), len(SERVED_LEVELS), 2)
    lo80, hi80, lo95, hi95 = (p.bounds[:, 0, 0], p.bounds[:, 0, 1], p.bounds[:, 1, 0],
                              p.bounds[:, 1, 1])
    assert np.all((lo95 > 0) & (lo95 <= lo80) & (lo80 < hi80) & (hi80 <= hi95))
    assert p.prices == pytest.approx(predictor.predict_prices(windows))
    assert predictor.manifest.input["intervals"]["levels"] == list(INTERVAL_LEVELS)
    empty = predictor.predict(windows[:0])
    assert empty.prices.shape == (0,)
    assert empty.bounds is not None
    assert empty.bounds.shape[0] == 0


def _rewrite(source: Path, target: Path, state: dict) -> Path:
    def write(folder: Path) -> None:
        shutil.copy(source / "model.keras", folder / "model.keras")
        (folder / "preprocessing.json").write_text(json.dumps(state))

    path, _ = write_artifact(target, name="m", kind="forecaster", version="v1",
                             write_files=write, metrics={}, input_spec={}, data={})
    return path


def test_an_interval_spec_that_does_not_fit_the_model_is_refused(
        tiny_forecaster: PriceResult, tmp_path: Path) -> None:
    state = json.loads((tiny_forecaster.path / "preprocessing.json").read_text())
    assert state["normalize"] == "window"
    fewer = {**state, "intervals": {**state["intervals"],
                                    "levels": state["intervals"]["levels"][1:],
                                    "offsets": state["intervals"]["offsets"][1:]}}
    with pytest.raises(ArtifactError, match=r"output shape \(None, 21\).*\(None, 19\)"):
        load_predictor(_rewrite(tiny_forecaster.path, tmp_path / "fewer", fewer))
    point_only = {"window": state["window"], "scale": state["scale"]}
    with pytest.raises(ArtifactError, match="a point forecast only"):
        load_predictor(_rewrite(tiny_forecaster.path, tmp_path / "point", point_only))
    unserved = {**state, "intervals": {**state["intervals"],
                                       "levels": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.9,
                                                  0.95]}}
    with pytest.raises(ArtifactError, match="serving needs"):
        load_predictor(_rewrite(tiny_forecaster.path, tmp_path / "unserved", unserved))


def test_bounds_never_cross_and_always_nest_whatever_the_offsets() -> None:
    """A negative offset larger than the head's half-width collapses the interval to its
    midpoint; a level's interval contains the one below it even if the offsets disagree."""
    spec = IntervalSpec(levels=(0.8, 0.95), offsets=(0.5, -3.0))
    scaler = PriceScaler(window=4, scale=0.01, normalize="window", intervals=spec)
    windows = np.array([[100.0, 101.0, 99.5, 100.5], [50.0, 50.5, 50.2, 50.1]])
    # point, then the quantiles 0.025, 0.1, 0.9, 0.975 (the last two crossed on purpose)
    outputs = np.array([[0.0, -2.0, -1.3, 1.3, 2.0], [0.1, -1.9, -1.2, 1.4, 1.2]])
    b = scaler.bounds(windows, outputs, (0.8, 0.95))
    assert np.all(b[..., 0] <= b[..., 1])
    assert np.all(b[:, 1, 0] <= b[:, 0, 0])
    assert np.all(b[:, 0, 1] <= b[:, 1, 1])
    units = scaler.units(windows)
    assert b[0, 0].tolist() == pytest.approx([100.5 * np.exp(-1.8 * units[0]),
                                              100.5 * np.exp(1.8 * units[0])])
    flat = np.full((1, 4), 7.0)
    assert scaler.units(flat)[0] > 0  # a flat window keeps a positive unit
