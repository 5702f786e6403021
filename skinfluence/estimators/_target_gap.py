"""``target_gap``: the action's strength searched in rounds until the fairness gap is met."""
from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.utils.validation import column_or_1d

from ..utils._compat import Interval
from ._fair_target import reach_target_gap


_TARGET_CONSTRAINTS = {
    "target_gap": [Interval(numbers.Real, 0, 1, closed="neither"), None],
    "gap_tolerance": [Interval(numbers.Real, 0, 1, closed="neither")],
    "max_rounds": [Interval(numbers.Integral, 1, None, closed="left")],
    "utility_slack": [Interval(numbers.Real, 0, 1, closed="both")],
}


class _TargetGapMixin:
    """``target_gap``: search the action's strength in rounds until the fairness gap is met.

    The search is :func:`skinfluence.estimators._fair_target.reach_target_gap`; subclasses
    name their action (``_target_action``) and turn the path found into their
    fitted attributes (``_apply_target``).
    """

    def _check_action(self, objective):
        if self.target_gap is None:
            return super()._check_action(objective)
        if not hasattr(objective, "gap_kind"):
            raise ValueError(
                f"target_gap is a fairness gap; it needs objective='demographic_parity' or "
                f"'equalized_odds' (or an instance), got objective={objective!r}."
            )

    def _reach_target(self, plan, method, objective, seed, scores):
        if scores is not None:
            scores = column_or_1d(np.asarray(scores, dtype=np.float64), warn=True)
            if scores.shape[0] != plan.y.shape[0]:
                raise ValueError(f"scores has {scores.shape[0]} values, X has "
                                 f"{plan.y.shape[0]} rows.")
        if getattr(self, "_regression", False):
            raise ValueError(f"target_gap searches a classifier's hard-prediction fairness gap; "
                             f"{type(self.estimator).__name__} is a regressor. Use "
                             "objective=MeanPredictionGap(...) with fraction= instead.")
        if self._target_action != "reweight" and len(np.unique(plan.y)) != 2:
            raise ValueError(f"target_gap with {type(self).__name__} needs a binary target; "
                             f"got {len(np.unique(plan.y))} classes.")
        path = reach_target_gap(
            self.estimator, plan, action=self._target_action, objective=objective,
            method=method, target=self.target_gap, tolerance=self.gap_tolerance,
            max_rounds=self.max_rounds, cv=self.cv, seed=seed, scores=scores,
            clip=getattr(self, "clip", 3.0), max_weight=getattr(self, "max_weight", 2.0),
            n_jobs=self.n_jobs, batch_size=self.batch_size, adapter_options=self.adapter_options,
            utility_slack=self.utility_slack, log=self._log if self.verbose else None,
        )
        self.gap_path_ = path.history
        self.validation_gap_ = path.gap
        self.target_reached_ = path.reached
        if not path.reached and path.gap > self.target_gap:  # fairer than asked: no warning
            warnings.warn(
                f"{type(self).__name__}: target_gap={self.target_gap} not reached within "
                f"max_rounds={self.max_rounds}; kept the best step (validation gap "
                f"{path.gap:.4f}). See gap_path_.", RuntimeWarning)
        self._apply_target(path, plan.y, plan.sample_weight)
        return path.scores

    def _apply_target(self, path, y, sample_weight):
        """Trim / relabel the rows the search acted on (``_act`` with a fixed selection)."""
        self._target_acted = path.acted
        try:
            self._act(path.scores, y, None, sample_weight, None)
        finally:
            del self._target_acted

    def _select(self, scores, y, proba, active, fitted):
        acted = getattr(self, "_target_acted", None)
        if acted is None:
            return super()._select(scores, y, proba, active, fitted)
        self.noise_rate_ = self.memorised_share_ = self.confident_joint_ = None
        self.refit_check_ = None
        return acted.copy()
