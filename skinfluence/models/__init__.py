"""Adapters: a fitted estimator -> a differentiable view of it.

``make_adapter`` is the one dispatch point. It asks a registry of
``(predicate, factory)`` pairs, the most recently registered first; adding a
model family means one new module holding a
:class:`~skinfluence.models.base.ModelAdapter` subclass (the protocol, its
shared data types and its capabilities are in :mod:`skinfluence.models.base`)
and one :func:`register_adapter` call. Built in: scikit-learn's log-loss linear
classifiers (:mod:`~skinfluence.models.linear`), torch / skorch networks
(:mod:`~skinfluence.models.torch`) and gradient-boosted trees
(:mod:`~skinfluence.models.trees`). A fitted ``Pipeline`` is its last step's
adapter behind its fitted transformers (``_pipeline.py``), for any registered
family.
"""
import inspect

import numpy as np

from ._rows import is_net as _is_torch_model
from .base import ModelAdapter
from .linear import SUPPORTED, LinearModelAdapter, _unsupported_message
from .sklearn_mlp import is_sklearn_mlp, make_mlp_adapter
from .trees import is_boosted_trees, make_tree_adapter

__all__ = ["make_adapter", "register_adapter", "unregister_adapter", "check_supported",
           "LinearModelAdapter", "ModelAdapter"]


def make_adapter(estimator, *, device="auto", **options):
    """Return the adapter for ``estimator`` (never modifies it).

    A fitted ``Pipeline`` whose last step is supported is scored in the space
    that last step sees (:class:`~skinfluence.models._pipeline.PipelineAdapter`).
    """
    adapter = _make_adapter(estimator, device=device, **options)
    _check_finite_parameters(adapter, estimator)
    return adapter


def _check_finite_parameters(adapter, estimator):
    """NaN / inf parameters would surface much later as a 'singular Hessian': refuse them."""
    theta = adapter.theta
    finite = bool(theta.isfinite().all()) if hasattr(theta, "isfinite") else \
        bool(np.all(np.isfinite(theta)))
    if not finite:
        raise ValueError(
            f"The fitted {type(estimator).__name__} has NaN or infinite parameters "
            "(coef_ / intercept_, or the network's weights): it cannot be scored; refit it."
        )


def _is_linear_model(estimator):
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    from .linear_regressor import is_linear_regressor

    return isinstance(estimator, (LogisticRegression, SGDClassifier)) or \
        is_linear_regressor(estimator)


def _linear_adapter(estimator, *, device="auto", **options):
    from sklearn.linear_model import LogisticRegressionCV

    if isinstance(estimator, LogisticRegressionCV):
        raise TypeError(
            "LogisticRegressionCV is not supported (its coef_ comes from a search over C, "
            f"not one training objective); supported: {', '.join(SUPPORTED)}, torch / skorch nets. "
            "Refit LogisticRegression(C=model.C_[0]) with the chosen C and score that."
        )
    if options:
        raise TypeError(
            f"Adapter options {sorted(options)} apply to torch models only; a "
            f"{type(estimator).__name__} takes none."
        )
    if device not in ("auto", "cpu"):
        raise ValueError(
            f"device={device!r}: linear models are scored on the CPU in float64 "
            "(one matrix product per chunk); use device='auto' or 'cpu'."
        )
    from .linear_regressor import LinearRegressorAdapter, is_linear_regressor

    if is_linear_regressor(estimator):
        return LinearRegressorAdapter(estimator)
    return LinearModelAdapter(estimator)


def _torch_adapter(estimator, *, device="auto", **options):
    from .torch import make_torch_adapter

    return make_torch_adapter(estimator, device=device, **options)


#: (predicate, factory) pairs, the most recently registered first
_REGISTRY = [(_is_linear_model, _linear_adapter), (_is_torch_model, _torch_adapter),
             (is_sklearn_mlp, make_mlp_adapter), (is_boosted_trees, make_tree_adapter)]


