"""Fairness and robustness metrics and scorers: references, fallback, GridSearchCV use."""
import builtins

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

from skinfluence import InfluenceTrimmer
from skinfluence import metrics
from skinfluence.metrics import (DemographicParityScorer, demographic_parity_difference,
                                 demographic_parity_scorer, fairness_scoring,
                                 robust_accuracy, robust_accuracy_scorer, robustness_scoring,
                                 selection_rate_by_group)


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    with threadpool_limits(1):
        yield


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 4))
    s = (rng.uniform(size=300) < 0.5).astype(int)
    X[:, 0] = s
    y = (X[:, 1] + 0.8 * s + 0.3 * rng.normal(size=300) > 0.4).astype(int)
    return X, y, s


def _without_fairlearn(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("fairlearn"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_selection_rates_and_gap():
    rates = selection_rate_by_group([1, 1, 0, 0, 1, 0], [0, 0, 0, 1, 1, 1])
    assert rates == pytest.approx({0: 2 / 3, 1: 1 / 3})
    gap = demographic_parity_difference(None, [1, 1, 0, 0, 1, 0],
                                        sensitive_features=[0, 0, 0, 1, 1, 1])
    assert gap == pytest.approx(1 / 3)


def test_fallback_equals_fairlearn(data, monkeypatch):
    fairlearn_metrics = pytest.importorskip("fairlearn.metrics")
    X, y, s = data
    pred = (X[:, 1] > 0).astype(int)
    w = np.linspace(0.2, 2.0, len(y))
    expected = fairlearn_metrics.demographic_parity_difference(y, pred, sensitive_features=s,
                                                               sample_weight=w)
    _without_fairlearn(monkeypatch)
    got = demographic_parity_difference(y, pred, sensitive_features=s, sample_weight=w)
    assert got == pytest.approx(expected)


def test_column_scorer_is_the_negated_gap(data):
    X, y, s = data
    model = LogisticRegression().fit(X, y)
    gap = demographic_parity_difference(y, model.predict(X), sensitive_features=s)
    assert gap > 0.1
    assert DemographicParityScorer(0)(model, X, y) == pytest.approx(-gap)
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["sex", "a", "b", "c"])
    model_df = LogisticRegression().fit(df, y)
    assert demographic_parity_scorer("sex")(model_df, df, y) == pytest.approx(-gap)
    with pytest.raises(TypeError, match="column name or index"):
        DemographicParityScorer(1.5)


def test_gridsearch_with_accuracy_and_dp_gap(data):
    X, y, s = data
    search = GridSearchCV(
        InfluenceTrimmer(LogisticRegression(), objective="demographic_parity",
                         sensitive_feature=0, cv=3, random_state=0),
        {"fraction": [0.0, 0.2]}, scoring=fairness_scoring(0), refit="accuracy", cv=3,
    ).fit(X, y)
    dp = search.cv_results_["mean_test_dp_gap"]
    assert np.all(dp <= 0)
    assert dp[1] > dp[0]  # trimming 20% by DP influence shrinks the gap


def test_routed_scorer_receives_the_sensitive_features(data):
    X, y, s = data
    grid = {"fraction": [0.0, 0.2]}
    kw = dict(objective="demographic_parity", cv=3, random_state=0)
    ref = GridSearchCV(InfluenceTrimmer(LogisticRegression(), sensitive_feature=0, **kw), grid,
                       scoring=fairness_scoring(0), refit="accuracy", cv=3).fit(X, y)
    with sklearn.config_context(enable_metadata_routing=True):
        trimmer = InfluenceTrimmer(LogisticRegression(), **kw)
        trimmer.set_fit_request(sensitive_features=True)
        search = GridSearchCV(trimmer, grid, scoring=fairness_scoring(), refit="accuracy",
                              cv=3).fit(X, y, sensitive_features=s)
    np.testing.assert_allclose(search.cv_results_["mean_test_dp_gap"],
                               ref.cv_results_["mean_test_dp_gap"])
    np.testing.assert_allclose(search.cv_results_["mean_test_accuracy"],
                               ref.cv_results_["mean_test_accuracy"])


def test_module_exports():
    assert set(metrics.__all__) >= {"demographic_parity_difference", "fairness_scoring",
                                    "robust_accuracy", "robustness_scoring"}


# ---------------------------------------------------------------------- robust accuracy
def _ball_sphere(eps, norm, n=3600):
    """Points of the 2-D ball's boundary (l2: circle; linf: square incl. its corners)."""
    if norm == "l2":
        t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
        return eps * np.column_stack([np.cos(t), np.sin(t)])
    g = np.linspace(-eps, eps, n // 4 + 1)
    one = np.full_like(g, eps)
    return np.vstack([np.column_stack([g, one]), np.column_stack([g, -one]),
                      np.column_stack([one, g]), np.column_stack([-one, g])])


def _brute_force_robust(model, X, y, eps, norm):
    """Correct at x and at every sampled point of the ball's boundary (a linear model's
    worst case lies on it): an independent, approximate robust correctness per row."""
    deltas = _ball_sphere(eps, norm)
    return np.array([model.predict(X[j:j + 1])[0] == y[j]
                     and np.all(model.predict(X[j] + deltas) == y[j]) for j in range(len(y))])


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("eps", [0.2, 0.6])
def test_robust_accuracy_of_a_linear_model_matches_brute_force(n_classes, norm, eps):
    from sklearn.datasets import make_blobs
    X, y = make_blobs(240, 2, centers=n_classes, cluster_std=1.5, random_state=n_classes)
    model = LogisticRegression(C=0.5).fit(X[:120], y[:120])
    Xt, yt = X[120:], y[120:]
    brute = _brute_force_robust(model, Xt, yt, eps, norm)
    # margin to the nearest rival's boundary, written from the coefficients
    F = model.decision_function(Xt)
    W = model.coef_
    if n_classes == 2:
        F, W = np.column_stack([-F / 2, F / 2]), np.vstack([-W / 2, W / 2])
    dual = 2 if norm == "l2" else 1
    dist = np.array([min((F[j, yt[j]] - F[j, k]) / np.linalg.norm(W[yt[j]] - W[k], ord=dual)
                         for k in range(n_classes) if k != yt[j]) for j in range(len(yt))])
    clear = np.abs(dist - eps) > 1e-2  # brute-force sampling is exact away from the edge
    assert clear.mean() > 0.9 and 0.2 < brute.mean() < 1.0
    exact = dist > eps
    np.testing.assert_array_equal(exact[clear], brute[clear])
    assert robust_accuracy(model, Xt, yt, epsilon=eps, norm=norm) == pytest.approx(exact.mean())
    w = np.linspace(0.5, 2.0, len(yt))
    assert robust_accuracy(model, Xt, yt, epsilon=eps, norm=norm, sample_weight=w) == \
        pytest.approx(np.average(exact, weights=w))


def test_robust_accuracy_at_zero_budget_is_accuracy_and_falls_with_budget(data):
    X, y, _ = data
    model = LogisticRegression().fit(X, y)
    assert robust_accuracy(model, X, y, epsilon=0.0) == pytest.approx(model.score(X, y))
    values = [robust_accuracy(model, X, y, epsilon=e, norm=n)
              for n in ("l2", "linf") for e in (0.1, 0.3)]
    assert values[0] > values[1] and values[2] > values[3]
    assert values[2] <= values[0]  # the linf ball holds the l2 ball of the same radius


def test_robust_accuracy_through_meta_estimators_and_errors(data):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier
    X, y, _ = data
    from sklearn.semi_supervised import SelfTrainingClassifier
    search = GridSearchCV(SelfTrainingClassifier(LogisticRegression()),
                          {"estimator__C": [0.1, 1.0]}, cv=2).fit(X, y)
    inner = search.best_estimator_.estimator_
    assert isinstance(inner, LogisticRegression)
    assert robust_accuracy(search, X, y, epsilon=0.3) == pytest.approx(
        robust_accuracy(inner, X, y, epsilon=0.3))
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="epsilon"):
        robust_accuracy(model, X, y, epsilon=-1)
    with pytest.raises(ValueError, match="norm"):
        robust_accuracy(model, X, y, epsilon=0.1, norm="l1")
    with pytest.raises(TypeError, match="Pipeline"):
        robust_accuracy(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), X, y,
                        epsilon=0.1)
    with pytest.raises(TypeError, match="linear classifiers"):
        robust_accuracy(DecisionTreeClassifier().fit(X, y), X, y, epsilon=0.1)


