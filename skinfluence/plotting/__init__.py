"""Plots of influence scores and of the trade-offs they buy (matplotlib, optional).

Every function draws on ``ax`` (a new figure when None) and returns the Axes;
the Display classes (scikit-learn's convention: ``from_estimator`` /
``from_scores`` / ``from_fronts``, ``plot``, ``ax_``, ``figure_``) wrap them.
matplotlib is imported when a function is called, so ``skinfluence`` itself
does not need it: ``pip install "skinfluence[plot]"``.
"""
from ._plots import plot_accuracy_gap_front, plot_robustness_front, plot_score_distribution
from ._displays import AccuracyGapFrontDisplay, RobustnessFrontDisplay, ScoreDistributionDisplay

__all__ = ["plot_score_distribution", "plot_accuracy_gap_front", "plot_robustness_front",
           "ScoreDistributionDisplay", "AccuracyGapFrontDisplay", "RobustnessFrontDisplay"]
