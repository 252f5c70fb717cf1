"""Sentiment: score every text with each model, side by side, and evaluate against labels."""
