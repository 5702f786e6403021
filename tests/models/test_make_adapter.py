"""A model family added from outside the package: one adapter module, one registration.

The squared-hinge LinearSVC adapter (tests/models/squared_hinge_svm.py) is
checked against references written from the formulas in torch autograd
(per-sample gradients, the training objective's Hessian) and against
leave-one-out refits of LinearSVC itself.
"""
import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.svm import LinearSVC

from skinfluence import ExactHessian, influence_scores
from skinfluence.models import make_adapter, register_adapter, unregister_adapter

from .squared_hinge_svm import SquaredHingeSVMAdapter, is_squared_hinge_svm


@pytest.fixture
def svm_family():
    register_adapter(is_squared_hinge_svm, SquaredHingeSVMAdapter)
    yield
    unregister_adapter(SquaredHingeSVMAdapter)


def _data(n=60, seed=0):
    X, y = make_classification(n_samples=n + 40, n_features=4, n_informative=3,
                               n_redundant=0, flip_y=0.1, random_state=seed)
    return X[:n], y[:n], X[n:], y[n:]


def _svm(C, fit_intercept=True):
    return LinearSVC(loss="squared_hinge", C=C, fit_intercept=fit_intercept, tol=1e-12,
                     max_iter=200_000, dual=False)


def _torch_losses(theta, X, y, fit_intercept):
    """max(0, 1 - s f)^2 per row, written from the formula (not the adapter)."""
    A = torch.as_tensor(X, dtype=torch.float64)
    f = A @ theta[:A.shape[1]] + (theta[-1] if fit_intercept else 0.0)
    s = torch.as_tensor(2.0 * y - 1.0, dtype=torch.float64)
    return torch.clamp(1.0 - s * f, min=0.0) ** 2


def _theta(model):
    w = model.coef_.ravel()
    return torch.tensor(np.r_[w, model.intercept_] if model.fit_intercept else w)


def test_make_adapter_dispatches_to_a_registered_family_only_while_registered(svm_family):
    X, y, _, _ = _data()
    model = _svm(1.0).fit(X, y)
    assert isinstance(make_adapter(model), SquaredHingeSVMAdapter)
    unregister_adapter(SquaredHingeSVMAdapter)
    with pytest.raises(TypeError, match="Unsupported estimator LinearSVC"):
        make_adapter(model)
    with pytest.raises(TypeError, match="callable"):
        register_adapter("LinearSVC", SquaredHingeSVMAdapter)


@pytest.mark.parametrize("C, fit_intercept", [(0.1, True), (3.0, False)])
def test_training_gradient_vanishes_at_liblinears_fit(C, fit_intercept):
    # the adapter's objective is LinearSVC's: autograd of 0.5|theta|^2 + C sum l_i is ~0
    X, y, _, _ = _data()
    model = _svm(C, fit_intercept).fit(X, y)
    theta = _theta(model).requires_grad_(True)
    loss_sum = C * _torch_losses(theta, X, y, fit_intercept).sum()
    F = 0.5 * theta @ theta + loss_sum
    (g,) = torch.autograd.grad(F, theta)
    (g_loss,) = torch.autograd.grad(C * _torch_losses(theta, X, y, fit_intercept).sum(), theta)
    assert g.norm() < 1e-4 * g_loss.norm()  # an unpenalised intercept or a factor: ~1


def _reference(model, X, y, X_val, y_val, sample_weight, hessian):
    """c_i / mean(c) * grad l_i . v with v = grad J (IP) or H_mean^-1 grad J, by autograd."""
    fi = model.fit_intercept
    theta = _theta(model).requires_grad_(True)
    J = _torch_losses(theta, X_val, y_val, fi).mean()
    (grad_J,) = torch.autograd.grad(J, theta)
    c = model.C * (np.ones(len(y)) if sample_weight is None else sample_weight)
    v = grad_J
    if hessian:
        def F_mean(t):
            losses = _torch_losses(t, X, y, fi)
            return (0.5 * t @ t + (torch.as_tensor(c) * losses).sum()) / c.sum()
        H = torch.autograd.functional.hessian(F_mean, theta.detach())
        v = torch.linalg.solve(H, grad_J)
    per_sample = [torch.autograd.grad(_torch_losses(theta, X[i:i + 1], y[i:i + 1], fi)[0],
                                      theta)[0] for i in range(len(y))]
    G = torch.stack(per_sample).numpy()
    return c / c.mean() * (G @ v.numpy())


@pytest.mark.parametrize("method", ["ip", ExactHessian(damping=0.0)])
@pytest.mark.parametrize("C, weighted", [(0.3, False), (2.0, True)])
def test_ip_and_exact_hessian_match_autograd_references(svm_family, method, C, weighted):
    X, y, X_val, y_val = _data()
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    model = _svm(C).fit(X, y, sample_weight=sw)
    got = influence_scores(model, X, y, X_val, y_val, method=method, sample_weight=sw,
                           batch_size=16)
    want = _reference(model, X, y, X_val, y_val, sw, hessian=method != "ip")
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-10 * np.abs(want).max())


