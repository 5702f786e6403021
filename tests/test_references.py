"""Independent references: objective values from their formulas, weighted training
against refits, ensemble members rebuilt from their definition, and each public
parameter checked to move the result the way its reference says.

Nothing here evaluates a reference through skinfluence: probabilities come from
the fitted scikit-learn model, log-losses from ``sklearn.metrics.log_loss``,
Hessians and gradients are written out in numpy, and derivatives of refits are
finite differences of ``LogisticRegression(solver="newton-cholesky")`` fits.
"""
import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler

from skinfluence import (
    IP,
    AdversarialRobustness,
    DemographicParity,
    EqualizedOdds,
    ExactHessian,
    InfluenceReweighter,
    InfluenceTrimmer,
    IPEnsemble,
    NewtonLOO,
    Utility,
    influence_scores,
)

from ._reference import exact_logistic


def _problem(n_classes, n=160, d=4, seed=0):
    X, y = make_classification(n + 120, d, n_informative=3, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, flip_y=0.05,
                               random_state=seed)
    X = StandardScaler().fit_transform(X)
    return X[:n], y[:n], X[n:], y[n:]


@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "multinomial"])
def fitted(request):
    X, y, Xv, yv = _problem(request.param)
    return exact_logistic(C=0.5).fit(X, y), X, y, Xv, yv


def _value(model, X, y, Xv, yv, objective, **kw):
    return influence_scores(model, X, y, Xv, yv, objective=objective, return_result=True,
                            **kw).objective_value


# ------------------------------------------------------------------ objective values
def test_utility_is_sklearns_log_loss(fitted):
    model, X, y, Xv, yv = fitted
    want = log_loss(yv, model.predict_proba(Xv), labels=model.classes_)
    assert _value(model, X, y, Xv, yv, Utility()) == pytest.approx(want, rel=1e-10)


def _groups(Xv, n_groups):
    return np.digitize(Xv[:, 1], np.quantile(Xv[:, 1], np.linspace(0, 1, n_groups + 1)[1:-1]))


@pytest.mark.parametrize("n_groups", [2, 3])
def test_demographic_parity_gap_from_its_formula(fitted, n_groups):
    model, X, y, Xv, yv = fitted
    s = _groups(Xv, n_groups)
    pos = model.classes_[-1]
    p = model.predict_proba(Xv)[:, -1]
    rates = np.array([p[s == g].mean() for g in range(n_groups)])
    obj = DemographicParity(positive_class=pos if len(model.classes_) > 2 else None)
    got = _value(model, X, y, Xv, yv, obj, sensitive_features_val=s)
    assert got == pytest.approx(rates.max() - rates.min(), rel=1e-10)
    if n_groups == 2 and len(model.classes_) == 2:  # signed: larger group value minus smaller
        signed = DemographicParity(absolute=False)
        got = _value(model, X, y, Xv, yv, signed, sensitive_features_val=s)
        assert got == pytest.approx(rates[1] - rates[0], rel=1e-10)


def test_demographic_parity_reads_the_positive_class_column():
    X, y, Xv, yv = _problem(3)
    model = exact_logistic().fit(X, y)
    s = _groups(Xv, 2)
    P = model.predict_proba(Xv)
    for c in range(3):
        rates = [P[s == g, c].mean() for g in (0, 1)]
        got = _value(model, X, y, Xv, yv, DemographicParity(positive_class=c),
                     sensitive_features_val=s)
        assert got == pytest.approx(abs(rates[1] - rates[0]), rel=1e-10)


