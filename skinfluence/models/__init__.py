"""Adapters: a fitted estimator -> a differentiable view of it.

``make_adapter`` is the one dispatch point; adding a model family means adding
one adapter module and one branch here. A fitted ``Pipeline`` is its last
step's adapter behind its fitted transformers (``_pipeline.py``). Methods and objectives talk to an
adapter only through this protocol (``LinearModelAdapter`` is the reference):

- ``family`` (str), ``classes_``, ``n_params``, ``theta`` (flat parameter vector;
  numpy for linear models, a torch tensor for networks);
- ``training_data(X, y, sample_weight)`` -> object with ``.n``, ``.X``, ``.y``
  (class indices), ``.weight`` (c_i) and ``.relative_weight``;
- ``check_X(X, name)``, ``encode(y, name=, n=)``;
- ``objective_value(terms, theta=None)``, ``objective_gradient(terms, theta=None)``
  for :class:`ObjectiveTerms`; ``attack(X, y_idx, objective)``;
- ``hessian(train, indices=None, sample_weights=None, batch_size=)`` (mean form,
  P x P, numpy float64), ``hvp(train, vec, batch_size=, indices=None,
  sample_weights=None)`` (returns the type of ``vec``), ``null_directions()``;
- ``hessian_norms(train)`` and ``embedding(X)`` for the samplers;
- ``perturbed_parameters(perturbation, level, rng)`` for IPEnsemble, and
  optionally ``checkpoint_members(checkpoints)`` (networks: snapshots);
- ``score_pass(train, thetas, directions, batch_size=, progress=)`` -> (n, M)
  array or tensor: member m's scores ``<v_m, w_i grad l_i(theta_m)>``, one
  streamed pass; directions may be numpy or tensors.
"""
import numpy as np

from .linear import SUPPORTED, LinearModelAdapter, _unsupported_message

__all__ = ["make_adapter", "LinearModelAdapter"]


def _is_torch_model(estimator):
    mod = type(estimator).__module__
    return mod.startswith("skorch") or any(
        c.__module__.startswith("torch.nn") for c in type(estimator).__mro__
    ) or isinstance(estimator, tuple)


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


def _make_adapter(estimator, *, device="auto", **options):
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, SGDClassifier
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        from ._pipeline import pipeline_adapter

        return pipeline_adapter(estimator, make_adapter, device=device, **options)
    if isinstance(estimator, LogisticRegressionCV):
        raise TypeError(
            "LogisticRegressionCV is not supported (its coef_ comes from a search over C, "
            f"not one training objective); supported: {', '.join(SUPPORTED)}, torch / skorch nets. "
            "Refit LogisticRegression(C=model.C_[0]) with the chosen C and score that."
        )
    if isinstance(estimator, (LogisticRegression, SGDClassifier)):
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
        return LinearModelAdapter(estimator)
    if _is_torch_model(estimator):
        from .torch import make_torch_adapter

        return make_torch_adapter(estimator, device=device, **options)
    raise TypeError(_unsupported_message(estimator))
