"""linear_datamodeling_score against a loop written here from its definition."""
import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from skinfluence import influence_matrix
from skinfluence.metrics import linear_datamodeling_score


def _reference_lds(est, X, y, Xt, yt, A, n_subsets, alpha, seed, aggregate):
    """dattri's protocol, spelt out: random alpha-subsets, refits, Spearman per test row."""
    rng = np.random.default_rng(seed)
    n = len(y)
    preds, losses = [], []
    for _ in range(n_subsets):
        idx = rng.choice(n, size=int(round(alpha * n)), replace=False)
        model = clone(est).fit(X[idx], y[idx])
        proba = model.predict_proba(Xt)
        col = [list(model.classes_).index(c) for c in yt]
        losses.append(-np.log(proba[np.arange(len(yt)), col]))
        preds.append(A[:, idx].sum(axis=1))
    preds, losses = np.array(preds), np.array(losses)
    if aggregate:  # mean attribution over test rows against the mean test loss
        return spearmanr(preds.mean(axis=1), -losses.mean(axis=1))[0]
    return np.mean([spearmanr(preds[:, j], -losses[:, j])[0] for j in range(len(yt))])


@pytest.fixture
def tiny(any_data):
    X, y, Xv, yv = any_data
    X, y = X[:60], y[:60]
    est = LogisticRegression(C=2.0)
    model = clone(est).fit(X, y)
    A = influence_matrix(model, X, y, Xv[:8], yv[:8], method="exact_hessian")
    return est, X, y, Xv[:8], yv[:8], A


@pytest.mark.parametrize("n_subsets, alpha", [(12, 0.5), (20, 0.3)])
@pytest.mark.parametrize("aggregate", [False, True])
def test_lds_matches_hand_written_loop(tiny, n_subsets, alpha, aggregate):
    est, X, y, Xt, yt, A = tiny
    got = linear_datamodeling_score(est, X, y, Xt, yt, A, n_subsets=n_subsets, alpha=alpha,
                                    random_state=7, aggregate=aggregate)
    want = _reference_lds(est, X, y, Xt, yt, A, n_subsets, alpha, 7, aggregate)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_lds_sign_and_dict_share_the_refits(tiny):
    """Negated attributions get exactly the negated LDS (Spearman is odd in one argument);
    a dict scores every entry on the same subsets."""
    est, X, y, Xt, yt, A = tiny
    one = linear_datamodeling_score(est, X, y, Xt, yt, A, n_subsets=15, random_state=3)
    both = linear_datamodeling_score(est, X, y, Xt, yt, {"a": A, "neg": -A}, n_subsets=15,
                                     random_state=3)
    assert both["a"] == pytest.approx(one, rel=1e-12)
    assert both["neg"] == pytest.approx(-one, rel=1e-12)
    # lbfgs fits are deterministic: measured 0.83 (binary), 0.85 (3 classes); the bar is 0
    assert one > 0


def test_lds_verbose_shows_progress(tiny, capsys):
    pytest.importorskip("tqdm")
    est, X, y, Xt, yt, A = tiny
    linear_datamodeling_score(est, X, y, Xt, yt, A, n_subsets=4, random_state=0, verbose=True)
    assert "refits" in capsys.readouterr().err


@pytest.mark.parametrize("kw, match", [
    ({"n_subsets": 2}, "n_subsets"), ({"alpha": 1.0}, "alpha"), ({"alpha": 0.001}, "alpha"),
])
def test_lds_bad_arguments(tiny, kw, match):
    est, X, y, Xt, yt, A = tiny
    with pytest.raises(ValueError, match=match):
        linear_datamodeling_score(est, X, y, Xt, yt, A, **kw)


def test_lds_bad_attributions(tiny):
    est, X, y, Xt, yt, A = tiny
    with pytest.raises(ValueError, match=r"attributions must have shape \(n_test, n_train\)"):
        linear_datamodeling_score(est, X, y, Xt, yt, A.T)
    B = A.copy()
    B[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"attributions\['m'\] contains NaN"):
        linear_datamodeling_score(est, X, y, Xt, yt, {"m": B})