@pytest.mark.parametrize("combine", ["sum", "max"])
def test_equalized_odds_gap_from_its_formula(fitted, combine):
    model, X, y, Xv, yv = fitted
    s = _groups(Xv, 3)
    pos = model.classes_[-1]
    p = model.predict_proba(Xv)[:, -1]
    tpr = [p[(s == g) & (yv == pos)].mean() for g in range(3)]
    fpr = [p[(s == g) & (yv != pos)].mean() for g in range(3)]
    gaps = (max(tpr) - min(tpr), max(fpr) - min(fpr))
    want = sum(gaps) if combine == "sum" else max(gaps)
    obj = EqualizedOdds(combine=combine, positive_class=pos)
    assert _value(model, X, y, Xv, yv, obj, sensitive_features_val=s) == \
        pytest.approx(want, rel=1e-10)


def _attacked_binary(model, Xv, yv, gamma=None, epsilon=None, norm=None):
    w, b = model.coef_[0], model.intercept_[0]
    if norm is None:
        f = Xv @ w + b
        return Xv - gamma * np.outer(f / (w @ w), w)
    s = np.where(yv == model.classes_[1], 1.0, -1.0)
    u = w / np.linalg.norm(w) if norm == "l2" else np.sign(w)
    return Xv - epsilon * np.outer(s, u)


def _attacked_multinomial(model, Xv, yv, gamma=None, epsilon=None, norm=None):
    W, b = model.coef_, model.intercept_
    F = Xv @ W.T + b
    if norm is None:  # along the top two logits' weight difference
        top, second = np.argsort(F, axis=1)[:, -1], np.argsort(F, axis=1)[:, -2]
        out = Xv.copy()
        for i in range(len(Xv)):
            d = W[top[i]] - W[second[i]]
            out[i] = Xv[i] - gamma * (F[i, top[i]] - F[i, second[i]]) / (d @ d) * d
        return out
    out = Xv.copy()
    for i in range(len(Xv)):  # the rival direction of highest cross-entropy
        best = -np.inf
        for k in range(W.shape[0]):
            if k == yv[i]:
                continue
            d = W[yv[i]] - W[k]
            u = d / np.linalg.norm(d) if norm == "l2" else np.sign(d)
            x = Xv[i] - epsilon * u
            loss = -np.log(softmax(x @ W.T + b)[yv[i]])
            if loss > best:
                best, out[i] = loss, x
    return out


@pytest.mark.parametrize("norm, strength", [(None, 0.6), (None, 1.3), ("l2", 0.3),
                                            ("l2", 1.0), ("linf", 0.2)])
def test_robustness_loss_on_the_attacked_set_from_its_formula(fitted, norm, strength):
    model, X, y, Xv, yv = fitted
    attack = _attacked_binary if len(model.classes_) == 2 else _attacked_multinomial
    kw = dict(gamma=strength) if norm is None else dict(epsilon=strength, norm=norm)
    Xa = attack(model, Xv, yv, **kw)
    want = log_loss(yv, model.predict_proba(Xa), labels=model.classes_)
    got = _value(model, X, y, Xv, yv, AdversarialRobustness(**kw))
    assert got == pytest.approx(want, rel=1e-9)
    clean = log_loss(yv, model.predict_proba(Xv), labels=model.classes_)
    assert got > clean  # an attack raises the loss


def test_attack_strength_raises_the_loss_monotonically(fitted):
    model, X, y, Xv, yv = fitted
    gammas = [_value(model, X, y, Xv, yv, AdversarialRobustness(gamma=g))
              for g in (0.25, 0.5, 1.0, 1.5)]
    eps = [_value(model, X, y, Xv, yv, AdversarialRobustness(epsilon=e, norm="l2"))
           for e in (0.1, 0.3, 0.9)]
    assert np.all(np.diff(gammas) > 0) and np.all(np.diff(eps) > 0)


# ------------------------------------------------------------------ weighted training
SW_SEED, CW = 0, {0: 1.0, 1: 2.5}


def _weighted_estimator():
    return LogisticRegression(C=0.5, class_weight=CW, solver="newton-cholesky", tol=1e-14,
                              max_iter=1000)


