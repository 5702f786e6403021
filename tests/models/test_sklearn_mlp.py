"""scikit-learn's MLPClassifier scored through its torch equivalent.

Reference: the network written here from ``coefs_`` / ``intercepts_`` as plain
tensor algebra, its objective (mean log-loss + alpha / (2 n) ||W||^2 over the
weights) differentiated by torch autograd, the Hessian solved by numpy.
"""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

from skinfluence import ExactHessian, InfluenceTrimmer, influence_scores  # noqa: E402
from skinfluence.models import make_adapter  # noqa: E402

ACT = {"relu": lambda z: torch.clamp(z, min=0), "tanh": torch.tanh,
       "logistic": lambda z: 1 / (1 + torch.exp(-z)), "identity": lambda z: z}


def _data(n_classes, n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + 25, 4))
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=n + 25),
                    [-0.5, 0.5][:n_classes - 1])
    return X[:n], y[:n], X[n:], y[n:]


def _fit(X, y, **kw):
    kw = {"hidden_layer_sizes": (5,), "solver": "lbfgs", "max_iter": 3000, "tol": 1e-12,
          "random_state": 0, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(**kw).fit(X, y)


class Reference:
    """The MLP's per-sample losses and objective as functions of its flat parameters."""

    def __init__(self, mlp, n_penalty):
        self.mlp, self.n_penalty = mlp, n_penalty
        self.shapes = [W.shape for W in mlp.coefs_]
        self.theta = torch.cat([torch.cat([torch.as_tensor(W).reshape(-1), torch.as_tensor(b)])
                                for W, b in zip(mlp.coefs_, mlp.intercepts_)]).double()

    def unpack(self, theta):
        out, k = [], 0
        for d_in, d_out in self.shapes:
            W = theta[k:k + d_in * d_out].reshape(d_in, d_out)
            k += d_in * d_out
            out.append((W, theta[k:k + d_out]))
            k += d_out
        return out

    def output(self, theta, X):
        h = torch.as_tensor(X, dtype=torch.float64)
        layers = self.unpack(theta)
        for i, (W, b) in enumerate(layers):
            h = h @ W + b
            if i < len(layers) - 1:
                h = ACT[self.mlp.activation](h)
        return h

    def losses(self, theta, X, y):
        z = self.output(theta, X)
        if not hasattr(self.mlp, "classes_"):  # MLPRegressor: half the squared error
            return 0.5 * (z[:, 0] - torch.as_tensor(y, dtype=torch.float64)) ** 2
        y = torch.as_tensor(np.searchsorted(self.mlp.classes_, y))
        if z.shape[1] == 1:  # binary: one logistic output
            z = z[:, 0]  # log(1 + e^z) - y z, written to stay finite
            return torch.log1p(torch.exp(-z.abs())) + z.clamp(min=0) - y * z
        return -torch.log_softmax(z, 1)[torch.arange(len(y)), y]

    def objective(self, theta, X, y):
        penalty = sum((W ** 2).sum() for W, _ in self.unpack(theta))
        return self.losses(theta, X, y).mean() + self.mlp.alpha / (2 * self.n_penalty) * penalty

    def damping(self, X, y, keep=None, floor=1e-3):
        """A damping making H + damping I positive definite (H's eigenvalues, by numpy)."""
        H = torch.autograd.functional.hessian(lambda th: self.objective(th, X, y), self.theta)
        keep = np.arange(len(self.theta)) if keep is None else keep
        return floor + max(0.0, -np.linalg.eigvalsh(H.numpy()[np.ix_(keep, keep)])[0])

    def inner_products(self, X, y, Xv, yv):
        """IP: <grad J, grad l_i> of the validation loss and each training loss."""
        gJ = torch.autograd.functional.jacobian(lambda th: self.losses(th, Xv, yv).mean(),
                                                self.theta).numpy()
        G = torch.autograd.functional.jacobian(lambda th: self.losses(th, X, y),
                                               self.theta).numpy()
        return G @ gJ

    def scores(self, X, y, Xv, yv, damping, keep=None):
        """ExactHessian: <(H + damping I)^-1 grad J, grad l_i>, over the ``keep`` parameters."""
        t = self.theta
        H = torch.autograd.functional.hessian(lambda th: self.objective(th, X, y), t).numpy()
        gJ = torch.autograd.functional.jacobian(lambda th: self.losses(th, Xv, yv).mean(),
                                                t).numpy()
        G = torch.autograd.functional.jacobian(lambda th: self.losses(th, X, y), t).numpy()
        keep = np.arange(len(t)) if keep is None else keep
        H = H[np.ix_(keep, keep)] + damping * np.eye(len(keep))
        return G[:, keep] @ np.linalg.solve(H, gJ[keep])


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("alpha", [1e-4, 1.0])
def test_exact_hessian_scores_match_autograd_on_the_same_network(n_classes, activation, alpha):
    X, y, Xv, yv = _data(n_classes)
    mlp = _fit(X, y, activation=activation, alpha=alpha)
    ref = Reference(mlp, n_penalty=len(y))
    # the reference objective is scikit-learn's: lbfgs reports its value as loss_ (which
    # clips probabilities at float eps: a relative 1e-8 apart on confident rows)
    assert float(ref.objective(ref.theta, X, y)) == pytest.approx(mlp.loss_, rel=1e-7)
    damping = ref.damping(X, y)
    expected = ref.scores(X, y, Xv, yv, damping=damping)
    got = influence_scores(mlp, X, y, Xv, yv, method=ExactHessian(damping=damping))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())


