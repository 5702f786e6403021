"""Label and target cleaning: which rows look mislabeled, and whether acting on them pays.

- :func:`~skinfluence.find_label_issues` (``_label_issues``; regressors in
  ``_target_issues``; precomputed probabilities in ``_precomputed_issues``,
  cleanlab's filters in ``_cleanlab_filters``);
- how many labels look wrong, and which (``_label_noise``, ``_target_noise``);
- the cross-fitted scoring every estimator uses (``_crossfit``,
  ``_crossfit_regression``; a classifier without an adapter is cross-fitted for
  its held-out probabilities alone) and the nested check that acting helps the
  held-out folds (``_refit_check``).
"""
from ._label_issues import find_label_issues

__all__ = ["find_label_issues"]
