"""A fitted scikit-learn ``Pipeline`` as a model: influence in the space its last step sees.

The transformers (``pipeline[:-1]``) are fitted already and held fixed: they
turn every X that reaches the adapter (training rows, validation rows, an
attacked copy) into the features the last step was fitted on, and the last
step's own adapter does the rest. So influence is measured with respect to
the last step's parameters, the transformers being part of the data. The
raw X is still what the caller passes, which is why a sensitive column can be
named as in the raw input: objectives read it before any transformation.
"""
from sklearn.utils.validation import check_is_fitted


class PipelineAdapter:
    """Adapter of a fitted ``Pipeline``: transforms X, then delegates to the last step's.

    Parameters
    ----------
    pipeline : fitted sklearn.pipeline.Pipeline
        Its last step must be a supported model. Read only.
    inner : adapter
        The adapter of ``pipeline[-1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence.models import make_adapter
    >>> X = np.array([[0.0, 10.0], [1.0, 30.0], [2.0, 20.0], [3.0, 40.0]])
    >>> pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, [0, 0, 1, 1])
    >>> adapter = make_adapter(pipe)
    >>> np.allclose(adapter.check_X(X, "X"), pipe[0].transform(X))
    True
    """

    def __init__(self, pipeline, inner):
        self.pipeline = pipeline
        self.inner = inner
        # a one-step pipeline has no transformer: X reaches the model as given
        self.transformers = pipeline[:-1] if len(pipeline) > 1 else None

    def __getattr__(self, name):
        # everything but the handling of X is the last step's (theta, hessian, score_pass...)
        if name in ("inner", "pipeline", "transformers"):  # not yet set (e.g. while copying)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def transform(self, X, name):
        """``X`` through the fitted transformers, errors naming the argument."""
        if self.transformers is None:
            return X
        try:
            return self.transformers.transform(X)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(
                f"{name}: the pipeline's transformers could not transform it ({exc})."
            ) from exc

    def check_X(self, X, name):
        return self.inner.check_X(self.transform(X, name), name)

    def training_data(self, X, y, sample_weight=None, *, name="X"):
        return self.inner.training_data(self.transform(X, name), y, sample_weight, name=name)

    def checked_training_data(self, X, y, sample_weight=None, *, name="X"):
        # the meta-estimator kept the raw input for the transformers: check their output
        return self.training_data(X, y, sample_weight, name=name)


def pipeline_adapter(pipeline, make_adapter, **kwargs):
    """The :class:`PipelineAdapter` of ``pipeline``, its last step's made by ``make_adapter``."""
    final = pipeline.steps[-1][1] if pipeline.steps else None
    if final is None or final == "passthrough":
        raise TypeError("The Pipeline's last step must be a fitted model, got "
                        f"{final!r}.")
    check_is_fitted(pipeline)
    return PipelineAdapter(pipeline, make_adapter(final, **kwargs))
