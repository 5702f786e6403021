"""skorch callbacks: parameter snapshots for checkpoint ensembles.

``Snapshots`` keeps copies of the module's parameters along the training
trajectory, in memory and on the CPU, with the learning rate in force when
each was taken; ``IPEnsemble(members="checkpoints")`` then scores at every
snapshot (TracIn's checkpoints, without files on disk).
"""
from dataclasses import dataclass
import math
import numbers

try:
    from skorch.callbacks import Callback
except ImportError as exc:  # the callbacks are skorch's; the rest of skinfluence is not
    raise ImportError("skinfluence.callbacks needs skorch and torch: "
                      "pip install 'skinfluence[torch]'") from exc

__all__ = ["Snapshots", "Snapshot"]


@dataclass
class Snapshot:
    """One recorded parameter set.

    Attributes
    ----------
    epoch : int
        Epoch (counted over the net's whole history) after which it was taken.
    lr : float or None
        Learning rate of the optimizer's first parameter group during that epoch.
    state : dict
        ``module_.state_dict()`` copied to the CPU (parameters and buffers).
    """

    epoch: int
    lr: float
    state: dict

    @property
    def nbytes(self):
        return sum(t.numel() * t.element_size() for t in self.state.values())


def _host_copy(tensor):
    """A CPU copy, detached: a CUDA net's snapshots never stay in GPU memory."""
    return tensor.detach().to("cpu", copy=True)


class Snapshots(Callback):
    """Keep ``n_snapshots`` copies of a skorch net's parameters, evenly spaced over training.

    Snapshot k of a run of ``E = net.max_epochs`` epochs is taken after epoch
    ``ceil((k + 1) * E / n_snapshots)``, so the last one is the trained model.
    Each is a CPU copy of ``module_.state_dict()`` (a CUDA net does not run out
    of GPU memory) with the learning rate in force during its epoch (read at
    the start of the epoch, so an ``LRScheduler`` stepping at the end does not
    shift it). The snapshots are plain tensors in ``snapshots_``: they survive
    pickling of the net, and ``sklearn.clone`` of the net starts a fresh,
    empty callback, so every refit and cross-fitting fold records its own.

    Runs: every ``fit`` re-initialises the callback (empty). A ``partial_fit``
    or ``warm_start`` fit is a new run: by default its snapshots replace the
    previous ones; ``keep_previous=True`` appends them instead (the trajectory
    across runs). A run cut short (early stopping, ``KeyboardInterrupt``) or
    longer than ``max_epochs`` (``partial_fit(..., epochs=...)``) still ends
    with a snapshot of the final parameters, at most ``n_snapshots`` per run.

    Parameters
    ----------
    n_snapshots : int, default=5
    keep_previous : bool, default=False

    Attributes
    ----------
    snapshots_ : list of Snapshot
    nbytes_ : int
        Memory held by the snapshots.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skorch import NeuralNetClassifier
    >>> from skinfluence.callbacks import Snapshots
    >>> X = np.random.default_rng(0).normal(size=(40, 2)).astype("float32")
    >>> y = (X[:, 0] > 0).astype("int64")
    >>> net = NeuralNetClassifier(torch.nn.Linear(2, 2), criterion=torch.nn.CrossEntropyLoss,
    ...                           max_epochs=10, train_split=None, verbose=0,
    ...                           callbacks=[Snapshots(n_snapshots=5)]).fit(X, y)
    >>> snaps = Snapshots.find(net).snapshots_
    >>> [s.epoch for s in snaps], str(snaps[-1].state["weight"].device)
    ([2, 4, 6, 8, 10], 'cpu')
    """

    def __init__(self, n_snapshots=5, keep_previous=False):
        self.n_snapshots = n_snapshots
        self.keep_previous = keep_previous

    def initialize(self):
        if not isinstance(self.n_snapshots, numbers.Integral) or self.n_snapshots < 1:
            raise ValueError(f"n_snapshots must be a positive int, got {self.n_snapshots!r}.")
        self.snapshots_ = []
        self._run_start_ = 0
        self._plan_ = set()
        self._lr_ = None
        self._run_taken_ = 0
        return self

    @staticmethod
    def find(net):
        """The ``Snapshots`` callback of an initialised skorch net, or None."""
        found = [cb for _, cb in getattr(net, "callbacks_", []) if isinstance(cb, Snapshots)]
        return found[0] if found else None

    @property
    def nbytes_(self):
        return sum(s.nbytes for s in getattr(self, "snapshots_", []))

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if not hasattr(self, "snapshots_"):
            self.initialize()
        if not self.keep_previous:
            self.snapshots_ = []
        self._run_start_ = len(net.history)
        self._run_taken_ = 0
        E, n = int(net.max_epochs), int(self.n_snapshots)
        self._plan_ = {math.ceil((k + 1) * E / n) for k in range(n)} - {0}

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        opt = getattr(net, "optimizer_", None)
        self._lr_ = float(opt.param_groups[0]["lr"]) if opt is not None else None

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        if len(net.history) - self._run_start_ in self._plan_:
            self._take(net)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        epoch = len(net.history)
        if epoch == self._run_start_:
            return  # no epoch ran
        if not self.snapshots_ or self.snapshots_[-1].epoch != epoch:
            if self._run_taken_ >= self.n_snapshots:  # ran past max_epochs: keep n per run
                self.snapshots_.pop(-1)
                self._run_taken_ -= 1
            self._take(net)

    def _take(self, net):
        state = {k: _host_copy(v) for k, v in net.module_.state_dict().items()}
        self.snapshots_.append(Snapshot(len(net.history), self._lr_, state))
        self._run_taken_ += 1
