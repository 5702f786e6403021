"""influence_matrix: each row is the per-row influence_scores call; top-k; bad input."""
import numpy as np
import pytest
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from skinfluence import (ExactHessian, IPEnsemble, NewtonLOO, SampledHessian, influence_matrix,
                         influence_scores)

METHODS = ["ip", IPEnsemble(n_members=3), "exact_hessian",
           SampledHessian(sampler="random", fraction=0.5), "newton_loo",
           NewtonLOO(second_order=False)]


def _per_row(model, X, y, Xt, yt, method, **kw):
    return np.stack([influence_scores(model, X, y, Xt[j:j + 1], yt[j:j + 1], method=method,
                                      random_state=0, **kw) for j in range(len(yt))])


@pytest.mark.parametrize("method", METHODS, ids=str)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_rows_equal_per_row_influence_scores(any_data, method, fit_intercept):
    X, y, Xv, yv = any_data
    Xt, yt = Xv[:7], yv[:7]
    model = LogisticRegression(C=3.0, fit_intercept=fit_intercept).fit(X, y)
    ref = _per_row(model, X, y, Xt, yt, method, batch_size=64)
    for test_batch_size, batch_size in [(None, 64), (3, 50)]:
        M = influence_matrix(model, X, y, Xt, yt, method=method, random_state=0,
                             batch_size=batch_size, test_batch_size=test_batch_size)
        np.testing.assert_allclose(M, ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("method", ["exact_hessian", "newton_loo"])
def test_linear_rows_with_sample_weight(binary_data, method):
    X, y, Xv, yv = binary_data
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    model = LogisticRegression().fit(X, y, sample_weight=w)
    ref = _per_row(model, X, y, Xv[:4], yv[:4], method, sample_weight=w)
    M = influence_matrix(model, X, y, Xv[:4], yv[:4], method=method, sample_weight=w)
    np.testing.assert_allclose(M, ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("C", [0.5, 10.0])
def test_exact_hessian_matrix_equals_closed_form(binary_data, C):
    """Reference built from the formula: M[j, i] = g_j^T H^-1 g_i, H the mean-form Hessian
    of C * sum(log-loss) + 0.5 ||w||^2 (intercept unpenalised), written with numpy here."""
    X, y, Xv, yv = binary_data
    model = LogisticRegression(C=C).fit(X, y)
    A, At = np.hstack([X, np.ones((len(X), 1))]), np.hstack([Xv, np.ones((len(Xv), 1))])
    theta = np.append(model.coef_.ravel(), model.intercept_)
    p, pt = expit(A @ theta), expit(At @ theta)
    G, Gt = (p - y)[:, None] * A, (pt - yv)[:, None] * At
    reg = np.ones(A.shape[1]) / (C * len(X))
    reg[-1] = 0.0
    H = (A * (p * (1 - p))[:, None]).T @ A / len(X) + np.diag(reg)
    ref = Gt @ np.linalg.solve(H, G.T)
    M = influence_matrix(model, X, y, Xv, yv, method="exact_hessian")
    np.testing.assert_allclose(M, ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max())
    ip = influence_matrix(model, X, y, Xv, yv, method="ip")
    np.testing.assert_allclose(ip, Gt @ G.T, rtol=1e-10, atol=1e-14 * np.abs(ip).max())


@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("test_batch_size", [None, 2])
def test_top_k_are_the_extremes_of_the_full_matrix(multiclass_data, k, test_batch_size):
    X, y, Xv, yv = multiclass_data
    model = LogisticRegression().fit(X, y)
    M = influence_matrix(model, X, y, Xv[:5], yv[:5], method="exact_hessian")
    top = influence_matrix(model, X, y, Xv[:5], yv[:5], method="exact_hessian", top_k=k,
                           test_batch_size=test_batch_size)
    order = np.argsort(M, axis=1, kind="stable")
    np.testing.assert_array_equal(top.proponents, order[:, ::-1][:, :k])
    np.testing.assert_array_equal(top.opponents, order[:, :k])
    np.testing.assert_allclose(top.proponent_scores, np.sort(M, axis=1)[:, ::-1][:, :k])
    np.testing.assert_allclose(top.opponent_scores, np.sort(M, axis=1)[:, :k])


def test_top_k_equal_to_n_train_sorts_every_row(binary_data):
    X, y, Xv, yv = binary_data
    model = LogisticRegression().fit(X, y)
    M = influence_matrix(model, X, y, Xv[:2], yv[:2])
    top = influence_matrix(model, X, y, Xv[:2], yv[:2], top_k=len(y))
    np.testing.assert_allclose(top.proponent_scores, -np.sort(-M, axis=1))


def test_caller_arrays_and_estimator_untouched(binary_data):
    X, y, Xv, yv = binary_data
    model = LogisticRegression().fit(X, y)
    copies = [a.copy() for a in (X, y, Xv, yv, model.coef_, model.intercept_)]
    influence_matrix(model, X, y, Xv, yv, method="newton_loo")
    for a, b in zip((X, y, Xv, yv, model.coef_, model.intercept_), copies):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kw, match", [
    ({"top_k": 0}, "top_k"), ({"top_k": 2.5}, "top_k"), ({"test_batch_size": 0}, "test_batch"),
    ({"method": "nope"}, "method"),
])
def test_bad_arguments_are_named(binary_data, kw, match):
    X, y, Xv, yv = binary_data
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match=match):
        influence_matrix(model, X, y, Xv, yv, **kw)