def test_robustness_scoring_in_gridsearch_prefers_the_robust_model(data):
    X, y, _ = data
    search = GridSearchCV(LogisticRegression(), {"C": [1e-3, 1e-2, 10.0]},
                          scoring=robustness_scoring(epsilon=0.5), refit="robust_accuracy",
                          cv=3).fit(X, y)
    res = search.cv_results_
    assert np.all(res["mean_test_robust_accuracy"] <= res["mean_test_accuracy"])
    best = int(np.argmax(res["mean_test_robust_accuracy"]))
    assert search.best_params_ == res["params"][best]
    scorer = robust_accuracy_scorer(epsilon=0.5, norm="linf")
    assert scorer(search.best_estimator_, X, y) == pytest.approx(
        robust_accuracy(search.best_estimator_, X, y, epsilon=0.5, norm="linf"))
    assert repr(scorer) == "RobustAccuracyScorer(epsilon=0.5, norm='linf', steps=20)"
    with pytest.raises(ValueError, match="epsilon"):
        robust_accuracy_scorer(epsilon="big")


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_robust_accuracy_of_a_linear_skorch_net_matches_the_exact_linear_value(data, norm):
    """PGD against a net that is a linear model finds what the exact margin says."""
    torch = pytest.importorskip("torch")
    skorch = pytest.importorskip("skorch")
    X, y, _ = data
    X = X.astype(np.float32)
    torch.manual_seed(0)
    net = skorch.NeuralNetClassifier(torch.nn.Linear(4, 2), criterion=torch.nn.CrossEntropyLoss,
                                     max_epochs=20, lr=0.1, train_split=None,
                                     verbose=0).fit(X, y)
    lin = LogisticRegression()
    W = net.module_.weight.detach().double().numpy()
    b = net.module_.bias.detach().double().numpy()
    lin.coef_, lin.intercept_, lin.classes_ = (W[1] - W[0])[None], np.array([b[1] - b[0]]), \
        np.array([0, 1])
    exact = robust_accuracy(lin, X.astype(np.float64), y, epsilon=0.3, norm=norm)
    pgd = robust_accuracy(net, X, y, epsilon=0.3, norm=norm, steps=20)
    assert exact < net.score(X, y) - 0.05
    assert pgd == pytest.approx(exact, abs=2 / len(y))  # float32 ties at the edge at most


