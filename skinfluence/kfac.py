"""K-FAC influence, importable from its earlier path.

It lives in :mod:`skinfluence.methods`, beside the other methods.
"""
from .methods._kfac import KFAC

__all__ = ["KFAC"]
