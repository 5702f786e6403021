"""A fitted Pipeline as the model: scored in the space its last step sees.

Reference: the same transformers applied by hand, and a bare model fitted on
the transformed matrix; its influence must be the pipeline's.
"""
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skinfluence import DemographicParity, InfluenceTrimmer, influence_scores
from skinfluence.models import make_adapter


def _frame(n, seed):
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], n)
    sex = rng.choice(["F", "M"], n)
    x = rng.normal(size=(n, 2))
    logit = 1.5 * x[:, 0] - x[:, 1] + np.where(colour == "red", 1.0, -0.5) \
        + 0.8 * (sex == "M")
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    return pd.DataFrame({"x1": x[:, 0], "colour": colour, "x2": x[:, 1], "sex": sex}), y


@pytest.fixture(scope="module")
def data():
    X, y = _frame(160, 0)
    X_val, y_val = _frame(60, 1)
    return X, y, X_val, y_val


def _encoder():
    return ColumnTransformer([("onehot", OneHotEncoder(), ["colour", "sex"])],
                             remainder="passthrough")


@pytest.mark.parametrize("method", ["ip", "exact_hessian", "newton_loo"])
@pytest.mark.parametrize("final", [LogisticRegression(C=0.5),
                                   SGDClassifier(loss="log_loss", alpha=0.01, random_state=0)])
def test_pipeline_scores_equal_the_bare_model_on_the_transformed_matrix(data, method, final):
    X, y, X_val, y_val = data
    pipe = Pipeline([("encode", _encoder()), ("model", final)]).fit(X, y)
    enc = _encoder().fit(X)
    Xt, Xt_val = enc.transform(X), enc.transform(X_val)
    bare = type(final)(**final.get_params()).fit(Xt, y)
    np.testing.assert_allclose(bare.coef_, pipe[-1].coef_, rtol=1e-10)
    got = influence_scores(pipe, X, y, X_val, y_val, method=method)
    want = influence_scores(bare, Xt, y, Xt_val, y_val, method=method)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def _scores_or_error(*args, **kwargs):
    try:
        return influence_scores(*args, **kwargs)
    except ValueError as exc:
        return str(exc)


@pytest.mark.parametrize("column", ["sex", "colour"])
def test_sensitive_column_is_named_as_in_the_raw_input(data, column):
    X, y, X_val, y_val = data
    pipe = Pipeline([("encode", _encoder()), ("model", LogisticRegression())]).fit(X, y)
    Xt, Xt_val = pipe[0].transform(X), pipe[0].transform(X_val)
    got = _scores_or_error(pipe, X, y, X_val, y_val,
                           objective=DemographicParity(sensitive_feature=column))
    # the same attribute given as values, to the bare model on the encoded matrix
    want = _scores_or_error(pipe[-1], Xt, y, Xt_val, y_val, objective=DemographicParity(),
                            sensitive_features_val=X_val[column].to_numpy())
    if isinstance(want, str):  # an attribute the objective refuses: the same error
        assert got == want
    else:
        np.testing.assert_allclose(got, want, rtol=1e-10)
    if column == "sex":
        assert not isinstance(got, str)


def test_nested_pipelines_and_adapter_delegation(data):
    X, y, X_val, y_val = data
    inner = make_pipeline(StandardScaler(), LogisticRegression())
    pipe = Pipeline([("encode", _encoder()), ("inner", inner)]).fit(X, y)
    adapter = make_adapter(pipe)
    Xt = pipe[-1][0].transform(pipe[0].transform(X))
    np.testing.assert_allclose(adapter.check_X(X, "X"), Xt)
    assert adapter.n_params == Xt.shape[1] + 1 and adapter.family == "linear"
    np.testing.assert_array_equal(adapter.training_data(X, y).X, Xt)


def test_pipeline_errors(data):
    X, y, X_val, y_val = data
    unfitted = Pipeline([("encode", _encoder()), ("model", LogisticRegression())])
    with pytest.raises(Exception, match="not fitted"):
        make_adapter(unfitted)
    with pytest.raises(TypeError, match="last step"):
        make_adapter(Pipeline([("encode", _encoder()), ("model", "passthrough")]).fit(X))
    pipe = Pipeline([("encode", _encoder()), ("model", LogisticRegression())]).fit(X, y)
    bad = X_val.assign(colour="purple")  # a category the encoder never saw
    with pytest.raises(ValueError, match="X_val: the pipeline's transformers"):
        influence_scores(pipe, X, y, bad, y_val)