@pytest.mark.parametrize("batch_size, batch, n", [("auto", 60, 60), (20, 20, 60),
                                                  ("auto", 200, 250)])
def test_stochastic_solvers_penalise_per_minibatch(batch_size, batch, n):
    """scikit-learn's minibatch is min(200, n) rows for "auto": 60 of 60, 200 of 250."""
    X, y, Xv, yv = _data(3, n=n)
    mlp = _fit(X, y, solver="adam", max_iter=50, batch_size=batch_size, alpha=5.0,
               activation="tanh")
    ref = Reference(mlp, n_penalty=batch)
    damping = ref.damping(X, y)
    expected = ref.scores(X, y, Xv, yv, damping=damping)
    got = influence_scores(mlp, X, y, Xv, yv, method=ExactHessian(damping=damping))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())


@pytest.mark.parametrize("n_classes", [2, 3])
def test_last_layer_option_scores_the_output_layer_block(n_classes):
    X, y, Xv, yv = _data(n_classes)
    mlp = _fit(X, y, hidden_layer_sizes=(5, 4), activation="tanh", alpha=0.1)
    ref = Reference(mlp, n_penalty=len(y))
    keep = np.arange(len(ref.theta) - (4 * mlp.n_outputs_ + mlp.n_outputs_), len(ref.theta))
    damping = ref.damping(X, y, keep)
    expected = ref.scores(X, y, Xv, yv, damping=damping, keep=keep)
    got = influence_scores(mlp, X, y, Xv, yv, method=ExactHessian(damping=damping),
                           params="last_layer")
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())


def test_with_parameters_writes_coefs_back():
    X, y, _, _ = _data(3)
    mlp = _fit(X, y, hidden_layer_sizes=(5, 4))
    before = [W.copy() for W in mlp.coefs_]
    a = make_adapter(mlp)
    theta = a.theta + 0.05 * torch.randn(a.n_params, generator=torch.Generator().manual_seed(0),
                                         dtype=a.theta.dtype)
    moved = a.with_parameters(mlp, theta)
    ref = Reference(moved, len(y))
    np.testing.assert_allclose(moved.predict_proba(X),
                               torch.softmax(ref.output(ref.theta, X), 1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(moved.predict_proba(X), a.predict_proba(X, theta), rtol=1e-8)
    assert all(np.array_equal(W, B) for W, B in zip(mlp.coefs_, before))  # untouched


def test_trimmer_takes_an_mlp_and_refits_it():
    X, y, _, _ = _data(2, n=80)
    trim = InfluenceTrimmer(_fit(X, y, max_iter=200), cv=2, fraction=0.1,
                            random_state=0).fit(X, y)
    assert trim.n_trimmed_ == 8 and np.isfinite(trim.scores_).all()
    assert isinstance(trim.estimator_, MLPClassifier)


def _regression_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + 25, 4))
    y = X[:, 0] - 0.5 * X[:, 1] ** 2 + 0.3 * rng.normal(size=n + 25)
    return X[:n], y[:n], X[n:], y[n:]