def register_adapter(predicate, factory):
    """Score the estimators ``predicate`` accepts with the adapters ``factory`` builds.

    Parameters
    ----------
    predicate : callable
        ``predicate(estimator) -> bool``: whether this family applies.
    factory : callable
        ``factory(estimator, *, device, **options)`` -> a
        :class:`~skinfluence.models.base.ModelAdapter` (options are
        ``influence_scores``' extra keyword arguments). Both signatures are
        checked here (a ``TypeError`` when one cannot take those arguments),
        and what the factory returns when it is used.

    Returns
    -------
    factory : the same callable (so this can decorate it).

    Notes
    -----
    Registered families are asked before the built-in ones, the latest first.
    Undo with :func:`unregister_adapter`.

    Examples
    --------
    >>> from skinfluence.models import register_adapter, unregister_adapter
    >>> def never(estimator):
    ...     return False
    >>> def factory(estimator, *, device="auto"):
    ...     raise AssertionError("not reached")
    >>> register_adapter(never, factory) is factory
    True
    >>> unregister_adapter(factory)
    """
    for name, fn in (("predicate", predicate), ("factory", factory)):
        if not callable(fn):
            raise TypeError(f"register_adapter needs a callable {name}, got "
                            f"{type(fn).__name__}.")
    _check_signature(predicate, "predicate", (object(),), {})
    _check_signature(factory, "factory", (object(),), {"device": "auto"})
    _REGISTRY.insert(0, (predicate, factory))
    return factory


def _check_signature(fn, name, args, kwargs):
    """``fn`` must accept ``fn(*args, **kwargs)`` (when its signature can be read)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without one (int, str...)
        if name == "predicate":  # a builtin predicate may be fine (it is called as is)
            return
        raise TypeError(
            f"register_adapter: the factory {fn!r} has no readable signature, so it cannot "
            "be a factory(estimator, *, device, **options) returning a ModelAdapter; give "
            "a function or a ModelAdapter subclass."
        ) from None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        call = "predicate(estimator)" if name == "predicate" else \
            "factory(estimator, *, device, **options)"
        raise TypeError(
            f"register_adapter: the {name} {getattr(fn, '__name__', fn)!r} must accept "
            f"{call}; its signature is {signature} ({exc})."
        ) from None


def unregister_adapter(factory):
    """Remove every registration of ``factory`` (a no-op if there is none)."""
    _REGISTRY[:] = [entry for entry in _REGISTRY if entry[1] is not factory]


def check_supported(estimator):
    """Raise the unsupported-model ``TypeError`` now, before anything is fitted.

    Asks the same registry as :func:`make_adapter`, by type only, so it works on
    an unfitted estimator (a ``Pipeline`` is judged by its last step).
    """
    if not is_supported(estimator):
        raise TypeError(_unsupported_message(_last_step(estimator)))


def is_supported(estimator):
    """Whether :func:`make_adapter` has a family for ``estimator`` (judged by type, unfitted)."""
    estimator = _last_step(estimator)
    if estimator is None or isinstance(estimator, str):  # "passthrough": make_adapter says so
        return True
    return any(predicate(estimator) for predicate, _ in list(_REGISTRY))


def scores_by_probabilities(estimator):
    """True for a classifier no adapter scores but whose ``predict_proba`` the label
    cleaning can read: it is cross-fitted for held-out probabilities alone."""
    from sklearn.base import is_classifier

    return not is_supported(estimator) and is_classifier(estimator) and \
        hasattr(estimator, "predict_proba")


def _last_step(estimator):
    from sklearn.pipeline import Pipeline

    while isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return estimator


def _make_adapter(estimator, *, device="auto", **options):
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        from ._pipeline import pipeline_adapter

        return pipeline_adapter(estimator, make_adapter, device=device, **options)
    for predicate, factory in list(_REGISTRY):
        if predicate(estimator):
            return _checked_adapter(factory(estimator, device=device, **options), factory)
    raise TypeError(_unsupported_message(estimator))


def _checked_adapter(adapter, factory):
    """What a registered factory returned must be a ModelAdapter (not a late AttributeError)."""
    if not isinstance(adapter, ModelAdapter):
        raise TypeError(
            f"The adapter factory {getattr(factory, '__name__', factory)!r} returned a "
            f"{type(adapter).__name__}; a factory given to register_adapter must return a "
            "skinfluence.models.ModelAdapter."
        )
    return adapter
