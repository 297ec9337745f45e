"""BentoML's side of the serving bench: the bench's pickled scikit-learn model behind one API.

Started by ``bench/serving.py`` as ``bentoml serve _bentoml_service:CancerClassifier`` in
BentoML's own venv, with ``BENCH_MODEL_PATH`` naming the pickle that venv wrote. One worker,
like the other single-worker servers; the API is BentoML's idiomatic synchronous one taking a
list of records (``{"records": [{...}, ...]}``) and answering the predicted classes.
"""

from __future__ import annotations

import os
import pickle

import bentoml
import pandas as pd


@bentoml.service(workers=1, traffic={"timeout": 60})
class CancerClassifier:
    def __init__(self) -> None:
        with open(os.environ["BENCH_MODEL_PATH"], "rb") as f:
            self.model = pickle.load(f)

    @bentoml.api
    def predict(self, records: list[dict[str, float]]) -> list[int]:
        return self.model.predict(pd.DataFrame.from_records(records)).tolist()