def _regression_reference_lds(est, X, y, Xt, yt, A, n_subsets, alpha, seed):
    """The same protocol for a regressor: the outcome is each test row's squared error."""
    rng = np.random.default_rng(seed)
    preds, losses = [], []
    for _ in range(n_subsets):
        idx = rng.choice(len(y), size=int(round(alpha * len(y))), replace=False)
        losses.append((clone(est).fit(X[idx], y[idx]).predict(Xt) - yt) ** 2)
        preds.append(A[:, idx].sum(axis=1))
    preds, losses = np.array(preds), np.array(losses)
    return np.mean([spearmanr(preds[:, j], -losses[:, j])[0] for j in range(len(yt))])


@pytest.mark.parametrize("alpha", [0.3, 0.6])
def test_a_regressor_is_scored_by_its_squared_errors(alpha):
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(3)
    X = rng.normal(size=(70, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=70)
    y[:5] += 4.0  # a few corrupted targets, so the subsets' refits differ
    Xt, yt = X[60:], y[60:]
    X, y = X[:60], y[:60]
    A = influence_matrix(Ridge(alpha=1.0).fit(X, y), X, y, Xt, yt, method="exact_hessian")
    got = linear_datamodeling_score(Ridge(alpha=1.0), X, y, Xt, yt, A, n_subsets=15,
                                    alpha=alpha, random_state=4)
    want = _regression_reference_lds(Ridge(alpha=1.0), X, y, Xt, yt, A, 15, alpha, 4)
    assert got == pytest.approx(want, abs=1e-12)
    assert got > 0.3  # exact attributions of a linear regressor predict its refits


def test_sparse_attributions_score_as_their_dense_matrix(tiny):
    import scipy.sparse as sp

    est, X, y, Xt, yt, A = tiny
    kept = np.where(np.abs(A) >= np.quantile(np.abs(A), 0.3), A, 0.0)  # a top-k style matrix
    dense = linear_datamodeling_score(est, X, y, Xt, yt, kept, n_subsets=10, random_state=1)
    sparse = linear_datamodeling_score(est, X, y, Xt, yt, sp.csr_matrix(kept), n_subsets=10,
                                       random_state=1)
    assert sparse == dense
    assert sparse == pytest.approx(_reference_lds(est, X, y, Xt, yt, kept, 10, 0.5, 1, False))


@pytest.mark.parametrize("alpha", [0.02, 0.04])
def test_subsets_left_with_one_class_name_alpha(tiny, alpha):
    est, X, y, Xt, yt, A = tiny
    with pytest.raises(ValueError, match=rf"alpha={alpha} gives subsets of \d+ of 60 rows, "
                                         r"and subset \d+ holds a single class"):
        linear_datamodeling_score(est, X, y, Xt, yt, A, n_subsets=30, alpha=alpha,
                                  random_state=0)


@pytest.mark.parametrize("aggregate", ["yes", 1, None])
def test_aggregate_must_be_a_bool(tiny, aggregate):
    est, X, y, Xt, yt, A = tiny
    with pytest.raises(ValueError, match="aggregate must be True or False"):
        linear_datamodeling_score(est, X, y, Xt, yt, A, n_subsets=5, aggregate=aggregate)


class _FlatOnSentinel(LogisticRegression):
    """A logistic regression whose probabilities are fixed for rows with x[0] == 99."""

    def predict_proba(self, X):
        P = super().predict_proba(X)
        P[X[:, 0] == 99] = 1.0 / P.shape[1]
        return P


@pytest.mark.parametrize("flat_rows", [[0], [2, 5]])
def test_a_test_row_of_constant_loss_is_left_out_with_a_warning(tiny, flat_rows):
    _, X, y, Xt, yt, A = tiny
    Xt = Xt.copy()
    Xt[flat_rows, 0] = 99
    est = _FlatOnSentinel(C=2.0)
    with pytest.warns(RuntimeWarning, match=rf"{len(flat_rows)} test row\(s\) have a constant"):
        got = linear_datamodeling_score(est, X, y, Xt, yt, A, n_subsets=12, random_state=3)
    keep = np.setdiff1d(np.arange(len(yt)), flat_rows)
    want = _reference_lds(est, X, y, Xt[keep], yt[keep], A[keep], 12, 0.5, 3, False)
    assert got == pytest.approx(want, abs=1e-12)
