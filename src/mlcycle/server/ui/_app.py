"""The UI's plumbing: templates, the page route class (errors and logins as pages), the static
files, the login form; :func:`mount_ui` puts it all on the server's app."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import jinja2
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from mlcycle.errors import AuthError, MlcycleError, NotFoundError
from mlcycle.server.auth import TokenPolicy
from mlcycle.server.ui._session import COOKIE, LoginRequired, login_url, safe_next

__all__ = ["PageRoute", "mount_ui", "render"]

logger = logging.getLogger("mlcycle.server")

_HERE = Path(__file__).parent
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def with_query(request: Request, **changes: Any) -> str:
    """This page's URL with query parameters replaced (``None`` drops one), for links that
    change one thing (the sort, the page) and keep the rest (the filter, the columns)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    kept += [(k, str(v)) for k, v in changes.items() if v is not None]
    return f"{request.url.path}?{urlencode(kept)}" if kept else request.url.path


def dataset_version_url(dataset: str, version: str | int) -> str | None:
    """The page of a dataset version a run read or a model was trained on (recorded as
    ``"v3"``), or ``None`` for a version that is not a number."""
    number = str(version).removeprefix("v")
    return f"/datasets/{quote(dataset, safe='')}/versions/{number}" if number.isdigit() else None


_templates.globals["with_query"] = with_query
_templates.globals["dataset_version_url"] = dataset_version_url

#: The files under ``/static/``: this package's own, and Plotly's bundle from its package.
_STATIC = {
    "ui.css": ("text/css", _HERE / "static" / "ui.css"),
    "ui.js": ("text/javascript", _HERE / "static" / "ui.js"),
}


def render(request: Request, template: str, status_code: int = 200, **context: Any
           ) -> HTMLResponse:
    """*template* rendered with *context*, the request and whether a login is needed."""
    policy: TokenPolicy = request.app.state.tokens
    html = _templates.get_template(template).render(
        request=request, auth_enabled=policy.enabled, **context)
    return HTMLResponse(html, status_code=status_code)


class PageRoute(APIRoute):
    """A route whose errors come back as pages: a missing token as a redirect to the login
    form, an mlcycle error as the error page with its status, anything else as a 500 page
    (its text goes to the log only, as in the API)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return RedirectResponse(login_url(exc.next_url), status_code=303)
            except MlcycleError as exc:
                return render(request, "error.html", status_code=exc.http_status,
                              title=exc.headline, message=exc.message)
            except Exception:
                logger.exception("UI page %s failed", request.url.path)
                return render(request, "error.html", status_code=500, title="Server error",
                              message="The page failed; the server's log has the details.")

        return page


router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    if name == "plotly.min.js":
        path = _plotly_js()
        return FileResponse(path, media_type="text/javascript",
                            headers={"cache-control": "public, max-age=86400"})
    if name not in _STATIC:
        raise NotFoundError(f"no static file {name!r}")
    media_type, path = _STATIC[name]
    return FileResponse(path, media_type=media_type)


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", title="Log in", next=safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token once; keep it in the cookie when the server knows it."""
    form = parse_qs((await request.body()).decode(errors="replace"))
    token = form.get("token", [""])[0].strip()
    next_url = safe_next(form.get("next", ["/"])[0])
    policy: TokenPolicy = request.app.state.tokens
    try:
        policy.authorize(f"Bearer {token}" if token else None, write=False)
    except AuthError as exc:
        return render(request, "login.html", status_code=401, title="Log in", next=next_url,
                      error=exc.message)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def mount_ui(app: FastAPI) -> None:
    """Add the pages to *app* (after the API, whose routes they must not shadow)."""
    from mlcycle.server.ui import _datasets, _models, _monitors, _pages

    app.include_router(router)
    app.include_router(_pages.router)
    app.include_router(_datasets.router)
    app.include_router(_models.router)
    app.include_router(_monitors.router)


def _plotly_js() -> Path:
    try:
        files = resources.files("plotly") / "package_data" / "plotly.min.js"
    except ModuleNotFoundError:
        raise NotFoundError("plotly is not installed, so charts cannot be drawn: "
                            "pip install 'mlcycle[server]'") from None
    return Path(str(files))
