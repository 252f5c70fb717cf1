"""Offline jobs: datasets, training, evaluation reports and publishing of model artifacts."""

if __name__ != "tickcast.training":  # e.g. imported as "training" with the repository on sys.path
    raise ImportError(f"import tickcast.training, not {__name__}: one module object per file")
