"""Every public name imports from the path it had before the package was grouped in wings.

The reference lists are the flat layout's (commit 0f4fc5f): the names ``doc/api.rst``
documents, ``skinfluence.__all__``, and the public names each public module defined.
A fitted estimator pickled by that layout loads and predicts as it did.
"""
import importlib
import pathlib
import pickle
import re
import warnings

import numpy as np
import pytest
import sklearn

import skinfluence

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The flat layout's public modules and the public names each defined (written from
# that checkout, not from the code under test).
FLAT_LAYOUT = {
    "skinfluence.estimators": ["InfluenceRelabeler", "InfluenceReweighter", "InfluenceTrimmer",
                               "influence_weights"],
    "skinfluence.methods": ["Context", "ExactHessian", "IP", "IPEnsemble", "KFAC", "Method",
                            "MethodOutput", "NewtonLOO", "SampledHessian"],
    "skinfluence.objectives": ["AdversarialRobustness", "BoundedGroupLoss", "DemographicParity",
                               "EqualizedOdds", "MeanPredictionGap", "Objective", "Utility"],
    "skinfluence.influence": ["InfluenceResult", "influence_scores", "score_validated"],
    "skinfluence.attribution": ["TopInfluences", "influence_matrix"],
    "skinfluence.metrics": ["DemographicParityScorer", "RobustAccuracyScorer",
                            "demographic_parity_difference", "demographic_parity_scorer",
                            "equalized_odds_difference", "fairness_gap", "fairness_report",
                            "fairness_scoring", "linear_datamodeling_score", "robust_accuracy",
                            "robust_accuracy_scorer", "robustness_scoring",
                            "selection_rate_by_group"],
    "skinfluence.plotting": ["AccuracyGapFrontDisplay", "RobustnessFrontDisplay",
                             "ScoreDistributionDisplay", "plot_accuracy_gap_front",
                             "plot_robustness_front", "plot_score_distribution"],
    "skinfluence.samplers": ["FeatureSampler", "LogitSampler", "RandomSampler", "Sampler"],
    "skinfluence.datasets": ["flip_labels", "load_adult", "make_flipped_blobs",
                             "make_flipped_moons", "make_memorised_moons"],
    "skinfluence.callbacks": ["Snapshot", "Snapshots"],
    "skinfluence.cli": ["build_parser", "clean", "demo", "main", "score"],
    "skinfluence.kfac": ["KFAC"],
    "skinfluence.label_issues": ["find_label_issues"],
    "skinfluence.unlearning": ["unlearn"],
    "skinfluence.models": ["LinearModelAdapter", "ModelAdapter", "make_adapter",
                           "register_adapter", "unregister_adapter"],
    "skinfluence.models.base": ["ATTACK_NORMS", "Chunk", "ModelAdapter", "ObjectiveTerms",
                                "TrainingData"],
    "skinfluence.models.linear": ["LinearModelAdapter", "blas_single_thread",
                                  "check_finite_rows"],
    "skinfluence.models.linear_regressor": ["LinearRegressorAdapter", "check_real_targets",
                                            "is_linear_regressor"],
    "skinfluence.models.torch": ["TorchModelAdapter", "make_torch_adapter"],
    "skinfluence.models.sklearn_mlp": ["is_sklearn_mlp", "make_mlp_adapter", "mlp_module"],
}
FLAT_ALL = ["influence_scores", "InfluenceResult", "influence_matrix", "TopInfluences",
            "InfluenceTrimmer", "InfluenceReweighter", "InfluenceRelabeler", "influence_weights",
            "find_label_issues", "IP", "IPEnsemble", "ExactHessian", "SampledHessian", "NewtonLOO",
            "KFAC", "unlearn", "Utility", "DemographicParity", "EqualizedOdds",
            "AdversarialRobustness", "MeanPredictionGap", "BoundedGroupLoss"]


def _documented_names():
    """Every entry of the autosummary lists in doc/api.rst, as a dotted path."""
    text = (ROOT / "doc" / "api.rst").read_text()
    names, module = [], None
    for line in text.splitlines():
        current = re.match(r"\.\. currentmodule:: (\S+)", line)
        if current:
            module = current.group(1)
        entry = re.match(r"   ([A-Za-z_][\w.]*)$", line)
        if entry and module:
            names.append(f"{module}.{entry.group(1)}")
    return names


def _resolve(path):
    """Import ``a.b.c.Name`` as a user would: the longest importable module, then attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(path)


def test_the_api_page_is_read_whole():
    names = _documented_names()
    assert len(names) >= 55  # the page's lists, not a stray match
    assert "skinfluence.samplers.RandomSampler" in names
    assert "skinfluence.models.base.ModelAdapter" in names


@pytest.mark.parametrize("path", _documented_names())
def test_every_documented_name_imports_from_its_path(path):
    assert _resolve(path) is not None


def test_all_is_the_flat_layouts_and_each_name_imports():
    assert sorted(skinfluence.__all__) == sorted(FLAT_ALL)
    for name in FLAT_ALL:
        exec(f"from skinfluence import {name}", {})


@pytest.mark.parametrize("module", sorted(FLAT_LAYOUT))
def test_every_public_module_keeps_its_names(module):
    mod = importlib.import_module(module)
    missing = [n for n in FLAT_LAYOUT[module] if not hasattr(mod, n)]
    assert not missing, f"{module} lost {missing}"


@pytest.mark.parametrize("old, new", [
    ("skinfluence.samplers.RandomSampler", "skinfluence.methods.samplers.RandomSampler"),
    ("skinfluence.kfac.KFAC", "skinfluence.methods.KFAC"),
    ("skinfluence.label_issues.find_label_issues", "skinfluence.cleaning.find_label_issues"),
    ("skinfluence.metrics.linear_datamodeling_score",
     "skinfluence.attribution._lds.linear_datamodeling_score"),
])
def test_an_old_path_gives_the_same_object_as_its_wing(old, new):
    assert _resolve(old) is _resolve(new)


def test_an_estimator_pickled_by_the_flat_layout_loads_and_predicts_the_same():
    if sklearn.__version__ != "1.9.1":  # scikit-learn's own pickles are version-bound
        pytest.skip("the pickle was written with scikit-learn 1.9.1")
    with open(ROOT / "tests" / "pinned" / "fitted_before_wings.pkl", "rb") as f:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            saved = pickle.load(f)
    for name, estimator in saved["estimators"].items():
        np.testing.assert_allclose(estimator.predict_proba(saved["X_test"]),
                                   saved["proba"][name], rtol=1e-12)
        assert type(estimator).__module__.startswith("skinfluence.estimators.")
    assert type(saved["estimators"]["trimmer"].method).__module__ == "skinfluence.methods._hessian"
