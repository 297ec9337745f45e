"""The serving app: the Open Inference Protocol (v2), ``/predict``, ``/feedback`` and
``/metrics`` in front of a runtime (one model, or a deployment it follows).

The predict path reads the body as bytes (bounded by ``max_body_bytes``), parses it with orjson,
routes it (canary, shadow), hands it to the chosen version's micro-batcher (which runs the model
in a worker thread, so the event loop stays free) and answers orjson bytes with the headers
``x-model-version`` and ``x-request-id`` (the id to send ground truth to ``/feedback`` with).
Logging a prediction is a queue append. Input the signature refuses is a 422 naming the column
(and the row when one is to blame); a model that raises is a 500 with an error id that is also
in the log, and the server goes on; a full batch queue is a 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import SecretStr
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from mlcycle.config import Settings
from mlcycle.deploy.service import DeploymentService
from mlcycle.errors import InvalidInputError, MlcycleError
from mlcycle.models import PyFuncModel
from mlcycle.serving import protocol
from mlcycle.serving.auth import CHALLENGE, BearerAuth
from mlcycle.serving.batching import BatchSettings, QueueFull
from mlcycle.serving.feedback import RecentPredictions, parse_feedback
from mlcycle.serving.metrics import CONTENT_TYPE_LATEST, ServingMetrics
from mlcycle.serving.openapi import openapi_document
from mlcycle.serving.prediction_log import FeedbackRecord, ParquetLog, PredictionRecord
from mlcycle.serving.router import Route
from mlcycle.serving.runtime import (
    DeploymentRuntime,
    Runtime,
    StaticRuntime,
    new_worker_id,
)
from mlcycle.serving.served import ServedVersion

__all__ = ["ServingApp", "ServingSettings", "create_deployment_app", "create_serving_app"]

logger = logging.getLogger("mlcycle.serving")
_JSON = "application/json"
_MAX_SHADOWS = 256  # shadow calls in flight; beyond it a request gets no shadow copy


@dataclass(frozen=True, slots=True)
class ServingSettings:
    """How a serving app behaves.

    ``max_body_bytes``: larger bodies get a 413. ``warm_up``: predict once on each model's input
    example before it answers (and before ``/v2/health/ready`` says yes). ``batch``: the
    micro-batching bounds. ``token``: when set, the prediction endpoints and ``/feedback`` need
    ``Authorization: Bearer <token>``. ``log_uri``: where prediction and feedback logs go
    (``None``: no log). ``recent_predictions``: requests remembered to count feedback live.
    ``poll_interval`` / ``report_interval``: seconds between deployment polls / worker reports.
    ``metrics_dir``: prometheus_client's multiprocess folder (several workers).
    """

    max_body_bytes: int = 8 * 1024 * 1024
    warm_up: bool = True
    batch: BatchSettings = field(default_factory=BatchSettings)
    token: SecretStr | None = None
    log_uri: str | None = None
    log_options: dict[str, Any] = field(default_factory=dict)
    log_max_rows: int = 100_000
    log_flush_interval: float = 1.0
    recent_predictions: int = 10_000
    poll_interval: float = 0.5
    report_interval: float = 1.0
    worker_id: str | None = None
    metrics_dir: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ServingSettings:
        """The serving part of the program's settings (``MLCYCLE_SERVE_*``)."""
        values: dict[str, Any] = {
            "batch": BatchSettings(max_batch_size=settings.serve_max_batch_size,
                                   max_wait_ms=settings.serve_max_wait_ms,
                                   max_queue=settings.serve_max_queue),
            "token": settings.serve_token,
            "log_uri": settings.resolved_prediction_log_uri if settings.serve_log else None,
            "log_options": dict(settings.artifact_options),
            "metrics_dir": settings.prometheus_multiproc_dir,
        }
        return cls(**{**values, **overrides})


class _HttpError(Exception):
    def __init__(self, status: int, body: dict[str, Any],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type=_JSON, headers=headers)


