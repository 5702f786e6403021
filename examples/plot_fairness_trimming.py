"""
================================================================
Demographic parity on Adult: ask for a gap, get it
================================================================

:class:`skinfluence.InfluenceTrimmer` and :class:`skinfluence.InfluenceReweighter`
with the ``DemographicParity`` objective act on the training samples whose
influence widens the gap between the groups' predicted positive rates (sex,
on UCI Adult). With ``target_gap=`` they search how much to act in rounds,
re-scoring as they go, until the gap of cross-fitted held-out predictions
reaches the requested value (``validation_gap_``), instead of trimming a
guessed fraction that may overshoot parity. The plot traces test accuracy
against the test gap for each requested gap, with fairlearn's
``ExponentiatedGradient`` at the smallest bound when fairlearn is installed.
"""
import matplotlib.pyplot as plt
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skinfluence import DemographicParity, InfluenceReweighter, InfluenceTrimmer
from skinfluence.datasets import load_adult
from skinfluence.metrics import demographic_parity_difference
from skinfluence.plotting import plot_accuracy_gap_front

d = load_adult(sensitive="sex")
scaler = StandardScaler().fit(d.X_train)
X_train, X_test = scaler.transform(d.X_train), scaler.transform(d.X_test)
TARGETS = [0.10, 0.05, 0.02]


def evaluate(pred):
    return ((pred == d.y_test).mean(),
            demographic_parity_difference(d.y_test, pred, sensitive_features=d.s_test))


plain = LogisticRegression(max_iter=1000).fit(X_train, d.y_train)
points = {"plain": evaluate(plain.predict(X_test))}

fronts = {}
for name, cls in [("InfluenceTrimmer", InfluenceTrimmer),
                  ("InfluenceReweighter", InfluenceReweighter)]:
    rows = []
    for target in TARGETS:
        est = cls(LogisticRegression(max_iter=1000), objective=DemographicParity(),
                  target_gap=target, random_state=0)
        est.fit(X_train, d.y_train, sensitive_features=d.s_train)
        acc, gap = evaluate(est.predict(X_test))
        rows.append((target, est.validation_gap_, acc, gap))
        print(f"{name} target {target:.2f}: validation gap {est.validation_gap_:.3f}, "
              f"test gap {gap:.3f}, accuracy {acc:.3f}, {len(est.gap_path_) - 1} rounds")
    fronts[name] = {"gap": [r[3] for r in rows], "accuracy": [r[2] for r in rows],
                    "label": [f"{r[0]:.2f}" for r in rows]}

try:
    from fairlearn.reductions import DemographicParity as FairlearnDP
    from fairlearn.reductions import ExponentiatedGradient
except ImportError:
    pass
else:
    # one bound only: each ExponentiatedGradient fit costs as much as all the rounds above
    eg = ExponentiatedGradient(LogisticRegression(max_iter=1000),
                               FairlearnDP(difference_bound=TARGETS[-1]))
    eg.fit(X_train, d.y_train, sensitive_features=d.s_train)
    points[f"ExponentiatedGradient, eps {TARGETS[-1]}"] = evaluate(
        eg.predict(X_test, random_state=0))

fig, ax = plt.subplots(figsize=(6, 4.5))
fronts.update({name: {"gap": [gap], "accuracy": [acc]} for name, (acc, gap) in points.items()})
plot_accuracy_gap_front(fronts, ax=ax)
ax.set_xlabel("demographic-parity gap on test (lower is fairer)")
ax.set_ylabel("test accuracy")
fig.tight_layout()
plt.show()

# the figure this example is about: the smallest requested gap, and its cost
trim = fronts["InfluenceTrimmer"]
headline = {"plain_accuracy": points["plain"][0], "plain_gap": points["plain"][1],
            "best_target": TARGETS[-1], "best_accuracy": trim["accuracy"][-1],
            "best_gap": trim["gap"][-1]}
