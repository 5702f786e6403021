"""Scoring the training rows of a meta-estimator: cross-fitting, hold-out or given data.

``score_training_rows`` is the one place the estimators get their scores from.
It fits clones of the user's estimator, calls :func:`influence_scores` and
returns, for every training row, the mean of the scores it received (NaN when
it received none), plus class probabilities for the relabeler.
"""
from dataclasses import dataclass
import numbers

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.utils import _safe_indexing

from ._compat import _check_method_params
from .scoring import influence_scores


@dataclass
class ScoringPlan:
    """What to score against: the validation scheme resolved for one fit."""

    X: object  # validated training features (ndarray or CSR)
    y: np.ndarray
    fit_params: dict  # routed to estimator.fit, sample-aligned arrays included
    sample_weight: np.ndarray  # or None (also inside fit_params)
    sensitive: np.ndarray  # sensitive attribute of every training row, or None
    X_val: object = None  # explicit validation data (validated), or None
    y_val: np.ndarray = None
    sensitive_val: np.ndarray = None


@dataclass
class Scored:
    scores: np.ndarray  # (n,), NaN where a row was not scored
    n_scored: np.ndarray  # (n,), how many models scored each row
    proba: np.ndarray = None  # (n, n_classes) or None: held-out / in-sample probabilities


def score_training_rows(meta, plan, method, objective, rng, *, want_proba=False):
    """Scores of every training row under ``meta.validation`` (see the estimators' docs).

    Rows with zero sample weight play no part: they are not split, not fitted
    and not scored (NaN), so adding them changes nothing.
    """
    n = plan.y.shape[0]
    active = np.ones(n, dtype=bool) if plan.sample_weight is None else plan.sample_weight > 0
    act_idx = np.flatnonzero(active)
    classes = np.unique(plan.y[active])
    total = np.zeros(n)
    count = np.zeros(n, dtype=int)
    proba = np.full((n, len(classes)), np.nan) if want_proba else None

    for k, (train, val, in_sample) in enumerate(_splits(meta, plan, act_idx, rng)):
        seed = int(rng.randint(np.iinfo(np.int32).max))
        params = _check_method_params(plan.X, plan.fit_params, train)
        X_train = _rows(plan.X, train)
        model = clone(meta.estimator).fit(X_train, plan.y[train], **params)
        if val is None:  # explicit validation data
            X_v, y_v, s_v = plan.X_val, plan.y_val, plan.sensitive_val
        else:
            X_v, y_v = _rows(plan.X, val), plan.y[val]
            s_v = None if plan.sensitive is None else plan.sensitive[val]
        fold_classes = getattr(model, "classes_", classes)
        if len(fold_classes) < 2:
            meta._log(f"split {k + 1}: the training part has a single class; not scored")
            continue
        known = np.isin(y_v, fold_classes)
        if not known.all():  # a class missing from this training part
            X_v, y_v = _rows(X_v, np.flatnonzero(known)), y_v[known]
            s_v = None if s_v is None else s_v[known]
        if len(y_v) == 0:
            continue
        sw = None if plan.sample_weight is None else plan.sample_weight[train]
        s = influence_scores(
            model, X_train, plan.y[train], X_v, y_v, method=method,
            objective=objective, sensitive_features_val=s_v, sample_weight=sw,
            batch_size=meta.batch_size, random_state=seed, verbose=meta.verbose > 1,
            **(meta.adapter_options or {}),
        )
        total[train] += s
        count[train] += 1
        if want_proba and hasattr(model, "predict_proba"):
            rows = train if in_sample else val
            cols = np.searchsorted(classes, fold_classes)
            P = np.zeros((len(rows), len(classes)))
            P[:, cols] = model.predict_proba(_rows(plan.X, rows))
            proba[rows] = P
        meta._log(f"split {k + 1}: scored {len(train)} training rows "
                  f"against {len(y_v)} validation rows")
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return Scored(scores=scores, n_scored=count, proba=proba)


def _rows(X, idx):
    return _safe_indexing(X, idx)


def _splits(meta, plan, act_idx, rng):
    """Yield (train_rows, validation_rows or None, probabilities in-sample?)."""
    if plan.X_val is not None:
        yield act_idx, None, True
        return
    validation = meta.validation
    y_act = plan.y[act_idx]
    seed = int(rng.randint(np.iinfo(np.int32).max))
    if isinstance(validation, numbers.Integral):
        yield from ((act_idx[tr], act_idx[va], False)
                    for tr, va in _kfold(validation, y_act, seed).split(act_idx, y_act))
    elif isinstance(validation, numbers.Real):
        try:
            tr, va = train_test_split(np.arange(len(act_idx)), test_size=validation,
                                      stratify=y_act, random_state=seed)
        except ValueError:  # a class too small to stratify
            tr, va = train_test_split(np.arange(len(act_idx)), test_size=validation,
                                      random_state=seed)
        yield act_idx[tr], act_idx[va], True
    else:  # a cross-validation splitter
        X_act = _rows(plan.X, act_idx)
        for tr, va in validation.split(X_act, y_act):
            yield act_idx[np.asarray(tr)], act_idx[np.asarray(va)], False


def _kfold(k, y, seed):
    """Stratified k folds; plain k folds when no class has k members (tiny data)."""
    k = int(min(k, len(y)))
    _, counts = np.unique(y, return_counts=True)
    if counts.max() >= k:
        return StratifiedKFold(k, shuffle=True, random_state=seed)
    return KFold(k, shuffle=True, random_state=seed)
