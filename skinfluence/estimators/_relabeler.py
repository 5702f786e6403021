"""InfluenceRelabeler: relabel the most detrimental training rows and refit."""
from __future__ import annotations

import numpy as np

from ._base import BaseInfluenceEstimator
from ._selection import _SELECTION_CONSTRAINTS, _SelectionMixin, _active
from ._target_gap import _TARGET_CONSTRAINTS, _TargetGapMixin


class InfluenceRelabeler(_TargetGapMixin, _SelectionMixin, BaseInfluenceEstimator):
    """Flip the labels of the training samples most detrimental to an objective, then refit.

    The lowest-scoring ``fraction`` of samples (or those below ``threshold``)
    get a new label: the other class for binary problems; for multiclass
    problems the class a model finds most probable among the others, with
    probabilities from the model that held the sample out (cross-fitting) or
    from the scoring model (hold-out / explicit validation data). Relabeling
    never leaves a class without samples. Around a regressor, a selected
    target is replaced by its prediction from the model that held it out
    (cross-fitting; the scoring model's in-sample prediction with explicit
    validation data or precomputed scores). Parameters are those of
    :class:`InfluenceTrimmer`.

    Parameters
    ----------
    estimator : estimator object
        Supported classifier or regressor (see :class:`InfluenceTrimmer`);
        multiclass problems need ``predict_proba``.
    method : str or Method, default="ip"
    objective : str or Objective, default="utility"
    fraction : float in [0, 1) or "auto", default=0.05
        Share of the training samples to relabel (ignored when ``threshold``
        is set); ``"auto"``: the rows ``InfluenceTrimmer(fraction="auto")``
        would drop (per-class candidates, acted on only if the refit check
        favours it).
    threshold : float or None, default=None
        Relabel every sample scoring below it instead.
    target_gap : float in (0, 1) or None, default=None
        As for :class:`InfluenceTrimmer`, the count searched being the number
        of relabeled rows (binary targets).
    gap_tolerance : float in (0, 1), default=0.01
    max_rounds : int, default=8
    utility_slack : float in [0, 1], default=0.25
        As for :class:`InfluenceTrimmer`.
    cv : int, CV splitter or iterable, default=5
    trusted : {"agree"} or None, default="agree"
        As for :class:`InfluenceTrimmer` (5-fold cross-fitting against the
        trusted held-out rows by default); unscored samples keep their
        labels. The refit always uses every sample.
    sensitive_feature : str, int or None, default=None
    batch_size : int or "auto", default="auto"
    adapter_options : dict or None, default=None
        As for :class:`InfluenceTrimmer`.
    n_jobs : int or None, default=None
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    estimator_ : estimator
        Clone of ``estimator`` refitted on the relabeled data.
    scores_ : ndarray of shape (n_samples,)
        Influence scores; higher = more beneficial; NaN where not scored.
    relabeled_ : ndarray of bool, shape (n_samples,)
        True for the samples whose label was changed.
    n_relabeled_ : int
        Number of samples relabeled.
    noise_rate_, confident_joint_, refit_check_ : as in InfluenceTrimmer
        ``fraction="auto"`` only (None otherwise).
    memorised_share_ : float or None
        ``fraction="auto"`` with cross-fitting: share of the rows the held-out
        models doubt whose label the models trained on them still predict.
        Above 0.5 the in-sample influence of those rows is too small to rank
        them, and the held-out probability of the label ranks alone.
    y_relabeled_ : ndarray of shape (n_samples,)
        The labels the estimator was refitted on.
    validation_gap_, target_reached_, gap_path_ : float, bool, list or None
        ``target_gap`` only, as for :class:`InfluenceTrimmer`.
    classes_, n_features_in_, feature_names_in_ :
        As for :class:`InfluenceTrimmer`.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import InfluenceRelabeler
    >>> from skinfluence.datasets import flip_labels
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> y_noisy, flipped = flip_labels(y, 0.1, random_state=0)
    >>> relabeler = InfluenceRelabeler(LogisticRegression(), fraction=0.05, random_state=0)
    >>> _ = relabeler.fit(scale(X), y_noisy)
    >>> int(relabeler.relabeled_.sum())
    28
    >>> int((relabeler.y_relabeled_ == y).sum()) > int((y_noisy == y).sum())  # labels repaired
    True
    """

    _parameter_constraints = {**BaseInfluenceEstimator._parameter_constraints,
                              **_SELECTION_CONSTRAINTS, **_TARGET_CONSTRAINTS}

    def __init__(self, estimator, *, method="ip", objective="utility", fraction=0.05,
                 threshold=None, target_gap=None, gap_tolerance=0.01, max_rounds=8,
                 utility_slack=0.25, cv=5,
                 trusted="agree", sensitive_feature=None, batch_size="auto", adapter_options=None,
                 n_jobs=None, random_state=None, verbose=0):
        self.estimator = estimator
        self.method = method
        self.objective = objective
        self.fraction = fraction
        self.threshold = threshold
        self.target_gap = target_gap
        self.gap_tolerance = gap_tolerance
        self.max_rounds = max_rounds
        self.utility_slack = utility_slack
        self.cv = cv
        self.trusted = trusted
        self.sensitive_feature = sensitive_feature
        self.batch_size = batch_size
        self.adapter_options = adapter_options
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _needs_proba(self, n_classes):
        return n_classes > 2 or super()._needs_proba(n_classes)

    _target_action = "relabel"

    def _act(self, scores, y, proba, sample_weight, fitted):
        active = _active(sample_weight, len(y))
        flip = self._select(scores, y, proba, active, fitted)
        if self._regression:
            return self._replace_targets(flip, y, proba[:, 0])
        classes = np.unique(y[active])
        y_idx = np.searchsorted(classes, y)
        if len(classes) == 2:
            new_idx = 1 - y_idx
        else:
            if proba is None:
                raise ValueError(
                    f"{type(self.estimator).__name__} has no predict_proba; multiclass "
                    "relabeling needs class probabilities to choose the new label."
                )
            P = np.nan_to_num(proba[:, :len(classes)], nan=-1.0)
            P[np.arange(len(y)), np.clip(y_idx, 0, len(classes) - 1)] = -np.inf
            new_idx = np.argmax(P, axis=1)
        while True:  # never leave a class without samples
            final = np.where(flip, new_idx, y_idx)
            empty = [c for c in range(len(classes)) if not np.any(active & (final == c))]
            if not empty:
                break
            cand = np.flatnonzero(flip & (y_idx == empty[0]))
            flip[cand[np.argmax(scores[cand])]] = False
        self.relabeled_ = flip
        self.n_relabeled_ = int(flip.sum())
        y_new = np.asarray(y).copy()
        y_new[flip] = classes[new_idx[flip]]
        self.y_relabeled_ = y_new
        self._log(f"relabeling {int(flip.sum())} of {len(y)} samples")

    def _replace_targets(self, flip, y, predictions):
        """A regressor: each selected target becomes its held-out prediction."""
        flip = flip & np.isfinite(predictions)
        self.relabeled_ = flip
        self.n_relabeled_ = int(flip.sum())
        self.y_relabeled_ = np.where(flip, predictions, y)
        self._log(f"replacing {int(flip.sum())} of {len(y)} targets by held-out predictions")

    def _report_columns(self):
        return {"relabeled": self.relabeled_, "new_label": self.y_relabeled_}

    def _refit_data(self, X, y, params):
        return X, self.y_relabeled_, params

    def _resample(self, X, y):
        if hasattr(y, "index") and hasattr(y, "name"):  # pandas Series: keep its index
            return X, type(y)(self.y_relabeled_, index=y.index, name=y.name)
        return X, self.y_relabeled_.copy()
