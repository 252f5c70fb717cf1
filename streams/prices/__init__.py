"""Prices: per-symbol windows, batched LSTM forecasts, and the forecaster scoring itself."""
