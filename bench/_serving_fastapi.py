"""The floor of the serving bench: a bare async FastAPI endpoint calling ``model.predict``.

Run as ``uvicorn _serving_fastapi:app --loop uvloop --http httptools`` (from ``bench/``) with
``BENCH_MODEL_PATH`` naming a pickle of the bench's model. No validation, logging or metrics:
the JSON records become a DataFrame, the model predicts, the classes go back.
"""

from __future__ import annotations

import os
import pickle

import orjson
import pandas as pd
from fastapi import FastAPI, Request, Response

with open(os.environ["BENCH_MODEL_PATH"], "rb") as _f:
    MODEL = pickle.load(_f)

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


@app.post("/predict")
async def predict(request: Request) -> Response:
    records = orjson.loads(await request.body())
    predictions = MODEL.predict(pd.DataFrame.from_records(records)).tolist()
    return Response(orjson.dumps({"predictions": predictions}), media_type="application/json")
