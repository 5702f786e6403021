"""Fairness and robustness metrics and scorers, for judging and tuning the estimators.

``robust_accuracy`` is the accuracy under the budgeted attack an attacker
computes against the very model being scored (exact for linear models, PGD
for networks); ``robust_accuracy_scorer`` / ``robustness_scoring`` plug it into
``GridSearchCV``.

``demographic_parity_difference`` and ``equalized_odds_difference`` are
fairlearn's when fairlearn is installed and an equivalent otherwise (the gap
between the largest and the smallest group rate, any number of groups);
``fairness_gap`` computes either in numpy; ``fairness_report`` is the
per-group table of fairlearn's ``MetricFrame``. The scorers plug into
``GridSearchCV``: they take the sensitive attribute either from a column of
X (``sensitive_feature=``; works
with or without metadata routing) or, under metadata routing, from
``fit(..., sensitive_features=s)`` routed to the scorer.
"""
from ._fairness import (demographic_parity_difference, equalized_odds_difference, fairness_gap,
                        fairness_report, selection_rate_by_group)
from ._fairness_scorers import DemographicParityScorer, demographic_parity_scorer, fairness_scoring
from ._robustness import (RobustAccuracyScorer, robust_accuracy, robust_accuracy_scorer,
                          robustness_scoring)
from ..attribution._lds import linear_datamodeling_score

__all__ = [
    "selection_rate_by_group",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "fairness_gap",
    "fairness_report",
    "DemographicParityScorer",
    "demographic_parity_scorer",
    "fairness_scoring",
    "robust_accuracy",
    "RobustAccuracyScorer",
    "robust_accuracy_scorer",
    "robustness_scoring",
    "linear_datamodeling_score",
]
