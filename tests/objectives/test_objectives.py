import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from skinfluence import (AdversarialRobustness, DemographicParity, EqualizedOdds, Utility,
                         influence_scores)
from skinfluence.models.linear import LinearModelAdapter
from tests._reference import exact_logistic


def test_demographic_parity_value_is_the_gap_of_predicted_probabilities(binary_data):
    X, y, X_val, y_val = binary_data
    model = exact_logistic().fit(X, y)
    a = LinearModelAdapter(model)
    s = np.where(X_val[:, 0] > 0, "a", "b")
    p = model.predict_proba(X_val)[:, 1]
    gap = p[s == "b"].mean() - p[s == "a"].mean()
    signed = DemographicParity(absolute=False).terms(a, X_val, y_val, s)
    assert a.objective_value(signed) == pytest.approx(gap, rel=1e-12)
    absolute = DemographicParity().terms(a, X_val, y_val, s)
    assert a.objective_value(absolute) == pytest.approx(abs(gap), rel=1e-12)


def test_sensitive_feature_from_a_column_by_index_or_name(binary_data):
    X, y, X_val, y_val = binary_data
    Xg = np.column_stack([X, (X[:, 0] > 0)])
    Xg_val = np.column_stack([X_val, (X_val[:, 0] > 0)])
    model = exact_logistic().fit(Xg, y)
    by_arg = influence_scores(model, Xg, y, Xg_val, y_val, objective="demographic_parity",
                              sensitive_features_val=Xg_val[:, -1])
    by_index = influence_scores(model, Xg, y, Xg_val, y_val,
                                objective=DemographicParity(sensitive_feature=5))
    cols = [f"c{i}" for i in range(5)] + ["group"]
    by_name = influence_scores(model, pd.DataFrame(Xg, columns=cols), y,
                               pd.DataFrame(Xg_val, columns=cols), y_val,
                               objective=DemographicParity(sensitive_feature="group"))
    np.testing.assert_allclose(by_index, by_arg)
    np.testing.assert_allclose(by_name, by_arg)


def test_demographic_parity_errors(binary_data, multiclass_data):
    X, y, X_val, y_val = binary_data
    model = exact_logistic().fit(X, y)
    with pytest.raises(ValueError, match="sensitive attribute"):
        influence_scores(model, X, y, X_val, y_val, objective="demographic_parity")
    with pytest.raises(ValueError, match="binary sensitive feature; got 3"):
        influence_scores(model, X, y, X_val, y_val,
                         objective=DemographicParity(absolute=False),
                         sensitive_features_val=np.arange(len(y_val)) % 3)
    with pytest.raises(ValueError, match="at least 2 groups"):
        influence_scores(model, X, y, X_val, y_val, objective="demographic_parity",
                         sensitive_features_val=np.zeros(len(y_val)))
    with pytest.raises(ValueError, match="NaN"):
        s = np.where(X_val[:, 0] > 0, 1.0, 0.0)
        s[0] = np.nan
        influence_scores(model, X, y, X_val, y_val, objective="demographic_parity",
                         sensitive_features_val=s)
    with pytest.raises(ValueError, match="values, X_val has"):
        influence_scores(model, X, y, X_val, y_val, objective="demographic_parity",
                         sensitive_features_val=np.arange(4) % 2)
    Xm, ym, Xm_val, ym_val = multiclass_data
    multi = exact_logistic().fit(Xm, ym)
    with pytest.raises(ValueError, match="positive_class"):
        influence_scores(multi, Xm, ym, Xm_val, ym_val, objective="demographic_parity",
                         sensitive_features_val=Xm_val[:, 0] > 0)


def test_adversarial_objective_is_the_loss_on_the_attacked_set(binary_data):
    from sklearn.metrics import log_loss
    X, y, X_val, y_val = binary_data
    model = exact_logistic().fit(X, y)
    a = LinearModelAdapter(model)
    terms = AdversarialRobustness(gamma=1.3).terms(a, X_val, y_val)
    Xa = a.linear_attack(X_val, 1.3)
    assert a.objective_value(terms) == pytest.approx(
        log_loss(y_val, model.predict_proba(Xa)), rel=1e-10)
    given = AdversarialRobustness(X_attacked=Xa).terms(a, X_val, y_val)
    np.testing.assert_array_equal(given.X, terms.X)
    with pytest.raises(ValueError, match="gamma"):
        AdversarialRobustness(gamma=-1).terms(a, X_val, y_val)


def test_objectives_are_tunable_parameter_objects():
    from sklearn.base import clone
    obj = AdversarialRobustness(gamma=2.0)
    assert clone(obj).get_params()["gamma"] == 2.0
    assert Utility().get_params() == {}
    assert repr(DemographicParity(absolute=False)) == "DemographicParity(absolute=False)"