@pytest.fixture(scope="module")
def weighted():
    X, y, Xv, yv = _problem(2, n=100, seed=3)
    sw = np.random.RandomState(SW_SEED).uniform(0.2, 3.0, size=len(y))
    model = _weighted_estimator().fit(X, y, sample_weight=sw)
    J = lambda m: log_loss(yv, m.predict_proba(Xv))  # noqa: E731
    return model, X, y, Xv, yv, sw, J


def test_exact_hessian_with_sample_and_class_weights_is_the_refit_derivative(weighted):
    """Removing i = lowering its weight by sw_i: score_i / n ~ -sw_i dJ/dsw_i (refits)."""
    model, X, y, Xv, yv, sw, J = weighted
    scores = influence_scores(model, X, y, Xv, yv, method=ExactHessian(), sample_weight=sw)
    h, n = 1e-4, len(y)
    for i in (0, 7, 19, 42, 77):
        up, down = sw.copy(), sw.copy()
        up[i] += h
        down[i] -= h
        dJ = (J(_weighted_estimator().fit(X, y, sample_weight=up))
              - J(_weighted_estimator().fit(X, y, sample_weight=down))) / (2 * h)
        assert scores[i] == pytest.approx(-n * sw[i] * dJ, rel=1e-5, abs=1e-9)
    unweighted = influence_scores(model, X, y, Xv, yv, method=ExactHessian())
    assert np.max(np.abs(unweighted - scores)) > 0.1 * np.max(np.abs(scores))


def test_newton_loo_with_weights_matches_weighted_leave_one_out_refits(weighted):
    model, X, y, Xv, yv, sw, J = weighted
    scores = influence_scores(model, X, y, Xv, yv, method=NewtonLOO(), sample_weight=sw)
    base = J(model)
    rows = np.arange(0, len(y), 4)
    loo = []
    for i in rows:
        w = sw.copy()
        w[i] = 0.0
        loo.append(J(_weighted_estimator().fit(X, y, sample_weight=w)) - base)
    loo = np.array(loo)
    rel = np.abs(scores[rows] - loo) / np.maximum(np.abs(loo), 1e-4 * np.abs(loo).max())
    assert np.median(rel) < 0.01 and np.mean(rel < 0.05) >= 0.9
    assert np.corrcoef(scores[rows], loo)[0, 1] > 0.97


# ------------------------------------------------------------------ Hessians in numpy
def _mean_form_hessian(model, X, c):
    """Mean-form Hessian of sum c_i l_i + 0.5 ||w||^2 (binary LogisticRegression)."""
    A = np.hstack([X, np.ones((len(X), 1))])
    p = expit(A @ np.append(model.coef_[0], model.intercept_))
    H = (A * (c * p * (1 - p))[:, None]).T @ A
    reg = np.eye(A.shape[1])
    reg[-1, -1] = 0.0
    return (H + reg) / c.sum()


def _grads(model, X, y):
    A = np.hstack([X, np.ones((len(X), 1))])
    p = expit(A @ np.append(model.coef_[0], model.intercept_))
    return A * (p - y)[:, None]


@pytest.mark.parametrize("damping", [0.0, 0.05, 1.0])
def test_exact_hessian_damping_is_added_to_the_mean_form_hessian(damping):
    X, y, Xv, yv = _problem(2)
    model = exact_logistic(C=2.0).fit(X, y)
    c = np.full(len(y), 2.0)  # C * 1 for every row
    H = _mean_form_hessian(model, X, c) + damping * np.eye(X.shape[1] + 1)
    v = np.linalg.solve(H, _grads(model, Xv, yv).mean(axis=0))
    want = _grads(model, X, y) @ v
    got = influence_scores(model, X, y, Xv, yv, method=ExactHessian(damping=damping))
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)
    first = influence_scores(model, X, y, Xv, yv, method=NewtonLOO(damping=damping),
                             return_result=True).extras["first_order_scores"]
    np.testing.assert_allclose(first, want, rtol=1e-7, atol=1e-11)


