"""influence_scores: inputs, errors, determinism, never mutating the caller's objects."""
import copy

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from skinfluence import IPEnsemble, InfluenceResult, influence_scores
from tests._reference import exact_logistic


@pytest.fixture
def fitted(binary_data):
    X, y, X_val, y_val = binary_data
    return exact_logistic().fit(X, y), X, y, X_val, y_val


def test_returns_one_score_per_training_sample_and_chunking_does_not_matter(fitted):
    model, X, y, X_val, y_val = fitted
    full = influence_scores(model, X, y, X_val, y_val, method="exact_hessian", batch_size=10**6)
    assert full.shape == (len(y),)
    for bs in (1, 7, 64):
        chunked = influence_scores(model, X, y, X_val, y_val, method="exact_hessian",
                                   batch_size=bs)
        np.testing.assert_allclose(chunked, full, rtol=1e-10)


def test_inputs_are_never_mutated(fitted):
    model, X, y, X_val, y_val = fitted
    before = [a.copy() for a in (X, y, X_val, y_val)]
    model_before = copy.deepcopy(model)
    for m in ("ip", "exact_hessian", "newton_loo", "ip_ensemble", "sampled_hessian"):
        influence_scores(model, X, y, X_val, y_val, method=m, random_state=0,
                         objective="adversarial_robustness")
    for a, b in zip((X, y, X_val, y_val), before):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.coef_, model_before.coef_)
    np.testing.assert_array_equal(model.intercept_, model_before.intercept_)


def test_pandas_and_sparse_inputs(fitted):
    model, X, y, X_val, y_val = fitted
    ref = influence_scores(model, X, y, X_val, y_val)
    cols = [f"f{i}" for i in range(X.shape[1])]
    df = influence_scores(model, pd.DataFrame(X, columns=cols), pd.Series(y),
                          pd.DataFrame(X_val, columns=cols), pd.Series(y_val))
    np.testing.assert_allclose(df, ref, rtol=1e-12)
    sparse = influence_scores(model, sp.csr_matrix(X), y, sp.csr_matrix(X_val), y_val)
    np.testing.assert_allclose(sparse, ref, rtol=1e-12)


def test_random_state_makes_stochastic_methods_reproducible(fitted):
    model, X, y, X_val, y_val = fitted
    method = IPEnsemble(n_members=3, perturbation="gaussian", sigma=0.2)
    a = influence_scores(model, X, y, X_val, y_val, method=method, random_state=5)
    b = influence_scores(model, X, y, X_val, y_val, method=method, random_state=5)
    c = influence_scores(model, X, y, X_val, y_val, method=method, random_state=6)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_result_object_states_the_sign_convention(fitted):
    model, X, y, X_val, y_val = fitted
    res = influence_scores(model, X, y, X_val, y_val, return_result=True)
    assert isinstance(res, InfluenceResult)
    assert "higher = more beneficial" in res.sign_convention
    assert res.objective_value > 0


@pytest.mark.parametrize("bad,match", [
    (dict(X="nan"), "NaN"),
    (dict(X_val="inf"), "infinity"),
    (dict(y="short"), "labels"),
    (dict(y_val="short"), "labels"),
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=-3), "batch_size"),
    (dict(batch_size=2.5), "batch_size"),
    (dict(method="hessian"), "Unknown method 'hessian'"),
    (dict(objective="accuracy"), "Unknown objective 'accuracy'"),
    (dict(method=SyntaxError), "method must be"),
    (dict(device="tpu"), "device"),
    (dict(sample_weight="short"), "sample_weight"),
])
def test_bad_input_gets_a_clear_error(fitted, bad, match):
    model, X, y, X_val, y_val = fitted
    kw = dict(X=X, y=y, X_val=X_val, y_val=y_val)
    if bad.get("X") == "nan":
        bad["X"] = np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X)
    if bad.get("X_val") == "inf":
        bad["X_val"] = np.where(np.arange(X_val.size).reshape(X_val.shape) == 3, np.inf, X_val)
    for key in ("y", "y_val"):
        if bad.get(key) == "short":
            bad[key] = kw[key][:-1]
    if bad.get("sample_weight") == "short":
        bad["sample_weight"] = np.ones(len(y) - 1)
    kw.update(bad)
    with pytest.raises((ValueError, TypeError), match=match):
        influence_scores(model, **kw)


