"""Fixed cases whose scores are pinned: every method x objective x model family.

``python -m tests.pinned.cases`` (from the repository root) writes
``tests/pinned/scores.npz`` from the code as it stands; ``test_pinned_scores``
then checks that later versions give the same scores. Regenerate the file only
for a deliberate change of behaviour, and say so in the commit.
"""
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from skinfluence import (IP, AdversarialRobustness, DemographicParity, EqualizedOdds,
                         ExactHessian, IPEnsemble, NewtonLOO, SampledHessian, Utility,
                         influence_scores)

N_TRAIN, N_VAL, N_FEATURES = 60, 30, 4


def data(n_classes):
    rng = np.random.default_rng(n_classes)
    X = rng.normal(size=(N_TRAIN + N_VAL, N_FEATURES))
    W = rng.normal(size=(N_FEATURES, n_classes))
    y = np.argmax(X @ W + rng.gumbel(size=(N_TRAIN + N_VAL, n_classes)), axis=1)
    s = (X[:, 0] + rng.normal(size=len(y)) > 0).astype(int)
    split = slice(0, N_TRAIN), slice(N_TRAIN, None)
    return [(X[p], y[p], s[p]) for p in split]


def methods(family):
    out = {"ip": IP(), "ip_ensemble": IPEnsemble(n_members=3),
           "exact_hessian": ExactHessian(),
           "sampled_hessian": SampledHessian(sampler="random", fraction=0.5)}
    if family.startswith("linear"):
        out["newton_loo"] = NewtonLOO()
    return out


def objectives(n_classes):
    positive = {} if n_classes == 2 else {"positive_class": 1}
    return {"utility": Utility(),
            "demographic_parity": DemographicParity(**positive),
            "equalized_odds": EqualizedOdds(**positive),
            "robustness_gamma": AdversarialRobustness(gamma=1.3),
            "robustness_l2": AdversarialRobustness(epsilon=0.3, norm="l2")}


def models():
    """(family name, fitted model, n_classes, extra influence_scores options)."""
    for n_classes in (2, 3):
        (X, y, _), _ = data(n_classes)
        yield (f"linear{n_classes}", LogisticRegression(C=0.5).fit(X, y), n_classes, {})
    torch.manual_seed(0)
    (X, y, _), _ = data(3)
    module = torch.nn.Sequential(torch.nn.Linear(N_FEATURES, 8), torch.nn.Tanh(),
                                 torch.nn.Linear(8, 3)).double()
    opt = torch.optim.LBFGS(module.parameters(), max_iter=200)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(Xt), yt)
        loss.backward()
        return loss

    opt.step(closure)
    yield ("torch3", (module, torch.nn.CrossEntropyLoss()), 3, {})


def all_scores():
    """{"family/method/objective": scores} for every case."""
    out = {}
    for family, model, n_classes, options in models():
        (X, y, _), (X_val, y_val, s_val) = data(n_classes)
        if family.startswith("torch"):
            X, X_val = X.astype(np.float64), X_val.astype(np.float64)
        for m_name, method in methods(family).items():
            for o_name, objective in objectives(n_classes).items():
                out[f"{family}/{m_name}/{o_name}"] = influence_scores(
                    model, X, y, X_val, y_val, method=method, objective=objective,
                    sensitive_features_val=s_val, random_state=0, **options)
    return out


if __name__ == "__main__":
    import pathlib

    path = pathlib.Path(__file__).with_name("scores.npz")
    np.savez_compressed(path, **all_scores())
    print(f"wrote {path}")
