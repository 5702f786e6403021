"""Every private scikit-learn import skinfluence needs, in one place.

scikit-learn keeps these names private and moves them between releases; when
one moves, this is the only file to change. Public names are imported where
they are used, not here.
"""
import scipy.sparse as sp

from sklearn.base import _fit_context  # noqa: F401  (parameter validation on fit)
from sklearn.utils._param_validation import (  # noqa: F401
    HasMethods,
    Interval,
    RealNotInt,
    StrOptions,
)
from sklearn.utils.metadata_routing import (  # noqa: F401
    _raise_for_params,
    _routing_enabled,
)
from sklearn.utils.validation import (  # noqa: F401
    _check_sample_weight,
    _estimator_has,
)

try:  # private since 1.4; the fallback is the same logic
    from sklearn.utils.validation import _check_method_params
except ImportError:  # pragma: no cover
    from sklearn.utils import _safe_indexing

    def _check_method_params(X, params, indices=None):
        n = X.shape[0]
        out = {}
        for key, value in params.items():
            if (hasattr(value, "__len__") or sp.issparse(value)) and not isinstance(
                value, (str, dict)
            ) and _len(value) == n:
                out[key] = _safe_indexing(value, indices)
            else:
                out[key] = value
        return out

    def _len(value):
        return value.shape[0] if hasattr(value, "shape") else len(value)


def routable_methods():
    """Names that metadata routing accepts as a caller / callee right now.

    imbalanced-learn registers ``fit_resample`` with scikit-learn's routing
    when it is imported; the estimators route ``fit_resample`` like ``fit``
    only when that has happened.
    """
    try:
        from sklearn.utils._metadata_requests import METHODS
    except ImportError:  # pragma: no cover
        return ()
    return tuple(METHODS)


__all__ = [
    "_fit_context",
    "HasMethods",
    "Interval",
    "RealNotInt",
    "StrOptions",
    "_raise_for_params",
    "_routing_enabled",
    "_check_sample_weight",
    "_estimator_has",
    "_check_method_params",
    "routable_methods",
]
