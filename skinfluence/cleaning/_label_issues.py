"""Flag the training rows whose labels look wrong, without refitting anything else.

The same cross-fitted scores and ranking as ``InfluenceTrimmer(fraction="auto")``,
returned as a mask or as ranked indices (confident learning's habit), for users
who want to inspect or fix the labels themselves.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import is_regressor
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_X_y, column_or_1d

from ..utils._typing import Any, ArrayLike, BatchSize, EstimatorLike, MethodLike, RandomStateLike
from ._crossfit import score_training_rows
from ._flagging import check_n_issues, cross_fit, select_flagged
from ._label_noise import decide, find_issues
from ._precomputed_issues import precomputed_issues
from ._refit_check import make_check
from ..models import check_supported, scores_by_probabilities
from ..models._rows import check_net_rows, n_rows, takes_net_rows
from ..utils._validation import check_sample_weight

__all__ = ["find_label_issues"]


def find_label_issues(estimator: EstimatorLike = None, X: ArrayLike | None = None,
                      y: ArrayLike | None = None, *, method: MethodLike = "ip",
                      n_issues: int | float | str = "auto", cv: Any = 5,
                      trusted: str | None = "agree", return_indices: bool = False,
                      sample_weight: ArrayLike | None = None, batch_size: BatchSize = "auto",
                      adapter_options: dict | None = None, n_jobs: int | None = None,
                      random_state: RandomStateLike = None, labels: ArrayLike | None = None,
                      pred_probs: ArrayLike | None = None, filter_by: str = "prune_by_noise_rate",
                      return_indices_ranked_by: str | None = None,
                      groups: ArrayLike | None = None) -> np.ndarray:
    """Likely label errors of ``(X, y)`` under ``estimator``, by cross-fitted influence.

    ``estimator`` is cloned and fitted on each training part of ``cv``; each
    clone scores the influence of its training rows on the validation loss of
    the held-out rows whose given label it predicts (``trusted="agree"``).
    Rows are ranked by the mean of two ranks — influence score and held-out
    probability of the given label (that probability alone when the models
    memorise the labels they doubt). ``n_issues="auto"`` flags, within each
    given class, as many rows as the confident joint counts as belonging to
    another class (at most half of a class), and only as many of them as a
    nested refit check finds worth acting on (``InfluenceTrimmer(fraction="auto")``'s
    rule). A classifier without an adapter but with ``predict_proba`` (a random
    forest, gradient boosting) is cross-fitted for its held-out probabilities
    alone: rows are ranked by their held-out probability of the given label.

    Regressors (``Ridge``, ``LinearRegression``, ``SGDRegressor``, MSE nets):
    corrupted targets instead. Plain shuffled K folds; each clone is scored
    against the held-out rows whose residual is not a robust outlier; rows are
    ranked by the robust z of their held-out residual,
    ``|r - median(r)| / (1.4826 MAD(r))``, and "auto" flags those above 3.5.

    cleanlab's calling convention works too: ``find_label_issues(labels=y,
    pred_probs=P)`` with out-of-fold probabilities you already have (no
    estimator, nothing fitted) flags the rows ``cleanlab.filter.find_label_issues``
    flags for the same ``filter_by`` (default ``"prune_by_noise_rate"``, as
    cleanlab's), and ``return_indices_ranked_by`` in {"self_confidence",
    "normalized_margin"} returns the flagged rows' indices, worst label
    quality first.

    Parameters
    ----------
    estimator : estimator object
        Unfitted classifier supported by :func:`skinfluence.influence_scores`
        with ``predict_proba``, or a supported regressor. Never modified.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        For a torch / skorch network, also an n-d array (images, signals) or
        a skorch dict of arrays: whatever the network takes.
    y : array-like of shape (n_samples,)
        The given (possibly noisy) labels.
    method : str or Method, default="ip"
        Influence method, as in :func:`skinfluence.influence_scores`.
    n_issues : "auto", int or float in (0, 1), default="auto"
        How many rows to flag: "auto" takes the confident joint's count per
        given class (rows ranked within their class), then flags none of them
        unless refitting the folds without them improves the held-out
        predictions; an int is a count, a float a share of the rows (one
        ranking over all classes).
    cv : int, CV splitter or iterable, default=5
        Cross-fitting splits; an int k means stratified, shuffled k folds.
    trusted : {"agree"} or None, default="agree"
        Score against the held-out rows whose label the fold's model predicts
        ("agree") or against every held-out row (None).
    return_indices : bool, default=False
        Return the flagged rows' indices, most likely wrong first, instead of
        a boolean mask.
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to the estimator's fit; rows of zero weight are never flagged.
    batch_size : int or "auto", default="auto"
        Training rows per chunk of the scoring pass ("auto": about 8 MiB).
    adapter_options : dict or None, default=None
        Passed to the model adapter (e.g. ``{"params": "last_layer"}``).
    n_jobs : int or None, default=None
        Splits fitted in parallel (joblib).
    random_state : int, RandomState instance or None, default=None
        Seeds the folds and any stochastic method.
    labels : array-like of shape (n_samples,), default=None
        cleanlab's name for ``y``; with ``pred_probs``, class indices 0..K-1.
    pred_probs : array-like of shape (n_samples, n_classes), default=None
        Precomputed out-of-fold probabilities: flag from them alone (give no
        estimator or X).
    filter_by : str, default="prune_by_noise_rate"
        With ``pred_probs`` (refused with an estimator): which rows are
        flagged, as cleanlab's filter of the same name flags them. The prune
        filters take, within each given class, as many rows as the calibrated
        confident joint counts as mislabelled: those with the largest margin
        toward each other class ("prune_by_noise_rate"), the lowest
        probability of the class ("prune_by_class"), or rows chosen by both
        ("both"); a class with a single row is never pruned (a warning says
        so). "confident_learning" flags the confident joint's off-diagonal
        rows, "predicted_neq_given" the rows whose argmax is not the label.
        Every filter keeps the rows whose label is also the argmax (the label
        winning ties within 1e-6). The default is cleanlab's, so code moved
        from cleanlab flags the same rows (it was "confident_learning"
        before). ``pred_probs`` rows must be non-negative and sum to 1 within
        1e-5 (cleanlab only checks values lie in [-1e-6, 1 + 1e-6]).
    return_indices_ranked_by : {"self_confidence", "normalized_margin"} or None, default=None
        With ``pred_probs``: return the flagged rows' indices, lowest label
        quality first, instead of a mask.
    groups : array-like of shape (n_samples,), default=None
        Group labels passed to ``cv``'s ``split`` (``GroupKFold``...).

    Returns
    -------
    issues : ndarray
        Boolean mask of shape (n_samples,), or indices (``return_indices=True``
        or ``return_indices_ranked_by``).

    See Also
    --------
    InfluenceTrimmer : drop the flagged rows and refit, with ``fraction="auto"``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import find_label_issues
    >>> from skinfluence.datasets import flip_labels
    >>> X, y = load_digits(return_X_y=True)
    >>> y_noisy, flipped = flip_labels(y, 0.2, random_state=0)
    >>> issues = find_label_issues(LogisticRegression(max_iter=500), scale(X), y_noisy,
    ...                            random_state=0)
    >>> bool(abs(issues.sum() - flipped.sum()) < 0.25 * flipped.sum())  # about as many
    True
    >>> bool(flipped[issues].mean() > 0.8)                              # mostly right
    True
    """
    if pred_probs is not None:  # cleanlab's convention: flag from the given probabilities
        if estimator is not None or X is not None:
            raise ValueError("pred_probs flags from precomputed probabilities: give labels= "
                             "and pred_probs= without an estimator or X.")
        if (labels is None) == (y is None):
            raise ValueError("give the labels once, as labels= (cleanlab's name) or y=.")
        if return_indices and return_indices_ranked_by is None:
            return_indices_ranked_by = "self_confidence"  # indices, most likely wrong first
        return precomputed_issues(y if labels is None else labels, pred_probs,
                                  filter_by=filter_by,
                                  return_indices_ranked_by=return_indices_ranked_by)
    if return_indices_ranked_by is not None:
        raise ValueError("return_indices_ranked_by applies to pred_probs=; with an estimator, "
                         "use return_indices=True (most likely wrong first).")
    if filter_by != "prune_by_noise_rate":
        raise ValueError(f"filter_by={filter_by!r} applies to pred_probs=; with an estimator "
                         "the rows are ranked by influence and held-out probability, and "
                         "n_issues= says how many are flagged.")
    if labels is not None:
        if y is not None:
            raise ValueError("give the labels once, as labels= (cleanlab's name) or y=.")
        y = labels
    if estimator is None or X is None or y is None:
        raise TypeError("find_label_issues needs an estimator, X and y (or labels=), or "
                        "labels= and pred_probs= (precomputed out-of-fold probabilities).")
    by_proba = scores_by_probabilities(estimator)  # any classifier: its probabilities alone
    if not by_proba:
        check_supported(estimator)  # before any fold is fitted
    if is_regressor(estimator):  # corrupted targets: outlying cross-fitted residuals
        from ._target_issues import find_regression_issues

        return find_regression_issues(
            estimator, X, y, method=method, n_issues=n_issues, cv=cv, trusted=trusted,
            return_indices=return_indices, sample_weight=sample_weight, batch_size=batch_size,
            adapter_options=adapter_options, n_jobs=n_jobs, random_state=random_state,
            groups=groups)
    if takes_net_rows(estimator, X):  # a network's images, signals or dict of arrays
        X, y = check_net_rows(X, "X", estimator), column_or_1d(y, warn=True)
        if len(y) != n_rows(X):
            raise ValueError(f"y has {len(y)} labels, X has {n_rows(X)} rows.")
    else:
        # missing values pass where the model reads them (boosted trees route NaN)
        finite = "allow-nan" if get_tags(estimator).input_tags.allow_nan else True
        X, y = check_X_y(X, y, accept_sparse="csr", ensure_all_finite=finite)
    check_classification_targets(y)
    n = len(y)
    sw = check_sample_weight(sample_weight, n)
    active = np.ones(n, dtype=bool) if sw is None else sw > 0
    classes = np.unique(y[active])
    if len(classes) < 2:
        raise ValueError(f"y needs at least 2 classes; got {classes.tolist()}.")
    check_n_issues(n_issues, int(active.sum()))
    plan, scored = cross_fit(score_training_rows, estimator, X, y, sw, groups,
                             method=None if by_proba else method,
                             cv=cv, trusted=trusted, random_state=random_state, n_jobs=n_jobs,
                             batch_size=batch_size, adapter_options=adapter_options)
    y_idx = np.searchsorted(classes, y)
    issues = find_issues(scored.scores, scored.proba, y_idx, active, scored.fitted)
    auto = None
    if n_issues == "auto":  # the candidates only if refitting the folds without them pays
        check = make_check(estimator, plan, scored, seed=_check_seed(random_state),
                           n_jobs=n_jobs)
        auto = decide(issues, n, check).mask
    return select_flagged(issues, n_issues, active, return_indices, auto)


def _check_seed(random_state):
    """A seed for the refit check's inner folds (the cross-fitting drew its own)."""
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
