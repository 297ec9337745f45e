"""The README's quick start, as a file a test runs (tests/docs/test_examples.py)."""

import mlcycle as mc
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

mc.set_experiment("wine")
for C in (0.1, 1.0, 10.0):
    with mc.start_run(name=f"logreg-C{C}", params={"C": C}) as run:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(X_train, y_train)
        for step, n in enumerate((20, 60, len(X_train))):  # a learning curve
            partial = make_pipeline(StandardScaler(), LogisticRegression(C=C))
            partial.fit(X_train[:n], y_train[:n])
            run.log_metric("test_accuracy_by_size", partial.score(X_test, y_test), step=step)
        run.log_metric("test_accuracy", model.score(X_test, y_test))
        run.log_result("classes", sorted(set(y_train.tolist())))

best = mc.search_runs("metrics.test_accuracy > 0.9", experiments=["wine"],
                      order_by=["metrics.test_accuracy DESC"]).items[0]
print(best.name, best.params["C"], round(best.metrics["test_accuracy"], 3))
