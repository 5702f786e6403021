"""Scores of every method x objective x model family stay what they were when pinned.

A guard for refactoring: ``tests/pinned/scores.npz`` was written once by
``python -m tests.pinned.cases`` (see that module); a change of any score beyond
floating-point noise fails here. Correctness itself is tested elsewhere, against
independent references.
"""
import pathlib

import numpy as np
import pytest

from tests.pinned.cases import all_scores

PINNED = np.load(pathlib.Path(__file__).parent / "pinned" / "scores.npz")


@pytest.fixture(scope="module")
def current():
    return all_scores()


def test_every_case_is_pinned(current):
    assert sorted(current) == sorted(PINNED.files)
    assert len(current) == 2 * 5 * 5 + 4 * 5  # linear binary + 3-class, torch


@pytest.mark.parametrize("case", sorted(PINNED.files))
def test_scores_equal_the_pinned_ones(current, case):
    rtol = 1e-4 if case.startswith("torch") else 1e-7
    scale = np.abs(PINNED[case]).max()
    np.testing.assert_allclose(current[case], PINNED[case], rtol=rtol, atol=rtol * scale)
