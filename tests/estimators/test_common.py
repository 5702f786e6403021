"""scikit-learn's estimator checks over the three influence meta-estimators.

Every check runs; the table below lists the ones expected to fail, with why.
"""
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from skinfluence import InfluenceRelabeler, InfluenceReweighter, InfluenceTrimmer

_WEIGHT_EQUIVALENCE = (
    "Integer sample weights are not equivalent to repeated rows for data-dependent "
    "trimming/reweighting/relabeling: repeated rows change the cross-fitting folds, the "
    "influence scores and the share `fraction` selects (scikit-learn declares the same "
    "expected failure for e.g. SGDClassifier). Rows of zero weight ARE equivalent to "
    "removed rows (check_sample_weights_invariance passes)."
)

#: check name -> reason, for all three estimators
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": _WEIGHT_EQUIVALENCE,
    "check_sample_weight_equivalence_on_sparse_data": _WEIGHT_EQUIVALENCE,
}

ESTIMATORS = [
    InfluenceTrimmer(LogisticRegression()),
    InfluenceReweighter(LogisticRegression()),
    InfluenceRelabeler(LogisticRegression()),
    # around a regressor they are regressors (R^2 score, regression checks)
    InfluenceTrimmer(Ridge()),
    InfluenceReweighter(Ridge()),
    InfluenceRelabeler(Ridge()),
]


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    # Tiny problems: on a shared 2-core machine threaded BLAS only oversubscribes
    # (measured: this file 61 s with 2 BLAS threads under load, 7 s with 1).
    with threadpool_limits(1):
        yield


@pytest.mark.filterwarnings("ignore:The least populated class:UserWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible_estimator(estimator, check):
    """One of scikit-learn's check_estimator checks; a failing check raises."""
    check(estimator)
