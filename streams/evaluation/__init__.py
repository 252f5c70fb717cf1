"""Rolling evaluation metrics, updated as ground truth arrives (one metric per module)."""

from tickcast.streams.evaluation.agreement import RollingAgreement
from tickcast.streams.evaluation.paired_auc import AUCComparison, PairedAUC, delong
from tickcast.streams.evaluation.rolling_auc import RollingAUC

__all__ = ["AUCComparison", "PairedAUC", "RollingAUC", "RollingAgreement", "delong"]