# ---------------------------------------------------------------- multi-group, EO, report
@pytest.mark.parametrize("n_groups", [2, 4])
def test_eo_and_multi_group_fallbacks_equal_fairlearn(monkeypatch, n_groups):
    fairlearn_metrics = pytest.importorskip("fairlearn.metrics")
    rng = np.random.RandomState(n_groups)
    y, pred = rng.randint(2, size=400), rng.randint(2, size=400)
    s = np.array(list("abcd"))[rng.randint(n_groups, size=400)]
    w = rng.uniform(0.2, 2.0, size=400)
    eo = fairlearn_metrics.equalized_odds_difference(y, pred, sensitive_features=s,
                                                     sample_weight=w)
    dp = fairlearn_metrics.demographic_parity_difference(y, pred, sensitive_features=s)
    assert metrics.fairness_gap("equalized_odds", y, pred, s, sample_weight=w) == \
        pytest.approx(eo)
    assert metrics.fairness_gap("demographic_parity", y, pred, s) == pytest.approx(dp)
    assert metrics.equalized_odds_difference(y, pred, sensitive_features=s,
                                             sample_weight=w) == pytest.approx(eo)
    _without_fairlearn(monkeypatch)
    assert metrics.equalized_odds_difference(y, pred, sensitive_features=s,
                                             sample_weight=w) == pytest.approx(eo)
    assert demographic_parity_difference(y, pred, sensitive_features=s) == pytest.approx(dp)


