"""Bad input: every cause gets a clear error naming the argument, or a correct result.

One test per cause found by fuzzing ``influence_scores`` and the estimators.
Where the outcome is a result rather than an error, it is checked against an
independent reference (a refit, or the result of the same call made a
supported way).
"""
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import PredefinedSplit

from skinfluence import (
    AdversarialRobustness,
    DemographicParity,
    ExactHessian,
    InfluenceRelabeler,
    InfluenceTrimmer,
    IPEnsemble,
    NewtonLOO,
    SampledHessian,
    influence_scores,
)
from skinfluence.methods.samplers import FeatureSampler

from ._reference import exact_logistic


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=80) > 0).astype(int)
    return X, y, exact_logistic().fit(X, y)


def _scores(data, **kw):
    X, y, model = data
    return influence_scores(kw.pop("model", model), kw.pop("X", X), kw.pop("y", y),
                            kw.pop("X_val", X), kw.pop("y_val", y), **kw)


# ---------------------------------------------------------------- non-finite parameters
NON_FINITE = [
    ("damping", lambda v: dict(method=ExactHessian(damping=v))),
    ("damping", lambda v: dict(method=NewtonLOO(damping=v))),
    ("damping", lambda v: dict(method=SampledHessian(damping=v))),
    ("sigma", lambda v: dict(method=IPEnsemble(perturbation="gaussian", sigma=v))),
    ("dropout", lambda v: dict(method=IPEnsemble(dropout=v))),
    ("tol", lambda v: dict(method=ExactHessian(solver="cg", tol=v))),
    ("gamma", lambda v: dict(objective=AdversarialRobustness(gamma=v))),
    ("epsilon", lambda v: dict(objective=AdversarialRobustness(epsilon=v, norm="l2"))),
    ("fraction", lambda v: dict(method=SampledHessian(fraction=v))),
    ("lissa_scale", lambda v: dict(method=ExactHessian(solver="lissa", lissa_scale=v))),
]


@pytest.mark.parametrize("value", [np.nan, np.inf, -1.0], ids=["nan", "inf", "negative"])
@pytest.mark.parametrize("name, make", NON_FINITE,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(NON_FINITE)])
def test_non_finite_or_negative_parameters_are_named(data, name, make, value):
    with pytest.raises(ValueError, match=f"'{name}' parameter of"):
        _scores(data, **make(value))