def _error(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


_UNAUTHORIZED = _HttpError(401, _error("unauthorized", "Authorization: a bearer token is "
                                       "required", {"field": "Authorization"}),
                           {"WWW-Authenticate": CHALLENGE})
_NOT_READY = _HttpError(503, _error("not_ready", "the model is still loading; see "
                                    "/v2/health/ready"), {"Retry-After": "1"})


def create_serving_app(model: PyFuncModel, *, name: str, version: str,
                       settings: ServingSettings | None = None) -> FastAPI:
    """An ASGI app serving *model* as *name* version *version*.

    >>> app = create_serving_app(load_model("model"), name="churn", version="3")  # doctest: +SKIP
    """
    settings = settings or ServingSettings()
    metrics = ServingMetrics.create(settings.metrics_dir)
    runtime = StaticRuntime(model, name=name, version=version, batch=settings.batch,
                            metrics=metrics, warm=settings.warm_up)
    return _create_app(runtime, settings, metrics)


def create_deployment_app(service: DeploymentService, deployment: str,
                          load: Callable[[str, int], PyFuncModel], *,
                          settings: ServingSettings | None = None) -> FastAPI:
    """An ASGI app answering with the versions of *deployment*, following its state in
    *service*; ``load(model_name, version)`` loads a version.

    >>> app = create_deployment_app(client.deployments, "churn",                # doctest: +SKIP
    ...                             lambda m, v: client.load_model(f"models:/{m}/{v}"))
    """
    settings = settings or ServingSettings()
    metrics = ServingMetrics.create(settings.metrics_dir)
    runtime = DeploymentRuntime(service, deployment, load, batch=settings.batch, metrics=metrics,
                                worker_id=settings.worker_id, warm=settings.warm_up,
                                poll_interval=settings.poll_interval,
                                report_interval=settings.report_interval)
    return _create_app(runtime, settings, metrics)


def _create_app(runtime: Runtime, settings: ServingSettings, metrics: ServingMetrics) -> FastAPI:
    auth = BearerAuth(settings.token.get_secret_value() if settings.token else None)
    recent = RecentPredictions(settings.recent_predictions)
    worker = settings.worker_id or new_worker_id()
    logs: dict[str, ParquetLog] = {}
    if settings.log_uri:
        for kind in ("predictions", "feedback"):
            logs[kind] = ParquetLog(
                settings.log_uri, kind, worker_id=worker, storage_options=settings.log_options,
                max_rows=settings.log_max_rows, flush_interval=settings.log_flush_interval,
                on_drop=_dropped(metrics, kind))
    prediction_log = logs.get("predictions")
    shadows: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for log in logs.values():
            log.start()
        app.state.runtime = runtime
        app.state.logs = logs
        try:
            await runtime.start()  # a model that fails to warm up stops the start
            yield
        finally:
            await runtime.stop()
            for log in logs.values():
                await asyncio.to_thread(log.close)
            metrics.close()

    app = ServingApp(title="mlcycle serving", lifespan=lifespan, redoc_url=None)

    def openapi() -> dict[str, Any]:  # the served version's signature, read when asked
        table = runtime.table
        return openapi_document(runtime.model_name, table.stable.version if table else "-",
                                table.stable.signature if table else None)

    app.openapi = openapi  # type: ignore[method-assign]

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

    def request_id_of(request: Request) -> str:
        given = request.headers.get("x-request-id")
        if given and len(given) <= 128 and given.isprintable():
            return given
        return uuid.uuid4().hex

    async def answer(endpoint: str, request: Request, parse: Callable[[Any, Any], Any],
                     reply: Callable[[Any, ServedVersion], Any], proba: bool = False) -> Response:
        """Parse, route, predict (batched), log and count one request."""
        start = time.perf_counter()
        table = runtime.table
        model = runtime.model_name
        if table is None:
            return _json(_NOT_READY.body, 503, _NOT_READY.headers)
        if not auth.allows(request.headers):
            metrics.request(model, table.stable.version, "stable", endpoint).answered(
                401, time.perf_counter() - start)
            return _json(_UNAUTHORIZED.body, 401, _UNAUTHORIZED.headers)
        route: Route | None = None
        data: Any = None
        try:
            data = parse(await read_body(request), table.stable.signature)
            route = table.route(request.headers, data)
        except _HttpError as exc:
            return _refused(model, table.stable.version, endpoint, exc.status, exc.body, start)
        except InvalidInputError as exc:
            return _refused(model, table.stable.version, endpoint, 422,
                            _error(exc.code, exc.message, exc.details), start)
        except ClientDisconnect:
            return _refused(model, table.stable.version, endpoint, 400,
                            _error("invalid_input", "body: the client went away"), start)
        except Exception as exc:  # a bug in parsing or routing: a JSON 500, counted and logged
            return _refused(model, table.stable.version, endpoint, 500, _model_failed(
                exc, model, table.stable.version, "-"), start)
        served = route.primary
        counters = metrics.request(model, served.version, route.role, endpoint)
        request_id = request_id_of(request)
        headers = {"x-model-version": served.version, "x-request-id": request_id}
        counters.in_flight.inc()
        output: Any = None
        with_proba = proba and served.proba is not None  # a canary may have no predict_proba
        try:
            batcher = served.proba if with_proba and served.proba is not None else served.predict
            output = await batcher.submit(data)
            status, body = 200, reply(output, served)
        except QueueFull as exc:
            metrics.rejected.labels(model, served.version).inc()
            status, body = 429, _error("overloaded", str(exc), {"retry_after": exc.retry_after})
            headers["Retry-After"] = str(exc.retry_after)
        except InvalidInputError as exc:
            _locate_row(exc, data)
            status, body = 422, _error(exc.code, exc.message, exc.details)
            metrics.errors.labels(*counters.labels, "validation").inc()
        except Exception as exc:
            status, body = 500, _model_failed(exc, model, served.version, request_id)
            metrics.errors.labels(*counters.labels, "model").inc()
        finally:
            counters.in_flight.dec()
        seconds = time.perf_counter() - start
        counters.answered(status, seconds)
        if status in (200, 500):
            served.stats.observe(seconds, error=status == 500)
            result = output[0] if with_proba and status == 200 else output
            if status == 200:
                recent.add(request_id, served.stats, result)
            if prediction_log is not None:
                prediction_log.append(PredictionRecord(
                    request_id, time.time(), runtime.deployment, model, served.version,
                    route.role, data, result, seconds * 1000, status, _rows(data)))
            if route.shadow is not None and status == 200 and len(shadows) < _MAX_SHADOWS:
                task = asyncio.create_task(shadow(route.shadow, data, result, request_id,
                                                  endpoint))
                shadows.add(task)
                task.add_done_callback(shadows.discard)
        return _json(body, status, headers)

    def _refused(model: str, version: str, endpoint: str, status: int, body: dict[str, Any],
                 start: float) -> Response:
        counters = metrics.request(model, version, "stable", endpoint)
        kind = {422: "validation", 500: "server"}.get(status, "client")
        metrics.errors.labels(*counters.labels, kind).inc()
        counters.answered(status, time.perf_counter() - start)
        return _json(body, status)

    async def shadow(served: ServedVersion, data: Any, primary: Any, request_id: str,
                     endpoint: str) -> None:
        """The candidate's answer to a copy of a request: logged, counted, compared with the
        answer given, never returned; its failure affects nothing else."""
        counters = metrics.request(runtime.model_name, served.version, "shadow", endpoint)
        start = time.perf_counter()
        output: Any = None
        status = 200
        try:
            output = await served.predict.submit(data)
        except QueueFull:
            return
        except Exception as exc:  # a shadow's failure is only counted
            status = 500
            metrics.errors.labels(*counters.labels, "model").inc()
            logger.debug("shadow version %s failed on request %s: %s", served.version,
                         request_id, exc)
        seconds = time.perf_counter() - start
        counters.answered(status, seconds)
        served.stats.observe(seconds, error=status == 500)
        if status == 200:
            recent.add(request_id, served.stats, output)
            same = protocol.as_list(output) == protocol.as_list(primary)
            metrics.shadow_agreement.labels(runtime.model_name, served.version,
                                            "same" if same else "different").inc()
        if prediction_log is not None:
            prediction_log.append(PredictionRecord(
                request_id, time.time(), runtime.deployment, runtime.model_name, served.version,
                "shadow", data, output, seconds * 1000, status, _rows(data)))

    @app.get("/v2/health/live")
    async def live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        is_ready = runtime.table is not None
        return _json({"ready": is_ready}, 200 if is_ready else 503)

    @app.get("/v2/models/{model_name}")
    async def model_metadata(model_name: str) -> Response:
        table = runtime.table
        if table is None:
            return _json(_NOT_READY.body, 503, _NOT_READY.headers)
        if model_name != runtime.model_name:
            return _unknown(model_name, runtime.model_name)
        stable = table.stable
        meta = protocol.metadata(model_name, stable.version, stable.model.info.flavor,
                                 stable.signature)
        meta["versions"] = table.versions
        return _json(meta)

    @app.post("/v2/models/{model_name}/infer")
    async def infer(model_name: str, request: Request) -> Response:
        if model_name != runtime.model_name:
            return _unknown(model_name, runtime.model_name)
        ids: dict[str, Any] = {}

        def parse(body: Any, signature: Any) -> Any:
            data, ids["id"] = protocol.parse_v2(body, signature)
            return data

        def reply(output: Any, served: ServedVersion) -> dict[str, Any]:
            body: dict[str, Any] = {
                "model_name": model_name, "model_version": served.version,
                "outputs": [protocol.v2_output(_output_name(served.signature), output)]}
            if ids.get("id") is not None:
                body["id"] = ids["id"]
            return body

        return await answer("infer", request, parse, reply)

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        proba = bool(request.scope["query_string"]) and request.query_params.get(
            "proba", "").lower() in ("1", "true", "yes")
        table = runtime.table
        if proba and table is not None and table.stable.proba is None:
            return _json(_error("invalid_input", "proba: this "
                                f"{table.stable.model.info.flavor} model has no predict_proba",
                                {"field": "proba"}), 400)

        def reply(output: Any, served: ServedVersion) -> dict[str, Any]:
            if not proba or served.proba is None:
                return {"predictions": protocol.as_list(output)}
            predictions, probabilities = output
            return {"predictions": protocol.as_list(predictions),
                    "probabilities": protocol.as_list(probabilities)}

        return await answer("predict", request, protocol.parse_predict, reply, proba=proba)

    @app.post("/feedback")
    async def feedback(request: Request) -> Response:
        if not auth.allows(request.headers):
            return _json(_UNAUTHORIZED.body, 401, _UNAUTHORIZED.headers)
        try:
            labels = parse_feedback(await read_body(request))
        except _HttpError as exc:
            return _json(exc.body, exc.status)
        except InvalidInputError as exc:
            return _json(_error(exc.code, exc.message, exc.details), 422)
        now = time.time()
        feedback_log = logs.get("feedback")
        matched = 0
        for label in labels:
            if recent.observe(label):
                matched += 1
            if feedback_log is not None:
                feedback_log.append(FeedbackRecord(label.request_id, label.row, label.label,
                                                   now, runtime.deployment))
        deployment = runtime.deployment
        if matched:
            metrics.feedback.labels(deployment, "true").inc(matched)
        if len(labels) > matched:
            metrics.feedback.labels(deployment, "false").inc(len(labels) - matched)
        return _json({"accepted": len(labels), "matched": matched})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.hot_paths(predict=predict, infer=infer)
    return app


class ServingApp(FastAPI):
    """FastAPI with the two prediction endpoints dispatched before its middleware stack.

    Each request through FastAPI's layers (error and exception middleware, exit stacks, the
    router, dependency solving) costs as much CPU as parsing, validating and predicting a
    one-row request for a linear model. The prediction handlers catch everything themselves,
    so ``POST /predict`` and ``POST /v2/models/{name}/infer`` go to them directly; every
    other path (and these, for the OpenAPI document) is FastAPI's as usual.
    """

    _predict: Callable[[Request], Awaitable[Response]] | None = None
    _infer: Callable[[str, Request], Awaitable[Response]] | None = None

    def hot_paths(self, *, predict: Callable[[Request], Awaitable[Response]],
                  infer: Callable[[str, Request], Awaitable[Response]]) -> None:
        self._predict, self._infer = predict, infer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            response: Response | None = None
            if path == "/predict" and self._predict is not None:
                response = await self._predict(Request(scope, receive))
            elif (path.startswith(_V2_MODELS) and path.endswith("/infer")
                  and self._infer is not None):
                name = path[len(_V2_MODELS):-len("/infer")]
                if name and "/" not in name:
                    response = await self._infer(name, Request(scope, receive))
            if response is not None:
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


_V2_MODELS = "/v2/models/"


def _dropped(metrics: ServingMetrics, kind: str) -> Callable[[int, str], None]:
    def on_drop(rows: int, reason: str) -> None:
        metrics.log_dropped.labels(kind, reason).inc(rows)

    return on_drop


def _rows(data: Any) -> int:
    if isinstance(data, dict):
        return max((len(v) for v in data.values() if isinstance(v, list)), default=1)
    shape = getattr(data, "shape", None)
    return int(shape[0]) if shape else 1


def _model_failed(exc: Exception, model: str, version: str, request_id: str) -> dict[str, Any]:
    error_id = uuid.uuid4().hex
    logger.error("prediction failed (error id %s, request %s, model %s version %s, pid %d)",
                 error_id, request_id, model, version, os.getpid(), exc_info=exc)
    code = exc.code if isinstance(exc, MlcycleError) else "serving_error"
    return _error(code, f"the model failed on this request ({type(exc).__name__}); "
                        f"error id {error_id}", {"error_id": error_id})


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
