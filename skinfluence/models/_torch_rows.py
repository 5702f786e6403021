"""A torch ``Dataset`` (or the one behind a ``DataLoader``) as training rows read on demand.

The torch adapter reads training rows only as ``X[start:stop]`` (one chunk of a
pass) or ``X[indices]`` (a sampler's subset). :class:`DatasetRows` answers
both by collating those items of a map-style dataset, so a pass over a
dataset that lives on disk holds one chunk at a time.
"""
import numpy as np
import torch

#: rows per chunk of the validation-side computations (gradient, attack, embedding)
CHUNK = 4096


def is_torch_rows(X):
    """A torch DataLoader or map-style Dataset (not a tensor)."""
    return isinstance(X, (torch.utils.data.DataLoader, torch.utils.data.Dataset))


class DatasetRows:
    """Rows ``dataset[i][0]`` of a map-style dataset, collated into tensors on demand.

    Parameters
    ----------
    source : DataLoader or Dataset
        A DataLoader contributes its ``dataset`` (its batching and shuffling
        are not used: the passes choose their own chunks, in order).
    dtype : torch.dtype
        Float rows are cast to it (the model's parameters' dtype).
    """

    device = torch.device("cpu")

    def __init__(self, source, dtype):
        dataset = source.dataset if isinstance(source, torch.utils.data.DataLoader) else source
        if isinstance(dataset, torch.utils.data.IterableDataset) or not hasattr(
                dataset, "__len__"):
            raise TypeError(
                "X: an iterable-style dataset has no random access; give a map-style Dataset "
                "(with __len__ and __getitem__), or its DataLoader."
            )
        self.dataset, self.dtype = dataset, dtype
        _check_length(dataset)
        self._item(len(dataset) - 1)  # an overcounting __len__ fails here, not mid-pass
        first = self[0:1]
        self.shape = (len(dataset),) + tuple(first.shape[1:])

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, slice):
            rows = range(*index.indices(len(self.dataset)))
        else:
            rows = np.asarray(index.cpu() if torch.is_tensor(index) else index).ravel()
        xs = [torch.as_tensor(self._item(int(i))[0]) for i in rows]
        x = torch.stack(xs)
        if x.is_floating_point():
            x = x.to(self.dtype)
            if not bool(torch.isfinite(x).all()):
                raise ValueError("X contains NaN or infinity.")
        return x

    def _item(self, i):
        try:
            item = self.dataset[i]
        except (IndexError, KeyError) as exc:
            raise ValueError(
                f"X: dataset[{i}] raised {type(exc).__name__} ({exc}) though the dataset's "
                f"__len__ is {len(self.dataset)}; __len__ must be the number of items."
            ) from exc
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise TypeError("X: each dataset item must be an (x, y) pair.")
        return item

    def labels(self):
        """Every item's label (one read of the dataset), as a numpy array."""
        return np.asarray([np.asarray(self._item(i)[1]).item() for i in range(len(self))])


def _check_length(dataset):
    """Refuse an empty dataset, and one with an item at index ``len(dataset)``.

    An item past ``__len__`` means ``__len__`` undercounts: the rows after it
    would be left out without a word (an ``IndexError`` or ``KeyError`` there
    is what a sequence gives; anything else is left to the item reads).
    """
    n = len(dataset)
    if n == 0:
        raise ValueError("X: the dataset is empty (its __len__ is 0); give at least one "
                         "(x, y) item.")
    try:
        dataset[n]
    except Exception:  # noqa: BLE001 - any refusal of index n is consistent with __len__
        return
    raise ValueError(
        f"X: the dataset's __len__ is {n} but dataset[{n}] returns an item; __len__ must be "
        "the number of items (rows past it would be left out)."
    )
