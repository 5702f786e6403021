"""skinfluence: which training samples help or hurt a model, and fixing the data.

Scores follow one sign everywhere: higher = more beneficial to the objective,
negative = detrimental.
"""
from .methods import IP, IPEnsemble, ExactHessian, SampledHessian, NewtonLOO, KFAC
from .objectives import Utility, DemographicParity, EqualizedOdds, AdversarialRobustness
from .objectives import MeanPredictionGap, BoundedGroupLoss
from .influence import influence_scores, InfluenceResult
from .attribution import influence_matrix, TopInfluences
from .estimators import InfluenceTrimmer, InfluenceReweighter, InfluenceRelabeler, influence_weights
from .cleaning import find_label_issues

__version__ = "0.1.0.dev0"


def __getattr__(name):
    # unlearning imports torch; loading it on first use keeps `import skinfluence`
    # (and the linear path) free of torch, which is an optional extra
    if name == "unlearn":
        from .unlearning import unlearn

        return unlearn
    raise AttributeError(f"module 'skinfluence' has no attribute {name!r}")


__all__ = [
    "influence_scores",
    "InfluenceResult",
    "influence_matrix",
    "TopInfluences",
    "InfluenceTrimmer",
    "InfluenceReweighter",
    "InfluenceRelabeler",
    "influence_weights",
    "find_label_issues",
    "IP",
    "IPEnsemble",
    "ExactHessian",
    "SampledHessian",
    "NewtonLOO",
    "KFAC",
    "unlearn",
    "Utility",
    "DemographicParity",
    "EqualizedOdds",
    "AdversarialRobustness",
    "MeanPredictionGap",
    "BoundedGroupLoss",
]