def test_unfitted_estimator_and_one_class_y(fitted):
    model, X, y, X_val, y_val = fitted
    with pytest.raises(NotFittedError):
        influence_scores(LogisticRegression(), X, y, X_val, y_val)
    with pytest.raises(ValueError, match="single class"):
        influence_scores(model, X, np.zeros_like(y), X_val, y_val)


def test_verbose_shows_progress(fitted, capsys):
    model, X, y, X_val, y_val = fitted
    influence_scores(model, X, y, X_val, y_val, verbose=True)
    assert "scoring" in capsys.readouterr().err


def test_auto_batch_size_is_a_chunk_of_about_8_mib_and_changes_no_score(fitted):
    from skinfluence.models.linear import LinearModelAdapter

    model, X, y, X_val, y_val = fitted
    a = LinearModelAdapter(model)
    assert a.auto_batch_size() == 65536  # the cap: d = 5 rows are small
    wide = LogisticRegression().fit(np.tile(X, 40), y)
    assert LinearModelAdapter(wide).auto_batch_size() == 8 * 2**20 // (8 * 201)
    whole = influence_scores(model, X, y, X_val, y_val, method="newton_loo", batch_size=10**6)
    np.testing.assert_allclose(influence_scores(model, X, y, X_val, y_val,
                                                method="newton_loo"), whole, rtol=1e-12)
    with pytest.raises(TypeError, match="batch_size"):
        influence_scores(model, X, y, X_val, y_val, batch_size="big")


@pytest.mark.parametrize("kind", ["int64", "float32", "csr"])
def test_estimator_path_skips_the_second_check_and_scores_the_same(kind):
    # score_validated takes rows a meta-estimator validated; the adapter only
    # converts their dtype, and the scores are influence_scores' on float64 rows
    from skinfluence import ExactHessian, Utility
    from skinfluence.influence import score_validated

    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, (60, 3))
    y = (X.sum(axis=1) + rng.integers(0, 3, 60) > 7).astype(int)
    Xk = {"int64": X, "float32": X.astype(np.float32), "csr": sp.csr_matrix(X.astype(float))}[kind]
    model = LogisticRegression().fit(X.astype(float), y)
    got = score_validated(model, Xk, y, X[:20], y[:20], method=ExactHessian(),
                          objective=Utility(), random_state=0)
    want = influence_scores(model, X.astype(float), y, X[:20], y[:20], method="exact_hessian")
    np.testing.assert_allclose(got, want, rtol=1e-6 if kind == "float32" else 1e-12)


@pytest.mark.parametrize("scale", [1e200, 1e300])
def test_overflowing_regression_targets_are_named(scale):
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] + 0.1 * rng.normal(size=40)) * scale
    with np.errstate(all="ignore"):
        model = Ridge().fit(X, y)
        with pytest.raises(ValueError, match=r"^y has entries as large as .* rescale y"):
            influence_scores(model, X, y, X, y)


@pytest.mark.parametrize("value", [0.0, 3.5])
def test_a_constant_regression_target_has_zero_influence(value):
    # every residual is zero, so every per-row gradient is: the scores are exactly zero
    from sklearn.linear_model import LinearRegression, Ridge

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 2)), np.full(30, value)
    for model in (Ridge().fit(X, y), LinearRegression().fit(X, y)):
        scores = influence_scores(model, X, y, X[:5], y[:5], method="exact_hessian")
        np.testing.assert_allclose(scores, 0.0, atol=1e-12)
