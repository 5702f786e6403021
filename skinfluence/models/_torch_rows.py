"""A torch ``Dataset`` (or the one behind a ``DataLoader``) as training rows read on demand.

The torch adapter reads training rows only as ``X[start:stop]`` (one chunk of a
pass) or ``X[indices]`` (a sampler's subset). :class:`DatasetRows` answers
both by collating those items of a map-style dataset, so a pass over a
dataset that lives on disk holds one chunk at a time.
"""
import numpy as np
import torch


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
        item = self.dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise TypeError("X: each dataset item must be an (x, y) pair.")
        return item

    def labels(self):
        """Every item's label (one read of the dataset), as a numpy array."""
        return np.asarray([np.asarray(self._item(i)[1]).item() for i in range(len(self))])