def test_fairness_report_equals_fairlearn_metric_frame():
    fl = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score
    rng = np.random.RandomState(0)
    y, pred = rng.randint(2, size=300), rng.randint(2, size=300)
    s = rng.choice(["x", "y", "z"], size=300)
    frame = fl.MetricFrame(metrics={"selection_rate": fl.selection_rate,
                                    "true_positive_rate": fl.true_positive_rate,
                                    "false_positive_rate": fl.false_positive_rate,
                                    "accuracy": accuracy_score, "count": fl.count},
                           y_true=y, y_pred=pred, sensitive_features=s)
    report = metrics.fairness_report(y, pred, sensitive_features=s)
    for col in ["selection_rate", "true_positive_rate", "false_positive_rate", "accuracy",
                "count"]:
        np.testing.assert_allclose(report[col].to_numpy(dtype=float),
                                   frame.by_group[col].to_numpy(dtype=float))
    with pytest.raises(ValueError, match="must match"):
        metrics.fairness_report(y, pred[:10], sensitive_features=s)
    with pytest.raises(ValueError, match="kind must be"):
        metrics.fairness_gap("parity", y, pred, s)


@pytest.mark.parametrize("epsilon", [0.0, 0.3])
def test_robust_accuracy_checks_y_and_sample_weight(data, epsilon):
    X, y, _ = data
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="y has 295 labels but the matching features have 300"):
        robust_accuracy(model, X, y[:-5], epsilon=epsilon)
    for w, match in [(np.zeros(len(y)), "sample_weight is zero everywhere"),
                     (-np.ones(len(y)), "sample_weight must be finite and non-negative"),
                     (np.full(len(y), np.nan), "sample_weight must be finite"),
                     (np.ones(7), "sample_weight has length 7, expected 300")]:
        with pytest.raises(ValueError, match=match):
            robust_accuracy(model, X, y, epsilon=epsilon, sample_weight=w)
    # integer weights count rows: the reference is the unweighted value on repeated rows
    counts = np.random.RandomState(1).randint(0, 4, size=len(y))
    repeated = np.repeat(np.arange(len(y)), counts)
    assert robust_accuracy(model, X, y, epsilon=epsilon, sample_weight=counts) == pytest.approx(
        robust_accuracy(model, X[repeated], y[repeated], epsilon=epsilon), abs=1e-12)


def _rates_by_hand(y_true, y_pred, s, positive):
    """Per-group (selection, TPR, FPR, accuracy), written from the definitions."""
    out = {}
    for g in sorted(set(s)):
        rows = [i for i in range(len(s)) if s[i] == g]
        hit = [y_pred[i] == positive for i in rows]
        pos = [y_true[i] == positive for i in rows]
        out[g] = (sum(hit) / len(rows),
                  sum(h for h, p in zip(hit, pos) if p) / sum(pos),
                  sum(h for h, p in zip(hit, pos) if not p) / (len(rows) - sum(pos)),
                  sum(y_pred[i] == y_true[i] for i in rows) / len(rows))
    return out


