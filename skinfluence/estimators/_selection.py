"""Which rows an estimator acts on: a fraction, a threshold, or ``fraction="auto"``."""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from ..utils._compat import Interval, StrOptions
from ..utils._warnings import outside_stacklevel
from ..cleaning._label_noise import Decision, decide, find_issues
from ..cleaning._target_noise import find_target_issues
from ..objectives import Utility


_SELECTION_CONSTRAINTS = {
    "fraction": [Interval(numbers.Real, 0, 1, closed="left"), StrOptions({"auto"})],
    "threshold": [Interval(numbers.Real, None, None, closed="neither"), None],  # no NaN
}


class _SelectionMixin:
    """Which samples a trimmer or relabeler acts on: ``fraction`` / ``threshold``."""

    #: rows ranked by held-out label probability serve too (a classifier with no adapter)
    _acts_on_label_quality = True

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
            mask = _lowest(scores, self.fraction, self.threshold, int(active.sum()))
            if not getattr(self, "_regression", False):
                _warn_if_scores_rank_classes(type(self).__name__, scores, y, mask)
            return mask
        if getattr(self, "_regression", False):  # residual outliers count corrupted targets
            return _select_targets(self, scores, y, proba, active)
        y_idx = np.searchsorted(np.unique(y[active]), y)
        issues = find_issues(scores, proba, y_idx, active, fitted)
        decision = decide(issues, len(y), getattr(self, "_heldout_check", None))
        self.confident_joint_ = issues.joint
        self.memorised_share_ = issues.memorised_share
        self.noise_rate_ = float(issues.counts.sum() / active.sum())
        self.refit_check_ = _check_report(int(issues.counts.sum()), decision)
        return decision.mask


def _check_report(candidates, decision):
    """``refit_check_``: the candidates, the nested check's evidence and what was acted on."""
    result = decision.check
    report = {"candidates": candidates, "acted": decision.acted,
              "acted_on": int(decision.mask.sum())}
    if result is None:  # explicit validation data: every candidate acted on
        return {**report, "amount": 1.0 if decision.acted else 0.0, "better": None,
                "worse": None, "discordant": None, "p_value": None, "per_amount": None}
    return {**report, "amount": result.amount, "better": result.better, "worse": result.worse,
            "discordant": result.discordant, "p_value": result.p_value,
            "per_amount": result.per_amount}


#: warn when this share of the rows acted on (and twice the class's share) is one class
CLASS_CONCENTRATION = 0.9


def _warn_if_scores_rank_classes(name, scores, y, mask):
    """Warn when the lowest scores are mostly one class: a ranking across classes.

    On imbalanced data the validation-loss influence of a row can follow its
    label (a minority row harmful because the loss is dominated by the
    majority): "the lowest fraction" then means "that many rows of one class",
    which says little about which labels are wrong. Fires when at least 10
    rows are acted on and one class holds 90% of them and at least twice its
    share of the rows. It cannot tell that from noise that really sits in one
    class, so it warns and leaves the choice to the caller.
    """
    chosen = y[mask]
    if len(chosen) < 10:
        return
    classes, counts = np.unique(chosen, return_counts=True)
    top = int(np.argmax(counts))
    c, share = classes[top], counts[top] / len(chosen)
    base = float(np.mean(y == c))
    if share >= CLASS_CONCENTRATION and share >= 2 * base:
        label = c.item() if hasattr(c, "item") else c
        warnings.warn(
            f"{name}: {share:.0%} of the {len(chosen)} rows acted on are of class {label!r}, "
            f"which holds {base:.0%} of the rows: the lowest scores across classes may rank "
            "the classes rather than the labels (on imbalanced data a minority row's "
            "influence can follow its label). If wrong labels are not concentrated in that "
            "class, use fraction='auto' (candidates counted and ranked within each class) "
            "or give trusted validation data (X_val=, y_val=).", UserWarning,
            stacklevel=outside_stacklevel())


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
    """``fraction="auto"`` around a regressor: count outlying held-out residuals, then act
    on them if the nested refit check says it pays (all of them or none)."""
    issues = find_target_issues(scores, predictions[:, 0], y, active)
    estimator.noise_rate_ = issues.noise_rate
    mask = np.zeros(len(y), dtype=bool)
    mask[issues.ranked[:int(round(issues.noise_rate * active.sum()))]] = True
    check = getattr(estimator, "_heldout_check", None)
    result = check() if check is not None and mask.any() else None
    if result is not None and result.amount == 0:
        mask[:] = False
    estimator.refit_check_ = _check_report(int(round(issues.noise_rate * active.sum())),
                                           Decision(mask=mask, acted=bool(mask.any()),
                                                    check=result))
    return mask


def _active(sample_weight, n):
    return np.ones(n, dtype=bool) if sample_weight is None else sample_weight > 0