def test_ip_is_the_plain_gradient_inner_product(fitted):
    model, X, y, Xv, yv = fitted
    if len(model.classes_) > 2:
        pytest.skip("written out for the binary model")
    want = _grads(model, X, y) @ _grads(model, Xv, yv).mean(axis=0)
    np.testing.assert_allclose(influence_scores(model, X, y, Xv, yv, method=IP()), want,
                               rtol=1e-10, atol=1e-14)


# ------------------------------------------------------------------ ensemble members
def _member_ip(model, theta, X, y, Xv, yv):
    """IP scores of the binary model at parameters ``theta`` = [w, b], in numpy."""
    def grads(A, t):
        A1 = np.hstack([A, np.ones((len(A), 1))])
        return A1 * (expit(A1 @ theta) - t)[:, None]
    return grads(X, y) @ grads(Xv, yv).mean(axis=0)


@pytest.mark.parametrize("perturbation, level", [("gaussian", 0.05), ("gaussian", 0.5),
                                                 ("dropout", 0.1), ("dropout", 0.4)])
def test_ensemble_members_rebuilt_from_their_definition(perturbation, level):
    X, y, Xv, yv = _problem(2)
    model = exact_logistic().fit(X, y)
    theta = np.append(model.coef_[0], model.intercept_)
    res = influence_scores(model, X, y, Xv, yv, random_state=3, return_result=True,
                           method=IPEnsemble(n_members=4, perturbation=perturbation,
                                             dropout=level, sigma=level))
    # the stream: a seed drawn from RandomState(random_state), then numpy's Generator
    rng = np.random.default_rng(np.random.RandomState(3).randint(2**31 - 1))
    thetas = [theta]
    for _ in range(3):
        if perturbation == "gaussian":
            thetas.append(theta + rng.normal(0.0, level, size=theta.shape))
        else:
            thetas.append(theta * (rng.random(theta.shape) >= level) / (1 - level))
    want = np.column_stack([_member_ip(model, t, X, y, Xv, yv) for t in thetas])
    np.testing.assert_allclose(res.member_scores, want, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(res.scores, want.mean(axis=1), rtol=1e-9, atol=1e-13)


def test_noise_level_widens_the_members_spread():
    X, y, Xv, yv = _problem(2)
    model = exact_logistic().fit(X, y)
    ip = influence_scores(model, X, y, Xv, yv, method=IP())
    spreads = []
    for sigma in (0.0, 0.05, 0.5):
        res = influence_scores(model, X, y, Xv, yv, random_state=0, return_result=True,
                               method=IPEnsemble(n_members=6, perturbation="gaussian",
                                                 sigma=sigma))
        spreads.append(np.mean(np.std(res.member_scores, axis=1)))
        if sigma == 0.0:
            np.testing.assert_allclose(res.scores, ip, rtol=1e-12)
    assert spreads[0] < 1e-15 and 1e-6 < spreads[1] < spreads[2]
    drop0 = influence_scores(model, X, y, Xv, yv, method=IPEnsemble(dropout=0.0))
    np.testing.assert_allclose(drop0, ip, rtol=1e-12)


# ------------------------------------------------------------------ estimator parameters
def _reweight_formula(s, clip, temperature, scale, max_weight):
    z = (s - s.mean()) / s.std()
    if clip is not None:
        z = np.clip(z, -clip, clip)
    e = np.exp(z / temperature)
    w = len(s) * scale * e / e.sum()
    return w if max_weight is None else np.minimum(w, max_weight)


@pytest.mark.parametrize("params", [
    dict(clip=3.0, temperature=1.0, scale=4.0, max_weight=2.0),
    dict(clip=0.5, temperature=1.0, scale=4.0, max_weight=2.0),
    dict(clip=None, temperature=0.3, scale=1.0, max_weight=None),
    dict(clip=3.0, temperature=5.0, scale=0.5, max_weight=1.5),
])
def test_reweighter_parameters_follow_the_weight_formula(params):
    X, y, _, _ = _problem(2)
    s = np.random.RandomState(1).standard_t(3, size=len(y))
    rw = InfluenceReweighter(LogisticRegression(), **params).fit(X, y, scores=s)
    np.testing.assert_allclose(rw.weights_, _reweight_formula(s, **params), rtol=1e-10)


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5])
def test_trimmer_fraction_drops_exactly_the_lowest_scores(fraction):
    X, y, _, _ = _problem(2)
    s = np.random.RandomState(2).normal(size=len(y))
    trim = InfluenceTrimmer(LogisticRegression(), fraction=fraction).fit(X, y, scores=s)
    k = int(np.floor(fraction * len(y)))
    np.testing.assert_array_equal(~trim.support_, np.isin(np.arange(len(y)),
                                                          np.argsort(s)[:k]))
    ref = LogisticRegression().fit(X[trim.support_], y[trim.support_])
    np.testing.assert_allclose(trim.estimator_.coef_, ref.coef_)


