"""``find_label_issues``, importable from its earlier path.

It lives in :mod:`skinfluence.cleaning`, with the rest of label cleaning.
"""
from .cleaning import find_label_issues

__all__ = ["find_label_issues"]
