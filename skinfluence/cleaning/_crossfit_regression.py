"""Scoring the training rows of a meta-estimator around a regressor.

The regression counterpart of :func:`skinfluence.cleaning._crossfit.score_training_rows`:
shuffled K folds (no strata), one clone fitted per split, each scored against
its held-out fold (or one clone against the given validation data). It
returns, per row, the mean of the scores it received and a prediction from a
model that did not see it (in-sample when no split held it out), which the
relabeler and the ``fraction="auto"`` count read; by default from a second
round of fold models refitted without the first round's outlying targets.

Trusted validation rows. The classifiers' filter (keep the held-out rows
whose label the fold's model predicts) has no meaning for a real target, but
its purpose does: a validation loss on corrupted targets rewards fitting
them. For regressors ``trusted="agree"`` keeps the held-out rows whose
residual under the fold's model is not a robust outlier
(:func:`skinfluence.cleaning._target_noise.robust_z` at most ``Z_THRESHOLD``); with
clean targets that drops about 0.05% of Gaussian residuals.
"""
import numbers

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import KFold, check_cv

from ..utils._compat import _check_method_params
from ._crossfit import Scored, _progress, _rows
from ..models._rows import splittable
from ..utils._validation import check_cv_split, check_trusted
from ._target_noise import Z_THRESHOLD, robust_z
from ..influence import score_validated


def score_regression_rows(estimator, plan, *, method, objective, cv, trusted, seed, n_jobs=None,
                          batch_size=4096, adapter_options=None, log=None, verbose=0,
                          refine=True):
    """Influence scores of every training row of a regressor (``Scored``, proba = predictions).

    ``Scored.proba`` is (n, 1): each row's held-out prediction where a split
    held it out, else the in-sample prediction of the first model fitted on it.
    ``refine``: the held-out predictions come from a second round of fold
    models, refitted without the rows whose first-round held-out residual is
    a robust outlier (:func:`refined_predictions`).
    """
    check_trusted(trusted)
    n = plan.y.shape[0]
    active = np.ones(n, dtype=bool) if plan.sample_weight is None else plan.sample_weight > 0
    filter_rows = trusted == "agree" and getattr(objective, "label_loss", True)
    splits = list(_regression_splits(plan, np.flatnonzero(active), cv, seed))
    seeds = np.random.RandomState(seed).randint(np.iinfo(np.int32).max, size=len(splits))
    options = dict(batch_size=batch_size, adapter_options=adapter_options or {},
                   verbose=verbose > 1)
    jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_score_split)(estimator, plan, train, val, method, objective, filter_rows,
                              int(s), **options)
        for (train, val), s in zip(splits, seeds)
    )
    total, count = np.zeros(n), np.zeros(n, dtype=int)
    pred = np.full(n, np.nan)
    held_out = np.zeros(n, dtype=bool)
    for k, ((train, val), fold) in enumerate(zip(splits, _progress(jobs, len(splits), verbose))):
        total[train] += fold["scores"]
        count[train] += 1
        if val is not None:
            pred[val], held_out[val] = fold["pred_val"], True
        unset = np.isnan(pred[train]) & ~held_out[train]
        pred[train[unset]] = fold["pred_train"][unset]
        if log is not None:
            log(f"split {k + 1}: scored {len(train)} training rows against "
                f"{fold['n_val']} validation rows")
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    if refine and held_out.any():
        pred = refined_predictions(estimator, plan, splits, pred, held_out & active, n_jobs)
    return Scored(scores=scores, proba=pred[:, None], held_out=held_out, classes=None,
                  fitted=None, splits=splits)


