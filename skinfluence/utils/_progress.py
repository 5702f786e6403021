"""One progress bar for the long loops (tqdm, optional).

``verbose`` off: the iterable itself (or, for a bar updated by hand, a
context giving None). tqdm missing: the same, with one warning that says so.
"""
import warnings
from contextlib import nullcontext

_TOLD = []  # the missing-tqdm warning is given once per process, not once per loop


def progress(iterable=None, *, verbose, total=None, desc, unit):
    """A tqdm bar over ``iterable`` (or, with ``iterable=None``, one to update by hand)."""
    if verbose:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if not _TOLD:
                _TOLD.append(True)
                warnings.warn("a progress bar (verbose) needs tqdm: pip install tqdm "
                              "(or skinfluence[progress]); running without one.", stacklevel=2)
        else:
            return tqdm(iterable, total=total, desc=desc, unit=unit)
    return nullcontext(None) if iterable is None else iterable