@pytest.mark.parametrize("threshold", [-1.0, 0.0, 0.7])
def test_trimmer_threshold_drops_the_scores_below_it(threshold):
    X, y, _, _ = _problem(2)
    s = np.random.RandomState(2).normal(size=len(y))
    trim = InfluenceTrimmer(LogisticRegression(), threshold=threshold).fit(X, y, scores=s)
    np.testing.assert_array_equal(trim.support_, s >= threshold)


@pytest.mark.parametrize("method", [IP(), ExactHessian(), NewtonLOO(),
                                    IPEnsemble(n_members=3)], ids=lambda m: type(m).__name__)
def test_batch_size_does_not_change_the_scores(fitted, method):
    model, X, y, Xv, yv = fitted
    runs = [influence_scores(model, X, y, Xv, yv, method=method, batch_size=b,
                             random_state=0) for b in (1, 7, len(y))]
    for r in runs[1:]:
        np.testing.assert_allclose(r, runs[0], rtol=1e-9, atol=1e-13)


def test_fairness_objectives_read_the_sensitive_column_by_index():
    X, y, Xv, yv = _problem(2)
    model = exact_logistic().fit(X, y)
    s = (Xv[:, 2] > 0).astype(int)
    for cls, kw in ((DemographicParity, {}), (EqualizedOdds, dict(combine="max"))):
        by_column = _value(model, X, y, Xv, yv, cls(sensitive_feature=2, **kw))
        given = _value(model, X, y, Xv, yv, cls(**kw), sensitive_features_val=Xv[:, 2])
        assert by_column == pytest.approx(given, rel=1e-12)
        assert by_column != pytest.approx(
            _value(model, X, y, Xv, yv, cls(**kw), sensitive_features_val=s), rel=1e-6)


def test_robustness_defaults_are_the_documented_ones_and_x_attacked_is_used(fitted):
    model, X, y, Xv, yv = fitted
    attack = _attacked_binary if len(model.classes_) == 2 else _attacked_multinomial
    want = log_loss(yv, model.predict_proba(attack(model, Xv, yv, gamma=1.3)),
                    labels=model.classes_)
    assert _value(model, X, y, Xv, yv, AdversarialRobustness()) == pytest.approx(want, rel=1e-9)
    l2 = log_loss(yv, model.predict_proba(attack(model, Xv, yv, epsilon=0.1, norm="l2")),
                  labels=model.classes_)
    assert _value(model, X, y, Xv, yv, AdversarialRobustness(norm="l2")) == \
        pytest.approx(l2, rel=1e-9)
    Xa = Xv + 0.7
    given = log_loss(yv, model.predict_proba(Xa), labels=model.classes_)
    assert _value(model, X, y, Xv, yv, AdversarialRobustness(X_attacked=Xa)) == \
        pytest.approx(given, rel=1e-10)
