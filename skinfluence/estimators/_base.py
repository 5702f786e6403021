"""The machinery shared by the three influence meta-estimators.

``BaseInfluenceEstimator`` validates, routes metadata, scores the training rows
(:mod:`skinfluence.cleaning._crossfit`), asks the subclass to act on the scores and
refits a clone of the user's estimator. Subclasses implement ``_act`` (what to
do with the scores) and ``_refit_data`` (the rows, labels and fit parameters of
the final fit); everything else — delegation, routing, tags — lives here.
"""
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone, is_regressor
from sklearn.utils import RegressorTags, check_random_state, get_tags
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping, process_routing
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import (check_consistent_length, check_is_fitted, column_or_1d,
                                      validate_data)

from ..utils._params import resolve
from ..utils._compat import (
    HasMethods,
    Interval,
    StrOptions,
    _check_method_params,
    _check_sample_weight,
    _estimator_has,
    _fit_context,
    _raise_for_params,
    _routing_enabled,
    routable_methods,
)
from ..models import check_supported, scores_by_probabilities
from ..models._dask import is_dask
from ..cleaning._crossfit import ScoringPlan, score_training_rows
from ..cleaning._crossfit_regression import fit_clone, score_regression_rows
from ..cleaning._refit_check import make_check
from ..models._rows import check_net_rows, n_rows, splittable, takes_net_rows
from ..utils._validation import check_groups, check_split_groups, column_values
from ..methods import METHODS, Method
from ..objectives import OBJECTIVES, Objective, Utility

_PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "score")


