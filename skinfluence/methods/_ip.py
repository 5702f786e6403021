"""Inner Product influence: the validation gradient itself as the direction."""
from ._base import Method, MethodOutput, boosted_output


def _single_pass(ctx, v):
    a = ctx.adapter
    return a.score_pass(ctx.train, [a.theta], [v], batch_size=ctx.batch_size,
                        progress=ctx.progress)[:, 0]


class IP(Method):
    """Inner Product influence (Hessian-free): ``v = grad J(V; theta)``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import influence_scores, IP
    >>> from skinfluence.datasets import make_flipped_blobs
    >>> d = make_flipped_blobs(random_state=0)
    >>> model = LogisticRegression().fit(d.X_train, d.y_train)
    >>> s = influence_scores(model, d.X_train, d.y_train, d.X_test, d.y_test, method=IP())
    >>> s.shape
    (150,)
    """

    shorthand = "ip"
    boosted_form = "gradient"

    def boosted_options(self):
        return {}

    def compute(self, ctx):
        out = boosted_output(ctx, self)
        if out is not None:
            return out
        return MethodOutput(_single_pass(ctx, ctx.gradient()))
