"""``create_serving_app``: one model behind the Open Inference Protocol (v2), ``/predict`` and
``/metrics``.

The predict path reads the body as bytes (bounded by ``max_body_bytes``), parses it with orjson,
runs the model in a worker thread so the event loop stays free, and answers orjson bytes. Input the
signature refuses is a 422 naming the column (and the row when one is to blame); a model that
raises is a 500 with an error id that is also in the log, and the server goes on.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mlcycle.errors import InvalidInputError, MlcycleError
from mlcycle.models import PyFuncModel
from mlcycle.serving import protocol
from mlcycle.serving.metrics import CONTENT_TYPE_LATEST, ServingMetrics

__all__ = ["ServingSettings", "create_serving_app"]

logger = logging.getLogger("mlcycle.serving")
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class ServingSettings:
    """``max_body_bytes``: larger request bodies get a 413. ``warm_up``: predict once on the
    model's input example before ``/v2/health/ready`` says yes."""

    max_body_bytes: int = 8 * 1024 * 1024
    warm_up: bool = True


class _HttpError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type=_JSON)


def _error(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def create_serving_app(model: PyFuncModel, *, name: str, version: str,
                       settings: ServingSettings | None = None) -> FastAPI:
    """An ASGI app serving *model* as *name* version *version*.

    >>> app = create_serving_app(load_model("model"), name="churn", version="3")  # doctest: +SKIP
    """
    settings = settings or ServingSettings()
    metrics = ServingMetrics.create()
    state = {"ready": False}
    signature = model.signature
    has_proba = hasattr(model, "predict_proba")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        example = model.input_example if settings.warm_up else None
        if example is not None:
            await run_in_threadpool(model.predict, example)  # a failure here stops the start
        state["ready"] = True
        yield

    app = FastAPI(title=f"mlcycle serving: {name}", version=version, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)

    async def read_body(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise _too_large(int(declared))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_body_bytes:
                raise _too_large(size)
            chunks.append(chunk)
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise _HttpError(400, _error("invalid_input", f"body: not valid JSON: {exc}",
                                         {"field": "body"})) from exc

    def _too_large(size: int) -> _HttpError:
        return _HttpError(413, _error(
            "payload_too_large",
            f"body: at most {settings.max_body_bytes} bytes, got {size} or more",
            {"field": "body", "limit": settings.max_body_bytes}))

    async def answer(endpoint: str, request: Request,
                     handle: Callable[[Any], Any]) -> Response:
        labels = (name, version, endpoint)
        metrics.in_flight.labels(name, version).inc()
        start = time.perf_counter()
        status = 200
        try:
            body = await read_body(request)
            return _json(await run_in_threadpool(handle, body))
        except _HttpError as exc:
            status = exc.status
            metrics.errors.labels(*labels, "client").inc()
            return _json(exc.body, status)
        except InvalidInputError as exc:
            status = 422
            metrics.errors.labels(*labels, "validation").inc()
            return _json(_error(exc.code, exc.message, exc.details), status)
        except Exception as exc:
            status = 500
            error_id = uuid.uuid4().hex
            metrics.errors.labels(*labels, "model").inc()
            logger.exception("prediction failed (error id %s, model %s version %s)",
                             error_id, name, version)
            code = exc.code if isinstance(exc, MlcycleError) else "serving_error"
            return _json(_error(code, f"the model failed on this request "
                                      f"({type(exc).__name__}); error id {error_id}",
                                {"error_id": error_id}), status)
        finally:
            metrics.latency.labels(*labels).observe(time.perf_counter() - start)
            metrics.requests.labels(*labels, str(status)).inc()
            metrics.in_flight.labels(name, version).dec()

    def run_model(data: Any, method: Callable[[Any], Any]) -> Any:
        try:
            return method(data)
        except InvalidInputError as exc:
            _locate_row(exc, data)
            raise

    @app.get("/v2/health/live")
    async def live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        return _json({"ready": state["ready"]}, 200 if state["ready"] else 503)

    @app.get("/v2/models/{model_name}")
    async def model_metadata(model_name: str) -> Response:
        if model_name != name:
            return _unknown(model_name, name)
        return _json(protocol.metadata(name, version, model.info.flavor, signature))

    @app.post("/v2/models/{model_name}/infer")
    async def infer(model_name: str, request: Request) -> Response:
        if model_name != name:
            return _unknown(model_name, name)

        def handle(body: Any) -> dict[str, Any]:
            data, request_id = protocol.parse_v2(body, signature)
            output_name = _output_name(signature)
            predictions = run_model(data, model.predict)
            reply: dict[str, Any] = {"model_name": name, "model_version": version,
                                     "outputs": [protocol.v2_output(output_name, predictions)]}
            if request_id is not None:
                reply["id"] = request_id
            return reply

        return await answer("infer", request, handle)

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        proba = request.query_params.get("proba", "").lower() in ("1", "true", "yes")
        if proba and not has_proba:
            return _json(_error("invalid_input", f"proba: this {model.info.flavor} model has no "
                                "predict_proba", {"field": "proba"}), 400)

        def handle(body: Any) -> dict[str, Any]:
            data = protocol.parse_predict(body, signature)
            reply = {"predictions": protocol.as_list(run_model(data, model.predict))}
            if proba:
                reply["probabilities"] = protocol.as_list(run_model(data, model.predict_proba))
            return reply

        return await answer("predict", request, handle)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app


def _unknown(asked: str, served: str) -> Response:
    return _json(_error("model_not_found", f"model {asked!r}: this server serves {served!r}",
                        {"field": "name"}), 404)


def _output_name(signature: Any) -> str:
    outputs = signature.outputs if signature is not None else None
    if isinstance(outputs, tuple) and len(outputs) == 1:
        return str(outputs[0].name)
    return "predict"


def _locate_row(exc: InvalidInputError, data: Any) -> None:
    """Add the first offending row to a column error when the request's column shows one."""
    column = exc.details.get("field")
    if not isinstance(data, dict) or column not in data or "row" in exc.details:
        return
    row = protocol.first_bad_row(data[column], str(exc.details.get("expected", "")))
    if row is not None:
        exc.details["row"] = row
        exc.message = f"{exc.message} (first at row {row})"
