"""The boosted-trees family: its reading of each library, its gate, and every entry point."""
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, softmax
from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier)
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skinfluence import (DemographicParity, InfluenceRelabeler, InfluenceReweighter,
                         InfluenceTrimmer, find_label_issues, influence_matrix, influence_scores)
from skinfluence.metrics import linear_datamodeling_score
from skinfluence.models import make_adapter

lgb = pytest.importorskip("lightgbm")
xgb = pytest.importorskip("xgboost")

LIBRARIES = ("hgb", "lgb", "xgb")


def _table(n=160, classes=2, seed=0):
    """Rows with a 4-level categorical column (0), missing values (2) and a signal in both."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    X[:, 0] = rng.integers(0, 4, n)
    X[rng.random(n) < 0.2, 2] = np.nan
    signal = np.where(np.isin(X[:, 0], [1, 3]), 1.5, -1.5) + X[:, 1] \
        + np.where(np.isnan(X[:, 2]), 1.0, 0.0)
    if classes == 2:
        y = (signal + 0.5 * rng.normal(size=n) > 0).astype(int)
    else:
        y = np.digitize(signal + 0.5 * rng.normal(size=n), np.quantile(signal, [1 / 3, 2 / 3]))
    return X, y


def _frame(X):
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    df["f0"] = pd.Categorical(X[:, 0].astype(int), categories=[0, 1, 2, 3])
    return df


def _categorical_model(library, classes=2, regression=False, **extra):
    common = dict(learning_rate=0.3)
    if library == "hgb":
        cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        settings = dict(max_iter=8, max_leaf_nodes=6, early_stopping=False,
                        categorical_features=[0], l2_regularization=0.3, **common)
        return cls(**{**settings, **extra})
    if library == "lgb":
        cls = lgb.LGBMRegressor if regression else lgb.LGBMClassifier
        return cls(n_estimators=8, num_leaves=6, min_child_samples=5, reg_lambda=0.3,
                   verbose=-1, min_data_per_group=5, cat_smooth=0, **common, **extra)
    cls = xgb.XGBRegressor if regression else xgb.XGBClassifier
    return cls(n_estimators=8, max_depth=3, enable_categorical=True, tree_method="hist",
               **common, **extra)


def _fit(library, X, y, classes=2, regression=False, **extra):
    """Each library fitted with column 0 declared categorical (its own way of saying so)."""
    model = _categorical_model(library, classes, regression, **extra)
    rows = _frame(X) if library != "hgb" else X
    return model.fit(rows, y), rows


def _has_categorical_split(model, library):
    if library == "hgb":
        return any(p.nodes["is_categorical"].any() for r in model._predictors for p in r)
    if library == "lgb":
        return "'decision_type': '=='" in str(model.booster_.dump_model())
    return model.get_booster().trees_to_dataframe()["Category"].notna().any()


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("classes", [2, 3])
def test_rounds_read_add_up_to_the_models_own_probabilities(library, classes):
    """Missing values and a categorical split included: the margins read are the model's."""
    X, y = _table(classes=classes)
    model, rows = _fit(library, X, y, classes)
    assert _has_categorical_split(model, library)
    adapter = make_adapter(model)
    reader = adapter.reader
    adapter.training_data(rows, y)  # LightGBM's initial score is the rows' average
    prepared = reader.prepare(rows)
    F = np.asarray(reader.base) + sum(reader.round_values(prepared, t)
                                      for t in range(reader.n_rounds))
    P = np.column_stack([1 - expit(F[:, 0]), expit(F[:, 0])]) if classes == 2 \
        else softmax(F, axis=1)
    np.testing.assert_allclose(P, model.predict_proba(rows), atol=1e-5)
    np.testing.assert_allclose(adapter.predict_proba(rows), model.predict_proba(rows), atol=1e-6)
    # every round's leaves: rows in one leaf got one value
    for t in range(reader.n_rounds):
        leaves, values = reader.round_leaves(prepared, t), reader.round_values(prepared, t)
        for k in range(leaves.shape[1]):
            for leaf in np.unique(leaves[:, k]):
                assert np.ptp(values[leaves[:, k] == leaf, k]) == 0