def refined_predictions(estimator, plan, splits, pred, rows, n_jobs=None):
    """Held-out predictions of fold models refitted without the outlying targets.

    A fold model trained on corrupted targets is pulled towards them: the
    residuals of clean rows grow and those of corrupted rows shrink, so the
    count misses some (20% of star98's targets shifted: 96% found). The rows
    whose first-round held-out residual is a robust outlier are left out of
    every training part and each fold is predicted again; with no outlier
    the first round's predictions are kept as they are.
    """
    flagged = np.zeros(len(pred), dtype=bool)
    flagged[rows] = robust_z(plan.y[rows] - pred[rows]) > Z_THRESHOLD
    if not flagged.any():
        return pred
    parts = [(train[~flagged[train]], val) for train, val in splits if val is not None]
    refits = Parallel(n_jobs=n_jobs)(
        delayed(_predict_split)(estimator, plan, train, val) for train, val in parts
        if len(train) >= 2)
    pred = pred.copy()
    for val, values in refits:
        pred[val] = values
    return pred


def _predict_split(estimator, plan, train, val):
    params = _check_method_params(splittable(plan.X), plan.fit_params, train)
    model = fit_clone(estimator, _rows(plan.X, train), plan.y[train], params)
    return val, np.asarray(model.predict(_rows(plan.X, val)), dtype=np.float64).ravel()


def _score_split(estimator, plan, train, val, method, objective, filter_rows, seed, *,
                 batch_size, adapter_options, verbose):
    params = _check_method_params(splittable(plan.X), plan.fit_params, train)
    X_train = _rows(plan.X, train)
    model = fit_clone(estimator, X_train, plan.y[train], params)
    out = {"pred_train": np.asarray(model.predict(X_train), dtype=np.float64).ravel()}
    if val is None:
        X_v, y_v, s_v = plan.X_val, plan.y_val, plan.sensitive_val
    else:
        X_v, y_v = _rows(plan.X, val), plan.y[val]
        s_v = None if plan.sensitive is None else plan.sensitive[val]
        out["pred_val"] = np.asarray(model.predict(X_v), dtype=np.float64).ravel()
        if filter_rows:
            keep = robust_z(y_v - out["pred_val"]) <= Z_THRESHOLD
            if keep.any() and not keep.all():
                X_v, y_v = _rows(X_v, np.flatnonzero(keep)), y_v[keep]
                s_v = None if s_v is None else s_v[keep]
    sw = None if plan.sample_weight is None else plan.sample_weight[train]
    out["scores"] = score_validated(
        model, X_train, plan.y[train], X_v, y_v, method=method, objective=objective,
        sensitive_features_val=s_v, sample_weight=sw, batch_size=batch_size,
        random_state=seed, verbose=verbose, **adapter_options,
    )
    out["n_val"] = len(y_v)
    return out


def fit_clone(estimator, X, y, params):
    """A clone of ``estimator`` fitted on real targets ``y`` (1-D).

    skorch's ``NeuralNetRegressor`` needs them as a column (n, 1): given a
    vector its MSELoss would broadcast (n, 1) outputs against (n,) targets.
    """
    if type(estimator).__module__.startswith("skorch"):
        y = y.reshape(-1, 1).astype(np.float32)
    return clone(estimator).fit(X, y, **params)


def _regression_splits(plan, act_idx, cv, seed):
    """Yield (training rows, held-out rows or None) as indices into all rows."""
    if plan.X_val is not None:
        yield act_idx, None
        return
    if isinstance(cv, numbers.Integral):
        splitter = KFold(int(min(cv, len(act_idx))), shuffle=True, random_state=seed)
    else:
        splitter = check_cv(cv, plan.y[act_idx], classifier=False)
    groups = None if plan.groups is None else plan.groups[act_idx]
    k = -1
    for k, (train, test) in enumerate(splitter.split(splittable(_rows(plan.X, act_idx)),
                                                     plan.y[act_idx], groups)):
        train, test = check_cv_split(train, test, len(act_idx), k)
        yield act_idx[train], act_idx[test]
    if k < 0:
        raise ValueError(f"cv={cv!r} gave no (train, test) split; give at least one.")
