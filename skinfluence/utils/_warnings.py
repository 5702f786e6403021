"""Warnings that point at the user's line, however deep in the package they are raised."""
import os
import sys

import sklearn

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
#: scikit-learn's frames are skipped too: its fit wrappers and meta-estimators sit
#: between the user's call and ours
_SKLEARN = os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep


def outside_stacklevel():
    """The ``stacklevel`` naming the first frame outside skinfluence and scikit-learn,
    for ``warnings.warn`` called by the function that calls this one.

    A fixed number breaks when the call path changes (a comprehension is a frame of its
    own on Python 3.11, not on 3.12; ``fit`` runs inside scikit-learn's wrapper), so
    the frames are counted instead.
    """
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith((_PACKAGE, _SKLEARN)):
        frame, level = frame.f_back, level + 1
    return level
