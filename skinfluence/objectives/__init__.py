"""Objectives J(V; theta): what the influence is measured against.

Every objective is a loss (lower is better). Each one turns the validation data
into :class:`ObjectiveTerms` — ``J = sum_j coef_j * phi(f_j)`` with phi either
the log-loss or the predicted probability of one class — and the model's
adapter differentiates that. So an objective never knows a model family.
"""
from ._base import Objective
from ._utility import Utility
from ._fairness import DemographicParity, EqualizedOdds
from ._robustness import AdversarialRobustness
from ._group_loss import BoundedGroupLoss, MeanPredictionGap

OBJECTIVES = {c.shorthand: c for c in (Utility, DemographicParity, EqualizedOdds,
                                       AdversarialRobustness, MeanPredictionGap,
                                       BoundedGroupLoss)}

__all__ = ["Objective", "Utility", "DemographicParity", "EqualizedOdds", "AdversarialRobustness",
           "MeanPredictionGap", "BoundedGroupLoss", "OBJECTIVES"]