def test_bad_test_rows_are_named(binary_data):
    X, y, Xv, yv = binary_data
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="X_test"):
        influence_matrix(model, X, y, Xv[:, :2], yv)
    with pytest.raises(ValueError, match="y_test"):
        influence_matrix(model, X, y, Xv, yv + 7)


def test_dask_training_rows_refused(binary_data):
    da = pytest.importorskip("dask.array")
    X, y, Xv, yv = binary_data
    model = LogisticRegression().fit(X, y)
    with pytest.raises(TypeError, match="Dask"):
        influence_matrix(model, da.from_array(X, chunks=50), y, Xv, yv)


def test_exact_hessian_cg_block_equals_per_row(binary_data):
    X, y, Xv, yv = binary_data
    model = LogisticRegression().fit(X, y)
    method = ExactHessian(solver="cg")
    ref = _per_row(model, X, y, Xv[:3], yv[:3], method)
    M = influence_matrix(model, X, y, Xv[:3], yv[:3], method=method)
    np.testing.assert_allclose(M, ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("method", ["ip", "newton_loo"])
def test_sparse_rows_give_the_dense_matrix(multiclass_data, method):
    sparse = pytest.importorskip("scipy.sparse")
    X, y, Xv, yv = multiclass_data
    model = LogisticRegression().fit(X, y)
    dense = influence_matrix(model, X, y, Xv[:4], yv[:4], method=method)
    M = influence_matrix(model, sparse.csr_matrix(X), y, sparse.csr_matrix(Xv[:4]), yv[:4],
                         method=method)
    np.testing.assert_allclose(M, dense, rtol=1e-8, atol=1e-12 * np.abs(dense).max())


@pytest.mark.parametrize("seed", [1, 2])
def test_random_state_draws_the_members_of_the_per_row_calls(binary_data, seed):
    X, y, Xv, yv = binary_data
    model = LogisticRegression().fit(X, y)
    method = IPEnsemble(n_members=4, perturbation="gaussian", sigma=0.1)
    ref = np.stack([influence_scores(model, X, y, Xv[j:j + 1], yv[j:j + 1], method=method,
                                     random_state=seed) for j in range(3)])
    M = influence_matrix(model, X, y, Xv[:3], yv[:3], method=method, random_state=seed)
    other = influence_matrix(model, X, y, Xv[:3], yv[:3], method=method, random_state=seed + 10)
    np.testing.assert_allclose(M, ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max())
    assert not np.allclose(M, other)  # other members, other scores


@pytest.mark.parametrize("verbose", [False, True])
def test_verbose_shows_a_bar_over_every_pass(binary_data, verbose, capsys):
    pytest.importorskip("tqdm")
    X, y, Xv, yv = binary_data
    model = LogisticRegression().fit(X, y)
    influence_matrix(model, X, y, Xv[:4], yv[:4], top_k=2, test_batch_size=2, verbose=verbose)
    err = capsys.readouterr().err
    assert ("scoring" in err) == verbose
    if verbose:  # two passes over the 200 training rows
        assert "400/400" in err


@pytest.mark.parametrize("method", ["exact_hessian", "newton_loo"])
def test_pipeline_rows_equal_per_row_influence_scores(multiclass_data, method):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, Xv, yv = multiclass_data
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(3 * X + 1, y)
    ref = _per_row(pipe, 3 * X + 1, y, 3 * Xv[:3] + 1, yv[:3], method)
    M = influence_matrix(pipe, 3 * X + 1, y, 3 * Xv[:3] + 1, yv[:3], method=method)
    np.testing.assert_allclose(M, ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max())
