"""The linear adapter reproduces the estimator's real training objective."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Lasso, LogisticRegression, SGDClassifier
from sklearn.svm import LinearSVC

from skinfluence.models import make_adapter
from skinfluence.models.linear import LinearModelAdapter, ObjectiveTerms
from tests._reference import central_difference, exact_logistic, per_sample_gradients


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("C", [0.05, 1.0, 20.0])
def test_training_gradient_vanishes_at_the_fit(any_data, fit_intercept, C):
    X, y, _, _ = any_data
    model = exact_logistic(C=C, fit_intercept=fit_intercept).fit(X, y)
    adapter = LinearModelAdapter(model)
    grad = adapter.training_gradient(adapter.training_data(X, y))
    assert np.abs(grad).max() < 1e-8


def test_training_gradient_with_class_and_sample_weights(binary_data):
    X, y, _, _ = binary_data
    sw = np.random.default_rng(0).uniform(0.2, 2.0, len(y))
    model = exact_logistic(C=0.5, class_weight="balanced").fit(X, y, sample_weight=sw)
    adapter = LinearModelAdapter(model)
    assert np.abs(adapter.training_gradient(adapter.training_data(X, y, sw))).max() < 1e-8
    # without the weights the fit is visibly not a stationary point
    assert np.abs(adapter.training_gradient(adapter.training_data(X, y))).max() > 1e-3


def test_unpenalised_and_elasticnet_objectives(binary_data):
    X, y, _, _ = binary_data
    model = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(X, y)
    adapter = LinearModelAdapter(model)
    assert adapter._lam == 0.0
    assert np.abs(adapter.training_gradient(adapter.training_data(X, y))).max() < 1e-7
    enet = LogisticRegression(C=1.0, l1_ratio=0.3, solver="saga", tol=1e-12, max_iter=100000)
    assert LinearModelAdapter(enet.fit(X, y))._lam == pytest.approx(0.7)


def test_sgd_objective_is_mean_loss_plus_alpha(binary_data):
    X, y, _, _ = binary_data
    sgd = SGDClassifier(loss="log_loss", alpha=0.01, max_iter=20000, tol=None,
                        learning_rate="constant", eta0=0.001, average=True, random_state=0)
    adapter = LinearModelAdapter(sgd.fit(X, y))
    assert adapter._c == "mean" and adapter._lam == pytest.approx(0.01)
    grad = adapter.training_gradient(adapter.training_data(X, y))
    # averaged SGD gets near the optimum; its gradient is small against the loss gradient scale
    assert np.abs(grad).max() < 2e-3


def test_probabilities_match_the_estimator(any_data):
    X, y, X_val, _ = any_data
    model = exact_logistic(C=1.0).fit(X, y)
    adapter = LinearModelAdapter(model)
    np.testing.assert_allclose(adapter.predict_proba(X_val), model.predict_proba(X_val),
                               rtol=1e-10, atol=1e-12)


def test_hessian_is_the_derivative_of_the_training_gradient(any_data):
    X, y, _, _ = any_data
    model = exact_logistic(C=0.3).fit(X, y)
    a = LinearModelAdapter(model)
    train = a.training_data(X, y)
    H = a.hessian(train)
    c_total = train.weight.sum()
    for j in range(0, a.n_params, 3):
        col = central_difference(lambda t: a.training_gradient(train, t)[j], a.theta, h=1e-5)
        np.testing.assert_allclose(H[j], col / c_total, rtol=1e-5, atol=1e-8)
    v = np.random.default_rng(0).standard_normal(a.n_params)
    np.testing.assert_allclose(a.hvp(train, v, batch_size=37), H @ v, rtol=1e-10, atol=1e-12)


def test_per_sample_gradients_match_autograd(any_data):
    X, y, _, _ = any_data
    a = LinearModelAdapter(exact_logistic(C=1.0).fit(X, y))
    train = a.training_data(X, y)
    G = per_sample_gradients(a, X, train.y)
    v = np.random.default_rng(1).standard_normal(a.n_params)
    scores = a.score_pass(train, [a.theta], [v], batch_size=17)[:, 0]
    np.testing.assert_allclose(scores, G @ v, rtol=1e-10, atol=1e-12)


def test_sparse_input_gives_the_same_scores(binary_data):
    X, y, _, _ = binary_data
    a = LinearModelAdapter(exact_logistic().fit(X, y))
    v = np.arange(a.n_params, dtype=float)
    dense = a.score_pass(a.training_data(X, y), [a.theta], [v], batch_size=50)
    sparse = a.score_pass(a.training_data(sp.csr_matrix(X), y), [a.theta], [v], batch_size=50)
    np.testing.assert_allclose(dense, sparse, rtol=1e-12)
    H_dense = a.hessian(a.training_data(X, y))
    np.testing.assert_allclose(a.hessian(a.training_data(sp.csr_matrix(X), y)), H_dense,
                               rtol=1e-12)


@pytest.mark.parametrize("kind", ["loss", "proba"])
def test_objective_gradient_and_hessian_by_finite_differences(any_data, kind):
    X, y, X_val, y_val = any_data
    a = LinearModelAdapter(exact_logistic().fit(X, y))
    coef = np.random.default_rng(2).uniform(-1, 1, len(y_val)) / len(y_val)
    terms = ObjectiveTerms(X_val, a.encode(y_val, name="y_val", n=len(y_val)), coef, kind, 1)
    g = central_difference(lambda t: a.objective_value(terms, t), a.theta)
    np.testing.assert_allclose(a.objective_gradient(terms), g, rtol=1e-6, atol=1e-9)
    H = a.objective_hessian(terms)
    for j in range(a.n_params):
        col = central_difference(lambda t: a.objective_gradient(terms, t)[j], a.theta, h=1e-5)
        np.testing.assert_allclose(H[j], col, rtol=1e-5, atol=1e-8)


def test_linear_attack_crosses_the_boundary(any_data):
    X, y, X_val, _ = any_data
    model = exact_logistic().fit(X, y)
    a = LinearModelAdapter(model)
    Xa = a.linear_attack(X_val, 1.3)
    F, Fa = a.logits(a.theta, X_val), a.logits(a.theta, Xa)
    if not a.multinomial:
        np.testing.assert_allclose(Fa[:, 0], -0.3 * F[:, 0], atol=1e-10)
    else:
        top = F.argmax(1)
        assert np.mean(Fa.argmax(1) != top) > 0.95
    assert np.mean(model.predict(Xa) != model.predict(X_val)) > 0.95
    assert not np.shares_memory(Xa, X_val)


def test_unsupported_estimators_get_a_type_error_listing_supported(binary_data):
    X, y, _, _ = binary_data
    with pytest.raises(TypeError, match="LogisticRegression"):
        make_adapter(LinearSVC().fit(X, y))
    with pytest.raises(TypeError, match="Supported model families.*Ridge"):
        make_adapter(Lasso().fit(X, y))
    with pytest.raises(TypeError, match="hinge"):
        make_adapter(SGDClassifier(loss="hinge").fit(X, y))


def test_unfitted_and_multiclass_sgd_are_rejected(multiclass_data):
    X, y, _, _ = multiclass_data
    with pytest.raises(NotFittedError):
        make_adapter(LogisticRegression())
    with pytest.raises(TypeError, match="one-vs-rest"):
        make_adapter(SGDClassifier(loss="log_loss").fit(X, y))


def test_unknown_labels_and_wrong_width_are_errors(binary_data):
    X, y, _, _ = binary_data
    a = LinearModelAdapter(exact_logistic().fit(X, y))
    with pytest.raises(ValueError, match="never saw"):
        a.training_data(X, np.where(y == 1, 7, y))
    with pytest.raises(ValueError, match="features"):
        a.training_data(X[:, :3], y)
    with pytest.raises(ValueError, match="device"):
        make_adapter(exact_logistic().fit(X, y), device="cuda")


def _softmax_hessian_by_kronecker(X, y, model, fit_intercept):
    """Mean-form Hessian written from its formula: mean_i (diag(p) - p p^T) (x) a a^T + reg."""
    P = model.predict_proba(X)
    A = np.hstack([X, np.ones((len(X), 1))]) if fit_intercept else X
    H = sum(np.kron(np.diag(p) - np.outer(p, p), np.outer(a, a)) for p, a in zip(P, A))
    H = H / len(X)
    reg = np.ones(A.shape[1]) / (model.C * len(X))
    if fit_intercept:
        reg[-1] = 0.0
    return H + np.diag(np.tile(reg, P.shape[1]))


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("batch_size,workers", [(7, 3), (4096, 1), (50, 2)])
def test_multinomial_hessian_matches_the_kronecker_sum(fit_intercept, batch_size, workers,
                                                       monkeypatch):
    from sklearn.datasets import make_classification
    import skinfluence.models._row_chunks as row_chunks

    X, y = make_classification(120, 4, n_informative=3, n_redundant=0, n_classes=4,
                               n_clusters_per_class=1, random_state=3)
    model = exact_logistic(C=0.7, fit_intercept=fit_intercept).fit(X, y)
    monkeypatch.setattr(row_chunks, "n_workers", lambda: workers)
    a = LinearModelAdapter(model)
    H = a.hessian(a.training_data(X, y), batch_size=batch_size)
    np.testing.assert_allclose(H, _softmax_hessian_by_kronecker(X, y, model, fit_intercept),
                               rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("method", ["ip", "exact_hessian", "newton_loo"])
def test_float32_rows_are_scored_as_their_float64_values_without_a_whole_copy(n_classes,
                                                                              method):
    import tracemalloc

    from sklearn.datasets import make_classification

    from skinfluence import influence_scores

    X, y = make_classification(20_000, 60, n_informative=10, n_classes=n_classes,
                               random_state=0)
    X32, X_val, y_val = X.astype(np.float32), X[:200], y[:200]
    model = LogisticRegression(max_iter=500).fit(X32, y)
    assert LinearModelAdapter(model).training_data(X32, y).X.dtype == np.float32
    tracemalloc.start()
    got = influence_scores(model, X32, y, X_val, y_val, method=method, batch_size=500)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    want = influence_scores(model, X32.astype(np.float64), y, X_val, y_val, method=method,
                            batch_size=500)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
    if method != "newton_loo":  # its per-chunk (rows x K * P) products are a fixed cost
        assert peak < X32.nbytes  # a float64 copy of X alone would be twice its size


@pytest.mark.parametrize("method,options", [
    ("ip", {}), ("exact_hessian", {}), ("newton_loo", {}), ("sampled_hessian", {}),
    ("exact_hessian", {"solver": "cg"}),
])
@pytest.mark.parametrize("where", [0, -1])
def test_non_finite_training_rows_are_reported_by_every_pass(any_data, method, options, where):
    from skinfluence import influence_scores
    from skinfluence.methods import METHODS

    X, y, X_val, y_val = any_data
    model = exact_logistic().fit(X, y)
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[where, 1] = bad
        for rows in (Xb, sp.csr_matrix(Xb)):
            with pytest.raises(ValueError, match="X: .*(NaN|infinity)"):
                influence_scores(model, rows, y, X_val, y_val, random_state=0,
                                 method=METHODS[method](**options))


@pytest.mark.parametrize("classes", [[0, 1, 2], [3, 4, 5], [-1, 0, 1], [0, 2, 5],
                                     [10**12, 10**12 + 1, 10**12 + 2]])
def test_labels_map_to_the_positions_of_the_classes(classes):
    X = np.random.default_rng(0).standard_normal((90, 3))
    labels = np.array(classes)[np.arange(90) % 3]
    a = LinearModelAdapter(LogisticRegression().fit(X, labels))
    got = a.encode(labels, name="y", n=90)
    np.testing.assert_array_equal(got, [classes.index(v) for v in labels])
    np.testing.assert_array_equal(a.encode(labels.astype(float), name="y", n=90), got)
    with pytest.raises(ValueError, match=r"\[6\] that the estimator never saw"):
        a.encode(np.where(np.arange(90) == 5, 6, labels), name="y", n=90)


def test_linear_passes_leave_the_callers_blas_threads_alone(binary_data):
    from threadpoolctl import threadpool_info, threadpool_limits

    from skinfluence import influence_scores

    X, y, X_val, y_val = binary_data
    model = exact_logistic().fit(X, y)
    for n in (1, 2):
        with threadpool_limits(n, user_api="blas"):
            influence_scores(model, X, y, X_val, y_val, method="exact_hessian")
            assert {i["num_threads"] for i in threadpool_info()
                    if i["user_api"] == "blas"} == {n}
