"""Base class for the small parameter objects (methods, objectives, samplers).

They are sklearn ``BaseEstimator`` subclasses only for ``get_params`` /
``set_params`` / ``clone`` / repr, so that ``GridSearchCV`` can tune nested
parameters such as ``method__n_members``. They hold no fitted state.
"""
from sklearn.base import BaseEstimator


class ParamsObject(BaseEstimator):
    """Parameters-only object with sklearn's parameter protocol."""

    #: shorthand string accepted in place of an instance
    shorthand = None


def resolve(spec, registry, kind):
    """Turn a string shorthand or an instance into an instance of ``registry``'s types.

    Parameters
    ----------
    spec : str or ParamsObject
    registry : dict mapping shorthand -> class
    kind : str, the argument name used in errors ("method", "objective", ...)
    """
    if isinstance(spec, str):
        try:
            return registry[spec]()
        except KeyError:
            raise ValueError(
                f"Unknown {kind} {spec!r}; expected one of {sorted(registry)} "
                f"or an instance of {', '.join(c.__name__ for c in registry.values())}."
            ) from None
    if isinstance(spec, tuple(registry.values())):
        return spec
    raise TypeError(
        f"{kind} must be a string in {sorted(registry)} or an instance of "
        f"{', '.join(c.__name__ for c in registry.values())}, got {type(spec).__name__}."
    )
