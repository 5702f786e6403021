"""
================================================================
Demographic parity on Adult: trimming vs ExponentiatedGradient
================================================================

:class:`skinfluence.InfluenceTrimmer` with the ``DemographicParity``
objective drops the training samples whose influence widens the gap between
the groups' predicted positive rates (sex, on UCI Adult). The sensitive
attribute is passed to ``fit`` as ``sensitive_features`` (fairlearn's
convention). The plot traces test accuracy against the test DP gap as the
trimmed share grows, with fairlearn's ``ExponentiatedGradient`` as the
reference point when fairlearn is installed.
"""
import matplotlib.pyplot as plt
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skinfluence import DemographicParity, InfluenceTrimmer
from skinfluence.datasets import load_adult
from skinfluence.metrics import demographic_parity_difference
from skinfluence.plotting import plot_accuracy_gap_front

d = load_adult(sensitive="sex")
scaler = StandardScaler().fit(d.X_train)
X_train, X_test = scaler.transform(d.X_train), scaler.transform(d.X_test)


def evaluate(pred):
    return ((pred == d.y_test).mean(),
            demographic_parity_difference(d.y_test, pred, sensitive_features=d.s_test))


plain = LogisticRegression(max_iter=1000).fit(X_train, d.y_train)
points = {"plain": evaluate(plain.predict(X_test))}

trimmer = InfluenceTrimmer(LogisticRegression(max_iter=1000), objective=DemographicParity(),
                           random_state=0)
trimmer.fit(X_train, d.y_train, sensitive_features=d.s_train)
curve = []
for fraction in [0.01, 0.02, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2]:
    trimmer.set_params(fraction=fraction).fit(X_train, d.y_train, scores=trimmer.scores_)
    curve.append((fraction, *evaluate(trimmer.predict(X_test))))
    print(f"trim {fraction:5.3f}: accuracy {curve[-1][1]:.3f}, DP gap {curve[-1][2]:.3f}")

try:
    from fairlearn.reductions import DemographicParity as FairlearnDP
    from fairlearn.reductions import ExponentiatedGradient
except ImportError:
    pass
else:
    eg = ExponentiatedGradient(LogisticRegression(max_iter=1000), FairlearnDP())
    eg.fit(X_train, d.y_train, sensitive_features=d.s_train)
    points["ExponentiatedGradient"] = evaluate(eg.predict(X_test, random_state=0))

fig, ax = plt.subplots(figsize=(6, 4.5))
fronts = {"InfluenceTrimmer": {"gap": [c[2] for c in curve], "accuracy": [c[1] for c in curve],
                               "label": [f"{c[0]:.2f}" for c in curve]}}
fronts.update({name: {"gap": [gap], "accuracy": [acc]} for name, (acc, gap) in points.items()})
plot_accuracy_gap_front(fronts, ax=ax)
ax.set_xlabel("demographic-parity gap on test (lower is fairer)")
ax.set_ylabel("test accuracy")
fig.tight_layout()
plt.show()

# the figure this example is about: the smallest gap on the front, and its cost
best = min(curve, key=lambda c: c[2])
headline = {"plain_accuracy": points["plain"][0], "plain_gap": points["plain"][1],
            "best_fraction": best[0], "best_accuracy": best[1], "best_gap": best[2]}
print(headline)