@pytest.mark.parametrize("library", ["lgb", "xgb"])
def test_categorical_rows_scored_as_the_finite_difference_of_a_refit(library):
    """The leaves of categorical splits, read by the library: the slope is the refit's."""
    from tests.methods.test_rounds import _replay, _val_loss

    X, y = _table(n=120)
    model, rows = _fit(library, X[:80], y[:80])
    val = _frame(X[80:])
    from skinfluence import NewtonLOO

    scores = influence_scores(model, rows, y[:80], val, y[80:],
                              method=NewtonLOO(second_order=False))
    all_rows = pd.concat([rows, val], ignore_index=True)
    if library == "lgb":
        codes = model.booster_.predict(all_rows, pred_leaf=True).reshape(120, 8, 1)
        base = np.array([np.log(y[:80].mean() / (1 - y[:80].mean()))])
    else:
        booster = model.get_booster()
        codes = booster.predict(xgb.DMatrix(all_rows, enable_categorical=True),
                                pred_leaf=True).reshape(120, 8, 1).astype(int)
        base = make_adapter(model).theta
    lam = 0.3 if library == "lgb" else 1.0
    import tests.methods.test_rounds as reference

    old = reference.N_TRAIN
    reference.N_TRAIN = 80
    try:
        for i in range(0, 80, 9):
            c = np.ones(80)
            c[i] += 1e-5
            up = _val_loss(_replay(codes, base, y[:80], c, "binary", 0.3, lam, 1.0)[80:],
                           y[80:], "binary")
            c[i] -= 2e-5
            down = _val_loss(_replay(codes, base, y[:80], c, "binary", 0.3, lam, 1.0)[80:],
                             y[80:], "binary")
            assert scores[i] == pytest.approx(-80 * (up - down) / 2e-5, rel=3e-3, abs=1e-4)
    finally:
        reference.N_TRAIN = old


def test_hgb_categorical_rows_scored_as_the_finite_difference_of_a_refit():
    """scikit-learn's categorical splits (its own bitsets): the slope is the refit's.

    A regressor, so that every leaf has its own value and the reference can read the
    memberships off the public staged predictions, grouped by value."""
    from tests.methods.test_rounds import _val_loss
    from skinfluence import NewtonLOO

    X, _ = _table(n=130)
    rng = np.random.default_rng(3)
    target = np.where(np.isin(X[:, 0], [1, 3]), 1.0, -1.0) + X[:, 1] + 0.3 * rng.normal(size=130)
    model, _ = _fit("hgb", X[:90], target[:90], regression=True)
    assert _has_categorical_split(model, "hgb")
    scores = influence_scores(model, X[:90], target[:90], X[90:], target[90:],
                              method=NewtonLOO(second_order=False))
    staged = [np.asarray(F, dtype=np.float64) for F in model.staged_predict(X)]
    base = float(np.asarray(model._baseline_prediction).ravel()[0])
    codes = np.empty((130, len(staged)), dtype=int)
    previous = np.full(130, base)
    for t, F in enumerate(staged):
        codes[:, t] = np.unique(np.round(F - previous, 12), return_inverse=True)[1].ravel()
        previous = F

    def val_loss(c):
        F = np.full(130, base)
        for t in range(codes.shape[1]):
            g = F[:90] - target[:90]
            j = codes[:, t]
            G = np.bincount(j[:90], c * g, j.max() + 1)
            H = np.bincount(j[:90], c, j.max() + 1)
            F = F + (-0.3 * G / (H + 0.3))[j]
        return _val_loss(F[90:, None], target[90:], "regression")

    for i in range(0, 90, 8):
        c = np.ones(90)
        c[i] += 1e-5
        up = val_loss(c)
        c[i] -= 2e-5
        assert scores[i] == pytest.approx(-90 * (up - val_loss(c)) / 2e-5, rel=2e-3, abs=1e-5)


