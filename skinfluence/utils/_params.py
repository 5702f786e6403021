"""Base class for the small parameter objects (methods, objectives, samplers).

They are sklearn ``BaseEstimator`` subclasses only for ``get_params`` /
``set_params`` / ``clone`` / repr, so that ``GridSearchCV`` can tune nested
parameters such as ``method__n_members``. They hold no fitted state.

Each class declares ``_parameter_constraints`` in scikit-learn's vocabulary
(``Interval``, ``StrOptions``...); :func:`resolve`, where every entry point
turns a string or an instance into the object it uses, validates them once.
NaN fails every ``Interval``, and an unbounded side excludes infinity, so a
NaN or infinite damping, noise level or tolerance is refused there with a
message naming the parameter and what was expected.
"""
from sklearn.base import BaseEstimator


class ParamsObject(BaseEstimator):
    """Parameters-only object with sklearn's parameter protocol.

    Subclasses list their constraints in ``_parameter_constraints`` (a
    parameter left out is not checked); :meth:`validate` checks them.
    """

    #: shorthand string accepted in place of an instance
    shorthand = None

    _parameter_constraints: dict = {}

    def validate(self):
        """Check the parameters against ``_parameter_constraints``; return self.

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
            A ``ValueError`` (and ``TypeError``) naming the parameter, the
            class and the accepted values.

        Examples
        --------
        >>> from skinfluence import ExactHessian
        >>> ExactHessian(damping=float("nan")).validate()
        Traceback (most recent call last):
        ...
        sklearn.utils._param_validation.InvalidParameterError: The 'damping' parameter of \
ExactHessian must be a float in the range [0.0, inf) or a str among {'auto'}. Got nan instead.
        """
        self._validate_params()
        return self


def resolve(spec, registry, kind):
    """Turn a string shorthand or an instance into a validated instance of ``registry``'s types.

    Parameters
    ----------
    spec : str or ParamsObject
    registry : dict mapping shorthand -> class
    kind : str, the argument name used in errors ("method", "objective", ...)
    """
    if isinstance(spec, str):
        try:
            return registry[spec]().validate()
        except KeyError:
            raise ValueError(
                f"Unknown {kind} {spec!r}; expected one of {sorted(registry)} "
                f"or an instance of {', '.join(c.__name__ for c in registry.values())}."
            ) from None
    if isinstance(spec, tuple(registry.values())):
        return spec.validate()
    raise TypeError(
        f"{kind} must be a string in {sorted(registry)} or an instance of "
        f"{', '.join(c.__name__ for c in registry.values())}, got {type(spec).__name__}."
    )