def test_trimmer_around_a_numeric_pipeline_scores_the_last_step(data):
    X, y, X_val, y_val = data
    Xn, Xn_val = X[["x1", "x2"]].to_numpy(), X_val[["x1", "x2"]].to_numpy()
    trimmer = InfluenceTrimmer(make_pipeline(StandardScaler(), LogisticRegression()),
                               fraction=0.1).fit(Xn, y, X_val=Xn_val, y_val=y_val)
    scaler = StandardScaler().fit(Xn)
    bare = LogisticRegression().fit(scaler.transform(Xn), y)
    want = influence_scores(bare, scaler.transform(Xn), y, scaler.transform(Xn_val), y_val)
    np.testing.assert_allclose(trimmer.scores_, want, rtol=1e-9)
    assert (~trimmer.support_).sum() == 16


def test_trimmer_around_a_column_transformer_pipeline_on_a_dataframe(data):
    X, y, X_val, y_val = data
    pipe = Pipeline([("encode", _encoder()), ("model", LogisticRegression())])
    trimmer = InfluenceTrimmer(pipe, fraction=0.1).fit(X, y, X_val=X_val, y_val=y_val)
    enc = _encoder().fit(X)
    bare = LogisticRegression().fit(enc.transform(X), y)
    want = influence_scores(bare, enc.transform(X), y, enc.transform(X_val), y_val)
    np.testing.assert_allclose(trimmer.scores_, want, rtol=1e-9)
    fair = InfluenceTrimmer(pipe, objective="demographic_parity", sensitive_feature="sex",
                            fraction=0.1).fit(X, y)
    assert np.isfinite(fair.scores_).all()
    # against given validation rows: the bare model's scores, sensitive column read by name
    fair_val = InfluenceTrimmer(pipe, objective="demographic_parity", sensitive_feature="sex",
                                fraction=0.1).fit(X, y, X_val=X_val, y_val=y_val)
    want = influence_scores(bare, enc.transform(X), y, enc.transform(X_val), y_val,
                            objective="demographic_parity",
                            sensitive_features_val=np.asarray(X_val["sex"]))
    np.testing.assert_allclose(fair_val.scores_, want, rtol=1e-9, atol=1e-15)
    # cross-fitted, label cleaning with the defaults on raw text columns; predictions too
    auto = InfluenceTrimmer(pipe, fraction="auto", random_state=0).fit(X, y)
    assert auto.refit_check_["candidates"] == round(auto.noise_rate_ * len(y))
    assert auto.n_trimmed_ == (auto.refit_check_["candidates"] if auto.refit_check_["acted"]
                               else 0)
    np.testing.assert_array_equal(auto.predict(X_val), auto.estimator_.predict(X_val))
    assert auto.report(X, y).index.equals(X.index)


@pytest.mark.parametrize("steps", ["one", "passthrough_first"])
@pytest.mark.parametrize("method", ["ip", "newton_loo"])
def test_a_pipeline_with_only_the_model_works_as_the_bare_model(data, steps, method):
    X, y, X_val, y_val = data
    Xt, Xt_val = (np.asarray(d[["x1", "x2"]], dtype=float) for d in (X, X_val))
    head = [] if steps == "one" else [("nothing", "passthrough")]
    pipe = Pipeline(head + [("model", LogisticRegression(C=0.5))]).fit(Xt, y)
    bare = LogisticRegression(C=0.5).fit(Xt, y)
    got = influence_scores(pipe, Xt, y, Xt_val, y_val, method=method)
    want = influence_scores(bare, Xt, y, Xt_val, y_val, method=method)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # the estimators refit it on the kept rows: the same rows as with the bare model
    piped = InfluenceTrimmer(make_pipeline(LogisticRegression(C=0.5)), method=method,
                             fraction=0.1, random_state=0).fit(Xt, y)
    plain = InfluenceTrimmer(LogisticRegression(C=0.5), method=method, fraction=0.1,
                             random_state=0).fit(Xt, y)
    np.testing.assert_array_equal(piped.support_, plain.support_)
    np.testing.assert_allclose(piped.estimator_[-1].coef_, plain.estimator_.coef_, rtol=1e-12)
