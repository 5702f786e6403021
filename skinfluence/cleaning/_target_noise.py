"""How many regression targets are corrupted: a robust outlier rule on held-out residuals.

The regression counterpart of the confident-learning count of
:mod:`skinfluence.cleaning._label_noise`. A target is counted as corrupted when its
held-out residual ``r_i = y_i - f_{-i}(x_i)`` (from a model that did not see
row i) is a robust outlier:

    z_i = |r_i - median(r)| / (1.4826 * MAD(r)) > z_threshold,

with MAD the median absolute deviation (1.4826 MAD estimates the standard
deviation of Gaussian residuals, and neither is moved by the outliers
themselves). On clean data with Gaussian noise ``P(z > 3.5) = 4.7e-4``, so the
rule acts on almost nothing when no target is corrupted. The held-out
predictions come from a second round of fold models refitted without the
first round's outliers (:func:`skinfluence.cleaning._crossfit_regression.refined_predictions`):
a fold model pulled by corrupted targets hides some of them.

The rows acted on are those of largest z (the influence score breaks ties).
Chosen on two cells of benchmarks/cleaning/bench_regression.py (diabetes and star98,
10% of targets shifted by 5-10 standard deviations, 5 seeds): ranking by z
flagged corrupted rows with precision 1.00 / 0.94, the mean of the influence
rank and the residual rank (the classifiers' rule) 0.61 / 0.69, the
influence rank alone 0.60 / 0.65; the other cells were held out.
"""
from dataclasses import dataclass

import numpy as np

#: robust z above which a held-out residual counts as a corrupted target
Z_THRESHOLD = 3.5

#: 1 / Phi^-1(3/4): MAD -> standard deviation for Gaussian residuals
MAD_TO_STD = 1.4826


def robust_z(residuals):
    """``|r - median(r)| / (1.4826 MAD(r))`` (inf where MAD is 0 and r is off the median).

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.cleaning._target_noise import robust_z
    >>> robust_z(np.array([-1.0, 0.0, 1.0, 0.5, -0.5, 40.0])).round(2)
    array([ 1.12,  0.22,  0.67,  0.22,  0.67, 35.75])
    """
    r = np.asarray(residuals, dtype=np.float64)
    dev = np.abs(r - np.median(r))
    scale = MAD_TO_STD * np.median(dev)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dev > 0, dev / scale, 0.0) if scale > 0 else \
            np.where(dev > 0, np.inf, 0.0)


@dataclass
class TargetIssues:
    ranked: np.ndarray  # active rows, most likely corrupted first
    noise_rate: float  # share of active rows counted as corrupted


def find_target_issues(scores, predictions, y, active, z_threshold=Z_THRESHOLD):
    """Count the outlying held-out residuals and rank the rows (largest z first).

    Parameters
    ----------
    scores : (n,) influence scores (NaN: unscored, ranked last).
    predictions : (n,) held-out predictions.
    y : (n,) given targets.
    active : (n,) bool, rows of positive weight.
    z_threshold : float

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.cleaning._target_noise import find_target_issues
    >>> y = np.array([0.1, -0.2, 0.3, 9.0, 0.0, -0.1])
    >>> issues = find_target_issues(-np.abs(y), np.zeros(6), y, np.ones(6, bool))
    >>> round(issues.noise_rate, 3), int(issues.ranked[0])
    (0.167, 3)
    """
    idx = np.flatnonzero(active)
    z = robust_z(np.asarray(y, dtype=np.float64)[idx] - np.asarray(predictions)[idx])
    rate = float(np.mean(z > z_threshold)) if len(idx) else 0.0
    s = np.asarray(scores, dtype=np.float64)[idx]
    order = np.lexsort((np.where(np.isfinite(s), s, np.inf), -z))  # largest z, then lowest score
    return TargetIssues(ranked=idx[order], noise_rate=rate)