# ---------------------------------------------------------------------------- the gate
REFUSED = [
    ("hgb", dict(early_stopping=True, validation_fraction=0.2), "early_stopping"),
    ("hgb", dict(loss="absolute_error"), "loss"),
    ("lgb", dict(subsample=0.7, subsample_freq=1), "subsample"),
    ("lgb", dict(data_sample_strategy="goss"), "data_sample_strategy"),
    ("lgb", dict(reg_alpha=0.5), "reg_alpha"),
    ("lgb", dict(boosting_type="dart"), "boosting_type"),
    ("xgb", dict(subsample=0.7), "subsample"),
    ("xgb", dict(max_delta_step=1.0), "max_delta_step"),
    ("xgb", dict(reg_alpha=0.5), "reg_alpha"),
    ("xgb", dict(booster="dart"), "booster"),
]


@pytest.mark.parametrize("library, setting, name", REFUSED)
def test_settings_that_break_the_newton_step_are_refused_by_name(library, setting, name):
    X, y = _table()
    regression = setting.get("loss") == "absolute_error"
    target = X[:, 1] if regression else y
    model, rows = _fit(library, X, target, regression=regression, **setting)
    with pytest.raises(ValueError, match=name):
        influence_scores(model, rows, target, rows[:20] if library == "hgb" else rows.iloc[:20],
                         target[:20])


@pytest.mark.parametrize("library", ["lgb", "xgb"])
def test_the_leaf_check_catches_a_bagged_model_whose_setting_slipped_through(library,
                                                                             monkeypatch):
    """With the settings check bypassed, recomputing the leaves finds the row sampling."""
    from skinfluence.models import _tree_readers

    X, y = _table(n=300)
    model, rows = _fit(library, X, y, subsample=0.5, **({"subsample_freq": 1}
                                                        if library == "lgb" else {}))
    reader = _tree_readers.LightGBMReader if library == "lgb" else _tree_readers.XGBoostReader
    monkeypatch.setattr(reader, "problems", lambda self: [])
    with pytest.raises(ValueError, match="not one Newton step"):
        influence_scores(model, rows, y, rows.iloc[:20], y[:20])


def test_rows_the_model_was_not_fitted_on_are_caught():
    X, y = _table()
    model, rows = _fit("hgb", X, y)
    with pytest.raises(ValueError, match="not one Newton step"):
        influence_scores(model, X, 1 - y, X[:20], y[:20])


def test_a_random_forest_is_still_refused_with_the_probability_route_named():
    X, y = _table()
    X = np.nan_to_num(X)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    with pytest.raises(TypeError, match="pred_probs"):
        influence_scores(forest, X, y, X[:20], y[:20])


def test_robustness_is_refused_with_a_transfer_attack_named():
    X, y = _table()
    model, rows = _fit("hgb", X, y)
    with pytest.raises(TypeError, match="input gradients"):
        influence_scores(model, X, y, X[:20], y[:20], objective="adversarial_robustness")


@pytest.mark.parametrize("option, error", [({"device": "cuda"}, ValueError),
                                           ({"params": "all"}, TypeError)])
def test_torch_options_are_refused(option, error):
    X, y = _table()
    model, _ = _fit("hgb", X, y)
    with pytest.raises(error):
        make_adapter(model, **option)


