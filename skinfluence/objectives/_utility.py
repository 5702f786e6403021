"""The utility objective: the mean validation loss."""
import numpy as np

from ..models.base import ObjectiveTerms
from ._base import Objective


class Utility(Objective):
    """Mean log-loss (cross-entropy) on the validation set.

    ``J = mean_{(x, y) in V} l(x, y; theta)``.

    Examples
    --------
    >>> from skinfluence import Utility
    >>> Utility()
    Utility()
    """

    shorthand = "utility"

    def terms(self, adapter, X_val, y_val, sensitive_features=None):
        X = adapter.check_X(X_val, "X_val")
        y = adapter.encode(y_val, name="y_val", n=X.shape[0])
        return ObjectiveTerms(X, y, np.full(X.shape[0], 1.0 / X.shape[0]), "loss")