def _fit_regressor(X, y, **kw):
    kw = {"hidden_layer_sizes": (5,), "solver": "lbfgs", "max_iter": 3000, "tol": 1e-12,
          "random_state": 0, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPRegressor(**kw).fit(X, y)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("alpha", [1e-4, 1.0])
def test_mlp_regressor_scores_match_autograd_on_its_own_loss(activation, alpha):
    X, y, Xv, yv = _regression_data()
    mlp = _fit_regressor(X, y, activation=activation, alpha=alpha)
    ref = Reference(mlp, n_penalty=len(y))
    # scikit-learn's objective: half the mean squared error plus alpha / (2 n) ||W||^2
    assert float(ref.objective(ref.theta, X, y)) == pytest.approx(mlp.loss_, rel=1e-7)
    expected = ref.inner_products(X, y, Xv, yv)
    got = influence_scores(mlp, X, y, Xv, yv, method="ip")
    assert np.corrcoef(got, expected)[0, 1] >= 0.9999
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())
    damping = ref.damping(X, y)
    expected = ref.scores(X, y, Xv, yv, damping=damping)
    got = influence_scores(mlp, X, y, Xv, yv, method=ExactHessian(damping=damping))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())


@pytest.mark.parametrize("name", ["trimmer", "reweighter", "relabeler"])
def test_the_estimators_fit_and_predict_with_an_mlp_regressor(name):
    from skinfluence import InfluenceRelabeler, InfluenceReweighter

    X, y, Xv, _ = _regression_data(n=90)
    base = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=300, random_state=0)
    cls = {"trimmer": InfluenceTrimmer, "reweighter": InfluenceReweighter,
           "relabeler": InfluenceRelabeler}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        options = {} if name == "reweighter" else {"fraction": 0.1}
        est = cls(base, cv=3, random_state=0, **options).fit(X, y)
        assert isinstance(est.estimator_, MLPRegressor) and np.isfinite(est.scores_).all()
        if name == "trimmer":  # the refit is the MLP fitted on the kept rows
            ref = MLPRegressor(**base.get_params()).fit(X[est.support_], y[est.support_])
        elif name == "relabeler":
            ref = MLPRegressor(**base.get_params()).fit(X, est.y_relabeled_)
        else:
            ref = MLPRegressor(**base.get_params()).fit(X, y, sample_weight=est.weights_)
    assert (est.n_trimmed_ == 9) if name == "trimmer" else True
    np.testing.assert_allclose(est.predict(Xv), ref.predict(Xv), rtol=1e-10)


def test_unsupported_mlps_are_refused_clearly():
    X, y, Xv, yv = _data(2)
    two_targets = _fit_regressor(X, np.c_[y, -y].astype(float), max_iter=50)
    with pytest.raises(TypeError, match="2 outputs; only single-output"):
        make_adapter(two_targets)
    poisson = _fit_regressor(X, np.exp(0.1 * X[:, 0]), max_iter=50, loss="poisson")
    with pytest.raises(TypeError, match="loss='poisson'"):
        make_adapter(poisson)
    multilabel = _fit(X, np.c_[y, 1 - y], max_iter=50)
    with pytest.raises(TypeError, match="multilabel"):
        make_adapter(multilabel)
    with pytest.raises(ValueError, match="not fitted"):
        make_adapter(MLPClassifier())
    with pytest.raises(TypeError, match="Unknown option"):
        make_adapter(_fit(X, y, max_iter=50), loss=torch.nn.MSELoss())
