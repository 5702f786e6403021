"""skorch's dict inputs: rows of several arrays passed to ``module.forward(**X)``.

skorch feeds a dict ``{name: array}`` to the module as keyword arguments, each
array indexed by row. :class:`DictRows` keeps those tensors together and
answers what the torch adapter asks of its rows: ``shape[0]``, ``X[start:stop]``,
``X[indices]`` and ``.to(device)``; :func:`forward` calls the module (or its
functional form) the way skorch does.
"""
from torch.func import functional_call


class DictRows:
    """Tensors of equal length, one per ``forward()`` argument, indexed together.

    Parameters
    ----------
    tensors : dict {str: torch.Tensor}
        Checked already (same number of rows, finite floats).
    """

    def __init__(self, tensors):
        self.tensors = dict(tensors)
        first = next(iter(self.tensors.values()))
        self.shape = (first.shape[0],)
        self.device = first.device

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        return DictRows({k: v[index] for k, v in self.tensors.items()})

    def to(self, device, non_blocking=False):
        return DictRows({k: v.to(device, non_blocking=non_blocking)
                         for k, v in self.tensors.items()})

    def row_shapes(self):
        """``{name: shape of one row}``, to check later data against."""
        return {k: tuple(v.shape[1:]) for k, v in self.tensors.items()}


def mappable(x):
    """What ``vmap`` can map over row by row: the tensor, or a dict row's tensors."""
    return x.tensors if isinstance(x, DictRows) else x


def one_row_batch(row):
    """A single row as seen inside ``vmap`` (tensor or dict) made a batch of one."""
    if isinstance(row, dict):
        return DictRows({k: v[None] for k, v in row.items()})
    return row[None]


def forward(module, x, state=None):
    """``module(x)``, or ``module(**x)`` for dict rows; at parameters ``state`` when given."""
    args, kwargs = ((), x.tensors) if isinstance(x, DictRows) else ((x,), {})
    if state is None:
        return module(*args, **kwargs)
    return functional_call(module, state, args, kwargs)
