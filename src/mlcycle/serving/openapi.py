"""The model server's OpenAPI document, written from the model's signature: ``/predict``'s
records and columns take exactly the served model's input columns with their JSON types, so
``/docs`` shows a request that works and client generators get typed bodies.

The prediction endpoints are plain handlers (no per-request pydantic), so FastAPI cannot infer
their bodies; this module describes them instead.
"""

from __future__ import annotations

from typing import Any

from mlcycle.models import ColumnSpec, Signature, TensorSpec

__all__ = ["openapi_document"]

_JSON_TYPES = {"bool": {"type": "boolean"}, "string": {"type": "string"},
               "category": {"type": "string"},
               "datetime": {"type": "string", "format": "date-time"},
               "date": {"type": "string", "format": "date"}}
_ERROR = {"$ref": "#/components/schemas/Error"}


def _json_type(type_name: str) -> dict[str, Any]:
    if type_name.startswith(("int", "uint")):
        return {"type": "integer"}
    if type_name.startswith("float"):
        return {"type": "number"}
    return dict(_JSON_TYPES.get(type_name, {}))


def _column(spec: ColumnSpec) -> dict[str, Any]:
    schema = _json_type(spec.type)
    if spec.nullable:
        schema = {"anyOf": [schema, {"type": "null"}]} if schema else {}
    return {**schema, "description": f"{spec.type}{'' if spec.nullable else ', required'}"}


def _inputs(signature: Signature | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(a record's schema, the columns form's schema) for *signature*'s inputs."""
    if signature is None or isinstance(signature.inputs, TensorSpec):
        record: dict[str, Any] = {"type": "object", "additionalProperties": True}
        return record, {"type": "object", "required": ["data"], "properties": {
            "data": {"type": "array", "items": {"type": "array", "items": {}}}}}
    columns = signature.inputs
    record = {"type": "object", "properties": {c.name: _column(c) for c in columns},
              "required": [c.name for c in columns], "additionalProperties": True}
    return record, {
        "type": "object", "required": ["data"],
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"},
                        "example": [c.name for c in columns]},
            "data": {"type": "array", "items": {"type": "array", "items": {}}},
        },
    }


def _errors(*codes: int) -> dict[str, Any]:
    words = {400: "Not JSON", 401: "Bearer token missing or wrong", 404: "Unknown model",
             413: "Body too large", 422: "Input the signature refuses (names the column and "
             "row)", 429: "Too many rows waiting (see Retry-After)", 500: "The model failed "
             "(an error id is in the body and the log)", 503: "Not ready yet"}
    return {str(c): {"description": words[c],
                     "content": {"application/json": {"schema": _ERROR}}} for c in codes}


def _post(summary: str, body: dict[str, Any], reply: dict[str, Any], *codes: int,
          parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {"200": {"description": "OK", "content": {
            "application/json": {"schema": reply}}}, **_errors(*codes)},
    }
    if parameters:
        op["parameters"] = parameters
    return {"post": op}


def openapi_document(name: str, version: str, signature: Signature | None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a server answering as model *name* (*version* now)."""
    record, columns = _inputs(signature)
    rows = {"type": "array", "items": {}}
    v2_tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"],
                 "properties": {"name": {"type": "string"},
                                "shape": {"type": "array", "items": {"type": "integer"}},
                                "datatype": {"type": "string", "example": "FP64"},
                                "data": {"type": "array", "items": {}}}}
    ready = {"get": {"summary": "Ready once the model is loaded and warmed up",
                     "responses": {"200": {"description": "Ready"}, **_errors(503)}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"mlcycle serving: {name}", "version": version,
                 "description": "Send `Authorization: Bearer <token>` when the server has "
                                "MLCYCLE_SERVE_TOKEN set. Answers carry `x-model-version` and "
                                "`x-request-id` (the id for /feedback)."},
        "paths": {
            "/predict": _post(
                "Predict: records or columns",
                {"oneOf": [{"type": "array", "items": record}, columns]},
                {"type": "object", "properties": {"predictions": rows, "probabilities": rows}},
                400, 401, 413, 422, 429, 500, 503,
                parameters=[{"name": "proba", "in": "query", "required": False,
                             "schema": {"type": "boolean"},
                             "description": "Add class probabilities"}]),
            f"/v2/models/{name}/infer": _post(
                "Open Inference Protocol v2: infer",
                {"type": "object", "required": ["inputs"], "properties": {
                    "id": {"type": "string"}, "inputs": {"type": "array", "items": v2_tensor}}},
                {"type": "object", "properties": {
                    "model_name": {"type": "string"}, "model_version": {"type": "string"},
                    "id": {"type": "string"}, "outputs": {"type": "array", "items": v2_tensor}}},
                400, 401, 404, 413, 422, 429, 500, 503),
            "/feedback": _post(
                "Ground truth for earlier predictions, by request id",
                {"oneOf": [{"$ref": "#/components/schemas/Feedback"},
                           {"type": "array", "items": {"$ref": "#/components/schemas/Feedback"}}]},
                {"type": "object", "properties": {"accepted": {"type": "integer"},
                                                  "matched": {"type": "integer"}}},
                400, 401, 413, 422),
            f"/v2/models/{name}": {"get": {"summary": "The model's inputs and outputs",
                                           "responses": {"200": {"description": "OK"},
                                                         **_errors(404, 503)}}},
            "/v2/health/live": {"get": {"summary": "Live",
                                        "responses": {"200": {"description": "Live"}}}},
            "/v2/health/ready": ready,
            "/metrics": {"get": {"summary": "Prometheus metrics",
                                 "responses": {"200": {"description": "Text format 0.0.4"}}}},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "details": {"type": "object"}}}}},
            "Feedback": {"type": "object", "required": ["request_id"], "properties": {
                "request_id": {"type": "string"}, "label": {},
                "row": {"type": "integer", "minimum": 0},
                "labels": {"type": "array", "items": {}}}},
        }},
    }
