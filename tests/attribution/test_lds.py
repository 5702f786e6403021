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
