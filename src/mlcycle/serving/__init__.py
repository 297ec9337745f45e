"""Serving: a loaded model, or the versions of a deployment, behind an ASGI app that speaks the
Open Inference Protocol (v2) and a plain JSON ``/predict``, micro-batched, with ``/feedback``,
prediction logs in Parquet and Prometheus ``/metrics``.

>>> app = create_serving_app(model, name="churn", version="3")   # doctest: +SKIP
>>> uvicorn.run(app)                                             # doctest: +SKIP
"""

from __future__ import annotations

from mlcycle.serving.app import ServingSettings, create_deployment_app, create_serving_app
from mlcycle.serving.batching import BatchSettings
from mlcycle.serving.protocol import v2_datatype

__all__ = [
    "BatchSettings",
    "ServingSettings",
    "create_deployment_app",
    "create_serving_app",
    "v2_datatype",
]
