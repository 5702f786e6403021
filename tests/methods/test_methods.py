"""Each method's direction, checked against an independent reference."""
import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import log_loss, roc_auc_score

from skinfluence import (IP, AdversarialRobustness, DemographicParity, ExactHessian,
                         IPEnsemble, SampledHessian, Utility, influence_scores)
from skinfluence.datasets import make_flipped_blobs
from skinfluence.models.linear import LinearModelAdapter
from tests._reference import (correlations, exact_logistic, flat_float64_parameters,
                              loo_problem, per_sample_gradients)


def _objectives(X_val):
    s = (X_val[:, 0] > 0).astype(int)
    return [(Utility(), None), (DemographicParity(), s), (AdversarialRobustness(gamma=1.3), None)]


def test_ip_is_the_brute_force_inner_product_for_every_objective(any_data):
    X, y, X_val, y_val = any_data
    model = exact_logistic(C=1.0).fit(X, y)
    a = LinearModelAdapter(model)
    G = per_sample_gradients(a, X, a.encode(y, name="y", n=len(y)))
    for objective, s in _objectives(X_val):
        if isinstance(objective, DemographicParity) and a.multinomial:
            objective.set_params(positive_class=model.classes_[0])
        terms = objective.terms(a, X_val, y_val, s)
        grad_J = a.objective_gradient(terms)
        scores = influence_scores(model, X, y, X_val, y_val, method="ip", objective=objective,
                                  sensitive_features_val=s, batch_size=33)
        np.testing.assert_allclose(scores, G @ grad_J, rtol=1e-10, atol=1e-13)


def test_utility_value_is_sklearn_log_loss(any_data):
    X, y, X_val, y_val = any_data
    model = exact_logistic().fit(X, y)
    res = influence_scores(model, X, y, X_val, y_val, return_result=True)
    assert res.objective_value == pytest.approx(log_loss(y_val, model.predict_proba(X_val)),
                                                rel=1e-12)


def test_sampled_hessian_with_the_full_set_is_exact_hessian(any_data):
    X, y, X_val, y_val = any_data
    model = exact_logistic(C=0.5).fit(X, y)
    exact = influence_scores(model, X, y, X_val, y_val, method="exact_hessian")
    sampled = influence_scores(model, X, y, X_val, y_val, random_state=0,
                               method=SampledHessian(sampler="random", fraction=1.0))
    np.testing.assert_allclose(sampled, exact, rtol=1e-9, atol=1e-12)


def test_one_unperturbed_member_is_ip_and_members_are_ip_at_their_parameters(any_data):
    X, y, X_val, y_val = any_data
    model = exact_logistic().fit(X, y)
    ip = influence_scores(model, X, y, X_val, y_val, method=IP())
    one = influence_scores(model, X, y, X_val, y_val, method=IPEnsemble(n_members=1))
    np.testing.assert_allclose(one, ip, rtol=1e-12)
    res = influence_scores(model, X, y, X_val, y_val, random_state=3, return_result=True,
                           method=IPEnsemble(n_members=4, perturbation="gaussian", sigma=0.1))
    assert res.member_scores.shape == (len(y), 4)
    np.testing.assert_allclose(res.member_scores[:, 0], ip, rtol=1e-12)
    np.testing.assert_allclose(res.scores, res.member_scores.mean(axis=1))
    assert res.member_scores[:, 1:].std(axis=1).max() > 0  # perturbed members differ


def test_ensemble_member_equals_direct_ip_at_the_perturbed_parameters(binary_data):
    X, y, X_val, y_val = binary_data
    model = exact_logistic().fit(X, y)
    res = influence_scores(model, X, y, X_val, y_val, random_state=7, return_result=True,
                           method=IPEnsemble(n_members=3, dropout=0.3))
    # rebuild member 2 by hand: refit a LogisticRegression with those coefficients
    a = LinearModelAdapter(model)
    rng = np.random.default_rng(np.random.RandomState(7).randint(2**31 - 1))
    thetas = IPEnsemble(n_members=3, dropout=0.3).member_parameters(
        type("Ctx", (), {"adapter": a, "rng": rng})())
    twin = exact_logistic().fit(X, y)
    twin.coef_ = thetas[2][:-1].reshape(1, -1).copy()
    twin.intercept_ = thetas[2][-1:].copy()
    direct = influence_scores(twin, X, y, X_val, y_val, method="ip")
    np.testing.assert_allclose(res.member_scores[:, 2], direct, rtol=1e-10)


