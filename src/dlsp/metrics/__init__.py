"""Evaluation metrics: speech enhancement (SNR, SI-SDR, PESQ, STOI), verification (EER, minDCF) and
classification (accuracy, macro F1, confusion matrix)."""

from dlsp.metrics.classification import accuracy, classification_summary, confusion_matrix, macro_f1
from dlsp.metrics.enhancement import (
    enhancement_metrics,
    pesq_mode_for,
    pesq_score,
    segmental_snr,
    si_sdr,
    snr,
    stoi_score,
)
from dlsp.metrics.verification import bootstrap_ci, det_curve, eer, min_dcf

__all__ = [
    "accuracy",
    "bootstrap_ci",
    "classification_summary",
    "confusion_matrix",
    "det_curve",
    "eer",
    "enhancement_metrics",
    "macro_f1",
    "min_dcf",
    "pesq_mode_for",
    "pesq_score",
    "segmental_snr",
    "si_sdr",
    "snr",
    "stoi_score",
]
