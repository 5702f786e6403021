"""Independent references the engine is checked against.

Nothing here uses skinfluence's own derivatives: per-sample gradients come from
torch autograd, leave-one-out changes from refitting scikit-learn, and
objective gradients from central finite differences.
"""
import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression


def exact_logistic(**kw):
    """LogisticRegression fitted to (near) machine precision."""
    return LogisticRegression(solver="newton-cholesky", tol=1e-14, max_iter=1000, **kw)


def per_sample_gradients(adapter, X, y_idx):
    """(n, P) per-sample log-loss gradients by torch autograd (float64)."""
    X = torch.as_tensor(np.asarray(X), dtype=torch.float64)
    y = torch.as_tensor(y_idx)
    K, D, d = adapter.n_outputs, adapter.n_columns, adapter.n_features

    def losses(theta):
        M = theta.reshape(K, D)
        F = X @ M[:, :d].T + (M[:, d] if adapter.fit_intercept else 0.0)
        if K == 1:
            return torch.nn.functional.binary_cross_entropy_with_logits(
                F[:, 0], y.double(), reduction="none")
        return torch.nn.functional.cross_entropy(F, y, reduction="none")

    theta = torch.as_tensor(adapter.theta)
    return torch.autograd.functional.jacobian(losses, theta).numpy()


def central_difference(f, x, h=1e-6):
    g = np.zeros_like(x)
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        g[j] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def loo_changes(estimator, X, y, objective_value, indices=None):
    """J(theta_-i) - J(theta) by refitting a clone without each sample.

    ``objective_value(model)`` evaluates J for a fitted model.
    """
    base = objective_value(clone(estimator).fit(X, y))
    idx = range(len(y)) if indices is None else indices
    out = []
    for i in idx:
        keep = np.ones(len(y), dtype=bool)
        keep[i] = False
        out.append(objective_value(clone(estimator).fit(X[keep], y[keep])) - base)
    return np.array(out)


def correlations(a, b):
    return pearsonr(a, b)[0], spearmanr(a, b)[0]


def loo_problem(objective, C=1.0):
    """A small L2-logistic problem and its actual leave-one-out changes of J.

    Returns ``(model, X_tr, y_tr, X_val, y_val, s_val, actual)``. The
    objective's validation terms are fixed at the fitted model (the attacked
    set of AdversarialRobustness is frozen), so J is one function of theta.
    """
    from sklearn.datasets import make_classification
    from skinfluence.models.linear import LinearModelAdapter

    X, y = make_classification(300, 4, n_informative=3, n_redundant=0, flip_y=0.1,
                               random_state=4)
    X_tr, y_tr, X_val, y_val = X[:200], y[:200], X[200:], y[200:]
    s_val = (X_val[:, 1] > 0).astype(int)
    est = exact_logistic(C=C)
    model = clone(est).fit(X_tr, y_tr)
    terms = objective.terms(LinearModelAdapter(model), X_val, y_val, s_val)
    actual = loo_changes(est, X_tr, y_tr,
                         lambda m: LinearModelAdapter(m).objective_value(terms))
    return model, X_tr, y_tr, X_val, y_val, s_val, actual


def flat_float64_parameters(module):
    """(theta, unflat): the module's parameters as one float64 vector, and its inverse
    (a dict of views for ``torch.func.functional_call``)."""
    ref = {k: v.detach().double() for k, v in module.named_parameters()}
    names, shapes = list(ref), [v.shape for v in ref.values()]

    def unflat(t):
        out, i = {}, 0
        for k, s in zip(names, shapes):
            out[k] = t[i:i + s.numel()].reshape(s)
            i += s.numel()
        return out
    return torch.cat([v.ravel() for v in ref.values()]), unflat