# ---------------------------------------------------------------------------- entry points
@pytest.mark.parametrize("library", LIBRARIES)
def test_influence_matrix_rows_are_single_row_objectives(library):
    X, y = _table(classes=3)
    model, rows = _fit(library, X, y, classes=3)
    val = rows[:12] if library == "hgb" else rows.iloc[:12]
    for method in ("ip", "exact_hessian", "newton_loo"):
        M = influence_matrix(model, rows, y, val, y[:12], method=method)
        assert M.shape == (12, len(y))
        one = val[3:4] if library == "hgb" else val.iloc[3:4]
        np.testing.assert_allclose(M[3], influence_scores(model, rows, y, one, y[3:4],
                                                          method=method), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(M.mean(axis=0), influence_scores(
            model, rows, y, val, y[:12], method=method), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("library", LIBRARIES)
def test_demographic_parity_scores_are_the_gap_slope(library):
    """The fairness objective: the slope of the replayed gap in one row's weight."""
    from tests.methods.test_rounds import _replay
    import tests.methods.test_rounds as reference
    from skinfluence import NewtonLOO

    X, y = _table(n=140)
    X = X[:, 1:]  # numeric only: the reference walks numeric splits
    model = {"hgb": HistGradientBoostingClassifier(max_iter=6, early_stopping=False,
                                                   learning_rate=0.3, l2_regularization=0.3),
             "lgb": lgb.LGBMClassifier(n_estimators=6, num_leaves=6, learning_rate=0.3,
                                       reg_lambda=0.3, verbose=-1, min_child_samples=5),
             "xgb": xgb.XGBClassifier(n_estimators=6, max_depth=3, learning_rate=0.3,
                                      reg_lambda=0.3)}[library].fit(X[:100], y[:100])
    s = (X[100:, 0] > 0).astype(int)  # the sensitive attribute of the validation rows
    scores = influence_scores(model, X[:100], y[:100], X[100:], y[100:],
                              objective=DemographicParity(), sensitive_features_val=s,
                              method=NewtonLOO(second_order=False))
    old_n, old_rounds = reference.N_TRAIN, reference.ROUNDS
    reference.N_TRAIN, reference.ROUNDS = 100, 6
    try:
        codes, _ = reference._memberships(model, library, X, 1)
        base = make_adapter(model).theta
        if library == "lgb":
            base = np.array([np.log(y[:100].mean() / (1 - y[:100].mean()))])

        def gap(c):
            p = expit(_replay(codes, base, y[:100], c, "binary", 0.3, 0.3, 1.0)[100:, 0])
            return p[s == 1].mean() - p[s == 0].mean()

        for i in range(0, 100, 11):
            c = np.ones(100)
            c[i] += 1e-5
            up = gap(c)
            c[i] -= 2e-5
            slope = (up - gap(c)) / 2e-5
            assert scores[i] == pytest.approx(-100 * slope, rel=3e-3, abs=1e-5)
    finally:
        reference.N_TRAIN, reference.ROUNDS = old_n, old_rounds


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("Estimator", [InfluenceTrimmer, InfluenceReweighter,
                                       InfluenceRelabeler])
def test_estimators_fit_and_predict_inside_a_pipeline_and_a_search(library, Estimator):
    X, y = _table(n=200)
    X = X[:, 1:]  # missing values kept; NaN reaches the trees through the pipeline
    model = _categorical_model(library).set_params(
        **({"categorical_features": None} if library == "hgb" else {}))
    if library == "xgb":
        model.set_params(enable_categorical=False)
    pipe = make_pipeline(FunctionTransformer(lambda A: A * 2.0),
                         Estimator(model, method="exact_hessian"))
    grid = {f"{type(pipe[-1]).__name__.lower()}__method": ["ip", "exact_hessian"]}
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    assert search.best_estimator_.predict(X[:10]).shape == (10,)
    assert np.isnan(X).any()  # rows with missing values are scored, not refused


@pytest.mark.parametrize("library", LIBRARIES)
def test_find_label_issues_and_lds_take_boosted_models(library):
    X, y = _table(n=200)
    X = X[:, 1:]
    model = {"hgb": HistGradientBoostingClassifier(max_iter=10, early_stopping=False),
             "lgb": lgb.LGBMClassifier(n_estimators=10, verbose=-1),
             "xgb": xgb.XGBClassifier(n_estimators=10, max_depth=3)}[library]
    flags = find_label_issues(model, X, y, random_state=0)
    assert flags.shape == (200,) and flags.dtype == bool
    fitted = model.fit(X[:150], y[:150])
    M = influence_matrix(fitted, X[:150], y[:150], X[150:170], y[150:170],
                         method="exact_hessian")
    lds = linear_datamodeling_score(model, X[:150], y[:150], X[150:170], y[150:170],
                                    {"exact_hessian": M, "reversed": -M}, n_subsets=5,
                                    random_state=0)
    assert lds["reversed"] == pytest.approx(-lds["exact_hessian"])
    assert np.isfinite(lds["exact_hessian"])
