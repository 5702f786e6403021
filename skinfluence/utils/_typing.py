"""Type aliases of the public signatures (annotations only; nothing here runs)."""
from typing import Any, Literal, Union

import numpy as np
from numpy.typing import ArrayLike

#: an int seed, a RandomState or Generator, or None
RandomStateLike = Union[int, np.random.RandomState, np.random.Generator, None]
#: a fitted or unfitted estimator: scikit-learn, skorch, a torch module or a (module, loss) pair
EstimatorLike = Any
#: a method: a shorthand string or a Method instance
MethodLike = Union[str, Any]
#: an objective: a shorthand string or an Objective instance
ObjectiveLike = Union[str, Any]
BatchSize = Union[int, Literal["auto"]]
Device = Union[str, Any]

__all__ = ["ArrayLike", "RandomStateLike", "EstimatorLike", "MethodLike", "ObjectiveLike",
           "BatchSize", "Device"]
