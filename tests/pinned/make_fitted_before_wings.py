"""Write ``fitted_before_wings.pkl``: estimators fitted and pickled by the flat layout.

The package was regrouped into subpackages after commit 0f4fc5f; this script
ran once against a checkout of that commit (scikit-learn 1.9.1)::

    git worktree add ../flat 0f4fc5f
    PYTHONPATH=../flat python tests/pinned/make_fitted_before_wings.py

``tests/test_public_api.py`` loads the file with the current code. The pickles
name ``skinfluence.estimators``, ``skinfluence.methods``,
``skinfluence.objectives`` and ``skinfluence.samplers``, the paths of that layout.
"""
import pathlib
import pickle

import numpy as np
from sklearn.linear_model import LogisticRegression

import skinfluence as sk
from skinfluence.samplers import RandomSampler


def main():
    """Fit the three estimators and pickle them beside this file (never on import: the
    test run imports every module for its doctests)."""
    rng = np.random.RandomState(0)
    X = rng.randn(120, 3)
    y = (X[:, 0] + 0.3 * rng.randn(120) > 0).astype(int)
    s = rng.randint(0, 2, 120)
    estimators = {
        "trimmer": sk.InfluenceTrimmer(LogisticRegression(), fraction=0.1,
                                       method=sk.SampledHessian(sampler=RandomSampler())).fit(X, y),
        "reweighter": sk.InfluenceReweighter(LogisticRegression(),
                                             objective=sk.DemographicParity()).fit(
            X, y, sensitive_features=s),
        "relabeler": sk.InfluenceRelabeler(LogisticRegression(), method=sk.ExactHessian(),
                                           fraction=0.05).fit(X, y),
    }
    X_test = rng.randn(20, 3)
    with open(pathlib.Path(__file__).with_name("fitted_before_wings.pkl"), "wb") as f:
        pickle.dump({"X_test": X_test, "estimators": estimators,
                     "proba": {k: e.predict_proba(X_test) for k, e in estimators.items()}}, f)


if __name__ == "__main__":
    main()
