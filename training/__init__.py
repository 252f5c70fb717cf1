"""Offline jobs: datasets, training, evaluation reports and publishing of model artifacts."""