@pytest.mark.parametrize("objective", [Utility(), DemographicParity(absolute=False),
                                       DemographicParity(), AdversarialRobustness(gamma=1.3)],
                         ids=["utility", "dp-signed", "dp-absolute", "adversarial"])
def test_each_objective_gradient_matches_central_differences(any_data, objective):
    from tests._reference import central_difference
    X, y, X_val, y_val = any_data
    model = exact_logistic(C=0.5).fit(X, y)
    a = LinearModelAdapter(model)
    if isinstance(objective, DemographicParity) and a.multinomial:
        objective = clone(objective).set_params(positive_class=model.classes_[2])
    s = (X_val[:, 1] > 0).astype(int)
    terms = objective.terms(a, X_val, y_val, s)
    fd = central_difference(lambda t: a.objective_value(terms, t), a.theta)
    np.testing.assert_allclose(a.objective_gradient(terms), fd, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- budgeted (adaptive) attack
def _binary_loss(model, X, y):
    """Log-loss of a binary linear model, written from its coefficients."""
    s = np.where(y == model.classes_[1], 1.0, -1.0)
    return np.logaddexp(0.0, -s * (X @ model.coef_[0] + model.intercept_[0]))


def _ball_boundary(d, eps, norm, rng):
    """Points of the sphere of the ball (the worst case of a linear loss lies there)."""
    if norm == "linf":  # every vertex and a grid of every face
        grid = np.linspace(-eps, eps, 21 if d == 2 else 7)
        cube = np.stack(np.meshgrid(*[grid] * d), -1).reshape(-1, d)
        return cube[np.abs(cube).max(axis=1) >= eps - 1e-12]
    if d == 2:
        t = np.linspace(0.0, 2 * np.pi, 7200, endpoint=False)
        return eps * np.column_stack([np.cos(t), np.sin(t)])
    u = rng.normal(size=(20000, d))
    return eps * u / np.linalg.norm(u, axis=1, keepdims=True)


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("d", [2, 3])
def test_budgeted_attack_is_the_brute_force_worst_case_binary(norm, d):
    rng = np.random.RandomState(d)
    X = rng.normal(size=(80, d))
    y = (X @ rng.normal(size=d) + 0.5 * rng.normal(size=80) > 0).astype(int)
    model = exact_logistic(C=0.7).fit(X, y)
    a = LinearModelAdapter(model)
    eps = 0.4
    Xv, yv = X[:12], y[:12]
    Xa = a.budgeted_attack(Xv, a.encode(yv, name="y", n=12), eps, norm)
    size = np.abs(Xa - Xv).max(axis=1) if norm == "linf" else np.linalg.norm(Xa - Xv, axis=1)
    np.testing.assert_allclose(size, eps, rtol=1e-12)
    got = _binary_loss(model, Xa, yv)
    deltas = _ball_boundary(d, eps, norm, rng)
    for j in range(len(yv)):
        brute = _binary_loss(model, Xv[j] + deltas, np.full(len(deltas), yv[j])).max()
        assert got[j] >= brute - 1e-12
        assert got[j] <= brute + (1e-12 if norm == "linf" else 1e-3 * (d - 1) ** 2)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_budgeted_attack_multinomial_is_close_to_brute_force(multiclass_data, norm):
    X, y, X_val, y_val = multiclass_data
    model = exact_logistic(C=0.3).fit(X[:, :2], y)
    a = LinearModelAdapter(model)
    eps, Xv, yv = 0.5, X_val[:30, :2], y_val[:30]
    Xa = a.budgeted_attack(Xv, a.encode(yv, name="y", n=30), eps, norm)
    ord_ = np.inf if norm == "linf" else 2
    assert np.linalg.norm(Xa - Xv, ord=ord_, axis=1).max() <= eps + 1e-12

    def ce(Z, label):
        F = Z @ model.coef_.T + model.intercept_
        return np.logaddexp.reduce(F, axis=1) - F[:, label]

    deltas = _ball_boundary(2, eps, norm, np.random.RandomState(0))
    got = np.array([ce(Xa[j:j + 1], yv[j])[0] for j in range(30)])
    brute = np.array([ce(Xv[j] + deltas, yv[j]).max() for j in range(30)])
    assert np.all(got <= brute + 1e-9)  # a point of the ball: never above the worst case
    assert np.all(got >= 0.9 * brute)   # the best rival direction: close to it
    assert np.mean(got) >= 0.98 * np.mean(brute)


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_fixed_attacked_set_gives_the_adaptive_objective_gradient(binary_data, norm,
                                                                  fit_intercept):
    """Danskin: grad of J on the set attacked at theta == grad of the worst-case objective."""
    from tests._reference import central_difference
    X, y, X_val, y_val = binary_data
    model = exact_logistic(C=0.5, fit_intercept=fit_intercept).fit(X, y)
    a = LinearModelAdapter(model)
    eps = 0.3
    s = np.where(y_val == 1, 1.0, -1.0)
    d = X.shape[1]
    dual = 1 if norm == "linf" else 2

    def adaptive(theta):  # mean log(1 + exp(-(s (w.x + b) - eps ||w||_dual)))
        w, b = theta[:d], (theta[d] if fit_intercept else 0.0)
        margin = s * (X_val @ w + b) - eps * np.linalg.norm(w, ord=dual)
        return np.mean(np.logaddexp(0.0, -margin))

    terms = AdversarialRobustness(epsilon=eps, norm=norm).terms(a, X_val, y_val)
    assert a.objective_value(terms) == pytest.approx(adaptive(a.theta), rel=1e-12)
    np.testing.assert_allclose(a.objective_gradient(terms),
                               central_difference(adaptive, a.theta), rtol=1e-6, atol=1e-9)
    # the transferred (gamma) attack is not this objective's gradient
    gamma = AdversarialRobustness(gamma=1.3).terms(a, X_val, y_val)
    assert not np.allclose(a.objective_gradient(gamma), a.objective_gradient(terms), rtol=0.1)


def test_budgeted_objective_grows_with_epsilon_and_norm(any_data):
    X, y, X_val, y_val = any_data
    a = LinearModelAdapter(exact_logistic().fit(X, y))
    values = [a.objective_value(AdversarialRobustness(epsilon=e, norm=n).terms(a, X_val, y_val))
              for n in ("l2", "linf") for e in (0.1, 0.5)]
    clean = a.objective_value(Utility().terms(a, X_val, y_val))
    assert clean < values[0] < values[1]
    assert clean < values[2] < values[3]
    assert values[2] > values[0]  # the linf ball holds the l2 ball of the same radius


def test_zero_weight_model_is_a_clear_error(any_data):
    X, y, X_val, y_val = any_data
    model = exact_logistic().fit(X, y)
    model.coef_ = np.zeros_like(model.coef_)
    a = LinearModelAdapter(model)
    for obj in (AdversarialRobustness(), AdversarialRobustness(epsilon=0.5, norm="l2"),
                AdversarialRobustness(epsilon=0.5, norm="linf")):
        with pytest.raises(ValueError, match="no direction to attack"):
            obj.terms(a, X_val, y_val)


def test_budgeted_attack_parameter_errors(binary_data):
    X, y, X_val, y_val = binary_data
    a = LinearModelAdapter(exact_logistic().fit(X, y))
    with pytest.raises(ValueError, match="norm must be one of"):
        AdversarialRobustness(norm="l1").terms(a, X_val, y_val)
    for eps in (0, -0.5, "0.1"):
        with pytest.raises(ValueError, match="epsilon must be a positive number"):
            AdversarialRobustness(epsilon=eps, norm="l2").terms(a, X_val, y_val)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_on_a_linear_net_reaches_the_closed_form_worst_case(binary_data, norm):
    """Torch PGD within the ball against a linear module == the closed form of w = w1 - w0."""
    import torch
    from skinfluence.models import make_adapter
    X, y, X_val, y_val = binary_data
    torch.manual_seed(0)
    module = torch.nn.Linear(X.shape[1], 2).double()
    a = make_adapter((module, torch.nn.CrossEntropyLoss()))
    a.training_data(X, y)
    eps = 0.3
    terms = AdversarialRobustness(epsilon=eps, norm=norm, steps=30).terms(a, X_val, y_val)
    Xa = terms.X.numpy()
    ord_ = np.inf if norm == "linf" else 2
    assert np.linalg.norm(Xa - X_val, ord=ord_, axis=1).max() <= eps + 1e-9
    with torch.no_grad():
        w = (module.weight[1] - module.weight[0]).numpy()
        b = float(module.bias[1] - module.bias[0])
    s = np.where(y_val == 1, 1.0, -1.0)
    dual = 1 if norm == "linf" else 2
    worst = np.logaddexp(0.0, -(s * (X_val @ w + b) - eps * np.linalg.norm(w, ord=dual)))
    got = np.logaddexp(0.0, -s * (Xa @ w + b))
    assert np.all(got <= worst + 1e-9)
    np.testing.assert_allclose(got, worst, rtol=1e-3)


# ---------------------------------------------------------------- fairness: multi-group, EO
def _soft_proba(theta, X):
    """P(y=1) of a binary linear model from its parameter vector [w, b] (numpy, by hand)."""
    return 1.0 / (1.0 + np.exp(-(X @ theta[:-1] + theta[-1])))


def _rate(p, rows):
    return p[rows].mean()


def _max_gap(p, s, rows):
    """Largest difference of the groups' mean p over ``rows`` (every pair, brute force)."""
    rates = [_rate(p, rows & (s == g)) for g in np.unique(s) if np.any(rows & (s == g))]
    return max(a - b for a in rates for b in rates)


def _eo_reference(theta, X, y, s, combine):
    """Soft equalized-odds gap written from the formula, with the pairs and sign of theta0."""
    p = _soft_proba(theta, X)
    tpr, fpr = _max_gap(p, s, y == 1), _max_gap(p, s, y == 0)
    return tpr + fpr if combine == "sum" else max(tpr, fpr)


@pytest.mark.parametrize("n_groups", [2, 3, 4])
def test_demographic_parity_multi_group_is_the_largest_pairwise_gap(binary_data, n_groups):
    X, y, X_val, y_val = binary_data
    model = exact_logistic().fit(X, y)
    a = LinearModelAdapter(model)
    s = np.digitize(X_val[:, 0], np.quantile(X_val[:, 0], np.linspace(0, 1, n_groups + 1)[1:-1]))
    theta0 = np.r_[model.coef_[0], model.intercept_]
    terms = DemographicParity().terms(a, X_val, y_val, s)
    ones = np.ones(len(s), dtype=bool)
    assert a.objective_value(terms) == pytest.approx(_max_gap(_soft_proba(theta0, X_val), s,
                                                              ones), rel=1e-10)


@pytest.mark.parametrize("combine", ["sum", "max"])
@pytest.mark.parametrize("n_groups", [2, 3])
def test_equalized_odds_value_and_gradient_match_the_formula(binary_data, combine, n_groups):
    from tests._reference import central_difference
    X, y, X_val, y_val = binary_data
    model = exact_logistic(C=0.5).fit(X, y)
    a = LinearModelAdapter(model)
    if n_groups == 2:
        s = (X_val[:, 1] > 0).astype(int)
    else:
        s = np.digitize(X_val[:, 1], [-0.5, 0.5])
    theta0 = np.r_[model.coef_[0], model.intercept_]
    terms = EqualizedOdds(combine=combine).terms(a, X_val, y_val, s)
    assert a.objective_value(terms) == pytest.approx(
        _eo_reference(theta0, X_val, y_val, s, combine), rel=1e-10)
    # the gradient: finite differences of the numpy formula, with the frozen pairs (and,
    # for "max", the frozen rate) that the objective linearises around theta0
    p0 = _soft_proba(theta0, X_val)
    pairs = {}
    for name, rows in (("tpr", y_val == 1), ("fpr", y_val == 0)):
        rates = {g: _rate(p0, rows & (s == g)) for g in np.unique(s)}
        pairs[name] = (rows, max(rates, key=rates.get), min(rates, key=rates.get))
    gaps0 = {k: _rate(p0, r & (s == hi)) - _rate(p0, r & (s == lo))
             for k, (r, hi, lo) in pairs.items()}
    used = list(pairs) if combine == "sum" else [max(gaps0, key=gaps0.get)]

    def frozen(theta):
        p = _soft_proba(theta, X_val)
        return sum(_rate(p, pairs[k][0] & (s == pairs[k][1]))
                   - _rate(p, pairs[k][0] & (s == pairs[k][2])) for k in used)

    fd = central_difference(frozen, theta0)
    np.testing.assert_allclose(a.objective_gradient(terms), fd, rtol=1e-6, atol=1e-9)


def test_equalized_odds_conditions_on_the_label_and_checks_combine(binary_data):
    X, y, X_val, y_val = binary_data
    model = exact_logistic().fit(X, y)
    a = LinearModelAdapter(model)
    s = (X_val[:, 1] > 0).astype(int)
    # the same rows with every label flipped swap the TPR and FPR cells: same sum
    flipped = EqualizedOdds().terms(a, X_val, 1 - y_val, s)
    assert a.objective_value(flipped) == pytest.approx(
        a.objective_value(EqualizedOdds().terms(a, X_val, y_val, s)), rel=1e-12)
    # but not the demographic-parity gap, which ignores labels
    assert a.objective_value(EqualizedOdds().terms(a, X_val, y_val, s)) != pytest.approx(
        a.objective_value(DemographicParity().terms(a, X_val, y_val, s)))
    with pytest.raises(ValueError, match="combine must be"):
        EqualizedOdds(combine="mean").terms(a, X_val, y_val, s)
    assert EqualizedOdds.label_loss is False and Utility.label_loss is True
