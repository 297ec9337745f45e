"""Who may see the pages: the server's bearer tokens, carried by a cookie.

A browser cannot send an ``Authorization`` header on a link, so ``/login`` checks the token once
and keeps it in an HTTP-only cookie with ``SameSite=Strict`` (another site's form cannot post
with it). Writes (the promote and rollback buttons) also refuse a request the browser marks as
coming from another site (``Sec-Fetch-Site``, else ``Origin``), which keeps another page from
posting them to a server running without tokens on a developer's machine.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request

from mlcycle.errors import AuthError, PermissionDenied
from mlcycle.server.auth import TokenPolicy

__all__ = ["COOKIE", "LoginRequired", "check_access", "login_url", "safe_next"]

COOKIE = "mlcycle_token"


class LoginRequired(Exception):  # a signal to redirect to the login form, not an error
    """The page needs a token the request does not carry, or carries one the server does not
    know."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def check_access(request: Request, *, write: bool = False) -> None:
    """Raise :class:`LoginRequired` without a valid token in the cookie, and
    :class:`~mlcycle.errors.PermissionDenied` (shown as a page) for a read-only token asked
    to write."""
    if write:
        _same_site(request)
    policy: TokenPolicy = request.app.state.tokens
    if not policy.enabled:
        return
    token = request.cookies.get(COOKIE)
    try:
        policy.authorize(f"Bearer {token}" if token else None, write=write)
    except PermissionDenied:
        raise
    except AuthError:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(here) from None


def _same_site(request: Request) -> None:
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    here = f"{request.url.scheme}://{request.url.netloc}"
    if (site is not None and site not in ("same-origin", "none")) or (
            site is None and origin is not None and origin != here):
        raise PermissionDenied("this change must be made from this server's own pages",
                               details={"field": "Origin"})


def safe_next(value: str | None) -> str:
    """Only a path on this server: a login link must not send the browser elsewhere."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def login_url(next_url: str) -> str:
    return f"/login?next={quote(next_url, safe='')}"
