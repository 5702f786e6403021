"""Which rows an estimator acts on: a fraction, a threshold, or ``fraction="auto"``."""
from __future__ import annotations

import numbers

import numpy as np

from ..utils._compat import Interval, StrOptions
from ..cleaning._label_noise import decide, find_issues
from ..cleaning._target_noise import find_target_issues
from ..objectives import Utility


_SELECTION_CONSTRAINTS = {
    "fraction": [Interval(numbers.Real, 0, 1, closed="left"), StrOptions({"auto"})],
    "threshold": [Interval(numbers.Real, None, None, closed="neither"), None],  # no NaN
}


class _SelectionMixin:
    """Which samples a trimmer or relabeler acts on: ``fraction`` / ``threshold``."""

    def _needs_proba(self, n_classes):
        return self.fraction == "auto" and self.threshold is None

    def _check_action(self, objective):
        if self._needs_proba(2) and not isinstance(objective, Utility):
            raise ValueError(
                f"fraction='auto' estimates how many labels are wrong, which needs "
                f"objective='utility'; got objective={objective!r}. Give fraction= a number "
                "in [0, 1) or set threshold=."
            )

    def _select(self, scores, y, proba, active, fitted):
        """Mask of the samples to act on; sets the ``fraction="auto"`` attributes."""
        self.noise_rate_ = self.memorised_share_ = self.confident_joint_ = None
        self.refit_check_ = None
        if not self._needs_proba(2):
            return _lowest(scores, self.fraction, self.threshold, int(active.sum()))
        if getattr(self, "_regression", False):  # residual outliers count corrupted targets
            return _select_targets(self, scores, y, proba, active)
        y_idx = np.searchsorted(np.unique(y[active]), y)
        issues = find_issues(scores, proba, y_idx, active, fitted)
        decision = decide(issues, len(y), getattr(self, "_heldout_check", None))
        self.confident_joint_ = issues.joint
        self.memorised_share_ = issues.memorised_share
        self.noise_rate_ = float(issues.counts.sum() / active.sum())
        better, worse, discordant = decision.check or (None, None, None)
        self.refit_check_ = {"candidates": int(issues.counts.sum()), "better": better,
                             "worse": worse, "discordant": discordant, "acted": decision.acted}
        return decision.mask


def _lowest(scores, fraction, threshold, n_rows):
    """Mask of the samples to act on: the lowest ``fraction`` of rows, or all below threshold.

    Unscored samples (NaN) are never selected.
    """
    finite = np.isfinite(scores)
    if threshold is not None:
        return finite & (scores < threshold)
    n_pick = min(int(np.floor(fraction * n_rows + 1e-9)), int(finite.sum()))
    order = np.argsort(np.where(finite, scores, np.inf), kind="stable")
    mask = np.zeros(len(scores), dtype=bool)
    mask[order[:n_pick]] = True
    return mask


def _select_targets(estimator, scores, y, predictions, active):
    """``fraction="auto"`` around a regressor: count outlying held-out residuals."""
    issues = find_target_issues(scores, predictions[:, 0], y, active)
    estimator.noise_rate_ = issues.noise_rate
    mask = np.zeros(len(y), dtype=bool)
    mask[issues.ranked[:int(round(issues.noise_rate * active.sum()))]] = True
    return mask


def _active(sample_weight, n):
    return np.ones(n, dtype=bool) if sample_weight is None else sample_weight > 0
