"""Serving: one loaded model behind an ASGI app that speaks the Open Inference Protocol (v2) and a
plain JSON ``/predict``, with Prometheus ``/metrics``.

>>> app = create_serving_app(model, name="churn", version="3")   # doctest: +SKIP
>>> uvicorn.run(app)                                             # doctest: +SKIP
"""

from __future__ import annotations

from mlcycle.serving.app import ServingSettings, create_serving_app
from mlcycle.serving.protocol import v2_datatype

__all__ = ["ServingSettings", "create_serving_app", "v2_datatype"]
