"""The data stage: ingest → version → contract → validate → prepare → train (a test runs this).

    python docs/data.py
"""

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import mlcycle as mc

# Some raw data: a CSV as it might land from an export.
rng = np.random.default_rng(0)
n = 2_000
orders = pd.DataFrame({
    "order_id": np.arange(n),
    "region": rng.choice(["EU", "US", "APAC"], n),
    "age": rng.integers(18, 90, n),
    "amount": rng.gamma(2.0, 30.0, n).round(2),
})
orders["returned"] = (rng.random(n) < 0.1 + 0.002 * orders["amount"].clip(0, 200)).astype(int)
orders.to_csv("orders.csv", index=False)

# 1. Ingest: a Parquet snapshot, its schema, profile and lineage become orders@v1.
v1 = mc.data.ingest("orders", "orders.csv", description="first export")
print(v1.ref, v1.num_rows, "rows, digest", v1.digest[:12])
assert mc.data.ingest("orders", "orders.csv") == v1  # unchanged: not even read again

# 2. A contract inferred from v1 (edit it as YAML: `mlcycle data contract show orders`),
#    and named segments that reports break down by.
contract = mc.data.infer_contract("orders@v1")
# Order ids keep growing and row counts vary: edit those rules (as you would in the YAML) and
# store the result as the dataset's next contract version.
edited = (contract.to_yaml().replace("    max: 1999\n", "")
          .replace("min_rows: 1000", "min_rows: 100").replace("max_rows: 4000", "max_rows: null"))
mc.data.save_contract("orders", edited)
contract = mc.data.get_contract("orders")
mc.data.set_segments("orders", {"eu": "region == 'EU'", "seniors": "age >= 65"})

# 3. Validate a new batch before it goes anywhere.
batch = orders.sample(1_200, random_state=1).copy()
batch["order_id"] += n  # new orders
batch.loc[batch.index[:3], "region"] = "MARS"
report = mc.data.validate(batch, dataset="orders")
print(report.summary())

# 4. Prepare: duplicates dropped, rows that break the contract quarantined (kept as their own
#    version), a stratified split, and a feature transformer fitted on train only, to ship with
#    the model. The same spec can be YAML (`mlcycle data prepare orders@v2 prepare.yaml`).
spec = {
    "target": "returned",
    "steps": [
        {"op": "drop_duplicates"},
        {"op": "contract", "contract": contract.to_dict(), "action": "quarantine"},
        {"op": "derive", "name": "big", "expr": "amount > 100"},
    ],
    "features": [
        {"op": "encode", "columns": ["region"], "method": "onehot"},
        {"op": "scale", "columns": ["age", "amount"]},
        {"op": "passthrough", "columns": ["big"]},
    ],
    "split": {"method": "stratified", "column": "returned", "test": 0.25, "seed": 0},
}
# v2: the old rows, the new batch, and 50 rows an export repeated.
v2 = mc.data.ingest("orders", pd.concat([orders, batch, orders.head(50)]),
                    parents=["orders@v1"])
out = mc.data.prepare(v2.ref, spec)
print(out.prepared.report.summary())
print({split: v.ref for split, v in out.versions.items()})

# 5. Train inside a run: the versions it reads are recorded as its inputs.
with mc.start_run(experiment="returns") as run:
    train = mc.data.load(out.versions["train"].ref, format="pandas")
    test = mc.data.load(out.versions["test"].ref, format="pandas")
    model = make_pipeline(out.prepared.transformer, LogisticRegression(max_iter=500))
    model.fit(train.drop(columns="returned"), train["returned"])
    run.log_metric("test_accuracy", model.score(test.drop(columns="returned"), test["returned"]))
print([(i.dataset, i.version) for i in mc.get_run(run.run_id).inputs])
