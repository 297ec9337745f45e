"""The one HTTP seam of the REST stores: a configured ``httpx.Client`` and the translation of
whatever goes wrong on the way into mlcycle's own errors.

A server answers an error as ``{"error": {"code", "message", "details"}}``; ``code`` rebuilds the
very class the server raised, so ``except RunNotFound`` works the same remotely and locally.
A transport failure (refused connection, timeout, reset) becomes a ``StoreError`` that names the
server's URL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from importlib import metadata
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from mlcycle.errors import (
    ArtifactNotFound,
    AuthError,
    MlcycleError,
    PermissionDenied,
    StoreError,
    error_class_for,
)

__all__ = ["API", "call", "http_client", "segment", "send", "stream"]

#: The prefix of every REST route; relative to the client's ``base_url`` so that a server
#: published under a path (``https://host/mlcycle``) works too.
API = "api/v1"

_JSON_HEADERS = {"content-type": "application/json"}


def _version() -> str:
    try:
        return metadata.version("mlcycle")
    except metadata.PackageNotFoundError:  # running from a source tree that was not installed
        return "0+unknown"


def http_client(base_url: str, *, token: str | None = None, timeout: float = 30.0) -> httpx.Client:
    """An ``httpx.Client`` for the ``mlcycle server`` at *base_url*.

    Connections are kept alive between calls (the metric writer sends a batch every second),
    and the bearer *token*, when given, goes with every request.

    >>> http = http_client("http://127.0.0.1:8080", token="s3cret")  # doctest: +SKIP
    >>> RestTrackingStore(http).list_experiments()                     # doctest: +SKIP
    """
    headers = {"user-agent": f"mlcycle/{_version()}", "accept": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return httpx.Client(
        base_url=base_url,
        headers=headers,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=60),
    )


def segment(value: str) -> str:
    """*value* as one URL path segment: ``/`` is escaped too, and a bare ``.`` or ``..`` (which
    URL normalisation would swallow) is spelled with ``%2E``."""
    quoted = quote(value, safe="")
    if quoted in (".", ".."):
        quoted = quoted.replace(".", "%2E")
    return quoted


def _unreachable(http: httpx.Client, exc: httpx.TransportError) -> StoreError:
    url = str(http.base_url).rstrip("/")
    return StoreError(
        f"could not reach the mlcycle server at {url}: {type(exc).__name__}: {exc or 'no detail'}",
        details={"url": url},
        # Only a connection that never opened is safe to retry: after a read timeout the server
        # may have applied the request.
        retryable=isinstance(exc, httpx.ConnectError),
    )


def error_from(response: httpx.Response) -> MlcycleError:
    """The mlcycle error an error *response* stands for (its body must have been read)."""
    status = response.status_code
    try:
        error = orjson.loads(response.content)["error"]
        code, message = error["code"], error["message"]
        details = error.get("details") or {}
    except (orjson.JSONDecodeError, KeyError, TypeError):
        # Not one of ours: a proxy's HTML page, or a HEAD answer, which carries no body.
        return _by_status(response)
    cls = error_class_for(code)
    if cls is MlcycleError and status >= 500:
        cls = StoreError  # e.g. "internal": a failure on the server's side, worth a retry
    return cls(message, details=details)


def _by_status(response: httpx.Response) -> MlcycleError:
    request = response.request
    where = f"{request.method} {request.url}"
    status = response.status_code
    if status == 401:
        return AuthError(f"{where}: the server wants a valid bearer token (HTTP 401)")
    if status == 403:
        return PermissionDenied(f"{where}: this token may not do that (HTTP 403)")
    if status == 404 and "/artifacts/objects/" in request.url.path:
        return ArtifactNotFound(f"{where}: no such artifact object (HTTP 404)")
    snippet = response.text[:200] if response.content else ""
    return StoreError(f"{where} failed with HTTP {status}{': ' + snippet if snippet else ''}",
                      details={"status": status})


def send(
    http: httpx.Client,
    method: str,
    path: str,
    *,
    body: Any = None,
    content: Any = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Send one request; raise the mlcycle error of a failure. *body* is encoded with orjson."""
    if body is not None:
        content = orjson.dumps(body)
        headers = {**_JSON_HEADERS, **(headers or {})}
    try:
        response = http.request(method, path, content=content, params=params, headers=headers)
    except httpx.TransportError as exc:
        raise _unreachable(http, exc) from exc
    if response.is_error:
        raise error_from(response)
    return response


def call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """``send`` and decode the JSON answer (None for an empty one, e.g. 204)."""
    response = send(http, method, path, **kwargs)
    return orjson.loads(response.content) if response.content else None


@contextlib.contextmanager
def stream(http: httpx.Client, path: str) -> Iterator[httpx.Response]:
    """GET *path* without reading the body yet; errors are translated as by ``send``."""
    try:
        with http.stream("GET", path) as response:
            if response.is_error:
                response.read()
                raise error_from(response)
            yield response
    except httpx.TransportError as exc:
        raise _unreachable(http, exc) from exc
