"""Errors → HTTP. Whatever goes wrong leaves the server in one shape::

    {"error": {"code": "run_not_found", "message": "no run with id '…'", "details": {...}}}

- ``MlcycleError``: its class's ``http_status`` (the table drawn in ``mlcycle.errors``) and its
  ``code``; the REST stores rebuild the same class from ``code``.
- A request that does not match its schema (pydantic's 422): 400 ``invalid_input`` naming the field.
- Starlette's own errors (an unknown route, a wrong method): their status, a code for it.
- Anything else: 500 ``internal`` with a fixed message. The exception's text may hold anything
  (a database URL with its password, a file path), so it goes to the server's log only.

Unexpected exceptions are caught by a middleware rather than left to Starlette's last-resort
handler, which re-raises them to the server: uvicorn then closes the connection, and a client
that keeps connections alive would see its next request fail on a reset socket.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlcycle.errors import MlcycleError

__all__ = ["error_response", "install_error_handlers"]

logger = logging.getLogger("mlcycle.server")

#: Codes for the statuses Starlette raises by itself.
_HTTP_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {"error": {"code": code, "message": message, "details": dict(details or {})}}
    # default=str: details are meant to be plain values, but a stray object must not turn an
    # error response into a 500.
    return Response(orjson.dumps(body, default=str), status_code=status,
                    media_type="application/json", headers=headers)


async def _mlcycle_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MlcycleError)
    headers = {"www-authenticate": "Bearer"} if exc.http_status == 401 else None
    return error_response(exc.http_status, exc.code, exc.message, exc.details, headers)


def _field(loc: tuple[Any, ...]) -> str:
    """``("body", "params", "lr")`` → ``params.lr``; ``("body", "artifacts", 0, "path")`` →
    ``artifacts[0].path``. The source (body, query, path) is dropped unless it is all there is."""
    parts = loc[1:] if len(loc) > 1 and loc[0] in ("body", "query", "path", "header") else loc
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or str(loc[0] if loc else "body")


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if not errors:  # never seen, but a 400 must still say something
        return error_response(400, "invalid_input", "the request is not valid")
    first = errors[0]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "malformed")
        position = first["loc"][1] if len(first["loc"]) > 1 else None
        where = f" at position {position}" if position is not None else ""
        return error_response(400, "invalid_input",
                              f"body: not valid JSON ({reason}{where})",
                              {"field": "body", "position": position})
    # The "input" of each error is left out on purpose: it echoes what the client sent, which
    # may be large or sensitive, and the client has it anyway.
    items = [{"field": _field(tuple(e["loc"])), "message": e["msg"], "type": e["type"]}
             for e in errors]
    message = "; ".join(f"{i['field']}: {i['message']}" for i in items[:5])
    if len(items) > 5:
        message += f"; and {len(items) - 5} more"
    return error_response(400, "invalid_input", message,
                          {"field": items[0]["field"], "errors": items})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    message = str(exc.detail)
    # Starlette's bare "Not Found" / "Method Not Allowed" do not say what was asked for.
    if status == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif status == 405 and message == "Method Not Allowed":
        message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(status, _HTTP_CODES.get(status, "http_error"), message, None,
                          exc.headers)


def _internal(method: str, path: str) -> Response:
    return error_response(
        500, "internal",
        f"internal server error while handling {method} {path}; the server's log has the details",
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Last resort, for a failure outside the middleware below (in another middleware).
    return _internal(request.method, request.url.path)


class CatchUnexpected:
    """Answer 500 ``internal`` for an exception no handler took, log it, and go on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            if started:  # e.g. a download failed midway: no valid answer is left to give
                raise
            logger.exception("unexpected error handling %s %s", scope["method"], scope["path"])
            await _internal(scope["method"], scope["path"])(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MlcycleError, _mlcycle_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(CatchUnexpected)
