"""Rolling evaluation metrics, updated as ground truth arrives (one metric per module)."""

from tickcast.streams.evaluation.rolling_auc import RollingAUC

__all__ = ["RollingAUC"]
