"""Detection metrics over scores and binary truths: ROC AUC, the equal-error threshold, F1 at a
threshold and the true-positive rate at a false-positive rate (the PSCC-Net paper's tables).
Ties are handled as scikit-learn does (the ROC moves diagonally through tied scores)."""

from __future__ import annotations

import numpy as np


def roc(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates, thresholds), thresholds falling; a score at or
    above a threshold is called positive. Starts at (0, 0) with threshold +inf."""
    s = np.asarray(scores, np.float64).ravel()
    t = np.asarray(truth).ravel().astype(bool)
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last index of each run of equal scores
    tp = np.cumsum(t)[last]
    fp = (last + 1) - tp
    p, n = max(int(t.sum()), 1), max(int((~t).sum()), 1)
    return np.r_[0.0, fp / n], np.r_[0.0, tp / p], np.r_[np.inf, s[last]]


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve (NaN when only one class is present)."""
    t = np.asarray(truth).ravel().astype(bool)
    if t.all() or not t.any():
        return float("nan")
    fpr, tpr, _ = roc(scores, t)
    return float(np.trapezoid(tpr, fpr))


def eer(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(equal error rate, its threshold): the point of the ROC where the false-positive rate
    equals the false-negative rate (the nearer of the two neighbouring points)."""
    fpr, tpr, th = roc(scores, truth)
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fpr - fnr)))
    return float((fpr[i] + fnr[i]) / 2), float(th[i])


def f1_at(scores: np.ndarray, truth: np.ndarray, threshold: float) -> float:
    """F1 of calling positive every score at or above ``threshold``."""
    t = np.asarray(truth).ravel().astype(bool)
    pred = np.asarray(scores).ravel() >= threshold
    tp = int((pred & t).sum())
    denom = int(pred.sum()) + int(t.sum())
    return 2 * tp / denom if denom else 1.0


def tpr_at_fpr(scores: np.ndarray, truth: np.ndarray, max_fpr: float) -> float:
    """The largest true-positive rate at a false-positive rate of at most ``max_fpr``."""
    fpr, tpr, _ = roc(scores, truth)
    return float(tpr[fpr <= max_fpr + 1e-12].max())
