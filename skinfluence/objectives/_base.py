"""The objective protocol: validation data in, :class:`ObjectiveTerms` out."""
from ..utils._params import ParamsObject


class Objective(ParamsObject):
    """Base class: ``terms(adapter, X_val, y_val, sensitive_features)``.

    ``label_loss``: True when J is a loss on the validation labels, so that
    noisy validation labels would reward fitting noise; cross-fitting then
    scores against the held-out rows the fold's model agrees with
    (``trusted="agree"``). Fairness objectives set it False.
    """

    label_loss = True
    needs_sensitive = False

    def terms(self, adapter, X_val, y_val, sensitive_features=None):  # pragma: no cover
        raise NotImplementedError
