"""One progress bar for the long loops (tqdm, optional).

``verbose`` off: the iterable itself (or, for a bar updated by hand, a
context giving None). tqdm missing: the same, with one warning that says so.
"""
import warnings
from contextlib import nullcontext


def progress(iterable=None, *, verbose, total=None, desc, unit):
    """A tqdm bar over ``iterable`` (or, with ``iterable=None``, one to update by hand)."""
    if verbose:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            warnings.warn("verbose=True needs tqdm (pip install tqdm); no progress bar shown.")
        else:
            return tqdm(iterable, total=total, desc=desc, unit=unit)
    return nullcontext(None) if iterable is None else iterable