@pytest.mark.parametrize("solver", ["cg", "lissa"])
def test_iterative_solvers_agree_with_cholesky(any_data, solver):
    X, y, X_val, y_val = any_data
    model = exact_logistic(C=0.5).fit(X, y)
    chol = influence_scores(model, X, y, X_val, y_val, method=ExactHessian(solver="cholesky"))
    it = influence_scores(model, X, y, X_val, y_val, random_state=0,
                          method=ExactHessian(solver=solver, tol=1e-12, max_iter=20000))
    np.testing.assert_allclose(it, chol, rtol=1e-5, atol=1e-8 * np.abs(chol).max())


def test_auto_damping_is_zero_for_a_convex_fit_and_reported(binary_data):
    X, y, X_val, y_val = binary_data
    model = exact_logistic().fit(X, y)
    res = influence_scores(model, X, y, X_val, y_val, method="exact_hessian", return_result=True)
    assert res.damping == 0.0
    damped = influence_scores(model, X, y, X_val, y_val, return_result=True,
                              method=ExactHessian(damping=10.0))
    assert damped.damping == 10.0
    assert not np.allclose(damped.scores, res.scores)


@pytest.mark.parametrize("objective,threshold", [
    ("utility", 0.99), ("demographic_parity", 0.95), ("adversarial_robustness", 0.95)])