@pytest.mark.parametrize("positive, negative", [("yes", "no"), ("b", "a")])
def test_fairness_report_with_string_labels_and_missing_groups(positive, negative):
    rng = np.random.RandomState(0)
    y_true = np.where(rng.uniform(size=200) < 0.4, positive, negative)
    y_pred = np.where(rng.uniform(size=200) < 0.5, positive, negative)
    s = rng.choice(["f", "m", "x"], size=200)
    report = metrics.fairness_report(y_true, y_pred, sensitive_features=s, pos_label=positive)
    want = _rates_by_hand(y_true, y_pred, s, positive)
    got = report[["selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"]]
    np.testing.assert_allclose(got.to_numpy(), np.array([want[g] for g in got.index]),
                               rtol=1e-12)
    assert 0 < report["selection_rate"].min()  # not the all-zero rates of pos_label=1
    with pytest.raises(ValueError, match=r"pos_label=1 is not one of the labels"):
        metrics.fairness_report(y_true, y_pred, sensitive_features=s)
    with pytest.raises(ValueError, match=r"pos_label=1 is not one of the labels"):
        metrics.fairness_gap("equalized_odds", y_true, y_pred, s)
    with pytest.raises(ValueError, match=r"pos_label=1 is not one of the labels"):
        selection_rate_by_group(y_pred, s)
    # a single label of the same kind: pos_label may be absent (no positive prediction)
    assert selection_rate_by_group(np.full(200, negative), s, pos_label=positive) == {
        "f": 0.0, "m": 0.0, "x": 0.0}
    for missing in (np.nan, None):  # refused, not dropped or made a group of its own
        s_bad = s.astype(object)
        s_bad[[4, 9]] = missing
        with pytest.raises(ValueError, match="sensitive_features contains missing groups"):
            metrics.fairness_report(y_true, y_pred, sensitive_features=s_bad,
                                    pos_label=positive)
    s_float = (s == "m").astype(float)
    s_float[0] = np.nan
    for call in (lambda: metrics.fairness_report(y_true, y_pred, sensitive_features=s_float,
                                                 pos_label=positive),
                 lambda: demographic_parity_difference(None, (y_pred == positive).astype(int),
                                                       sensitive_features=s_float)):
        with pytest.raises(ValueError, match="sensitive_features contains NaN or infinity"):
            call()


@pytest.mark.parametrize("epsilon", [0.0, 0.5])
def test_robust_accuracy_counts_ties_and_unknown_labels_as_errors(epsilon):
    """By hand: w = 1, b = 0; a row at margin exactly epsilon |w| is not robustly correct,
    and a label the model cannot predict never is (as sklearn's accuracy of predict)."""
    model = LogisticRegression().fit([[-1.0], [1.0]], [0, 1])
    model.coef_, model.intercept_ = np.array([[1.0]]), np.array([0.0])
    X = np.array([[epsilon], [epsilon + 0.1], [-epsilon - 0.1], [3.0], [-3.0]])
    y = np.array([1, 1, 0, 2, 1])  # a tie, two robust rows, an unknown label, a wrong one
    assert robust_accuracy(model, X, y, epsilon=epsilon) == pytest.approx(2 / 5)
    if epsilon == 0:
        from sklearn.metrics import accuracy_score
        assert robust_accuracy(model, X[1:], y[1:], epsilon=0.0) == pytest.approx(
            accuracy_score(y[1:], model.predict(X[1:])))


def test_robust_accuracy_scorer_passes_its_steps_to_the_attack():
    """On a non-linear net 1 PGD step (FGSM) and 10 steps find different attacks."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    X = np.random.RandomState(0).normal(size=(300, 2)).astype(np.float32)
    with torch.no_grad():
        module[0].weight.mul_(3.0)  # curved enough for the steps to matter
        y = module(torch.from_numpy(X)).argmax(1).numpy()  # clean accuracy 1
    pair = (module, torch.nn.CrossEntropyLoss())
    by_steps = {k: robust_accuracy(pair, X, y, epsilon=0.6, steps=k) for k in (1, 10, 20)}
    assert by_steps[1] != by_steps[10]  # seen: 0.673 and 0.617 (no training: a fixed init)
    for k in (1, 10):
        assert robust_accuracy_scorer(epsilon=0.6, steps=k)(pair, X, y) == by_steps[k]
        assert robustness_scoring(epsilon=0.6, steps=k)["robust_accuracy"](pair, X, y) == \
            by_steps[k]
    assert robust_accuracy_scorer(epsilon=0.6)(pair, X, y) == by_steps[20]  # the default