def test_cg_with_negative_tol_is_refused_not_stopped_after_one_iteration(data):
    with pytest.raises(ValueError, match="'tol' parameter of ExactHessian"):
        _scores(data, method=ExactHessian(solver="cg", tol=-1))
    # tol=0 is legitimate: CG runs to its iteration cap and matches Cholesky
    cg = _scores(data, method=ExactHessian(solver="cg", tol=0.0, max_iter=50))
    chol = _scores(data, method=ExactHessian(solver="cholesky"))
    np.testing.assert_allclose(cg, chol, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("scale", [1e-6, 1e-2])
def test_lissa_below_the_largest_eigenvalue_is_an_error_not_1e150(data, scale):
    with pytest.raises(ValueError, match="LiSSA diverged.*lissa_scale"):
        _scores(data, method=ExactHessian(solver="lissa", lissa_scale=scale, max_iter=200))


def test_lissa_with_a_scale_above_the_spectrum_converges(data):
    X, y, _ = data
    # the mean Hessian's largest eigenvalue is at most max ||a_i||^2 / 4 (p(1-p) <= 1/4)
    bound = 0.25 * np.max(np.sum(X ** 2, axis=1) + 1) + 1.0
    lissa = _scores(data, method=ExactHessian(solver="lissa", lissa_scale=bound,
                                              max_iter=20000, tol=1e-14))
    chol = _scores(data, method=ExactHessian(solver="cholesky"))
    np.testing.assert_allclose(lissa, chol, rtol=1e-4, atol=1e-8)


def test_ipensemble_dropout_string_is_named(data):
    with pytest.raises((ValueError, TypeError), match="'dropout' parameter of IPEnsemble"):
        _scores(data, method=IPEnsemble(dropout="x"))


def test_sampler_parameters_validated(data):
    with pytest.raises(ValueError, match="'n_clusters' parameter of FeatureSampler"):
        _scores(data, method=SampledHessian(sampler=FeatureSampler(n_clusters=0)))


# ---------------------------------------------------------------- broken models
def test_nan_coefficients_are_refused_up_front(data):
    X, y, model = data
    bad = clone(model).fit(X, y)
    bad.coef_ = bad.coef_.copy()
    bad.coef_[0, 1] = np.nan
    for method in ("ip", "exact_hessian", "newton_loo"):
        with pytest.raises(ValueError, match="NaN or infinite parameters"):
            _scores(data, model=bad, method=method)


def test_zero_coefficient_model_under_the_robustness_objective(data):
    X, y, model = data
    flat = clone(model).fit(X, y)
    flat.coef_ = np.zeros_like(flat.coef_)
    with pytest.raises(ValueError, match="weights are all zero"):
        _scores(data, model=flat, objective="adversarial_robustness")


def test_overflowing_features_are_an_error_naming_the_cause(data):
    X, y, _ = data
    big = X.copy()
    big[0, 0] = 1e200
    with pytest.warns(Warning):  # lbfgs complains about the data too
        model = LogisticRegression().fit(big, y)
    for method in ("newton_loo", "exact_hessian"):
        with pytest.raises(ValueError, match="too large for float64.*rescale"):
            influence_scores(model, big, y, X, y, method=method)
    with pytest.raises(ValueError, match="overflow float64"):
        influence_scores(model, big, y, X, y, method=SampledHessian(sampler="logit"))


def test_logistic_regression_cv_lists_supported_families(data):
    X, y, _ = data
    model = LogisticRegressionCV(cv=3, Cs=3).fit(X, y)
    with pytest.raises(TypeError, match="LogisticRegressionCV is not supported.*"
                                        "LogisticRegression, SGDClassifier"):
        _scores(data, model=model)


# ---------------------------------------------------------------- bad data
def test_x_none(data):
    X, y, model = data
    with pytest.raises(ValueError, match="X is required"):
        influence_scores(model, None, y, X, y)
    with pytest.raises(ValueError, match="X_val"):
        influence_scores(model, X, y, None, y)
    with pytest.raises(ValueError):
        InfluenceTrimmer(LogisticRegression()).fit(None, y)


@pytest.mark.parametrize("labels, error, match", [
    (lambda n: np.array([None] * (n // 2) + ["a"] * (n - n // 2), dtype=object),
     ValueError, "missing labels"),
    (lambda n: np.array([1] * (n // 2) + ["a"] * (n - n // 2), dtype=object),
     TypeError, "mixes label types"),
], ids=["none", "mixed"])
def test_unsortable_labels(data, labels, error, match):
    X, y, model = data
    bad = labels(len(y))
    with pytest.raises(error, match=match):
        influence_scores(model, X, bad, X, y)
    with pytest.raises(error, match=f"y_val .*{match}"):
        influence_scores(model, X, y, X, bad)


@pytest.mark.parametrize("column", [7, -4])
def test_out_of_range_sensitive_column(data, column):
    with pytest.raises(ValueError, match=f"sensitive_feature={column} is out of range"):
        _scores(data, objective=DemographicParity(sensitive_feature=column))
    X, y, _ = data
    with pytest.raises(ValueError, match="out of range"):
        InfluenceTrimmer(LogisticRegression(), objective="demographic_parity",
                         sensitive_feature=column, fraction=0.1).fit(X, y)


def test_reordered_dataframe_columns_are_refused_as_sklearn_predict_does(data):
    X, y, _ = data
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    model = exact_logistic().fit(df, y)
    swapped = df[["c", "a", "b"]]
    with pytest.raises(ValueError):  # the reference: scikit-learn's own predict
        model.predict(swapped)
    with pytest.raises(ValueError, match="X: the columns .* in another order"):
        influence_scores(model, swapped, y, df, y)
    with pytest.raises(ValueError, match="X_val: the columns .* in another order"):
        influence_scores(model, df, y, swapped, y)
    renamed = df.rename(columns={"c": "z"})
    with pytest.raises(ValueError, match="missing: \\['c'\\]"):
        influence_scores(model, df, y, renamed, y)
    # the same columns in the fitted order score exactly as the numpy array
    np.testing.assert_allclose(influence_scores(model, df, y, df, y),
                               influence_scores(model, X, y, X, y), rtol=1e-12, atol=1e-15)


def test_one_class_training_fold_is_skipped_not_a_raw_error(data):
    X, y, _ = data
    # fold 0's training part (the rows held out in fold 1) holds class 0 only
    fold = np.where(y == 1, 0, 1)
    fold[np.flatnonzero(y == 0)[:5]] = 0
    trimmer = InfluenceTrimmer(LogisticRegression(), cv=PredefinedSplit(fold),
                               fraction=0.1, trusted=None).fit(X, y)
    scored = np.isfinite(trimmer.scores_)
    # split 1 trains on fold 0 (both classes) and scores those rows; split 0 is skipped
    np.testing.assert_array_equal(scored, fold == 0)
    model = LogisticRegression().fit(X[fold == 0], y[fold == 0])
    ref = influence_scores(model, X[fold == 0], y[fold == 0], X[fold == 1], y[fold == 1])
    np.testing.assert_allclose(trimmer.scores_[fold == 0], ref, rtol=1e-6, atol=1e-12)
    assert not (~trimmer.support_ & ~scored).any()  # unscored rows are never dropped


def test_unknown_validation_class_is_refused_by_both_entry_points(data):
    X, y, model = data
    y_val = np.where(y == 1, 2, 0)
    with pytest.raises(ValueError, match="never saw"):
        influence_scores(model, X, y, X, y_val)
    with pytest.raises(ValueError, match="y_val contains labels \\[2\\]"):
        InfluenceTrimmer(LogisticRegression(), fraction=0.1).fit(X, y, X_val=X, y_val=y_val)


@pytest.mark.parametrize("param", ["threshold", "fraction"])
@pytest.mark.parametrize("Est", [InfluenceTrimmer, InfluenceRelabeler])
def test_nan_selection_parameters(data, Est, param):
    X, y, _ = data
    with pytest.raises(ValueError, match=f"'{param}' parameter of {Est.__name__}"):
        Est(LogisticRegression(), **{param: np.nan}).fit(X, y)


def test_generator_random_state_is_accepted_and_reproducible(data):
    method = IPEnsemble(n_members=3, perturbation="gaussian", sigma=0.1)
    a = _scores(data, method=method, random_state=np.random.default_rng(5))
    b = _scores(data, method=method, random_state=np.random.default_rng(5))
    c = _scores(data, method=method, random_state=np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a - c)) > 1e-6
    with pytest.raises(ValueError, match="random_state must be"):
        _scores(data, method=method, random_state="seed")


# ---------------------------------------------------------------- torch inputs
@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    return module


def test_int64_rows_into_a_float_module(data, net):
    X, y, _ = data
    Xi = np.round(X * 3).astype(np.int64)
    with pytest.raises(ValueError, match="X: the module cannot run on rows .*int64"):
        influence_scores(net, Xi, y, X, y, loss=torch.nn.CrossEntropyLoss())


def test_wrong_feature_count_into_a_module(data, net):
    X, y, _ = data
    with pytest.raises(ValueError, match="X: the module cannot run on rows of shape \\(5,\\)"):
        influence_scores(net, np.hstack([X, X[:, :2]]), y, X, y,
                         loss=torch.nn.CrossEntropyLoss())


def test_nan_weight_net_with_cg(data, net):
    X, y, _ = data
    import copy
    bad = copy.deepcopy(net)
    with torch.no_grad():
        bad[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite parameters"):
        influence_scores(bad, X, y, X, y, method=ExactHessian(solver="cg"),
                         loss=torch.nn.CrossEntropyLoss())


@pytest.mark.parametrize("decay", [np.nan, np.inf, -1.0, {"0.weight": np.nan}])
def test_weight_decay_must_be_finite(data, net, decay):
    X, y, _ = data
    with pytest.raises(ValueError, match="weight_decay.* must be a finite number >= 0"):
        influence_scores(net, X, y, X, y, loss=torch.nn.CrossEntropyLoss(),
                         weight_decay=decay)


def test_weight_decay_is_read_not_dropped(data, net):
    """Decay wd on every parameter adds wd * I to the Hessian: the same as damping wd."""
    X, y, _ = data
    loss = torch.nn.CrossEntropyLoss()
    decayed = influence_scores(net, X, y, X, y, weight_decay=2.0, loss=loss,
                               method=ExactHessian(damping=2.0, solver="cholesky"))
    damped = influence_scores(net, X, y, X, y, weight_decay=0.0, loss=loss,
                              method=ExactHessian(damping=4.0, solver="cholesky"))
    np.testing.assert_allclose(decayed, damped, rtol=1e-4, atol=1e-6 * np.abs(damped).max())
    plain = influence_scores(net, X, y, X, y, weight_decay=0.0, loss=loss,
                             method=ExactHessian(damping=2.0, solver="cholesky"))
    assert np.max(np.abs(plain - decayed)) > 0.05 * np.max(np.abs(decayed))


# ---------------------------------------------------------------- missing groups
@pytest.mark.parametrize("missing", [None, np.nan])
@pytest.mark.parametrize("entry", ["trimmer", "trimmer_column", "influence_scores"])
def test_missing_group_in_an_object_sensitive_feature_is_named(data, missing, entry):
    """None / NaN among string groups: a ValueError naming the argument, not a sort TypeError."""
    X, y, model = data
    groups = np.array(["f", "m"] * (len(y) // 2), dtype=object)
    bad = groups.copy()
    bad[3] = missing
    kept = bad.copy()
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(sex=bad)
    calls = {
        "trimmer": lambda s: InfluenceTrimmer(LogisticRegression(), objective="demographic_parity",
                                              fraction=0.1, random_state=0)
        .fit(X, y, sensitive_features=s),
        "trimmer_column": lambda s: InfluenceTrimmer(
            LogisticRegression(), objective=DemographicParity(sensitive_feature="sex"),
            fraction=0.1, random_state=0).fit(frame.assign(sex=s), y),
        "influence_scores": lambda s: influence_scores(
            model, X, y, X, y, objective="demographic_parity", sensitive_features_val=s),
    }
    with pytest.raises(ValueError, match=r"(sensitive_features|'sex').* missing groups "
                                         r"\(None or NaN\) at 1 rows"):
        calls[entry](bad)
    np.testing.assert_array_equal(bad.astype(str), kept.astype(str))  # caller's array untouched
    if entry == "influence_scores":  # the same groups complete: scores as with integer codes
        np.testing.assert_allclose(calls[entry](groups),
                                   calls[entry]((groups == "m").astype(int)), rtol=1e-12)


# ---------------------------------------------------------------- user cv splits
@pytest.mark.parametrize("cv, match", [
    ([(np.arange(60), np.arange(60, 90))], r"cv split 0: the test indices run from 60 to 89, "
                                           r"but there are 80 rows"),
    ([(np.arange(10, 80), np.arange(10))] * 2 + [(np.arange(-5, 70), np.arange(70, 80))],
     r"cv split 2: the training indices run from -5"),
    ([(np.ones(80, bool), np.ones(79, bool))], r"cv split 0: its test mask has shape \(79,\)"),
    ([(np.arange(0.0, 40.0), np.arange(40, 80))], "1-D integer row indices"),
    ([(np.arange(0), np.arange(80))], "cv split 0 has no training rows"),
    ([], r"cv=\[\] gave no \(train, test\) split"),
])
@pytest.mark.parametrize("entry", ["trimmer", "find_label_issues"])
def test_user_cv_splits_are_checked_against_the_rows(data, cv, match, entry):
    from skinfluence import find_label_issues

    X, y, _ = data
    with pytest.raises(ValueError, match=match):
        if entry == "trimmer":
            InfluenceTrimmer(LogisticRegression(), fraction=0.1, cv=cv).fit(X, y)
        else:
            find_label_issues(LogisticRegression(), X, y, cv=cv)


def test_user_cv_as_masks_equals_the_same_splits_as_indices(data):
    X, y, _ = data
    folds = np.arange(len(y)) % 4
    as_masks = [(folds != k, folds == k) for k in range(4)]
    as_indices = [(np.flatnonzero(a), np.flatnonzero(b)) for a, b in as_masks]
    by_mask = InfluenceTrimmer(LogisticRegression(), fraction=0.1, cv=as_masks).fit(X, y)
    by_index = InfluenceTrimmer(LogisticRegression(), fraction=0.1, cv=as_indices).fit(X, y)
    reference = InfluenceTrimmer(LogisticRegression(), fraction=0.1,
                                 cv=PredefinedSplit(folds)).fit(X, y)
    np.testing.assert_allclose(by_mask.scores_, reference.scores_, rtol=1e-12)
    np.testing.assert_allclose(by_index.scores_, reference.scores_, rtol=1e-12)


# ---------------------------------------------------------------- overflow after the model
@pytest.mark.parametrize("method, where", [
    ("newton_loo", "one_row"),  # formerly "the Hessian is near-singular; increase damping"
    ("newton_loo", "all_rows"),  # formerly "not positive definite; use damping='auto'"
    ("exact_hessian", "fitted_on_it"), (SampledHessian(sampler="logit"), "one_row"),
])
def test_overflowing_features_are_not_blamed_on_the_hessian(data, method, where):
    """Finite X whose squares overflow float64: said so, not 'increase damping'."""
    X, y, model = data
    big = X * 1e200 if where != "one_row" else X.copy()
    big[0, 0] = 1e200
    if where == "fitted_on_it":
        with pytest.warns(Warning):  # lbfgs complains about the data too
            model = LogisticRegression().fit(big, y)
    with pytest.raises(ValueError, match=r"X has entries as large as \S+e\+200, too large for "
                                         r"float64.*rescale X") as info:
        influence_scores(model, big, y, X, y, method=method)
    assert "damping" not in str(info.value)


@pytest.mark.parametrize("method", ["ip", "newton_loo"])
def test_estimators_name_overflowing_features(data, method):
    X, y, _ = data  # every cross-fitted model is fitted on features near 1e200
    with pytest.warns(Warning), pytest.raises(ValueError, match=r"X has entries as large as "
                                                                r"\S+e\+200.*rescale X"):
        InfluenceTrimmer(LogisticRegression(), method=method, fraction=0.1).fit(X * 1e200, y)
