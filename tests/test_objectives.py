import numpy as np
import pandas as pd
import pytest

from skinfluence import AdversarialRobustness, DemographicParity, Utility, influence_scores
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
        influence_scores(model, X, y, X_val, y_val, objective="demographic_parity",
                         sensitive_features_val=np.arange(len(y_val)) % 3)
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
        objective = objective.set_params(positive_class=model.classes_[2])
    s = (X_val[:, 1] > 0).astype(int)
    terms = objective.terms(a, X_val, y_val, s)
    fd = central_difference(lambda t: a.objective_value(terms, t), a.theta)
    np.testing.assert_allclose(a.objective_gradient(terms), fd, rtol=1e-6, atol=1e-9)
