"""The Hessian samplers, importable from their earlier path.

They live in :mod:`skinfluence.methods.samplers`, beside the methods that use them.
"""
from .methods.samplers import FeatureSampler, LogitSampler, RandomSampler, Sampler

__all__ = ["Sampler", "RandomSampler", "FeatureSampler", "LogitSampler"]