def test_exact_hessian_tracks_leave_one_out_retraining(objective, threshold):
    """Predicted vs actual change of J when a sample is left out."""
    obj = {"utility": Utility(), "demographic_parity": DemographicParity(),
           "adversarial_robustness": AdversarialRobustness()}[objective]
    model, X_tr, y_tr, X_val, y_val, s_val, actual = loo_problem(obj)
    scores = influence_scores(model, X_tr, y_tr, X_val, y_val, method="exact_hessian",
                              objective=obj, sensitive_features_val=s_val)
    pearson, _ = correlations(scores / len(y_tr), actual)
    assert pearson >= threshold
    # same units: removing z_i changes J by about score_i / n
    np.testing.assert_allclose(np.median(np.abs(scores / len(y_tr))),
                               np.median(np.abs(actual)), rtol=0.2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paper_synthetic_case_finds_the_flipped_labels(seed):
    """The IP Ensemble paper's linear case: flipped blobs, C=100, no intercept."""
    d = make_flipped_blobs(random_state=seed)
    model = exact_logistic(C=100, fit_intercept=False).fit(d.X_train, d.y_train)
    ip = influence_scores(model, d.X_train, d.y_train, d.X_test, d.y_test, method="ip")
    ex = influence_scores(model, d.X_train, d.y_train, d.X_test, d.y_test,
                          method="exact_hessian")
    assert roc_auc_score(d.flipped, -ip) >= 0.95
    assert roc_auc_score(d.flipped, -ex) >= 0.95
    assert spearmanr(ip, ex)[0] >= 0.9
    assert np.all(ex[d.flipped] < 0)  # flipped samples are detrimental


def test_sampled_hessian_logit_sampler_is_close_to_exact(binary_data):
    X, y, X_val, y_val = binary_data
    model = exact_logistic().fit(X, y)
    exact = influence_scores(model, X, y, X_val, y_val, method="exact_hessian")
    for sampler in ("random", "feature", "logit"):
        approx = influence_scores(model, X, y, X_val, y_val, random_state=0,
                                  method=SampledHessian(sampler=sampler, fraction=0.5))
        assert spearmanr(approx, exact)[0] > 0.9, sampler


def test_sampled_hessian_cg_uses_the_subset_hvp(binary_data):
    X, y, X_val, y_val = binary_data
    model = exact_logistic(C=0.5).fit(X, y)
    chol = influence_scores(model, X, y, X_val, y_val, random_state=4,
                            method=SampledHessian(sampler="logit", fraction=0.3))
    cg = influence_scores(model, X, y, X_val, y_val, random_state=4,
                          method=SampledHessian(sampler="logit", fraction=0.3, solver="cg"))
    np.testing.assert_allclose(cg, chol, rtol=1e-6, atol=1e-9 * np.abs(chol).max())


@pytest.mark.parametrize("lowest", [-0.5, -0.05])
def test_lanczos_shift_makes_an_indefinite_operator_positive_definite(lowest):
    from skinfluence.methods._hessian_solve import _positive_definite_shift
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    eig = np.linspace(lowest, 3.0, 40)
    H = Q @ np.diag(eig) @ Q.T
    shift = _positive_definite_shift(lambda x: H @ x, 40)
    # measured: 0.55 (lowest -0.5) and 0.49 (lowest -0.05): a few Lanczos steps overshoot
    # on a spectrum this even, never undershoot here
    assert -lowest < shift < -lowest + 0.6
    assert np.linalg.eigvalsh(H + shift * np.eye(40))[0] > 0
    assert _positive_definite_shift(lambda x: (H + 4.0 * np.eye(40)) @ x, 40) == 0.0


def test_lanczos_shift_spends_lanczos_steps_hvps():
    from skinfluence.methods._hessian_solve import LANCZOS_STEPS, _positive_definite_shift
    rng = np.random.default_rng(1)
    n = 3000  # clustered spectrum
    Q, _ = np.linalg.qr(rng.standard_normal((n, 60)))
    eig = np.concatenate([[-1.0, -0.999], np.linspace(0.0, 1e-3, 58)])
    calls = []

    def hvp(x):
        calls.append(1)
        return Q @ (eig * (Q.T @ x)) + 2.0 * x  # smallest eigenvalue 1.0: no shift needed
    assert _positive_definite_shift(hvp, n) == 0.0
    assert len(calls) == LANCZOS_STEPS


@pytest.mark.parametrize("start", [0.0, 0.3])
def test_cg_raises_a_damping_that_leaves_negative_curvature(start):
    from skinfluence.methods._hessian_solve import _solve_raising_damping
    rng = np.random.default_rng(2)
    Q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    H = Q @ np.diag(np.linspace(-0.5, 3.0, 30)) @ Q.T
    g = rng.standard_normal(30)
    v, it, res, damping = _solve_raising_damping(lambda x: H @ x, g, start, 1e-10, None, True)
    assert damping > 0.5 and res <= 1e-10 and it > 0
    np.testing.assert_allclose(v, np.linalg.solve(H + damping * np.eye(30), g), rtol=1e-7)
    # without raise_damping, CG stops at the negative curvature and keeps the damping given
    _, _, res_fixed, same = _solve_raising_damping(lambda x: H @ x, g, start, 1e-10, None, False)
    assert same == start and res_fixed > 1e-3


@pytest.mark.parametrize("max_iter", [2, 4])
def test_cg_reports_its_residual_and_warns_when_stopped_early(binary_data, max_iter):
    from sklearn.exceptions import ConvergenceWarning
    X, y, X_val, y_val = binary_data
    model = exact_logistic(C=0.5).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="residual"):
        res = influence_scores(model, X, y, X_val, y_val, return_result=True,
                               method=ExactHessian(solver="cg", max_iter=max_iter))
    # the residual of the direction actually used, from the Hessian's formula
    p = model.predict_proba(X)[:, 1]
    A = np.hstack([X, np.ones((len(X), 1))])
    reg = np.r_[np.ones(X.shape[1]) / (model.C * len(X)), 0.0]
    H = (A * (p * (1 - p))[:, None]).T @ A / len(X) + np.diag(reg)
    a = LinearModelAdapter(model)
    g = a.objective_gradient(Utility().terms(a, X_val, y_val))
    v = np.linalg.lstsq(A, res.scores / (p - y), rcond=None)[0]  # score_i = (p_i - y_i) a_i.v
    assert res.extras["solver_iterations"] == max_iter
    assert res.extras["solver_residual"] == pytest.approx(
        np.linalg.norm(H @ v - g) / np.linalg.norm(g), rel=1e-6)
    default = influence_scores(model, X, y, X_val, y_val, return_result=True,
                               method=ExactHessian(solver="cg"))
    assert default.extras["solver_residual"] <= 1e-10