def test_exact_hessian_tracks_leave_one_out_refits(svm_family):
    # score_i = n c_i grad l_i^T H_sum^-1 grad J ~ n (J(theta_-i) - J(theta))
    X, y, X_val, y_val = _data(n=80, seed=0)
    model = _svm(0.1).fit(X, y)
    adapter = make_adapter(model)

    def J(m):
        s = np.where(y_val == m.classes_[1], 1.0, -1.0)
        return np.mean(np.maximum(0.0, 1.0 - s * m.decision_function(X_val)) ** 2)

    base = J(model)
    loo = np.array([J(_svm(0.1).fit(np.delete(X, i, 0), np.delete(y, i))) - base
                    for i in range(len(y))])
    scores = influence_scores(model, X, y, X_val, y_val, method="exact_hessian") / len(y)
    assert adapter.n_params == X.shape[1] + 1
    assert np.corrcoef(scores, loo)[0, 1] > 0.98  # measured 0.995 (IP's scores: 0.96)
    np.testing.assert_allclose(scores, loo, atol=0.25 * np.abs(loo).max())  # measured 0.16


def _returns_a_list(estimator, *, device="auto"):
    return [estimator]


def _no_device(estimator):
    raise AssertionError("not reached")


@pytest.mark.parametrize("predicate, factory, match", [
    ("LinearSVC", SquaredHingeSVMAdapter, "callable predicate, got str"),
    (is_squared_hinge_svm, None, "callable factory, got NoneType"),
    (lambda: True, SquaredHingeSVMAdapter, r"predicate .* must accept predicate\(estimator\)"),
    (is_squared_hinge_svm, _no_device, r"factory '_no_device' must accept factory\(estimator, "
                                       r"\*, device"),
    (is_squared_hinge_svm, int, "no readable signature"),
])
def test_register_adapter_refuses_what_cannot_be_called_as_documented(predicate, factory, match):
    from skinfluence.models import _REGISTRY

    before = list(_REGISTRY)
    with pytest.raises(TypeError, match=match):
        register_adapter(predicate, factory)
    assert _REGISTRY == before  # nothing registered
    X, y, _, _ = _data()
    model = _svm(1.0).fit(X, y)
    register_adapter(is_squared_hinge_svm, _returns_a_list)
    try:
        with pytest.raises(TypeError, match="'_returns_a_list' returned a list; a factory "
                                            "given to register_adapter must return a"):
            make_adapter(model)
    finally:
        unregister_adapter(_returns_a_list)
    assert _REGISTRY == before


def _counting_svm():
    """A classifier skinfluence cannot score (no adapter, no predict_proba), counting fits."""
    from sklearn.svm import LinearSVC

    class CountingSVM(LinearSVC):
        fits = 0

        def fit(self, X, y, sample_weight=None):
            type(self).fits += 1
            return super().fit(X, y, sample_weight=sample_weight)

    return CountingSVM


@pytest.mark.parametrize("call", ["trimmer", "reweighter", "relabeler", "find_label_issues",
                                  "pipeline"])
def test_an_unsupported_model_is_refused_before_any_fit(call):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skinfluence import (InfluenceRelabeler, InfluenceReweighter, InfluenceTrimmer,
                             find_label_issues)

    SVM = _counting_svm()
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 3)), np.arange(80) % 2
    runs = {
        "trimmer": lambda: InfluenceTrimmer(SVM()).fit(X, y),
        "reweighter": lambda: InfluenceReweighter(SVM()).fit(X, y),
        "relabeler": lambda: InfluenceRelabeler(SVM()).fit(X, y),
        "find_label_issues": lambda: find_label_issues(SVM(), X, y),
        "pipeline": lambda: InfluenceTrimmer(make_pipeline(StandardScaler(), SVM())).fit(X, y),
    }
    with pytest.raises(TypeError, match="Unsupported estimator CountingSVM") as info:
        runs[call]()
    assert SVM.fits == 0
    message = str(info.value)
    for family in ("LogisticRegression", "Ridge", "MLPClassifier", "NeuralNetRegressor",
                   "Pipeline", "register_adapter", "pred_probs="):
        assert family in message


def test_a_forest_is_refused_by_the_reweighter_before_any_fit():
    """A forest has predict_proba, so trimming and relabeling rank its rows by held-out
    probability; weights need influence scores, refused before anything is fitted."""
    from sklearn.ensemble import RandomForestClassifier

    from skinfluence import InfluenceReweighter

    class CountingForest(RandomForestClassifier):
        fits = 0

        def fit(self, X, y, sample_weight=None):
            type(self).fits += 1
            return super().fit(X, y, sample_weight=sample_weight)

    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    with pytest.raises(TypeError, match="weights rows by their influence scores"):
        InfluenceReweighter(CountingForest(n_estimators=3)).fit(X, y)
    assert CountingForest.fits == 0


def test_precomputed_scores_need_no_supported_model():
    from sklearn.ensemble import RandomForestClassifier

    from skinfluence import InfluenceTrimmer

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), np.arange(60) % 2
    scores = np.arange(60.0)
    trim = InfluenceTrimmer(RandomForestClassifier(n_estimators=3, random_state=0),
                            fraction=0.1).fit(X, y, scores=scores)
    np.testing.assert_array_equal(np.flatnonzero(~trim.support_), np.arange(6))
