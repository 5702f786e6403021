"""The training rows as an adapter holds them, shared by every model family."""
from dataclasses import dataclass


@dataclass
class TrainingData:
    """Validated training rows: numpy/scipy arrays (linear models) or tensors (nets).

    ``y`` holds class indices; ``weight`` is each sample's multiplier c_i in
    the sum-form training objective (1 for an unweighted net).
    """

    X: object
    y: object
    weight: object

    @property
    def n(self):
        return self.X.shape[0]

    @property
    def relative_weight(self):
        """c_i / mean(c): 1 for every sample of an unweighted fit."""
        return self.weight / self.weight.mean()