@pytest.mark.slow
def test_cg_defaults_on_a_net_match_the_dense_hessian_solve():
    """Bounded CG / damping defaults on a small MLP against a dense autograd Hessian."""
    torch = pytest.importorskip("torch")
    from torch import nn

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4)).astype("float32")
    y = (np.abs(X[:, 0]) + X[:, 1] > 1).astype("int64") + (X[:, 2] > 1)
    Xv = rng.normal(size=(100, 4)).astype("float32")
    yv = (np.abs(Xv[:, 0]) + Xv[:, 1] > 1).astype("int64") + (Xv[:, 2] > 1)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 12), nn.Tanh(), nn.Linear(12, 3))
    decay = 1e-3
    opt = torch.optim.Adam(module.parameters(), lr=0.03, weight_decay=decay)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(module(Xt), yt).backward()
        opt.step()
    res = influence_scores((module.eval(), nn.CrossEntropyLoss()), X, y, Xv, yv,
                           method=ExactHessian(solver="cg"), weight_decay=decay,
                           return_result=True, random_state=0)
    assert res.extras["solver_iterations"] <= 500 and res.extras["solver_residual"] <= 1e-4

    # reference: float64 copy, dense Hessian by autograd, direct solve
    from torch.func import functional_call
    theta, unflat = flat_float64_parameters(module)

    def losses(t, A, b):
        out = functional_call(module.double(), unflat(t), (torch.tensor(A).double(),))
        return nn.functional.cross_entropy(out, torch.tensor(b), reduction="none")

    def train_objective(t):
        return losses(t, X, y).mean() + 0.5 * decay * (t @ t)
    H = torch.autograd.functional.hessian(train_objective, theta).numpy()
    g = torch.autograd.functional.jacobian(lambda t: losses(t, Xv, yv).mean(), theta).numpy()
    G = torch.autograd.functional.jacobian(lambda t: losses(t, X, y), theta).numpy()
    module.float()
    v = np.linalg.solve(H + res.damping * np.eye(len(theta)), g)
    assert correlations(res.scores, G @ v)[0] >= 0.99


def test_a_block_of_cg_solves_shares_one_damping_raised_where_any_column_needs_it():
    """Negative curvature met by one column raises the damping for every column (and for the
    next blocks), so the rows of an influence matrix are solved against one matrix."""
    from types import SimpleNamespace

    H = np.diag([1.0, 2.0, -0.5])
    B = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]])  # column 1 sees the negative direction
    cache = {"damping": 0.1}  # an estimate too small for H

    def cached(key, compute):
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    ctx = SimpleNamespace(adapter=SimpleNamespace(n_params=3, convex=False), cache=cache,
                          cached=cached, gradient=lambda: B, rng=np.random.RandomState(0))
    v, damping, extras = ExactHessian(solver="cg", tol=1e-12)._solve(
        ctx, hessian=None, hvp=lambda x: H @ x)
    assert damping > 0.5  # raised past the negative eigenvalue
    expected = np.linalg.solve(H + damping * np.eye(3), B)  # every column, the same damping
    np.testing.assert_allclose(v, expected, rtol=1e-8)
    assert cache["damping"] == damping  # the next block starts from it