class BaseInfluenceEstimator(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Score, act, refit. Not public: use the three subclasses."""

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"])],
        "method": [StrOptions(set(METHODS)), Method],
        "objective": [StrOptions(set(OBJECTIVES)), Objective],
        "cv": ["cv_object"],
        "trusted": [StrOptions({"agree"}), None],
        "n_jobs": [numbers.Integral, None],
        "sensitive_feature": [str, numbers.Integral, None],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "adapter_options": [dict, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def _needs_proba(self, n_classes):
        """Subclasses: True when ``_act`` needs class probabilities of every row."""
        return False

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=False)  # the estimator is validated by its fit
    def fit(self, X, y, *, sample_weight=None, sensitive_features=None, X_val=None, y_val=None,
            sensitive_features_val=None, scores=None, groups=None, **fit_params):
        """Score the training samples, act on the scores, and refit the estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (numpy, scipy.sparse or pandas; never modified). For
            a torch / skorch network, also an n-d array (images, signals) or a
            skorch dict of arrays: whatever the network takes.
        y : array-like of shape (n_samples,)
            Training labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights for the estimator's fit; the influence is computed for the
            weighted training objective. Rows of zero weight are not scored
            (their score is NaN) and never acted on.
        sensitive_features : array-like of shape (n_samples,), default=None
            Sensitive attribute of every training row (two or more groups), for
            ``objective="demographic_parity"`` / ``"equalized_odds"`` (fairlearn's name; routed by
            ``set_fit_request(sensitive_features=True)`` under metadata
            routing). Alternatively set ``sensitive_feature=`` to a column of X.
        X_val, y_val : validation data, default=None
            When given, one clone is fitted on all of X and scored against
            ``(X_val, y_val)``; ``cv`` is ignored.
        sensitive_features_val : array-like of shape (n_val,), default=None
            Sensitive attribute of the rows of ``X_val``.
        scores : array-like of shape (n_samples,), default=None
            Precomputed scores (e.g. ``scores_`` of an earlier fit on the same
            data): no scoring is done, only the action and the refit.
        groups : array-like of shape (n_samples,), default=None
            Group labels passed to ``cv``'s ``split`` (``GroupKFold``,
            ``LeaveOneGroupOut``...), so that a group is never on both sides
            of a split; an integer ``cv`` ignores them. Routed with
            ``set_fit_request(groups=True)`` under metadata routing.
        **fit_params : dict
            Passed to the estimator's ``fit`` (sample-aligned arrays are
            subset with the rows of each fit). Under metadata routing, only
            what the estimator requested.

        Returns
        -------
        self : object
            The fitted meta-estimator.
        """
        self._fit(X, y, sample_weight, sensitive_features, X_val, y_val,
                  sensitive_features_val, scores, fit_params, groups)
        return self

    def _fit(self, X, y, sample_weight, sensitive_features, X_val, y_val,
             sensitive_features_val, scores, fit_params, groups=None):
        if is_dask(X) or is_dask(y):
            raise TypeError(
                f"{type(self).__name__} refits {type(self.estimator).__name__} on the rows it "
                "keeps, so it needs X and y in memory; got a Dask collection. Score Dask data "
                "with skinfluence.influence_scores (it streams the blocks), or pass X.compute()."
            )
        method = resolve(self.method, METHODS, "method")
        objective = resolve(self.objective, OBJECTIVES, "objective")
        targeted = getattr(self, "target_gap", None) is not None
        by_proba = scores is None and not targeted and scores_by_probabilities(self.estimator)
        if by_proba:  # any classifier: its held-out probabilities rank the rows
            self._check_probability_route(objective)
        elif scores is None or targeted:  # scoring ahead: refuse a model it cannot score
            check_supported(self.estimator)
        needs_s = getattr(objective, "needs_sensitive", False) and (scores is None or targeted)
        s = self._sensitive(X, sensitive_features, objective, "X", "sensitive_features") \
            if needs_s else None
        X_in, y_in = X, y
        X, y = self._validate_X(X, y)
        self._regression = is_regressor(self.estimator)
        if self._regression:  # a regressor: real targets, K folds, residual-trusted rows
            y = _real_targets(y)
        else:
            check_classification_targets(y)
        est_params = self._route_fit_params(X, sample_weight, fit_params)
        sw = est_params.get("sample_weight")
        classes = np.unique(y if sw is None else y[sw > 0])
        if self._regression and len(y if sw is None else y[sw > 0]) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 samples with positive "
                             "weight to score and refit a regressor; got 1 sample.")
        if len(classes) < 2 and not self._regression:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes (among samples with positive "
                f"weight); got 1 class: {classes.tolist()}."
            )
        if s is not None and len(s) != n_rows(X):
            raise ValueError(f"sensitive_features has {len(s)} values, X has {n_rows(X)} rows.")
        rng = check_random_state(self.random_state)
        self._train_index = _index_of(X_in, y_in)
        plan = ScoringPlan(X=X, y=y, fit_params=est_params, sample_weight=sw, sensitive=s,
                           groups=None if groups is None else check_split_groups(groups, len(y)))
        if X_val is not None or y_val is not None:
            self._explicit_validation(plan, X_val, y_val, sensitive_features_val, objective,
                                      needs_s)
        self._check_refit_support()
        self._check_action(objective)
        proba = fitted = check = None
        self.gap_path_ = self.validation_gap_ = self.target_reached_ = None
        if targeted:  # the action is searched in rounds (estimators._TargetGapMixin)
            scores = self._reach_target(plan, method, objective,
                                        int(rng.randint(np.iinfo(np.int32).max)), scores)
        elif scores is not None:
            scores = column_or_1d(np.asarray(scores, dtype=np.float64), warn=True)
            if scores.shape[0] != n_rows(X):
                raise ValueError(f"scores has {scores.shape[0]} values, X has {n_rows(X)} rows.")
            # a regressor's targets: as many values as rows (predictions for the relabeler)
            if self._needs_proba(np.inf if self._regression else len(classes)):
                proba = self._in_sample_proba(plan, classes)
        else:
            score, extra = score_training_rows, {}
            if self._regression:  # the refined held-out predictions only where they are read
                score, extra = score_regression_rows, {"refine": self._needs_proba(np.inf)}
            scored = score(
                self.estimator, plan, method=None if by_proba else method, objective=objective,
                cv=self.cv,
                trusted=self.trusted, seed=int(rng.randint(np.iinfo(np.int32).max)),
                n_jobs=self.n_jobs, batch_size=self.batch_size,
                adapter_options=self.adapter_options, log=self._log if self.verbose else None,
                verbose=self.verbose, **extra,
            )
            scores, proba = scored.scores, scored.proba
            fitted = scored.fitted if scored.held_out.any() else None
            if self._needs_proba(np.inf if self._regression else len(classes)):
                check = make_check(self.estimator, plan, scored,  # "auto" asks the folds
                                   seed=int(rng.randint(np.iinfo(np.int32).max)),
                                   n_jobs=self.n_jobs)
        if sw is not None:
            scores = np.where(sw > 0, scores, np.nan)
        self.scores_ = scores
        if not np.isfinite(scores).any():
            warnings.warn(f"{type(self).__name__}: no training sample could be scored; "
                          "the estimator is refitted on the data unchanged.", RuntimeWarning)
        if not targeted:
            self._heldout_check = check  # read by fraction="auto" (estimators._SelectionMixin)
            try:
                self._act(scores, y, proba, sw, fitted)
            finally:
                del self._heldout_check
        X_fit, y_fit, params = self._refit_data(X, y, est_params)
        self._log("refitting the estimator")
        self.estimator_ = fit_clone(self.estimator, X_fit, y_fit, params) if self._regression \
            else clone(self.estimator).fit(X_fit, y_fit, **params)
        return self

    # ------------------------------------------------------------------ pieces of fit
    def _check_probability_route(self, objective):
        """A classifier no adapter scores: trimmed or relabeled by held-out label quality,
        for the validation loss only (fairness and robustness need its gradients)."""
        name = type(self.estimator).__name__
        if not getattr(self, "_acts_on_label_quality", False):
            raise TypeError(
                f"{type(self).__name__} weights rows by their influence scores, and "
                f"{name} has no adapter to compute them. InfluenceTrimmer and "
                f"InfluenceRelabeler take any classifier with predict_proba (rows ranked by "
                "their held-out probability of the given label); or pass scores=.")
        if not isinstance(objective, Utility):
            raise TypeError(
                f"objective={objective!r} needs the gradients of the model, and {name} has "
                "no adapter to compute them; any classifier with predict_proba is cleaned for "
                "objective='utility' only (rows ranked by their held-out probability of the "
                "given label). Pass scores= computed elsewhere, or use a supported model.")

    def _validate_X(self, X, y="no_validation", reset=True):
        """validate_data, except that a Pipeline's raw input (text columns...) is kept as is:
        its own transformers encode it (feature count and names are still checked). A network's
        n-d arrays and dicts of arrays are checked as its rows (:mod:`skinfluence.models._rows`)."""
        if takes_net_rows(self.estimator, X):
            X = check_net_rows(X, "X", self.estimator)
            if isinstance(y, str) and y == "no_validation":
                return X
            y = column_or_1d(y, warn=True)
            if len(y) != n_rows(X):
                raise ValueError(f"y has {len(y)} labels, X has {n_rows(X)} rows.")
            return X, y
        if not isinstance(self.estimator, Pipeline):
            # missing values pass where the model reads them (boosted trees route NaN)
            finite = "allow-nan" if get_tags(self.estimator).input_tags.allow_nan else True
            return validate_data(self, X, y, accept_sparse="csr", reset=reset,
                                 ensure_all_finite=finite)
        out = validate_data(self, X, y, reset=reset, skip_check_array=True)
        if isinstance(y, str) and y == "no_validation":
            return out
        X, y = out
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        return X, y

    def _route_fit_params(self, X, sample_weight, fit_params):
        """The estimator's fit parameters, sample_weight validated."""
        if _routing_enabled():
            routed = process_routing(self, "fit", sample_weight=sample_weight, **fit_params)
            params = dict(routed.estimator.fit)
        else:
            params = dict(fit_params)
            if sample_weight is not None:
                params["sample_weight"] = sample_weight
        if params.get("sample_weight") is not None:
            params["sample_weight"] = _check_sample_weight(params["sample_weight"], splittable(X))
            if np.any(params["sample_weight"] < 0):  # scores and refits assume w >= 0
                raise ValueError("sample_weight must be non-negative; got "
                                 f"{int(np.sum(params['sample_weight'] < 0))} negative weights.")
        return params

    def _sensitive(self, X, values, objective, x_name, arg_name):
        """The sensitive attribute of the rows of X: the argument, else a column of X."""
        if values is not None:
            return check_groups(values, arg_name)
        col = self.sensitive_feature
        if col is None and getattr(objective, "needs_sensitive", False):
            col = objective.sensitive_feature
        if col is None:
            raise ValueError(
                f"objective={objective!r} needs the sensitive attribute: set "
                f"sensitive_feature= (a column of {x_name}, by name or index) or pass "
                f"fit(..., {arg_name}=s)."
            )
        return check_groups(column_values(X, col, x_name),
                            f"the sensitive feature {col!r} of {x_name}")

    def _explicit_validation(self, plan, X_val, y_val, s_val, objective, needs_s):
        if X_val is None or y_val is None:
            raise ValueError("Pass both X_val and y_val (or neither, to cross-fit with `cv`).")
        if needs_s:
            plan.sensitive_val = self._sensitive(X_val, s_val, objective, "X_val",
                                                 "sensitive_features_val")
        plan.X_val = self._validate_X(X_val, reset=False)
        plan.y_val = column_or_1d(y_val, warn=True)
        if plan.y_val.shape[0] != n_rows(plan.X_val):
            raise ValueError(f"y_val has {plan.y_val.shape[0]} labels, X_val has "
                             f"{n_rows(plan.X_val)} rows.")
        if self._regression:
            plan.y_val = _real_targets(plan.y_val, "y_val")
            return
        # as influence_scores does: a validation label no training row has is refused
        unknown = ~np.isin(plan.y_val, plan.y)
        if unknown.any():
            raise ValueError(
                f"y_val contains labels {np.unique(plan.y_val[unknown])[:5].tolist()} that no "
                f"training row has; known classes: {np.unique(plan.y).tolist()}."
            )

    def _in_sample_proba(self, plan, classes):
        """Probabilities from a clone fitted on all rows (precomputed scores, multiclass).

        A regressor: its in-sample predictions, (n, 1)."""
        if self._regression:
            model = fit_clone(self.estimator, plan.X, plan.y, plan.fit_params)
            return np.asarray(model.predict(plan.X), dtype=np.float64).reshape(-1, 1)
        model = clone(self.estimator).fit(plan.X, plan.y, **plan.fit_params)
        P = np.zeros((n_rows(plan.X), len(classes)))
        P[:, np.searchsorted(classes, model.classes_)] = model.predict_proba(plan.X)
        return P

    def _check_refit_support(self):
        """Subclasses: raise early when the estimator cannot be refitted as needed."""

    def _check_action(self, objective):
        """Subclasses: raise early when the action's parameters do not fit the objective."""

    def _act(self, scores, y, proba, sample_weight, fitted):  # pragma: no cover - abstract
        """Act on the scores. ``proba``: class probabilities of every row (held out where
        cross-fitted) when ``_needs_proba``; ``fitted``: share of the models trained on
        each row that predict its label (cross-fitting only, else None)."""
        raise NotImplementedError

    def _refit_data(self, X, y, params):  # pragma: no cover - abstract
        raise NotImplementedError

    def _log(self, message):
        if self.verbose:
            print(f"[{type(self).__name__}] {message}")

    # ------------------------------------------------------------------ report
    def report(self, X=None, y=None):
        """One row per training sample: its score, what was done to it, its label.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), default=None
            The training data given to fit: adds the refitted model's
            prediction (``predicted``).
        y : array-like of shape (n_samples,), default=None
            The training labels given to fit: adds ``label``.

        Returns
        -------
        report : pandas.DataFrame
            ``score`` (higher = more beneficial; NaN = not scored), the action's
            columns (``trimmed`` / ``weight`` / ``relabeled``, ``new_label``),
            then ``label`` and ``predicted`` when X / y are given. Sort it by
            ``score`` to see the most detrimental samples first.
        """
        check_is_fitted(self)
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover
            raise ImportError("report() needs pandas (pip install pandas).") from exc
        frame = pd.DataFrame({"score": self.scores_, **self._report_columns()},
                             index=self._train_index)
        if y is not None:
            y = column_or_1d(np.asarray(y), warn=True)
            if len(y) != len(frame):
                raise ValueError(f"y has {len(y)} labels; the fit had {len(frame)} samples.")
            frame["label"] = y
        if X is not None:
            frame["predicted"] = np.asarray(self.predict(X))
        return frame

    def _report_columns(self):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ resampling
    def fit_resample(self, X, y, **params):
        """Fit, then return the training data as the refit saw it (imbalanced-learn API).

        Lets the estimator be a resampling step of an imbalanced-learn
        ``Pipeline``, where the next step is fitted on the returned data and
        this step is skipped at predict time.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        **params : dict
            Passed to :meth:`fit` (``sample_weight``, ``sensitive_features``...).

        Returns
        -------
        X_resampled : same type as X
        y_resampled : ndarray or pandas Series (as y)
        """
        self.fit(X, y, **params)
        return self._resample(X, y)

    def _resample(self, X, y):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ delegation
    @property
    def classes_(self):
        """Class labels, from the refitted estimator."""
        return self.estimator_.classes_

    def _delegate(self, name, X, params):
        check_is_fitted(self)
        _raise_for_params(params, self, name)
        if _routing_enabled():
            params = getattr(process_routing(self, name, **params).estimator, name)
        X = self._validate_X(X, reset=False)
        return getattr(self.estimator_, name)(X, **params)

    @available_if(_estimator_has("predict"))
    def predict(self, X, **params):
        """Predict class labels with the refitted estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        **params : dict
            Routed to the estimator's ``predict`` (metadata routing only).

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        return self._delegate("predict", X, params)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X, **params):
        """Class probabilities from the refitted estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        **params : dict
            Routed to the estimator's ``predict_proba`` (metadata routing only).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self._delegate("predict_proba", X, params)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X, **params):
        """Log class probabilities from the refitted estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        **params : dict
            Routed to the estimator's ``predict_log_proba`` (metadata routing only).

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return self._delegate("predict_log_proba", X, params)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X, **params):
        """Decision function of the refitted estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        **params : dict
            Routed to the estimator's ``decision_function`` (metadata routing only).

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        return self._delegate("decision_function", X, params)

    @available_if(_estimator_has("score"))
    def score(self, X, y, **params):
        """The refitted estimator's ``score`` (accuracy for classifiers).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        **params : dict
            Routed to the estimator's ``score`` (metadata routing only;
            otherwise ``sample_weight`` is passed through).

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        if not _routing_enabled():
            sample_weight = params.pop("sample_weight", None)
            _raise_for_params(params, self, "score")
            params = {} if sample_weight is None else {"sample_weight": sample_weight}
        else:
            params = process_routing(self, "score", **params).estimator.score
        X = self._validate_X(X, reset=False)
        return self.estimator_.score(X, y, **params)

    # ------------------------------------------------------------------ routing & tags
    def get_metadata_routing(self):
        """Metadata routing of this object: its own requests, plus the estimator's.

        ``fit`` consumes ``sensitive_features`` (and the explicit validation
        data) itself and routes the estimator's fit parameters, e.g.
        ``sample_weight``, to it; prediction methods route to the refitted
        estimator. With imbalanced-learn imported, ``fit_resample`` routes as
        ``fit``.

        Returns
        -------
        routing : MetadataRouter
        """
        mapping = MethodMapping().add(caller="fit", callee="fit")
        if "fit_resample" in routable_methods():
            mapping.add(caller="fit_resample", callee="fit")
        for name in _PREDICT_METHODS:
            mapping.add(caller=name, callee=name)
        return (MetadataRouter(owner=self).add_self_request(self)
                .add(estimator=self.estimator, method_mapping=mapping))

    def _get_metadata_request(self):
        # fit_resample consumes what fit consumes: set_fit_request covers both.
        requests = super()._get_metadata_request()
        fit_resample = getattr(requests, "fit_resample", None)
        if fit_resample is not None:
            for param, alias in requests.fit.requests.items():
                if fit_resample.requests.get(param) is None:
                    fit_resample.add_request(param=param, alias=alias)
        return requests

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        if inner.estimator_type == "regressor":  # around a regressor, a regressor (score: R^2)
            tags.estimator_type = "regressor"
            tags.classifier_tags = None
            tags.regressor_tags = inner.regressor_tags or RegressorTags()
        return tags


def _real_targets(y, name="y"):
    """Regression targets as a finite float64 vector, or a ValueError naming ``name``."""
    try:
        y = np.asarray(column_or_1d(y, warn=True), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold real-valued targets for a regressor: {exc}") from exc
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return y


def _index_of(X, y):
    """The pandas index of the training rows (X's, else y's), or None."""
    for data in (X, y):
        index = getattr(data, "index", None)
        if index is not None and not callable(index):
            return index.copy()
    return None


def subset_params(X, params, mask):
    """Fit parameters with every sample-aligned array subset to the masked rows."""
    return _check_method_params(splittable(X), params, np.flatnonzero(mask))
